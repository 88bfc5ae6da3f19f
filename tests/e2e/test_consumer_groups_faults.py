"""Consumer groups under faults: a member killed with SIGKILL (at-least-once redelivery from
its last commit) and broker restarts (clean and SIGKILL) with committed offsets kept."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from suoi.testing import EmbeddedBroker
from tests.conftest import wait_until
from tests.e2e.group_helpers import (
    FAST_GROUPS,
    GroupMember,
    SubprocessMember,
    gid,
    produce_n,
    stop_all,
    wait_balanced,
)
from tests.e2e.helpers import create_topic


@pytest.mark.slow
def test_sigkilled_member_partitions_redelivered_from_last_commit(
        make_broker: Callable[..., EmbeddedBroker]) -> None:
    broker = make_broker(overrides=FAST_GROUPS)
    bootstrap = broker.bootstrap
    topic, group, parts, n, commit_at = gid("kill"), gid("kill"), 4, 10, 6
    create_topic(bootstrap, topic, partitions=parts)
    # the victim sorts first by member id (client.id prefix), so range gives it two partitions
    victim = SubprocessMember(bootstrap, group, topic, commit_at, {"client.id": "a-victim"})
    survivors = [GroupMember(bootstrap, group, [topic], name=f"z-{i}", commit_each=True) for i in range(2)]
    try:
        def victim_parts() -> set[int]:
            assigns = [e for e in victim.snapshot() if e["ev"] == "assign"]
            return set(assigns[-1]["parts"]) if assigns else set()

        def settled() -> bool:
            owned = [m.snapshot()[0] for m in survivors]
            v = victim_parts()
            return bool(v) and sorted([len(v)] + [len(o) for o in owned]) == [1, 1, 2] and \
                v.union(*owned) == set(range(parts))

        wait_until(settled, 20, message=f"3 members share 4 partitions; victim events {victim.snapshot()[-3:]}")
        victim_owned = victim_parts()
        produce_n(bootstrap, topic, n, parts)

        def victim_committed() -> bool:
            done = [e for e in victim.snapshot() if e["ev"] == "committed"]
            return bool(done) and set(done[-1]["parts"]) == victim_owned

        wait_until(victim_committed, 15, message=f"victim committed offset {commit_at}")
        victim_read = {(e["p"], e["o"]) for e in victim.snapshot() if e["ev"] == "record"}
        assert victim_read == {(p, o) for p in victim_owned for o in range(n)}  # read everything, committed less
        victim.kill()

        # after the session timeout the survivors own everything and re-read from the commit
        wait_balanced(survivors, parts, [2, 2], timeout=20)

        def redelivered() -> bool:
            return all(sorted(o for m in survivors for o in m.offsets_of(p)) == list(range(commit_at, n))
                       for p in victim_owned)

        wait_until(redelivered, 15, message="victim's uncommitted records redelivered")
        for p in victim_owned:
            (owner,) = [m for m in survivors if p in m.snapshot()[0]]
            assert owner.offsets_of(p) == list(range(commit_at, n)), (p, owner.offsets_of(p))
        for p in set(range(parts)) - victim_owned:  # the survivors' own partitions: read once
            assert sorted(o for m in survivors for o in m.offsets_of(p)) == list(range(n))
    finally:
        victim.close()
        stop_all(survivors)


def _consume_group(bootstrap: str, group: str, topic: str, parts: int, count: int,
                   commit: dict[int, int] | None = None) -> dict[int, list[int]]:
    """One member reads `count` records of `topic`, optionally commits `commit`, closes.
    Returns the offsets read per partition."""
    m = GroupMember(bootstrap, group, [topic], name="r")
    try:
        wait_until(lambda: sum(len(m.offsets_of(p)) for p in range(parts)) >= count, 20,
                   message=f"{count} records consumed")
        if commit:
            m.commit({(topic, p): o for p, o in commit.items()})
        return {p: m.offsets_of(p) for p in range(parts)}
    finally:
        m.close()


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_committed_offsets_survive_broker_restart(make_broker: Callable[..., EmbeddedBroker], how: str) -> None:
    broker = make_broker(overrides=FAST_GROUPS)
    topic, group, parts = gid("rs"), gid("rs"), 2
    create_topic(broker.bootstrap, topic, partitions=parts)
    produce_n(broker.bootstrap, topic, 10, parts)
    read = _consume_group(broker.bootstrap, group, topic, parts, 2 * 10, commit={0: 4, 1: 7})
    assert read == {0: list(range(10)), 1: list(range(10))}

    def restart() -> None:
        if how == "sigterm":
            broker.restart()
        else:
            broker.kill()
            broker.start()

    restart()
    produce_n(broker.bootstrap, topic, 3, parts, tag="late")
    read = _consume_group(broker.bootstrap, group, topic, parts, (13 - 4) + (13 - 7), commit={0: 11, 1: 12})
    assert read == {0: list(range(4, 13)), 1: list(range(7, 13))}

    restart()  # a second restart: the newer commit wins over the replayed older one
    read = _consume_group(broker.bootstrap, group, topic, parts, 2 + 1)
    assert read == {0: [11, 12], 1: [12]}


@pytest.mark.slow
def test_seven_consumers_idle_member_takes_over_from_a_dead_one(
        make_broker: Callable[..., EmbeddedBroker]) -> None:
    """The seed's third case: 7 consumers on 5 partitions; one owning a partition is killed
    (no LeaveGroup): after its session times out one of the two idle members takes over."""
    broker = make_broker(overrides=FAST_GROUPS)
    bootstrap = broker.bootstrap
    topic, group, parts = gid("dead7"), gid("dead7"), 5
    create_topic(bootstrap, topic, partitions=parts)
    # range assigns by sorted member id: "a-victim" sorts first and gets a partition
    victim = SubprocessMember(bootstrap, group, topic, 1 << 30, {"client.id": "a-victim"})
    others = [GroupMember(bootstrap, group, [topic], name=f"z-{i}", commit_each=True) for i in range(6)]
    try:
        def victim_parts() -> set[int]:
            assigns = [e for e in victim.snapshot() if e["ev"] == "assign"]
            return set(assigns[-1]["parts"]) if assigns else set()

        def settled() -> bool:
            owned = [m.snapshot()[0] for m in others]
            return len(victim_parts()) == 1 and sorted(len(o) for o in owned) == [0, 0, 1, 1, 1, 1] \
                and victim_parts().union(*owned) == set(range(parts))

        wait_until(settled, 20, message="7 members: five own one partition, two idle")
        idle = [m for m in others if not m.snapshot()[0]]
        (lost,) = victim_parts()
        victim.kill()
        wait_balanced(others, parts, [0, 1, 1, 1, 1, 1], timeout=20)
        takers = [m for m in idle if m.snapshot()[0]]
        assert len(takers) == 1, [(m.name, m.snapshot()[0]) for m in others]
        produce_n(bootstrap, topic, 5, parts)
        wait_until(lambda: all(sorted(o for m in others for o in m.offsets_of(p)) == list(range(5))
                               for p in range(parts)), 15, message="every record read once after the take-over")
        owner = next(m for m in others if lost in m.snapshot()[0])
        assert owner.offsets_of(lost) == list(range(5))
    finally:
        victim.close()
        stop_all(others)
