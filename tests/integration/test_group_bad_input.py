"""Bad input to the group coordinator, at the protocol level (kio-encoded raw requests):
stale generations, unknown members, unknown groups, missing or foreign protocols, empty
and oversized group ids, the member-id handshake, session timeouts out of range and
heartbeats during a rebalance.

Each case gets its exact error code; afterwards the broker still serves other clients, a
committed offset of an unrelated group is intact, and the broker logged no traceback.
"""

from __future__ import annotations

import datetime
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kio.schema.describe_groups.v5.request import DescribeGroupsRequest
from kio.schema.errors import ErrorCode
from kio.schema.find_coordinator.v4.request import FindCoordinatorRequest
from kio.schema.heartbeat.v4.request import HeartbeatRequest
from kio.schema.join_group.v3.request import JoinGroupRequest as JoinGroupRequestV3
from kio.schema.join_group.v3.request import JoinGroupRequestProtocol as JoinProtocolV3
from kio.schema.join_group.v9.request import JoinGroupRequest, JoinGroupRequestProtocol
from kio.schema.leave_group.v5.request import LeaveGroupRequest, MemberIdentity
from kio.schema.offset_commit.v8.request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from kio.schema.offset_fetch.v8.request import OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopics
from kio.schema.sync_group.v5.request import SyncGroupRequest, SyncGroupRequestAssignment

from suoi.testing import EmbeddedBroker
from tests.conftest import wait_until
from tests.integration.support import LogWatch, assert_serves, coordinators_ready, create_topic, module_broker, unique
from tests.rawclient import RawClient

pytestmark = pytest.mark.timeout(60)

MIN_SESSION, MAX_SESSION = 1000, 60_000
BASELINE_OFFSET = 42


def td(n: int) -> datetime.timedelta:
    return datetime.timedelta(milliseconds=n)


def subscription(*topics: str) -> bytes:
    """ConsumerProtocolSubscription v0: topics and null user data."""
    out = struct.pack(">hi", 0, len(topics))
    for t in topics:
        out += struct.pack(">h", len(t)) + t.encode()
    return out + struct.pack(">i", -1)


def assignment(topic: str, *partitions: int) -> bytes:
    """ConsumerProtocolAssignment v0."""
    out = struct.pack(">hih", 0, 1, len(topic)) + topic.encode() + struct.pack(">i", len(partitions))
    for p in partitions:
        out += struct.pack(">i", p)
    return out + struct.pack(">i", -1)


# -- requests -----------------------------------------------------------------------------

def join_req(group: str, member_id: str = "", *, topic: str = "t", protocol_type: str = "consumer",
             protocols: tuple[tuple[str, bytes], ...] | None = None, session: int = 6000,
             rebalance: int = 10_000, instance: str | None = None) -> JoinGroupRequest:
    if protocols is None:
        protocols = (("range", subscription(topic)),)
    return JoinGroupRequest(group_id=group, session_timeout=td(session), rebalance_timeout=td(rebalance),
                            member_id=member_id, group_instance_id=instance, protocol_type=protocol_type,
                            protocols=tuple(JoinGroupRequestProtocol(name=n, metadata=m) for n, m in protocols))


def sync_req(group: str, generation: int, member_id: str,
             assignments: dict[str, bytes] | None = None) -> SyncGroupRequest:
    return SyncGroupRequest(group_id=group, generation_id=generation, member_id=member_id, group_instance_id=None,
                            protocol_type="consumer", protocol_name="range",
                            assignments=tuple(SyncGroupRequestAssignment(member_id=m, assignment=a)
                                              for m, a in (assignments or {}).items()))


def heartbeat_req(group: str, generation: int, member_id: str) -> HeartbeatRequest:
    return HeartbeatRequest(group_id=group, generation_id=generation, member_id=member_id, group_instance_id=None)


