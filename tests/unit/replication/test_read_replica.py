from suoi.replication.read_replica import ReplicaView, rack_aware, select_read_replica


def view(broker_id: int, rack: str | None, leo: int = 10, in_sync: bool = True, eligible: bool = True) -> ReplicaView:
    return ReplicaView(broker_id, rack, leo, in_sync, eligible)


def test_selector_names() -> None:
    assert rack_aware("rack-aware") and rack_aware("org.apache.kafka.common.replica.RackAwareReplicaSelector")
    assert not rack_aware(None) and not rack_aware("") and not rack_aware("leader")


def test_no_client_rack_or_same_rack_leader_reads_from_the_leader() -> None:
    followers = [view(2, "b"), view(3, "c")]
    assert select_read_replica(1, "a", "", followers, 5) == 1
    assert select_read_replica(1, "b", "b", followers, 5) == 1


def test_same_rack_in_sync_follower_with_the_offset_is_chosen() -> None:
    assert select_read_replica(1, "a", "b", [view(2, "b"), view(3, "c")], 5) == 2
    # most data wins among several; ties go to the lower id
    assert select_read_replica(1, "a", "b", [view(2, "b", 8), view(3, "b", 9)], 5) == 3
    assert select_read_replica(1, "a", "b", [view(3, "b", 9), view(2, "b", 9)], 5) == 2


def test_unusable_followers_fall_back_to_the_leader() -> None:
    assert select_read_replica(1, "a", "b", [view(2, "b", in_sync=False)], 5) == 1
    assert select_read_replica(1, "a", "b", [view(2, "b", eligible=False)], 5) == 1
    assert select_read_replica(1, "a", "b", [view(2, "b", leo=4)], 5) == 1
    assert select_read_replica(1, "a", "z", [view(2, "b")], 5) == 1
