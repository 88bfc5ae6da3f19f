"""Consumer groups seen through admin APIs of real clients: list/describe groups, committed
offsets and lag; DeleteGroups and OffsetDelete rules; kafka-python and aiokafka group
consumers (subscribe, consume, commit, rejoin at the committed offset)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions, KafkaError, KafkaException
from confluent_kafka import TopicPartition as TP
from confluent_kafka.admin import AdminClient, OffsetSpec

from suoi.testing import EmbeddedBroker
from tests.conftest import wait_until
from tests.e2e.group_helpers import GroupMember, gid, group_broker, produce_n, stop_all, wait_balanced
from tests.e2e.helpers import create_topic


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    yield from group_broker(tmp_path_factory)


@pytest.fixture
def bootstrap(broker: EmbeddedBroker) -> str:
    return broker.bootstrap


@pytest.fixture
def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def _listed(admin: AdminClient, states: set[ConsumerGroupState] | None = None) -> dict[str, ConsumerGroupState]:
    kw = {"states": states} if states is not None else {}
    res = admin.list_consumer_groups(request_timeout=10, **kw).result(15)
    assert not res.errors, res.errors
    return {g.group_id: g.state for g in res.valid}


def _committed(admin: AdminClient, group: str, tps: list[TP]) -> dict[tuple[str, int], int]:
    fut = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, tps)], request_timeout=10)[group]
    result = fut.result(15)
    assert all(tp.error is None for tp in result.topic_partitions), result.topic_partitions
    return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions}


def _high_watermarks(admin: AdminClient, topic: str, parts: int) -> dict[tuple[str, int], int]:
    futs = admin.list_offsets({TP(topic, p): OffsetSpec.latest() for p in range(parts)}, request_timeout=10)
    return {(tp.topic, tp.partition): f.result(15).offset for tp, f in futs.items()}


def test_lag_list_and_describe_through_admin_client(bootstrap: str, admin: AdminClient, topic: str) -> None:
    parts = 3
    create_topic(bootstrap, topic, partitions=parts)
    produce_n(bootstrap, topic, 10, parts)
    produce_n(bootstrap, topic, 5, 1, tag="extra")  # partition 0 has 15 records, 1 and 2 have 10
    group = gid("lag")
    members = [GroupMember(bootstrap, group, [topic], name=f"lag-{i}") for i in range(2)]
    try:
        wait_balanced(members, parts, [2, 1])
        wait_until(lambda: sum(len(m.snapshot()[2]) for m in members) == 35, 15, message="35 records consumed")
        commits = {(topic, 0): 12, (topic, 1): 3}  # partition 2: nothing committed
        for (t, p), o in commits.items():
            (owner,) = [m for m in members if p in m.snapshot()[0]]
            owner.commit({(t, p): o})

        # ListGroups with a state filter
        assert _listed(admin, {ConsumerGroupState.STABLE}).get(group) == ConsumerGroupState.STABLE
        assert group not in _listed(admin, {ConsumerGroupState.EMPTY})

        # DescribeGroups: members, their assignments, the state and the assignor
        desc = admin.describe_consumer_groups([group], request_timeout=10)[group].result(15)
        assert desc.state == ConsumerGroupState.STABLE
        assert not desc.is_simple_consumer_group
        assert desc.partition_assignor == "range"
        assert sorted(m.client_id for m in desc.members) == ["lag-0", "lag-1"]
        assert all(m.host for m in desc.members)
        by_client = {m.client_id: {(tp.topic, tp.partition) for tp in m.assignment.topic_partitions}
                     for m in desc.members}
        for m in members:
            assert by_client[m.name] == {(topic, p) for p in m.snapshot()[0]}

        # OffsetFetch via the admin API, and lag = high watermark - committed
        tps = [TP(topic, p) for p in range(parts)]
        committed = _committed(admin, group, tps)
        assert committed == {(topic, 0): 12, (topic, 1): 3, (topic, 2): -1001}  # -1001: OFFSET_INVALID
        hw = _high_watermarks(admin, topic, parts)
        assert hw == {(topic, 0): 15, (topic, 1): 10, (topic, 2): 10}
        lag = {tp: hw[tp] - off for tp, off in committed.items() if off >= 0}
        assert lag == {(topic, 0): 3, (topic, 1): 7}
    finally:
        stop_all(members)

    # all members left: the group is Empty, its offsets are still there
    wait_until(lambda: _listed(admin).get(group) == ConsumerGroupState.EMPTY, 10, message="group Empty")
    assert group in _listed(admin, {ConsumerGroupState.EMPTY})
    desc = admin.describe_consumer_groups([group], request_timeout=10)[group].result(15)
    assert desc.state == ConsumerGroupState.EMPTY and desc.members == []
    assert _committed(admin, group, [TP(topic, 0), TP(topic, 1)]) == {(topic, 0): 12, (topic, 1): 3}


def test_delete_group_only_when_empty(bootstrap: str, admin: AdminClient, topic: str) -> None:
    create_topic(bootstrap, topic, partitions=1)
    produce_n(bootstrap, topic, 4, 1)
    group = gid("del")
    m = GroupMember(bootstrap, group, [topic], name="del")
    try:
        wait_until(lambda: len(m.offsets_of(0)) == 4, 15, message="records consumed")
        m.commit({(topic, 0): 4})
        with pytest.raises(KafkaException) as exc:
            admin.delete_consumer_groups([group], request_timeout=10)[group].result(15)
        assert exc.value.args[0].code() == KafkaError.NON_EMPTY_GROUP
        assert _committed(admin, group, [TP(topic, 0)]) == {(topic, 0): 4}  # nothing was deleted
    finally:
        m.close()
    wait_until(lambda: _listed(admin).get(group) == ConsumerGroupState.EMPTY, 10, message="group Empty")
    assert admin.delete_consumer_groups([group], request_timeout=10)[group].result(15) is None
    assert group not in _listed(admin)
    assert _committed(admin, group, [TP(topic, 0)]) == {(topic, 0): -1001}
    # deleting it again: GROUP_ID_NOT_FOUND
    with pytest.raises(KafkaException) as exc:
        admin.delete_consumer_groups([group], request_timeout=10)[group].result(15)
    assert exc.value.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND
    # a new consumer in the same group starts from the beginning again (auto.offset.reset)
    m2 = GroupMember(bootstrap, group, [topic], name="del2")
    try:
        wait_until(lambda: m2.offsets_of(0) == [0, 1, 2, 3], 15, message="re-read from the start")
    finally:
        m2.close()


def test_offset_delete_refused_while_subscribed(bootstrap: str, admin: AdminClient, topic: str) -> None:
    """OffsetDelete (confluent-kafka's Python AdminClient has no binding for it: kafka-python's)."""
    from kafka import TopicPartition as KTP
    from kafka.admin import KafkaAdminClient
    from kafka.errors import GroupSubscribedToTopicError, NoError

    other = f"{topic}-other"
    create_topic(bootstrap, topic, partitions=2)
    create_topic(bootstrap, other, partitions=1)
    group = gid("offdel")
    m = GroupMember(bootstrap, group, [topic], name="offdel")
    kadmin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        wait_balanced([m], 2, [2])
        # commit to the subscribed topic and (as this member) to a topic it does not subscribe to
        m.commit({(topic, 0): 1, (topic, 1): 2, (other, 0): 5})
        res = kadmin.delete_group_offsets(group, [KTP(topic, 0), KTP(other, 0)])
        assert res == {KTP(topic, 0): GroupSubscribedToTopicError, KTP(other, 0): NoError}
        assert _committed(admin, group, [TP(topic, 0), TP(topic, 1), TP(other, 0)]) == \
            {(topic, 0): 1, (topic, 1): 2, (other, 0): -1001}
    finally:
        m.close()
        kadmin.close()
    kadmin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:  # once nobody subscribes, the offsets can be deleted
        res = kadmin.delete_group_offsets(group, [KTP(topic, 0)])
        assert res == {KTP(topic, 0): NoError}
    finally:
        kadmin.close()
    assert _committed(admin, group, [TP(topic, 0), TP(topic, 1)]) == {(topic, 0): -1001, (topic, 1): 2}


def _kp_consume(bootstrap: str, group: str, topic: str, count: int, commit: bool) -> list[tuple[int, int]]:
    from kafka import KafkaConsumer

    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                      enable_auto_commit=False, session_timeout_ms=3000, heartbeat_interval_ms=300)
    try:
        got: list[tuple[int, int]] = []
        deadline = time.monotonic() + 20
        while len(got) < count and time.monotonic() < deadline:
            for _tp, msgs in c.poll(timeout_ms=200, max_records=count - len(got)).items():
                got += [(m.partition, m.offset) for m in msgs]
        if commit:
            c.commit()
        return got
    finally:
        c.close()


def test_kafka_python_group_consumer_commit_and_rejoin(bootstrap: str, admin: AdminClient, topic: str) -> None:
    create_topic(bootstrap, topic, partitions=2)
    produce_n(bootstrap, topic, 10, 2)
    group = gid("kp")
    first = _kp_consume(bootstrap, group, topic, 12, commit=True)
    assert len(first) == 12 and len(set(first)) == 12
    committed = _committed(admin, group, [TP(topic, 0), TP(topic, 1)])
    per_part = {p: sorted(o for pp, o in first if pp == p) for p in (0, 1)}
    assert committed == {(topic, p): len(per_part[p]) for p in (0, 1)}
    rest = _kp_consume(bootstrap, group, topic, 8, commit=False)
    assert sorted(first + rest) == [(p, o) for p in (0, 1) for o in range(10)]


def test_aiokafka_group_consumer_commit_and_rejoin(bootstrap: str, admin: AdminClient, topic: str) -> None:
    from aiokafka import AIOKafkaConsumer

    create_topic(bootstrap, topic, partitions=2)
    produce_n(bootstrap, topic, 10, 2)
    group = gid("aio")

    async def consume(count: int, commit: bool) -> list[tuple[int, int]]:
        c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                             enable_auto_commit=False, session_timeout_ms=3000, heartbeat_interval_ms=300)
        await c.start()
        try:
            got: list[tuple[int, int]] = []
            deadline = time.monotonic() + 20
            while len(got) < count and time.monotonic() < deadline:
                for msgs in (await c.getmany(timeout_ms=200, max_records=count - len(got))).values():
                    got += [(m.partition, m.offset) for m in msgs]
            if commit:
                await c.commit()
            return got
        finally:
            await c.stop()

    first = asyncio.run(consume(13, commit=True))
    assert len(first) == 13 and len(set(first)) == 13
    per_part = {p: sorted(o for pp, o in first if pp == p) for p in (0, 1)}
    assert _committed(admin, group, [TP(topic, 0), TP(topic, 1)]) == {(topic, p): len(per_part[p]) for p in (0, 1)}
    rest = asyncio.run(consume(7, commit=False))
    assert sorted(first + rest) == [(p, o) for p in (0, 1) for o in range(10)]
