from __future__ import annotations

from suoi.model import ErrorCode
from suoi.replication import UNKNOWN_OFFSET, AlterPartitionProposal, LeaderPartitionState

LAG = 30000


def leader(isr=(1, 2, 3), replicas=(1, 2, 3), min_isr=2, leo=0, hw=0, now=0) -> LeaderPartitionState:
    return LeaderPartitionState("t", 0, 1, 5, 10, replicas, isr, min_isr, LAG, leader_leo=leo, high_watermark=hw, now_ms=now)


def commit(s: LeaderPartitionState, p: AlterPartitionProposal, now: int = 0) -> int | None:
    return s.on_alter_partition_response(
        p, ErrorCode.none, isr=p.new_isr, leader_epoch=p.leader_epoch, partition_epoch=p.partition_epoch + 1, now_ms=now
    )


def test_new_leader_knows_no_follower_leo() -> None:
    s = leader(leo=10, hw=4)
    assert s.high_watermark == 4
    assert s.follower_state(2).log_end_offset == UNKNOWN_OFFSET
    assert s.on_leader_append(12, 1) is None  # followers unknown: HW held


def test_hw_advances_to_min_isr_leo_with_three_replicas() -> None:
    s = leader()
    assert s.on_leader_append(10, 1) is None
    r = s.on_follower_fetch(2, 10, 10, 2)
    assert r.error == ErrorCode.none and r.high_watermark is None  # 3 still unknown
    r = s.on_follower_fetch(3, 6, 10, 3)
    assert r.high_watermark == 6
    assert s.on_follower_fetch(3, 6, 10, 4).high_watermark is None  # no LEO change
    assert s.on_follower_fetch(3, 10, 10, 5).high_watermark == 10
    assert s.acks_all_satisfied(10) and not s.acks_all_satisfied(11)
    assert s.on_leader_append(15, 6) is None


def test_single_replica_isr_advances_on_append() -> None:
    s = leader(isr=(1,), min_isr=1)
    assert s.on_leader_append(3, 1) == 3


def test_hw_ignores_non_isr_followers() -> None:
    s = leader(isr=(1, 2))
    s.on_leader_append(10, 0)
    assert s.on_follower_fetch(2, 10, 10, 1).high_watermark == 10
    assert s.on_follower_fetch(3, 0, 10, 1).high_watermark is None
    assert s.high_watermark == 10


def test_hw_never_decreases_when_lagging_member_joins_registration() -> None:
    s = leader(isr=(1, 2))
    s.on_leader_append(10, 0)
    s.on_follower_fetch(2, 10, 10, 1)
    assert s.update_registration(5, 11, (1, 2, 3), (1, 2, 3), 2)
    assert s.high_watermark == 10


def test_unknown_replica_and_out_of_range() -> None:
    s = leader()
    s.on_leader_append(5, 0)
    assert s.on_follower_fetch(9, 0, 5, 1).error == ErrorCode.not_leader_or_follower
    assert s.on_follower_fetch(2, 6, 5, 1).error == ErrorCode.offset_out_of_range
    assert s.follower_state(2).log_end_offset == UNKNOWN_OFFSET


def test_isr_shrinks_after_lag_time() -> None:
    s = leader()
    s.on_leader_append(10, 0)
    s.on_follower_fetch(2, 10, 10, 0)
    s.on_follower_fetch(3, 10, 10, 0)
    s.on_leader_append(20, 1000)
    s.on_follower_fetch(2, 20, 20, 1000)
    # 3 keeps fetching but never catches up to the LEO of its previous fetch
    s.on_follower_fetch(3, 12, 20, 5000)
    s.on_leader_append(30, 6000)
    s.on_follower_fetch(2, 30, 30, 6000)
    assert s.high_watermark == 12
    assert s.maybe_shrink_isr(LAG) is None  # exactly max lag: still in sync
    p = s.maybe_shrink_isr(LAG + 1)
    assert p == AlterPartitionProposal((1, 2), 5, 10)
    assert s.pending_isr == {1, 2} and s.maybe_shrink_isr(LAG + 2) is None
    # maximal ISR while the shrink is pending: 3 still holds the HW back
    assert s.maximal_isr == {1, 2, 3} and s.high_watermark == 12
    assert commit(s, p, LAG + 3) == 30
    assert s.isr == {1, 2} and s.partition_epoch == 11 and s.pending is None