def commit_req(group: str, generation: int, member_id: str, topic: str, offsets: dict[int, int]) -> OffsetCommitRequest:
    return OffsetCommitRequest(
        group_id=group, generation_id_or_member_epoch=generation, member_id=member_id, group_instance_id=None,
        topics=(OffsetCommitRequestTopic(name=topic, partitions=tuple(
            OffsetCommitRequestPartition(partition_index=p, committed_offset=o, committed_leader_epoch=-1,
                                         committed_metadata="m") for p, o in offsets.items())),))


def fetch_offsets_req(groups: dict[str, tuple[str, tuple[int, ...]] | None]) -> OffsetFetchRequest:
    return OffsetFetchRequest(groups=tuple(
        OffsetFetchRequestGroup(group_id=g, topics=None if spec is None else (
            OffsetFetchRequestTopics(name=spec[0], partition_indexes=spec[1]),))
        for g, spec in groups.items()), require_stable=False)


# -- fixtures and helpers ------------------------------------------------------------------

@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    for broker in module_broker(tmp_path_factory, overrides={
            "group.initial.rebalance.delay.ms": "0", "group.min.session.timeout.ms": str(MIN_SESSION),
            "group.max.session.timeout.ms": str(MAX_SESSION)}):
        coordinators_ready(broker.bootstrap)  # as a client's FindCoordinator would
        yield broker


@pytest.fixture(scope="module")
def baseline(broker: EmbeddedBroker) -> tuple[str, str]:
    """An unrelated simple-consumer group with a committed offset that must survive everything."""
    topic, group = unique("base"), unique("base-group")
    create_topic(broker.bootstrap, topic, partitions=1)
    with RawClient(broker.bootstrap) as c:
        r = c.request(commit_req(group, -1, "", topic, {0: BASELINE_OFFSET}))
    assert r.topics[0].partitions[0].error_code == ErrorCode.none
    return group, topic


@pytest.fixture
def watch(broker: EmbeddedBroker) -> LogWatch:
    return LogWatch(broker)


@pytest.fixture(autouse=True)
def healthy_afterwards(broker: EmbeddedBroker, baseline: tuple[str, str], watch: LogWatch) -> Iterator[None]:
    yield
    assert_serves(broker)
    group, topic = baseline
    assert committed(broker, group, topic, 0) == BASELINE_OFFSET
    assert "Traceback" not in watch.new(), watch.new()


def committed(broker: EmbeddedBroker, group: str, topic: str, partition: int) -> int:
    def fetch() -> Any:
        with RawClient(broker.bootstrap) as c:
            (g,) = c.request(fetch_offsets_req({group: (topic, (partition,))})).groups
        # right after a restart the groups may still be loading: that is the only retry
        return None if g.error_code == ErrorCode.coordinator_load_in_progress else g

    g = wait_until(fetch, 10, message="offsets loaded")
    assert g.error_code == ErrorCode.none
    (p,) = g.topics[0].partitions
    assert p.error_code == ErrorCode.none
    return int(p.committed_offset)


def join_stable(c: RawClient, group: str, topic: str) -> tuple[str, int]:
    """The two-step join of a lone member, then SyncGroup as leader: (member id, generation)."""
    first = c.request(join_req(group, topic=topic))
    assert first.error_code == ErrorCode.member_id_required
    member = first.member_id
    r = c.request(join_req(group, member, topic=topic))
    assert r.error_code == ErrorCode.none and r.leader == member
    s = c.request(sync_req(group, r.generation_id, member, {member: assignment(topic, 0)}))
    assert s.error_code == ErrorCode.none
    return member, int(r.generation_id)


def commit_codes(c: RawClient, *args: Any) -> list[ErrorCode]:
    return [p.error_code for t in c.request(commit_req(*args)).topics for p in t.partitions]


# -- tests -----------------------------------------------------------------------------

