"""A clean restart (SIGTERM, start on the same data dir) keeps every record and offset."""

from __future__ import annotations

import confluent_kafka
from confluent_kafka.admin import AdminClient
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from suoi.testing import EmbeddedBroker
from tests.e2e.helpers import ck_consume, ck_produce, create_topic, kp_consume

N = 300
PARTS = 3


def test_restart_keeps_records_and_offsets(suoi_broker: EmbeddedBroker) -> None:
    bootstrap = suoi_broker.bootstrap
    topic = "restart-me"
    create_topic(bootstrap, topic, partitions=PARTS, config={"retention.ms": "-1"})
    base_ts = 1_680_000_000_000
    recs = [{"key": b"k%d" % i, "value": b"before-%d" % i, "partition": i % PARTS,
             "headers": [("i", b"%d" % i)], "timestamp": base_ts + i} for i in range(N)]
    delivered = ck_produce(bootstrap, topic, recs)
    before = sorted(ck_consume(bootstrap, topic, list(range(PARTS)), N), key=lambda r: (r.partition, r.offset))
    assert len(before) == N
    assert sorted(delivered) == [(r.partition, r.offset) for r in before]

    suoi_broker.restart()
    assert suoi_broker.bootstrap == bootstrap

    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    assert topic in md.topics and len(md.topics[topic].partitions) == PARTS
    after = sorted(ck_consume(bootstrap, topic, list(range(PARTS)), N), key=lambda r: (r.partition, r.offset))
    assert after == before  # same partitions, offsets, keys, values, headers, timestamps

    more = [{"value": b"after-%d" % i, "partition": i % PARTS} for i in range(30)]
    delivered = ck_produce(bootstrap, topic, more)
    per_part = N // PARTS
    for p in range(PARTS):
        assert [o for pp, o in delivered if pp == p] == list(range(per_part, per_part + 10))
    c = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "r", "enable.auto.commit": False})
    try:
        for p in range(PARTS):
            assert c.get_watermark_offsets(confluent_kafka.TopicPartition(topic, p), timeout=10) == (0, per_part + 10)
    finally:
        c.close()


def test_default_producer_survives_restart(suoi_broker: EmbeddedBroker) -> None:
    """kafka-python with defaults (idempotent) keeps producing across a broker restart."""
    bootstrap = suoi_broker.bootstrap
    topic = "restart-idempotent"
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        first = [producer.send(topic, value=b"a%d" % i).get(timeout=10) for i in range(20)]
        assert [(m.partition, m.offset) for m in first] == [(0, i) for i in range(20)]
        suoi_broker.restart()
        second = [producer.send(topic, value=b"b%d" % i).get(timeout=20) for i in range(20)]
        assert [(m.partition, m.offset) for m in second] == [(0, 20 + i) for i in range(20)]
    finally:
        producer.close(timeout=5)
    got = kp_consume(bootstrap, topic, [0], 40)
    assert [(r.offset, r.value) for r in got] == \
        [(i, b"a%d" % i) for i in range(20)] + [(20 + i, b"b%d" % i) for i in range(20)]
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tp = TopicPartition(topic, 0)
        assert consumer.end_offsets([tp]) == {tp: 40}
    finally:
        consumer.close()


def test_kill_then_start_keeps_acknowledged_records(suoi_broker: EmbeddedBroker) -> None:
    """Even after SIGKILL, records acknowledged with acks=all are there after recovery."""
    bootstrap = suoi_broker.bootstrap
    topic = "killed"
    recs = [{"value": b"v%d" % i, "partition": 0} for i in range(100)]
    assert ck_produce(bootstrap, topic, recs, {"acks": "all"}) == [(0, i) for i in range(100)]
    suoi_broker.kill()
    suoi_broker.start()
    got = ck_consume(bootstrap, topic, [0], 100)
    assert [(r.offset, r.value) for r in got] == [(i, b"v%d" % i) for i in range(100)]
    assert ck_produce(bootstrap, topic, [{"value": b"next", "partition": 0}]) == [(0, 100)]
