"""Auto leader rebalance in `QuorumController.tick` (auto.leader.rebalance.enable,
leader.imbalance.check.interval.seconds, leader.imbalance.per.broker.percentage)."""

from __future__ import annotations

from typing import Any

import pytest

from suoi.controller import ElectionType
from suoi.model import ErrorCode

from .helpers import Harness

INTERVAL = 1000


def setup(partitions: int = 3, **config: Any) -> Harness:
    config.setdefault("leader_imbalance_check_interval_ms", INTERVAL)
    h = Harness(3, **config)
    h.create("t", assignments={p: [p % 3, (p + 1) % 3] for p in range(partitions)}, partitions=-1, rf=-1)
    return h


def bounce(h: Harness, broker: int) -> None:
    """Fence and unfence ``broker`` and let the leaders take it back into their ISRs."""
    h.heartbeat(broker, want_fence=True)
    h.heartbeat(broker)
    for t, p, reg in list(h.image.iter_partitions()):
        if broker in reg.replicas and broker not in reg.isr:
            r = h.ctl.alter_partition(reg.leader, h.epochs[reg.leader], t.topic_id, p, reg.leader_epoch,
                                      reg.partition_epoch, [*reg.isr, broker])
            assert r.response.error == 0


def leaders(h: Harness) -> list[int]:
    return [reg.leader for _, _, reg in sorted(h.image.iter_partitions(), key=lambda x: x[1])]


def advance(h: Harness, to: int) -> Any:
    h.now = to
    h.heartbeat_all()
    return h.ctl.tick(h.now)


def test_preferred_leaders_come_back_at_the_interval() -> None:
    h = setup()
    bounce(h, 0)
    assert leaders(h) == [1, 1, 2]  # t-0 (preferred 0) is led by 1
    assert h.ctl.next_deadline() == INTERVAL
    assert advance(h, INTERVAL - 1).records == ()  # not yet
    r = advance(h, INTERVAL)
    assert r.response == [] and len(r.records) == 1
    assert leaders(h) == [0, 1, 2] and h.ctl.last_rebalance == [("t", 0)]
    assert advance(h, INTERVAL + 1).records == () and h.ctl.last_rebalance == []
    assert h.ctl.next_deadline() == 2 * INTERVAL
    h.check_replay()


@pytest.mark.parametrize(("away", "moved"), [(1, 0), (2, 2)])
def test_the_percentage_per_broker(away: int, moved: int) -> None:
    h = setup(partitions=30)  # broker 0 is the preferred leader of 10 partitions
    bounce(h, 0)
    mine = sorted(p for _, p, reg in h.image.iter_partitions() if reg.replicas[0] == 0)
    assert len(mine) == 10 and all(reg.leader != 0 for _, p, reg in h.image.iter_partitions() if p in mine)
    r = h.ctl.elect_leaders(ElectionType.PREFERRED, [("t", p) for p in mine[away:]])
    assert all(x.error == ErrorCode.none for x in r.response)
    # 10% away is not above leader.imbalance.per.broker.percentage=10; 20% is
    r = advance(h, INTERVAL)
    assert len(r.records) == moved and h.ctl.last_rebalance == [("t", p) for p in mine[:away]][:moved]
    assert sum(1 for _, p, reg in h.image.iter_partitions() if p in mine and reg.leader != 0) == away - moved
    h.check_replay()


def test_only_in_sync_eligible_preferred_leaders_and_no_reassigning_partitions() -> None:
    h = setup(partitions=3)
    h.heartbeat(0, want_fence=True)
    h.heartbeat(0)  # unfenced, but not back in any ISR yet
    assert advance(h, INTERVAL).records == ()
    bounce(h, 0)
    h.ctl.alter_partition_reassignments([("t", 0, [0, 1, 2])])  # being reassigned (2 is being added)
    assert advance(h, 2 * INTERVAL).records == ()
    h.ctl.alter_partition_reassignments([("t", 0, None)])
    h.heartbeat(0, want_fence=True)
    assert advance(h, 3 * INTERVAL).records == ()  # fenced: cannot lead
    h.check_replay()


def test_disabled() -> None:
    h = setup(auto_leader_rebalance_enable=False)
    bounce(h, 0)
    assert advance(h, 10 * INTERVAL).records == ()
    assert leaders(h) == [1, 1, 2]
    assert h.ctl.next_deadline() == h.now + 9000 + 1  # only the session deadline