def test_commit_with_unknown_member_or_stale_generation(broker: EmbeddedBroker) -> None:
    topic, group = unique("t"), unique("g")
    create_topic(broker.bootstrap, topic, partitions=1)
    with RawClient(broker.bootstrap) as c:
        member, gen = join_stable(c, group, topic)
        assert commit_codes(c, group, gen, member, topic, {0: 7}) == [ErrorCode.none]
        assert commit_codes(c, group, gen, "no-such-member", topic, {0: 99}) == [ErrorCode.unknown_member_id]
        assert commit_codes(c, group, gen + 1, member, topic, {0: 99}) == [ErrorCode.illegal_generation]
        assert commit_codes(c, group, gen - 1, member, topic, {0: 99}) == [ErrorCode.illegal_generation]
        # a member-less (admin) commit to a group that has members is refused too
        assert commit_codes(c, group, -1, "", topic, {0: 99}) == [ErrorCode.unknown_member_id]
        # a generation-stamped commit to a group that does not exist
        assert commit_codes(c, unique("nope"), 3, "x", topic, {0: 99}) == [ErrorCode.illegal_generation]
        assert committed(broker, group, topic, 0) == 7
        # the member itself is unharmed
        assert c.request(heartbeat_req(group, gen, member)).error_code == ErrorCode.none


def test_stale_generation_after_a_real_rebalance(broker: EmbeddedBroker) -> None:
    """A member that missed a rebalance: heartbeat says REBALANCE_IN_PROGRESS while it runs,
    and its old generation is ILLEGAL_GENERATION afterwards."""
    topic, group = unique("t"), unique("g")
    create_topic(broker.bootstrap, topic, partitions=2)
    with RawClient(broker.bootstrap) as a, RawClient(broker.bootstrap) as b:
        a_id, gen1 = join_stable(a, group, topic)
        assert commit_codes(a, group, gen1, a_id, topic, {0: 3, 1: 4}) == [ErrorCode.none] * 2
        first = b.request(join_req(group, topic=topic))
        assert first.error_code == ErrorCode.member_id_required
        b_id = first.member_id
        # b's real join parks until a rejoins: send it from another thread
        b_result: list[Any] = []
        t = threading.Thread(target=lambda: b_result.append(b.request(join_req(group, b_id, topic=topic))))
        t.start()
        try:
            codes = []
            for _ in range(100):  # bounded: the rebalance starts as soon as b's join arrives
                code = a.request(heartbeat_req(group, gen1, a_id)).error_code
                codes.append(code)
                if code == ErrorCode.rebalance_in_progress:
                    break
            assert codes[-1] == ErrorCode.rebalance_in_progress, codes
            assert set(codes) <= {ErrorCode.none, ErrorCode.rebalance_in_progress}
            # SyncGroup for the old generation during PreparingRebalance
            assert a.request(sync_req(group, gen1, a_id)).error_code == ErrorCode.rebalance_in_progress
            ra = a.request(join_req(group, a_id, topic=topic))
        finally:
            t.join(15)
        assert not t.is_alive()
        (rb,) = b_result
        assert ra.error_code == rb.error_code == ErrorCode.none
        gen2 = int(ra.generation_id)
        assert gen2 == rb.generation_id == gen1 + 1
        leader_c, follower_c, leader, follower = (a, b, a_id, b_id) if ra.leader == a_id else (b, a, b_id, a_id)
        assert {m.member_id for m in (ra if ra.leader == a_id else rb).members} == {a_id, b_id}
        s_leader = leader_c.request(sync_req(group, gen2, leader, {leader: assignment(topic, 0),
                                                                 follower: assignment(topic, 1)}))
        s_follower = follower_c.request(sync_req(group, gen2, follower))
        assert s_leader.error_code == s_follower.error_code == ErrorCode.none
        assert s_follower.assignment == assignment(topic, 1)
        # the old generation is stale now
        assert commit_codes(a, group, gen1, a_id, topic, {0: 99}) == [ErrorCode.illegal_generation]
        assert a.request(heartbeat_req(group, gen1, a_id)).error_code == ErrorCode.illegal_generation
        assert commit_codes(a, group, gen2, a_id, topic, {0: 5}) == [ErrorCode.none]
        assert (committed(broker, group, topic, 0), committed(broker, group, topic, 1)) == (5, 4)