def test_fetch_from_previous_leader_leo_counts_as_caught_up_then() -> None:
    s = leader()
    s.on_leader_append(10, 0)
    s.on_follower_fetch(3, 0, 10, 100)  # leader LEO 10 at this fetch
    s.on_leader_append(20, 200)
    s.on_follower_fetch(3, 10, 20, 300)  # reached the previous LEO: caught up as of t=100
    assert s.follower_state(3).last_caught_up_time_ms == 100
    s.on_follower_fetch(3, 20, 20, 400)
    assert s.follower_state(3).last_caught_up_time_ms == 400


def test_follower_at_leader_leo_is_never_out_of_sync() -> None:
    s = leader(leo=10)
    s.on_follower_fetch(2, 10, 10, 0)
    s.on_follower_fetch(3, 10, 10, 0)
    assert s.maybe_shrink_isr(10 * LAG) is None


def test_isr_expands_when_follower_catches_up() -> None:
    s = leader(isr=(1, 2), leo=0)
    s.on_leader_append(10, 0)
    s.on_follower_fetch(2, 10, 10, 1)
    assert s.high_watermark == 10
    r = s.on_follower_fetch(3, 5, 10, 2)
    assert r.proposal is None  # LEO < HW
    r = s.on_follower_fetch(3, 10, 10, 3)
    assert r.proposal == AlterPartitionProposal((1, 2, 3), 5, 10)
    # no second proposal while pending
    assert s.on_follower_fetch(3, 10, 10, 4).proposal is None
    # maximal ISR: the joining replica holds HW back now
    s.on_leader_append(20, 5)
    s.on_follower_fetch(2, 20, 20, 6)
    assert s.high_watermark == 10
    assert s.on_follower_fetch(3, 15, 20, 7).high_watermark == 15
    assert commit(s, r.proposal, 8) is None
    assert s.isr == {1, 2, 3}
    assert s.on_follower_fetch(3, 20, 20, 9).high_watermark == 20


def test_expansion_needs_leader_epoch_start_offset() -> None:
    s = leader(isr=(1,), leo=10, hw=4, min_isr=1)
    # LEO >= HW but below the LEO this leader started its epoch with
    assert s.on_follower_fetch(2, 8, 10, 1).proposal is None
    assert s.on_follower_fetch(2, 10, 10, 2).proposal == AlterPartitionProposal((1, 2), 5, 10)


def test_alter_partition_errors() -> None:
    s = leader(isr=(1, 2))
    s.on_leader_append(5, 0)
    s.on_follower_fetch(2, 5, 5, 0)
    p = s.on_follower_fetch(3, 5, 5, 0).proposal
    assert p is not None
    s.on_alter_partition_response(p, ErrorCode.operation_not_attempted)
    assert s.pending is None and s.isr == {1, 2}
    p2 = s.on_follower_fetch(3, 5, 5, 1).proposal
    assert p2 is not None and p2 is not p
    s.on_alter_partition_response(p, ErrorCode.none, isr=(1, 2, 3), leader_epoch=5, partition_epoch=11)
    assert s.pending is p2 and s.isr == {1, 2}  # response for an old proposal: ignored
    s.on_alter_partition_response(p2, ErrorCode.invalid_update_version)
    assert s.pending is p2  # stays pending until a new registration
    assert s.update_registration(5, 12, (1, 2, 3), (1, 2, 3), 2)
    assert s.pending is None and s.isr == {1, 2, 3}
    s.on_alter_partition_response(p2, ErrorCode.none, isr=(1, 2, 3), leader_epoch=5, partition_epoch=11)
    assert s.partition_epoch == 12


def test_stale_success_response_keeps_pending() -> None:
    s = leader()
    s.on_leader_append(5, 0)
    p = s.maybe_shrink_isr(LAG + 1)
    assert p is not None
    assert s.on_alter_partition_response(p, ErrorCode.none, isr=(1, 2), leader_epoch=4, partition_epoch=11) is None
    assert s.pending is p


def test_stale_registration_ignored_and_new_epoch_resets_caught_up_time() -> None:
    s = leader()
    assert not s.update_registration(5, 9, (1, 2, 3), (1, 2), 0)
    assert not s.update_registration(4, 11, (1, 2, 3), (1, 2), 0)
    s.on_leader_append(10, 0)
    s.on_follower_fetch(2, 10, 10, 0)
    assert s.update_registration(6, 11, (1, 2, 3), (1, 2), 50_000, leader_leo=12)
    assert s.leader_epoch_start_offset == 12
    st = s.follower_state(2)
    assert st.log_end_offset == 10 and st.last_caught_up_time_ms == 50_000
    assert s.follower_state(3).last_caught_up_time_ms == 0
    assert s.maybe_shrink_isr(50_000 + LAG) is None


