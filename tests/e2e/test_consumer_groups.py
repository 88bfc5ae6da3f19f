"""Consumer groups with real clients against a real broker: load balancing, idle members,
take-over, fan-out, static membership and cooperative-sticky rebalances (issue 3)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from suoi.testing import EmbeddedBroker
from tests.conftest import wait_until
from tests.e2e.group_helpers import (
    GroupMember,
    balanced,
    gid,
    group_broker,
    produce_n,
    stop_all,
    wait_balanced,
)
from tests.e2e.helpers import create_topic

P = 5  # the seed's topic: five partitions


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    yield from group_broker(tmp_path_factory)


@pytest.fixture
def bootstrap(broker: EmbeddedBroker) -> str:
    return broker.bootstrap


def _consumed_all(members: list[GroupMember], partitions: int, per_partition: int) -> bool:
    """Every (partition, offset) of the topic was consumed by some member."""
    seen = {(p, o) for m in members for p, o, _ in m.snapshot()[2]}
    return seen >= {(p, o) for p in range(partitions) for o in range(per_partition)}


def _owner_read_its_partitions(members: list[GroupMember], per_partition: int) -> None:
    for m in members:
        owned, _, records = m.snapshot()
        for p in owned:
            assert sorted({o for pp, o, _ in records if pp == p}) == list(range(per_partition)), (m.name, p)


def test_five_consumers_one_partition_each(bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic, partitions=P)
    group = gid("five")
    members = [GroupMember(bootstrap, group, [topic], name=f"c{i}") for i in range(5)]
    try:
        wait_balanced(members, P, [1] * 5)
        produce_n(bootstrap, topic, 10, P)
        wait_until(lambda: _consumed_all(members, P, 10), 15, message="all records consumed")
        assert balanced(members, P, [1] * 5)  # still the same balance once data flowed
        _owner_read_its_partitions(members, 10)
        for m in members:  # each record went to exactly the member owning its partition
            owned = m.snapshot()[0]
            assert {p for p, _, _ in m.snapshot()[2]} == set(owned), m.name
    finally:
        stop_all(members)


def test_two_consumers_three_and_two(bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic, partitions=P)
    group = gid("two")
    members = [GroupMember(bootstrap, group, [topic], name=f"c{i}") for i in range(2)]
    try:
        wait_balanced(members, P, [3, 2])
        produce_n(bootstrap, topic, 8, P)
        wait_until(lambda: _consumed_all(members, P, 8), 15, message="all records consumed")
        _owner_read_its_partitions(members, 8)
        assert sum(len(m.snapshot()[2]) for m in members) == 8 * P  # nothing twice: no rebalance after start
    finally:
        stop_all(members)


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_seven_consumers_two_idle_and_takeover_on_close(bootstrap: str, topic: str, strategy: str) -> None:
    create_topic(bootstrap, topic, partitions=P)
    group = gid("seven")
    conf = {"partition.assignment.strategy": strategy}
    members = [GroupMember(bootstrap, group, [topic], conf=conf, name=f"c{i}", commit_each=True) for i in range(7)]
    try:
        wait_balanced(members, P, [1, 1, 1, 1, 1, 0, 0])
        produce_n(bootstrap, topic, 6, P, tag="a")
        wait_until(lambda: _consumed_all(members, P, 6), 15, message="first batch consumed")
        idle = [m for m in members if not m.snapshot()[0]]
        assert len(idle) == 2
        for m in idle:
            assert m.snapshot()[2] == [], f"idle member {m.name} got records"

        # a member holding a partition leaves cleanly: an idle one takes over
        leaver = next(m for m in members if m.snapshot()[0])
        (moved,) = leaver.snapshot()[0]
        leaver.close()
        rest = [m for m in members if m is not leaver]
        wait_balanced(rest, P, [1, 1, 1, 1, 1, 0])
        assert sum(1 for m in idle if m.snapshot()[0]) == 1, "exactly one idle member took over"
        if strategy == "cooperative-sticky":
            # sticky: nobody else moved, the idle member got exactly the leaver's partition
            taker = next(m for m in idle if m.snapshot()[0])
            assert taker.snapshot()[0] == frozenset({moved})

        # consumption continues after the committed offsets: each new record once, by its owner
        produce_n(bootstrap, topic, 6, P, tag="b")
        wait_until(lambda: _consumed_all(rest + [leaver], P, 12), 15, message="second batch consumed")
        for p in range(P):
            second = sorted(o for m in rest for pp, o, _ in m.snapshot()[2] if pp == p and o >= 6)
            assert second == list(range(6, 12)), (p, second)
            (owner,) = [m for m in rest if p in m.snapshot()[0]]
            assert [o for o in owner.offsets_of(p) if o >= 6] == list(range(6, 12))
    finally:
        stop_all(members)


def test_two_groups_fan_out(bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic, partitions=3)
    produce_n(bootstrap, topic, 10, 3, tag="before")  # already there when the groups start
    groups = [gid("fan-a"), gid("fan-b")]
    members = [GroupMember(bootstrap, g, [topic], name=f"{g[:5]}-{i}") for g in groups for i in range(2)]
    try:
        by_group = [members[:2], members[2:]]
        for ms in by_group:
            wait_balanced(ms, 3, [2, 1])
        produce_n(bootstrap, topic, 10, 3, tag="after")  # arrives while both groups consume
        for ms in by_group:
            wait_until(lambda ms=ms: _consumed_all(ms, 3, 20), 15, message="group read the topic")
        for ms in by_group:
            # each group read the whole topic; the early records may be read twice (a member
            # that joined first read everything, uncommitted, before the second one arrived),
            # the later ones exactly once
            got = [(p, o) for m in ms for p, o, _ in m.snapshot()[2]]
            assert set(got) == {(p, o) for p in range(3) for o in range(20)}
            assert sorted(x for x in got if x[1] >= 10) == [(p, o) for p in range(3) for o in range(10, 20)]
    finally:
        stop_all(members)


def test_static_member_restart_no_rebalance(bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic, partitions=4)
    group = gid("static")
    conf = {"session.timeout.ms": 6000}
    a = GroupMember(bootstrap, group, [topic], conf={**conf, "group.instance.id": "inst-a"}, name="a")
    b = GroupMember(bootstrap, group, [topic], conf={**conf, "group.instance.id": "inst-b"}, name="b")
    a2 = None
    try:
        wait_balanced([a, b], 4, [2, 2])
        a_parts = a.snapshot()[0]
        b_parts, b_events_before, _ = b.snapshot()
        a.close()  # a static member does not send LeaveGroup: its partitions stay reserved
        a2 = GroupMember(bootstrap, group, [topic], conf={**conf, "group.instance.id": "inst-a"}, name="a2")
        wait_until(lambda: a2.snapshot()[0], 10, message="restarted static member assigned")
        assert a2.snapshot()[0] == a_parts
        # b saw no rebalance: no new callbacks, the same partitions throughout
        produce_n(bootstrap, topic, 5, 4)
        wait_until(lambda: _consumed_all([a2, b], 4, 5), 15, message="records consumed after restart")
        b_parts_after, b_events_after, _ = b.snapshot()
        assert b_parts_after == b_parts
        assert b_events_after == b_events_before, f"b saw a rebalance: {b_events_after[len(b_events_before):]}"
        assert a2.snapshot()[1] == [("assign", tuple(sorted(a_parts)))]
    finally:
        stop_all([m for m in (a, b, a2) if m is not None])


def test_cooperative_sticky_incremental(bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic, partitions=6)
    group = gid("coop")
    conf = {"partition.assignment.strategy": "cooperative-sticky"}
    a = GroupMember(bootstrap, group, [topic], conf=conf, name="a")
    b = GroupMember(bootstrap, group, [topic], conf=conf, name="b")
    c = None
    try:
        wait_balanced([a, b], 6, [3, 3])
        before = {m.name: (m.snapshot()[0], len(m.snapshot()[1])) for m in (a, b)}
        c = GroupMember(bootstrap, group, [topic], conf=conf, name="c")
        wait_balanced([a, b, c], 6, [2, 2, 2])
        moved: set[int] = set()
        for m in (a, b):
            owned_before, n_events = before[m.name]
            after = m.snapshot()[1][n_events:]
            revoked = [set(ps) for kind, ps in after if kind in ("revoke", "lost") and ps]
            # only the partitions that move are revoked, never the whole assignment
            assert revoked, f"{m.name}: nothing revoked ({after})"
            for r in revoked:
                assert r < owned_before, f"{m.name} revoked {r} of {owned_before}: not incremental"
            gone = set().union(*revoked)
            assert len(gone) == 1 and m.snapshot()[0] == owned_before - gone, (m.name, after)
            assert not [ps for kind, ps in after if kind == "assign" and ps], f"{m.name} got partitions back"
            moved |= gone
        assert c.snapshot()[0] == moved
    finally:
        stop_all([m for m in (a, b, c) if m is not None])