def test_offset_fetch_unknown_group(broker: EmbeddedBroker, baseline: tuple[str, str]) -> None:
    known_group, known_topic = baseline
    unknown = unique("never-seen")
    with RawClient(broker.bootstrap) as c:
        res = c.request(fetch_offsets_req({unknown: ("whatever", (0, 3)), known_group: (known_topic, (0,)),
                                           unique("never-seen"): None}))
    g_unknown, g_known, g_all = res.groups
    assert g_unknown.error_code == ErrorCode.none
    assert [(p.partition_index, p.committed_offset, p.error_code) for p in g_unknown.topics[0].partitions] == \
        [(0, -1, ErrorCode.none), (3, -1, ErrorCode.none)]
    assert g_known.topics[0].partitions[0].committed_offset == BASELINE_OFFSET
    assert g_all.error_code == ErrorCode.none and g_all.topics == ()


def test_join_without_protocols_or_with_a_foreign_protocol_type(broker: EmbeddedBroker) -> None:
    topic, group = unique("t"), unique("g")
    create_topic(broker.bootstrap, topic, partitions=1)
    with RawClient(broker.bootstrap) as c:
        # a new group: no protocols at all, or an empty protocol type
        r = c.request(join_req(unique("g"), protocols=()))
        assert r.error_code == ErrorCode.inconsistent_group_protocol
        r = c.request(join_req(unique("g"), protocol_type=""))
        assert r.error_code == ErrorCode.inconsistent_group_protocol
        member, gen = join_stable(c, group, topic)
        assert commit_codes(c, group, gen, member, topic, {0: 11}) == [ErrorCode.none]
        with RawClient(broker.bootstrap) as other:
            # an existing "consumer" group: another protocol type, or no common protocol
            r = other.request(join_req(group, protocol_type="connect"))
            assert r.error_code == ErrorCode.inconsistent_group_protocol
            r = other.request(join_req(group, protocols=()))
            assert r.error_code == ErrorCode.inconsistent_group_protocol
            r = other.request(join_req(group, protocols=(("roundrobin", subscription(topic)),)))
            assert r.error_code == ErrorCode.inconsistent_group_protocol
        # the existing member, rejoining with no protocols, is refused and stays a member
        assert c.request(join_req(group, member, protocols=())).error_code == ErrorCode.inconsistent_group_protocol
        assert c.request(heartbeat_req(group, gen, member)).error_code == ErrorCode.none
    with RawClient(broker.bootstrap) as c:
        (d,) = c.request(DescribeGroupsRequest(groups=(group,), include_authorized_operations=False)).groups
    assert (d.error_code, d.group_state, d.protocol_type, d.protocol_data) == \
        (ErrorCode.none, "Stable", "consumer", "range")
    assert [m.member_id for m in d.members] == [member]
    assert committed(broker, group, topic, 0) == 11


@pytest.mark.parametrize("bad", ["", "x" * 300], ids=["empty", "300-chars"])
def test_invalid_group_ids(broker: EmbeddedBroker, bad: str) -> None:
    topic = unique("t")
    create_topic(broker.bootstrap, topic, partitions=1)
    with RawClient(broker.bootstrap) as c:
        assert c.request(join_req(bad)).error_code == ErrorCode.invalid_group_id
        assert c.request(sync_req(bad, 1, "m")).error_code == ErrorCode.invalid_group_id
        assert c.request(heartbeat_req(bad, 1, "m")).error_code == ErrorCode.invalid_group_id
        leave = c.request(LeaveGroupRequest(group_id=bad, members=(MemberIdentity(member_id="m"),)))
        assert leave.error_code == ErrorCode.invalid_group_id
        assert commit_codes(c, bad, -1, "", topic, {0: 1}) == [ErrorCode.invalid_group_id]
        (coord,) = c.request(FindCoordinatorRequest(key_type=0, coordinator_keys=(bad,))).coordinators
        assert coord.error_code == ErrorCode.invalid_group_id
    with RawClient(broker.bootstrap) as c:  # 255 characters is still fine
        ok = "y" * 255
        assert commit_codes(c, ok, -1, "", topic, {0: 9}) == [ErrorCode.none]
    assert committed(broker, ok, topic, 0) == 9