def test_registration_adds_and_removes_replicas() -> None:
    s = leader()
    s.update_registration(5, 11, (1, 2, 4), (1, 2), 0)
    assert set(s.followers) == {2, 4}


def test_acks_all_and_min_isr_errors() -> None:
    s = leader(min_isr=2)
    assert s.can_accept_acks_all() == ErrorCode.none
    s.on_leader_append(10, 0)
    s.on_follower_fetch(2, 10, 10, 0)
    p = s.maybe_shrink_isr(LAG + 1)  # 3 never fetched
    assert p is not None and p.new_isr == (1, 2)
    commit(s, p)
    assert s.can_accept_acks_all() == ErrorCode.none and s.acks_all_error() == ErrorCode.none
    s.on_leader_append(20, LAG + 2)
    p = s.maybe_shrink_isr(3 * LAG)
    assert p is not None and p.new_isr == (1,)
    assert s.can_accept_acks_all() == ErrorCode.none  # pending shrink: committed ISR still counts
    assert commit(s, p) == 20
    assert s.can_accept_acks_all() == ErrorCode.not_enough_replicas
    assert s.acks_all_satisfied(20) and s.acks_all_error() == ErrorCode.not_enough_replicas_after_append


def test_equal_epoch_registration_keeps_pending_expansion() -> None:
    # the AlterPartition response for a shrink arrives before its metadata record; a new
    # expansion is proposed in between; the late record must not drop it (else the HW
    # could pass the joining replica that the controller then adds to the ISR)
    s = leader(isr=(1, 2, 3), min_isr=1)
    s.on_leader_append(10, 0)
    s.on_follower_fetch(2, 10, 10, 0)
    shrink = s.maybe_shrink_isr(LAG + 1)
    assert shrink is not None and shrink.new_isr == (1, 2)
    commit(s, shrink)  # partition epoch 11
    expand = s.on_follower_fetch(3, 10, 10, LAG + 2).proposal
    assert expand is not None and expand.partition_epoch == 11
    assert s.update_registration(5, 11, (1, 2, 3), (1, 2), LAG + 3)  # the shrink's record
    assert s.pending is expand
    s.on_leader_append(20, LAG + 4)
    s.on_follower_fetch(2, 20, 20, LAG + 5)
    assert s.high_watermark == 10  # 3 (joining) still holds it
    assert s.update_registration(5, 12, (1, 2, 3), (1, 2, 3), LAG + 6)  # the expansion's record
    assert s.pending is None and s.isr == {1, 2, 3}


def test_low_watermark_is_the_smallest_log_start_of_alive_replicas() -> None:
    """Kafka's lowWatermarkIfLeader, for DeleteRecords: followers report their log start in Fetch."""
    s = leader(leo=10, hw=10)
    assert s.low_watermark(5, alive={1, 2, 3}) == UNKNOWN_OFFSET  # followers have not said yet
    s.on_follower_fetch(2, 10, 10, 1, log_start_offset=5)
    s.on_follower_fetch(3, 10, 10, 1, log_start_offset=3)
    assert s.low_watermark(5, alive={1, 2, 3}) == 3
    assert s.low_watermark(5, alive={1, 2}) == 5  # 3 is down: it does not hold deletions back
    s.on_follower_fetch(3, 10, 10, 2)  # a Fetch without the field keeps what it said before
    assert s.follower_state(3).log_start_offset == 3
    s.on_follower_fetch(3, 10, 10, 3, log_start_offset=7)
    assert s.low_watermark(6, alive={1, 2, 3}) == 5


def test_a_fetch_that_moves_nothing_still_keeps_the_follower_in_sync() -> None:
    """The re-read of a parked follower fetch changes no HW and no ISR (the shared no-change
    answer), yet still records the follower's fetch: caught up as of now, so no shrink."""
    s = leader(leo=10)
    first = s.on_follower_fetch(2, 10, 10, 100)
    assert first.high_watermark is None and first.proposal is None and first.error == ErrorCode.none
    again = s.on_follower_fetch(2, 10, 10, 100 + LAG)  # the same position, much later
    assert again is first  # the same object: nothing was built for it
    assert s.follower_state(2).last_caught_up_time_ms == 100 + LAG
    s.on_follower_fetch(3, 10, 10, 100 + LAG)
    assert s.maybe_shrink_isr(100 + LAG + 1) is None
    assert s.on_follower_fetch(2, 11, 10, 0).error == ErrorCode.offset_out_of_range  # past the leader's LEO
