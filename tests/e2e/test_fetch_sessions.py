"""KIP-227 incremental fetch sessions against a real node, from the broker's side: kafka-python
(which opens a session per broker) idling on many partitions gets near-empty answers, a
rebalance and a deleted topic leave its consumption correct, and the wire errors of a v13+
session (topic ids) are Kafka's. librdkafka does not use fetch sessions (it always sends
session 0 / epoch -1): the idle test checks that it still reads everything and opens none."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient
from kio.schema.fetch.v12.request import FetchPartition as FetchPartition12
from kio.schema.fetch.v12.request import FetchRequest as FetchRequest12
from kio.schema.fetch.v12.request import FetchTopic as FetchTopic12
from kio.schema.fetch.v13.request import FetchPartition, FetchRequest, FetchTopic, ForgottenTopic
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.schema.types import TopicName

from suoi.cli.cluster_layout import free_ports
from suoi.model import ErrorCode
from suoi.testing.inprocess import InProcessCluster, InProcessNode
from tests.conftest import wait_until
from tests.e2e.admin_scrape import scrape
from tests.e2e.helpers import ck_consume
from tests.integration.support import coordinators_ready
from tests.rawclient import RawClient

PARTITIONS = 120


def _consumer(node: InProcessNode, *topics: str, group: str) -> KafkaConsumer:
    consumer = KafkaConsumer(bootstrap_servers=node.bootstrap, group_id=group, auto_offset_reset="earliest",
                             fetch_max_wait_ms=50, heartbeat_interval_ms=200, session_timeout_ms=6000,
                             enable_auto_commit=False)  # a commit naming the deleted topic would retry for 30 s at close
    # the topics' metadata first: kafka-python's leader may otherwise assign before it has it
    # ("No partition metadata for topic ..."), leaving the group with nothing until its next rebalance
    for topic in topics:
        wait_until(lambda t=topic: consumer.partitions_for_topic(t))
    consumer.subscribe(list(topics))
    return consumer


def _poll_until(consumers: list[KafkaConsumer], seen: dict[str, set[bytes]], done: Any, timeout: float = 20.0) -> None:
    def step() -> bool:
        for c in consumers:
            for tp, records in c.poll(50).items():
                seen.setdefault(tp.topic, set()).update(r.value for r in records)
        return bool(done())
    try:
        wait_until(step, timeout, interval=0)
    except AssertionError:
        raise AssertionError(f"seen {({t: len(v) for t, v in seen.items()})}, assigned "
                             f"{[len(c.assignment()) for c in consumers]}") from None


def test_idle_kafka_python_consumer_of_many_partitions_gets_near_empty_answers() -> None:
    admin_port = free_ports(1)[0]
    with InProcessNode(overrides={"admin.listeners": f"http://127.0.0.1:{admin_port}"}) as node:
        node.create_topic("wide", partitions=PARTITIONS)
        producer = KafkaProducer(bootstrap_servers=node.bootstrap)
        for i in range(PARTITIONS):
            producer.send("wide", value=b"%d" % i, partition=i)
        producer.flush(10)
        coordinators_ready(node.bootstrap)  # a group's first join waits for no internal topic
        consumer = _consumer(node, "wide", group="idle")
        try:
            seen: dict[str, set[bytes]] = {}
            _poll_until([consumer], seen, lambda: len(seen.get("wide", ())) == PARTITIONS)
            metrics = node.broker.metrics
            sessions = node.broker.kraft.replicas.fetch_sessions
            wait_until(lambda: sessions.num_partitions == PARTITIONS)  # the session holds every partition
            sent_before, fetches_before = metrics.topics["wide"].fetch_requests, metrics.requests["Fetch"].count
            _poll_until([consumer], seen, lambda: metrics.requests["Fetch"].count - fetches_before >= 20)
            fetches = metrics.requests["Fetch"].count - fetches_before
            sent = metrics.topics["wide"].fetch_requests - sent_before
            # sessionless, every fetch would carry all 120 partitions; with the session, none moved
            assert sent <= 2 * PARTITIONS // 10, (sent, fetches)
            samples = scrape(f"http://127.0.0.1:{admin_port}")
            key = frozenset[tuple[str, str]]()
            assert samples[("kafka_server_fetchsessioncache_numincrementalfetchsessions", key)] >= 1
            assert samples[("kafka_server_fetchsessioncache_numincrementalfetchpartitionscached", key)] == PARTITIONS
            # new records in three partitions come through the same session
            for p in (5, 60, 119):
                producer.send("wide", value=b"new-%d" % p, partition=p)
            producer.flush(10)
            _poll_until([consumer], seen, lambda: {b"new-5", b"new-60", b"new-119"} <= seen["wide"])
            # librdkafka fetches sessionless: it reads everything and adds no session
            count = len(sessions)
            records = ck_consume(node.bootstrap, "wide", list(range(PARTITIONS)), PARTITIONS + 3)
            assert sorted(r.value for r in records) == sorted(seen["wide"]) and len(sessions) == count
        finally:
            consumer.close()
            producer.close()


def test_sessions_stay_correct_across_a_rebalance_and_a_deleted_topic() -> None:
    with InProcessNode() as node:
        node.create_topic("keep", partitions=6)
        node.create_topic("drop", partitions=6)
        producer = KafkaProducer(bootstrap_servers=node.bootstrap)
        sent: set[bytes] = set()

        def produce(topic: str, start: int, count: int) -> None:
            for i in range(start, start + count):
                value = b"%s-%d" % (topic.encode(), i)
                producer.send(topic, value=value, partition=i % 6)
                if topic == "keep":
                    sent.add(value)
            producer.flush(10)

        produce("keep", 0, 60)
        produce("drop", 0, 60)
        coordinators_ready(node.bootstrap)
        first = _consumer(node, "keep", "drop", group="moving")
        second = None
        try:
            seen: dict[str, set[bytes]] = {}
            _poll_until([first], seen, lambda: len(seen.get("keep", ())) == 60 and len(seen.get("drop", ())) == 60)
            # a second member: half the partitions move, the first member's session forgets them
            second = _consumer(node, "keep", "drop", group="moving")
            # (kafka-python's first member rejoins on a heartbeat answer; on a loaded machine that can take
            # longer than the other steps)
            _poll_until([first, second], seen, lambda: bool(second.assignment()) and len(first.assignment()) == 6,
                        timeout=45.0)
            produce("keep", 60, 60)
            _poll_until([first, second], seen, lambda: seen["keep"] == sent)
            # the deleted topic leaves the sessions; the other one keeps flowing
            admin = KafkaAdminClient(bootstrap_servers=node.bootstrap)
            try:
                admin.delete_topics(["drop"])
            finally:
                admin.close()
            produce("keep", 120, 60)
            _poll_until([first, second], seen, lambda: seen["keep"] == sent)
            assert len(seen["keep"]) == 180 and len(seen["drop"]) == 60
            # the two members' sessions hold "keep" between them, each partition once (until the
            # clients forget "drop", its partitions answer UNKNOWN_TOPIC_OR_PARTITION, as in Kafka)
            sessions = node.broker.kraft.replicas.fetch_sessions
            held = [key for s in sessions.sessions.values() for key in s.partitions if key[0] == "keep"]
            assert sorted(held) == [("keep", p) for p in range(6)]
        finally:
            for client in (first, second, producer):
                if client is not None:
                    client.close()


def _fetch(client: RawClient, session_id: int, epoch: int, topics: tuple[FetchTopic, ...],
           forgotten: tuple[ForgottenTopic, ...] = ()) -> Any:
    return client.request(FetchRequest(max_wait=datetime.timedelta(0), min_bytes=1, max_bytes=1 << 20,
                                       session_id=session_id, session_epoch=epoch, topics=topics,
                                       forgotten_topics_data=forgotten))


def test_topic_id_session_errors_on_the_wire() -> None:
    with InProcessNode() as node:
        node.create_topic("ids", partitions=2)
        with RawClient(node.bootstrap) as client:
            md = client.request(MetadataRequest(topics=(MetadataRequestTopic(topic_id=None, name=TopicName("ids")),),
                                                allow_auto_topic_creation=False,
                                                include_topic_authorized_operations=False))
            tid = md.topics[0].topic_id
            parts = (FetchTopic(topic_id=tid, partitions=tuple(
                FetchPartition(partition=p, fetch_offset=0, partition_max_bytes=1024) for p in (0, 1))),)
            full = _fetch(client, 0, 0, parts)
            assert full.error_code == ErrorCode.none and full.session_id != 0
            assert sorted(p.partition_index for t in full.responses for p in t.partitions) == [0, 1]
            sid = full.session_id
            quiet = _fetch(client, sid, 1, ())
            assert quiet.error_code == ErrorCode.none and quiet.session_id == sid and quiet.responses == ()
            assert _fetch(client, sid, 1, ()).error_code == ErrorCode.invalid_fetch_session_epoch
            assert _fetch(client, sid + 1, 2, ()).error_code == ErrorCode.fetch_session_id_not_found
            unknown = uuid.uuid4()  # a topic id the node does not know answers UNKNOWN_TOPIC_ID in the session
            answer = _fetch(client, sid, 2, (FetchTopic(topic_id=unknown, partitions=(
                FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=1024),)),))
            assert [(t.topic_id, p.error_code) for t in answer.responses for p in t.partitions] == [
                (unknown, ErrorCode.unknown_topic_id)]
            forget = _fetch(client, sid, 3, (), (ForgottenTopic(topic_id=unknown, partitions=(0,)),
                                                 ForgottenTopic(topic_id=tid, partitions=(0, 1))))
            assert forget.error_code == ErrorCode.none and forget.session_id == 0  # emptied: closed
            assert _fetch(client, sid, 4, ()).error_code == ErrorCode.fetch_session_id_not_found
        # a v12 (topic names) request in a topic-id session is FETCH_SESSION_TOPIC_ID_ERROR
        with RawClient(node.bootstrap) as client:
            sid = _fetch(client, 0, 0, parts).session_id
            mixed = client.request(FetchRequest12(
                max_wait=datetime.timedelta(0), min_bytes=1, session_id=sid, session_epoch=1,
                topics=(FetchTopic12(topic=TopicName("ids"), partitions=(
                    FetchPartition12(partition=0, fetch_offset=0, partition_max_bytes=1024),)),),
                forgotten_topics_data=()))
            assert mixed.error_code == ErrorCode.fetch_session_topic_id_error and mixed.responses == ()


def test_many_sessions_share_the_cache_slots() -> None:
    """max.incremental.fetch.session.cache.slots bounds the sessions: a full fetch beyond it gets
    no session (id 0) and is answered in full, as Kafka does."""
    with InProcessNode(overrides={"max.incremental.fetch.session.cache.slots": "2"}) as node:
        node.create_topic("slots", partitions=1)
        request = FetchRequest12(max_wait=datetime.timedelta(0), min_bytes=1, session_id=0, session_epoch=0,
                                 topics=(FetchTopic12(topic=TopicName("slots"), partitions=(
                                     FetchPartition12(partition=0, fetch_offset=0, partition_max_bytes=1024),)),),
                                 forgotten_topics_data=())
        with RawClient(node.bootstrap) as client:
            answers = [client.request(request) for _ in range(3)]
        assert [a.session_id != 0 for a in answers] == [True, True, False]
        assert all(len(a.responses) == 1 and a.error_code == ErrorCode.none for a in answers)
        assert len(node.broker.kraft.replicas.fetch_sessions) == 2


@pytest.mark.slow
def test_sessions_follow_a_leader_change_in_a_cluster() -> None:
    """Followers replicate in sessions with their leaders (privileged sessions on the leader, topics
    named by id);
    when the leader stops, a kafka-python consumer's session moves to the new leaders and it
    reads every record exactly once, in order per partition."""
    from kafka import TopicPartition

    with InProcessCluster(3) as cluster:
        cluster.create_topic("moved", partitions=3, replication_factor=3)
        producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all")
        consumer = KafkaConsumer(bootstrap_servers=cluster.bootstrap, fetch_max_wait_ms=50, enable_auto_commit=False)
        try:
            consumer.assign([TopicPartition("moved", p) for p in range(3)])
            consumer.seek_to_beginning()
            got: dict[int, list[bytes]] = {0: [], 1: [], 2: []}

            def produce(start: int) -> None:
                for i in range(start, start + 60):
                    producer.send("moved", value=b"%d" % i, partition=i % 3)
                producer.flush(20)

            def read_until(count: int) -> bool:
                for tp, records in consumer.poll(50).items():
                    got[tp.partition].extend(r.value for r in records)
                return sum(map(len, got.values())) >= count

            produce(0)
            wait_until(lambda: read_until(60), 20)
            caches = {i: n.broker.kraft.replicas.fetch_sessions for i, n in cluster.nodes.items()}
            wait_until(lambda: sum(s.privileged for c in caches.values() for s in c.sessions.values()) >= 2)
            # followers name topics by id (Fetch v13+, as Kafka's): a recreated topic is never read as the old one
            assert all(s.uses_topic_ids for c in caches.values() for s in c.sessions.values() if s.privileged)
            cluster.nodes[1].stop()  # a clean shutdown: its leaderships move to the other two
            produce(60)
            wait_until(lambda: read_until(120), 30)
            for p, values in got.items():
                assert values == [b"%d" % i for i in range(p, 120, 3)], p
            assert any(not s.privileged for i in (2, 3) for s in caches[i].sessions.values())
        finally:
            consumer.close()
            producer.close()
