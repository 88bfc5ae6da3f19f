"""Partition reassignment (KIP-455): start, complete through the ISR, cancel, list, validation;
the records and snapshots that carry it."""

from __future__ import annotations

import json
import uuid

import pytest

from suoi.controller import (
    AlterConfigOp,
    ConfigResourceType,
    ElectionType,
    IncrementalAlterConfigsResource,
    MetadataBuilder,
    MetadataImage,
    OngoingReassignment,
    OpType,
)
from suoi.controller.records import (
    MetadataRecordError,
    Partition,
    PartitionChange,
    Topic,
    decode_record,
    encode_record,
)
from suoi.model import ErrorCode

from .helpers import Harness


def setup(assignments: dict[int, list[int]] | None = None, brokers: int = 4) -> tuple[Harness, uuid.UUID]:
    h = Harness(brokers)
    h.create("t", assignments=assignments or {0: [0, 1, 2]}, partitions=-1, rf=-1)
    return h, h.image.topic("t").topic_id  # type: ignore[union-attr]


def alter_isr(h: Harness, tid: uuid.UUID, isr: list[int], p: int = 0):  # type: ignore[no-untyped-def]
    reg = h.part("t", p)
    return h.ctl.alter_partition(reg.leader, h.epochs[reg.leader], tid, p, reg.leader_epoch, reg.partition_epoch,
                                 isr).response


def reassign(h: Harness, target: list[int] | None, p: int = 0, topic: str = "t"):  # type: ignore[no-untyped-def]
    r = h.ctl.alter_partition_reassignments([(topic, p, target)])
    assert len(r.response) == 1 and (r.response[0].topic, r.response[0].partition) == (topic, p)
    return r


def state(h: Harness, p: int = 0) -> tuple[tuple[int, ...], tuple[int, ...], int, tuple[int, ...], tuple[int, ...]]:
    reg = h.part("t", p)
    return reg.replicas, reg.isr, reg.leader, reg.adding_replicas, reg.removing_replicas


def test_move_completes_when_the_adding_replica_joins_the_isr_and_elects_a_target_leader() -> None:
    h, tid = setup()
    r = reassign(h, [1, 2, 3])
    assert r.response[0].error == ErrorCode.none and r.response[0].message is None
    assert r.records == (PartitionChange(topic_id=tid, partition=0, replicas=(1, 2, 3, 0), adding_replicas=(3,),
                                         removing_replicas=(0,)),)
    assert state(h) == ((1, 2, 3, 0), (0, 1, 2), 0, (3,), (0,))  # ISR and leader unchanged
    assert h.part("t").is_reassigning and h.part("t").leader_epoch == 0
    listed = h.ctl.list_partition_reassignments(None).response
    assert listed == [OngoingReassignment("t", 0, (1, 2, 3, 0), (3,), (0,))]
    assert h.image.partitions_hosted_by(3) == [("t", 0)]  # the new replica hosts it (and follows)
    # the leader reports 3 in sync: the reassignment completes, 0 leaves, 1 (first target) leads
    resp = alter_isr(h, tid, [0, 1, 2, 3])
    assert resp.error == ErrorCode.new_leader_elected
    assert state(h) == ((1, 2, 3), (1, 2, 3), 1, (), ())
    assert (resp.leader, resp.isr, resp.leader_epoch) == (1, (1, 2, 3), 1)
    assert h.image.partitions_hosted_by(0) == []
    assert h.ctl.list_partition_reassignments(None).response == []
    h.check_replay()


def test_completion_keeps_a_leader_that_stays() -> None:
    h, tid = setup()
    reassign(h, [0, 1, 3])
    assert state(h) == ((0, 1, 3, 2), (0, 1, 2), 0, (3,), (2,))
    assert alter_isr(h, tid, [0, 1, 2]).error == ErrorCode.none  # no change
    resp = alter_isr(h, tid, [0, 1, 2, 3])
    assert resp.error == ErrorCode.none and resp.isr == (0, 1, 3)
    assert state(h) == ((0, 1, 3), (0, 1, 3), 0, (), ())
    assert h.part("t").leader_epoch == 0
    h.check_replay()


