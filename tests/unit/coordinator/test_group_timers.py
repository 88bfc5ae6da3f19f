"""Timer plumbing: keyed deadlines, next_deadline, the new-member join bound, superseded syncs."""

from __future__ import annotations

from suoi.coordinator.group import GroupConfig
from suoi.coordinator.group.timers import Timers
from suoi.model import ErrorCode

from .group_helpers import Harness


def test_timers_reschedule_cancel_and_order() -> None:
    t = Timers()
    t.schedule("a", 10)
    t.schedule("b", 5)
    t.schedule("a", 3)  # rescheduled earlier
    t.schedule("c", 7)
    t.cancel("c")
    assert t.next_deadline() == 3
    assert t.pop_due(2) is None
    assert t.pop_due(100) == "a"
    assert t.pop_due(100) == "b"
    assert t.pop_due(100) is None and t.next_deadline() is None and len(t) == 0
    t.schedule("x", 5)
    t.cancel("x")
    t.schedule("x", 5)  # same deadline as the stale entry: still fires once
    assert t.pop_due(5) == "x" and t.pop_due(5) is None


def test_next_deadline_and_idle_poll() -> None:
    h = Harness()
    assert h.gc.next_deadline() is None and h.gc.poll(10**9) == []
    a, b = h.stable_group(2)
    deadline = h.gc.next_deadline()
    assert deadline is not None and deadline <= h.now + 10_000
    assert h.gc.poll(h.now) == []  # nothing due yet; polling early is harmless


def test_new_member_join_is_bounded_by_new_member_join_timeout() -> None:
    h = Harness(GroupConfig(initial_rebalance_delay_ms=0, new_member_join_timeout_ms=300_000))
    a, b = h.stable_group(2, rebalance=600_000)
    c = h.new_member(rebalance=600_000)
    tc = h.join(c, rebalance=600_000)
    for _ in range(60):  # a and b heartbeat but never rejoin
        h.advance(5_000)
        h.heartbeat(a, 1)
        h.heartbeat(b, 1)
    assert h.reply(tc).error_code == ErrorCode.unknown_member_id
    assert c not in h.grp().members


def test_second_sync_from_same_member_supersedes_the_first() -> None:
    h = Harness()
    a = h.new_member()
    b = h.new_member()
    h.join(a)
    h.join(b)
    h.poll()
    t1 = h.sync(b, 1)
    t2 = h.sync(b, 1)
    assert h.reply(t1).error_code == ErrorCode.rebalance_in_progress
    h.sync(a, 1, {a: b"A", b: b"B"})
    assert h.reply(t2).assignment == b"B"


def test_member_waiting_in_rebalance_is_not_expired_by_session() -> None:
    h = Harness()
    a, b = h.stable_group(2)
    ta = h.join(a)  # parked for up to the 30 s rebalance timeout, sends no heartbeats
    for _ in range(5):
        h.advance(5_000)
        h.heartbeat(b, 1)
    assert a in h.grp().members and h.reply(ta) is None
    tb = h.join(b)
    assert h.reply(ta).error_code == 0 and h.reply(tb).generation_id == 2
