"""Replicas lost with a failed log dir (KIP-858): the broker leaves their ISRs and leadership."""

from __future__ import annotations

from suoi.model import ErrorCode

from .helpers import Harness


def test_lost_replicas_leave_the_isr_and_leadership_moves() -> None:
    h = Harness(brokers=3)
    h.create("t", partitions=2, rf=3)
    tid = h.image.topic("t").topic_id  # type: ignore[union-attr]
    victim = h.part("t", 0).leader
    r = h.ctl.replicas_offline(victim, h.epochs[victim], [(tid, 0), (tid, 7)])
    error, errors = r.response
    assert error == ErrorCode.none and errors == {(tid, 0): ErrorCode.none, (tid, 7): ErrorCode.unknown_topic_or_partition}
    after = h.part("t", 0)
    assert victim not in after.isr and after.leader not in (victim, -1) and len(after.isr) == 2
    assert h.part("t", 1).isr == h.replayed().partition(tid, 1).isr  # untouched partition
    stale = h.ctl.replicas_offline(victim, h.epochs[victim] + 99, [(tid, 1)])
    assert stale.response[0] == ErrorCode.stale_broker_epoch and stale.records == ()
    h.check_replay()


def test_a_replica_alone_in_its_isr_keeps_it() -> None:
    h = Harness(brokers=1)
    h.create("solo", partitions=1, rf=1)
    tid = h.image.topic("solo").topic_id  # type: ignore[union-attr]
    r = h.ctl.replicas_offline(0, h.epochs[0], [(tid, 0)])
    assert r.response == (ErrorCode.none, {(tid, 0): ErrorCode.none}) and r.records == ()
    assert h.part("solo").isr == (0,)