def test_member_id_required_then_join_with_it(broker: EmbeddedBroker) -> None:
    topic, group = unique("t"), unique("g")
    create_topic(broker.bootstrap, topic, partitions=1)
    with RawClient(broker.bootstrap) as c:
        first = c.request(join_req(group, topic=topic))
        assert first.error_code == ErrorCode.member_id_required
        assert first.member_id and first.generation_id == -1
        r = c.request(join_req(group, first.member_id, topic=topic))
        assert r.error_code == ErrorCode.none
        assert (r.member_id, r.leader, r.protocol_name, r.protocol_type) == \
            (first.member_id, first.member_id, "range", "consumer")
        assert r.generation_id >= 1
        assert [(m.member_id, m.metadata) for m in r.members] == [(first.member_id, subscription(topic))]
        # a made-up member id for a known group: UNKNOWN_MEMBER_ID
        assert c.request(join_req(group, "made-up", topic=topic)).error_code == ErrorCode.unknown_member_id
    with RawClient(broker.bootstrap) as c:
        # JoinGroup v3 predates the handshake: the first join is accepted directly
        v3 = c.request(JoinGroupRequestV3(group_id=unique("g3"), session_timeout=td(6000),
                                          rebalance_timeout=td(10_000), member_id="", protocol_type="consumer",
                                          protocols=(JoinProtocolV3(name="range", metadata=subscription(topic)),)))
        assert v3.error_code == ErrorCode.none and v3.member_id and v3.leader == v3.member_id


@pytest.mark.parametrize("session", [MIN_SESSION - 1, 0, MAX_SESSION + 1])
def test_session_timeout_out_of_range(broker: EmbeddedBroker, session: int) -> None:
    with RawClient(broker.bootstrap) as c:
        r = c.request(join_req(unique("g"), session=session))
        assert r.error_code == ErrorCode.invalid_session_timeout
        for ok in (MIN_SESSION, MAX_SESSION):  # the bounds themselves are accepted
            assert c.request(join_req(unique("g"), session=ok)).error_code == ErrorCode.member_id_required


def test_offsets_intact_after_restart(broker: EmbeddedBroker, baseline: tuple[str, str]) -> None:
    """Last in this module: whatever the bad input above appended to __consumer_offsets, a
    restarted broker replays it and still has every good commit."""
    topic, group = unique("t"), unique("g")
    create_topic(broker.bootstrap, topic, partitions=1)
    with RawClient(broker.bootstrap) as c:
        member, gen = join_stable(c, group, topic)
        assert commit_codes(c, group, gen, member, topic, {0: 17}) == [ErrorCode.none]
        assert commit_codes(c, group, gen + 5, member, topic, {0: 99}) == [ErrorCode.illegal_generation]
        c.request(LeaveGroupRequest(group_id=group, members=(MemberIdentity(member_id=member),)))
    broker.restart()
    assert committed(broker, group, topic, 0) == 17
    assert committed(broker, baseline[0], baseline[1], 0) == BASELINE_OFFSET
    with RawClient(broker.bootstrap) as c:
        (d,) = c.request(DescribeGroupsRequest(groups=(group,), include_authorized_operations=False)).groups
    assert (d.error_code, d.group_state, d.members) == (ErrorCode.none, "Empty", ())