def test_waits_for_every_adding_replica() -> None:
    h, tid = setup({0: [0]})
    reassign(h, [1, 2])
    assert state(h) == ((1, 2, 0), (0,), 0, (1, 2), (0,))
    assert alter_isr(h, tid, [0, 1]).error == ErrorCode.none
    assert state(h) == ((1, 2, 0), (0, 1), 0, (1, 2), (0,))
    assert alter_isr(h, tid, [0, 1, 2]).error == ErrorCode.new_leader_elected
    assert state(h) == ((1, 2), (1, 2), 1, (), ())
    h.check_replay()


def test_same_replicas_is_a_no_op_and_a_reorder_completes_at_once() -> None:
    h, tid = setup()
    r = reassign(h, [0, 1, 2])
    assert r.response[0].error == ErrorCode.none and r.records == ()
    r = reassign(h, [2, 0, 1])
    assert r.records == (PartitionChange(topic_id=tid, partition=0, replicas=(2, 0, 1)),)
    assert state(h) == ((2, 0, 1), (0, 1, 2), 0, (), ())  # the leader stays; 2 is now preferred
    assert h.ctl.list_partition_reassignments(None).response == []
    assert h.ctl.elect_leaders(ElectionType.PREFERRED, [("t", 0)]).response[0].error == ErrorCode.none
    assert h.part("t").leader == 2
    h.check_replay()


def test_shrinking_completes_at_once_and_moves_a_removed_leader() -> None:
    h, tid = setup()
    reassign(h, [1, 2])
    assert state(h) == ((1, 2), (1, 2), 1, (), ())
    reassign(h, [2])
    assert state(h) == ((2,), (2,), 2, (), ())
    h.check_replay()


def test_shrinking_to_out_of_sync_replicas_waits_until_one_is_in_sync() -> None:
    h, tid = setup()
    alter_isr(h, tid, [0])
    reassign(h, [1, 2])
    assert state(h) == ((1, 2, 0), (0,), 0, (), (0,))  # nothing to add, but nobody in sync to hand over to
    assert h.ctl.list_partition_reassignments([("t", 0)]).response == [OngoingReassignment("t", 0, (1, 2, 0), (), (0,))]
    assert alter_isr(h, tid, [0, 2]).error == ErrorCode.new_leader_elected
    assert state(h) == ((1, 2), (2,), 2, (), ())
    h.check_replay()


def test_cancel_restores_the_original_replicas() -> None:
    h, tid = setup({0: [2, 0, 1]})
    reassign(h, [3])
    assert state(h) == ((3, 2, 0, 1), (2, 0, 1), 2, (3,), (2, 0, 1))
    r = reassign(h, None)
    assert r.response[0].error == ErrorCode.none
    assert state(h) == ((2, 0, 1), (2, 0, 1), 2, (), ())  # order kept: removing replicas keep theirs
    assert h.image.partitions_hosted_by(3) == []
    r = reassign(h, None)
    assert (r.response[0].error, r.response[0].message) == (ErrorCode.no_reassignment_in_progress,
                                                            "No partition reassignment is in progress.")
    assert r.records == ()
    h.check_replay()


def test_cancel_drops_adding_replicas_from_the_isr() -> None:
    h, tid = setup({0: [0]})
    reassign(h, [1, 2])
    alter_isr(h, tid, [0, 1])
    reassign(h, None)
    assert state(h) == ((0,), (0,), 0, (), ())
    h.check_replay()


def test_cancel_when_only_adding_replicas_are_in_sync_needs_unclean_election() -> None:
    h, tid = setup({0: [0]})
    reassign(h, [1, 2])
    alter_isr(h, tid, [0, 1])
    h.heartbeat(0, want_fence=True)  # 0 leaves the ISR; 1 (a target replica in the ISR) leads
    assert state(h) == ((1, 2, 0), (1,), 1, (1, 2), (0,))
    r = reassign(h, None)
    assert r.response[0].error == ErrorCode.invalid_replica_assignment
    assert "unclean leader election" in (r.response[0].message or "")
    h.heartbeat(0)
    h.ctl.incremental_alter_configs([IncrementalAlterConfigsResource(
        resource_type=ConfigResourceType.TOPIC, resource_name="t",
        ops=[AlterConfigOp("unclean.leader.election.enable", OpType.SET, "true")])])
    assert reassign(h, None).response[0].error == ErrorCode.none
    assert state(h) == ((0,), (0,), 0, (), ())
    h.check_replay()


