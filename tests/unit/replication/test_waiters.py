from __future__ import annotations

from suoi.model import ErrorCode
from suoi.replication import AcksAllWaiters, LeaderPartitionState


def test_completes_in_offset_order_when_hw_reaches_required() -> None:
    w = AcksAllWaiters()
    w.register("b", 20, 1000)
    w.register("a", 10, 1000)
    assert w.check(9, 3, 2) == []
    assert w.check(15, 3, 2) == [("a", ErrorCode.none)]
    assert w.check(30, 3, 2) == [("b", ErrorCode.none)]
    assert len(w) == 0 and w.next_deadline() is None


def test_timeout() -> None:
    w = AcksAllWaiters()
    w.register("a", 10, 100)
    w.register("b", 10, 200)
    assert w.next_deadline() == 100
    assert w.poll(99) == []
    assert w.poll(100) == [("a", ErrorCode.request_timed_out)]
    assert w.next_deadline() == 200
    assert w.check(10, 3, 2) == [("b", ErrorCode.none)]
    assert w.poll(1000) == [] and w.next_deadline() is None


def test_not_enough_replicas_after_append() -> None:
    w = AcksAllWaiters()
    w.register("a", 10, 100)
    assert w.check(10, 1, 2) == [("a", ErrorCode.not_enough_replicas_after_append)]


def test_cancel_and_fail_all() -> None:
    w = AcksAllWaiters()
    w.register("a", 10, 100)
    w.register("b", 11, 100)
    assert w.cancel("a") and not w.cancel("a")
    assert "a" not in w and "b" in w
    assert w.fail_all() == [("b", ErrorCode.not_leader_or_follower)]
    assert w.poll(1000) == [] and w.check(100, 3, 1) == []


def test_register_same_token_again_after_completion() -> None:
    w = AcksAllWaiters()
    w.register("a", 10, 100)
    assert w.poll(100) == [("a", ErrorCode.request_timed_out)]
    w.register("a", 20, 500)
    assert w.check(15, 3, 2) == []
    assert w.next_deadline() == 500
    assert w.check(20, 3, 2) == [("a", ErrorCode.none)]


def test_with_leader_state_isr_shrink_completes_waiter() -> None:
    s = LeaderPartitionState("t", 0, 1, 0, 0, (1, 2, 3), (1, 2, 3), 2, 1000)
    w = AcksAllWaiters()
    assert s.can_accept_acks_all() == ErrorCode.none
    s.on_leader_append(5, 0)
    w.register("p1", 5, 30_000)
    s.on_follower_fetch(2, 5, 5, 10)
    assert w.check_state(s) == []  # 3 has not replicated
    p = s.maybe_shrink_isr(1001)
    assert p is not None
    s.on_alter_partition_response(p, ErrorCode.none, isr=p.new_isr, leader_epoch=0, partition_epoch=1)
    assert w.check_state(s) == [("p1", ErrorCode.none)]


def test_waits_without_deadline_leave_nothing_behind() -> None:
    # Partition's acks=all waits are timed out by their caller: thousands of completed waits
    # must not pile up in the deadline heap (it was never polled).
    w = AcksAllWaiters()
    for i in range(1, 10_001):
        w.register(i, i, None)
        assert w.check(i, 3, 2) == [(i, ErrorCode.none)]
    w.register("x", 20_000, None)
    assert w.next_deadline() is None and w.poll(2**62) == []
    assert w.cancel("x") and len(w) == 0
    assert len(w._by_deadline) == 0 and len(w._by_offset) <= 1