def test_a_new_target_is_relative_to_the_original_replicas() -> None:
    h, tid = setup({0: [0]})
    reassign(h, [1])
    alter_isr(h, tid, [0])  # nothing yet
    reassign(h, [2])
    assert state(h) == ((2, 0), (0,), 0, (2,), (0,))  # 1 is dropped, not "removed"
    assert h.image.partitions_hosted_by(1) == []
    reassign(h, None)
    assert state(h) == ((0,), (0,), 0, (), ())
    reassign(h, [1])
    reassign(h, [1])  # the same target again: nothing changes
    assert state(h) == ((1, 0), (0,), 0, (1,), (0,))
    h.check_replay()


def test_reassignment_survives_a_leader_change() -> None:
    h, tid = setup()
    reassign(h, [1, 2, 3])
    h.heartbeat(0, want_shutdown=True)  # controlled shutdown moves the leadership to 1
    assert state(h) == ((1, 2, 3, 0), (1, 2), 1, (3,), (0,))
    assert alter_isr(h, tid, [1, 2, 3]).error == ErrorCode.none
    assert state(h) == ((1, 2, 3), (1, 2, 3), 1, (), ())
    h.check_replay()


@pytest.mark.parametrize(("entry", "code", "message"), [
    (("nope", 0, [1]), ErrorCode.unknown_topic_or_partition, "Unable to find a topic named nope."),
    (("t", 5, [1]), ErrorCode.unknown_topic_or_partition, "Unable to find partition t:5."),
    (("t", 0, []), ErrorCode.invalid_replica_assignment,
     "The manual partition assignment includes an empty replica list."),
    (("t", 0, [1, 1]), ErrorCode.invalid_replica_assignment,
     "The manual partition assignment includes the broker 1 more than once."),
    (("t", 0, [1, 9]), ErrorCode.invalid_replica_assignment,
     "The manual partition assignment includes broker 9, but no such broker is registered."),
])
def test_validation(entry: tuple[str, int, list[int]], code: ErrorCode, message: str) -> None:
    h, _ = setup()
    r = h.ctl.alter_partition_reassignments([entry, ("t", 0, [0, 1, 3])])
    assert [(x.topic, x.partition, x.error, x.message) for x in r.response] == [
        (entry[0], entry[1], code, message), ("t", 0, ErrorCode.none, None)]
    assert state(h)[3:] == ((3,), (2,))  # the valid entry went through, in the same batch
    assert len(r.records) == 1


def test_a_fenced_target_broker_is_accepted() -> None:
    h, tid = setup()
    h.heartbeat(3, want_fence=True)
    assert reassign(h, [0, 1, 3]).response[0].error == ErrorCode.none
    assert alter_isr(h, tid, [0, 1, 2, 3]).error == ErrorCode.ineligible_replica  # it cannot join the ISR yet
    assert h.part("t").is_reassigning


def test_list_filters_and_sorts() -> None:
    h, tid = setup({0: [0], 1: [1], 2: [2]})
    h.ctl.alter_partition_reassignments([("t", 2, [3]), ("t", 0, [3])])
    everything = h.ctl.list_partition_reassignments().response
    assert [(x.topic, x.partition) for x in everything] == [("t", 0), ("t", 2)]
    some = h.ctl.list_partition_reassignments([("t", 2), ("t", 1), ("nope", 0), ("t", 9), ("t", 2)]).response
    assert some == [OngoingReassignment("t", 2, (3, 2), (3,), (2,))]


def test_preferred_leader_during_a_reassignment_is_the_first_target_replica() -> None:
    h, tid = setup()
    reassign(h, [3, 1, 2])
    r = h.ctl.elect_leaders(ElectionType.PREFERRED, [("t", 0)])
    assert r.response[0].error == ErrorCode.preferred_leader_not_available  # 3 is not in sync yet
    # completing removes the leader 0; the successor is the first target replica in the ISR
    assert alter_isr(h, tid, [0, 1, 2, 3]).error == ErrorCode.new_leader_elected
    assert state(h) == ((3, 1, 2), (1, 2, 3), 3, (), ())
    assert h.ctl.elect_leaders(ElectionType.PREFERRED, [("t", 0)]).response[0].error == ErrorCode.election_not_needed


def test_deleting_a_reassigning_topic() -> None:
    h, tid = setup()
    reassign(h, [3])
    assert h.ctl.delete_topics(["t"]).response[0].error == ErrorCode.none
    assert h.ctl.list_partition_reassignments().response == []
    h.check_replay()


def test_failover_keeps_the_reassignment() -> None:
    h, tid = setup()
    reassign(h, [1, 2, 3])
    h.restart_controller()
    assert h.ctl.list_partition_reassignments().response == [OngoingReassignment("t", 0, (1, 2, 3, 0), (3,), (0,))]
    assert alter_isr(h, tid, [0, 1, 2, 3]).error == ErrorCode.new_leader_elected
    h.check_replay()


# ---------------------------------------------------------------------------- records and snapshots


TID = uuid.UUID("5f3c8e6a-1b2d-4c3e-9f00-0123456789ab")


def test_reassignment_fields_make_version_2_records_and_are_left_out_otherwise() -> None:
    plain = json.loads(encode_record(Partition(topic_id=TID, partition=0, replicas=(1,), isr=(1,), leader=1)))
    assert plain["v"] == 1 and "adding_replicas" not in plain and "removing_replicas" not in plain
    moving = Partition(topic_id=TID, partition=0, replicas=(2, 1), isr=(1,), leader=1, adding_replicas=(2,),
                       removing_replicas=(1,))
    body = json.loads(encode_record(moving))
    assert body["v"] == 2 and body["adding_replicas"] == [2] and body["removing_replicas"] == [1]
    assert decode_record(encode_record(moving)) == moving
    change = PartitionChange(topic_id=TID, partition=0, adding_replicas=(), removing_replicas=())
    body = json.loads(encode_record(change))
    assert body == {"type": "PartitionChange", "v": 2, "topic_id": str(TID), "partition": 0,
                    "adding_replicas": [], "removing_replicas": []}
    assert decode_record(encode_record(change)) == change
    assert json.loads(encode_record(PartitionChange(topic_id=TID, partition=0, isr=(1,))))["v"] == 1


def test_old_records_still_decode_and_newer_versions_are_refused() -> None:
    old = {"type": "PartitionChange", "v": 1, "topic_id": str(TID), "partition": 0, "isr": [1]}
    assert decode_record(json.dumps(old).encode()) == PartitionChange(topic_id=TID, partition=0, isr=(1,))
    old_p = {"type": "Partition", "v": 1, "topic_id": str(TID), "partition": 0, "replicas": [1], "isr": [1],
             "leader": 1}
    assert decode_record(json.dumps(old_p).encode()).adding_replicas == ()  # type: ignore[union-attr]
    with pytest.raises(MetadataRecordError):
        decode_record(json.dumps({**old_p, "v": 3}).encode())


@pytest.mark.parametrize(("adding", "removing"), [((5,), ()), ((), (5,)), ((1,), (1,)), ((2, 2), ()), ((), (1, 2))])
def test_replay_refuses_inconsistent_reassignment_state(adding: tuple[int, ...], removing: tuple[int, ...]) -> None:
    b = MetadataBuilder()
    b.apply(Topic(name="t", topic_id=TID))
    b.apply(Partition(topic_id=TID, partition=0, replicas=(1, 2), isr=(1,), leader=1))
    with pytest.raises(MetadataRecordError):
        b.apply(PartitionChange(topic_id=TID, partition=0, adding_replicas=adding, removing_replicas=removing))


def test_snapshot_keeps_the_reassignment() -> None:
    h, _ = setup()
    reassign(h, [1, 2, 3])
    img = h.replayed()
    back = MetadataImage.from_snapshot(img.to_snapshot())
    assert back == img and back.partition("t", 0).adding_replicas == (3,)  # type: ignore[union-attr]
