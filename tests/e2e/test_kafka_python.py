"""kafka-python (default configs) against a real broker: round trip, cross-client, the README snippet."""

from __future__ import annotations

import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from suoi.testing import EmbeddedBroker
from tests.e2e.helpers import aio_consume, ck_consume, ck_produce, create_topic, kp_consume

N = 50


def _records(n: int, base_ts: int) -> list[dict]:
    return [{"key": f"key-{i % 7}".encode(), "value": f"value-{i}".encode() * (1 + i % 5),
             "headers": [("seq", str(i).encode()), ("origin", b"kafka-python")],
             "timestamp_ms": base_ts + i * 1000}
            for i in range(n)]


def test_round_trip_kafka_python(bootstrap: str, topic: str) -> None:
    base_ts = 1_600_000_000_000
    recs = _records(N, base_ts)
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        futures = [producer.send(topic, partition=0, **r) for r in recs]
        producer.flush(timeout=15)
        metas = [f.get(timeout=10) for f in futures]
    finally:
        producer.close(timeout=5)
    assert [(m.partition, m.offset) for m in metas] == [(0, i) for i in range(N)]
    assert [m.timestamp for m in metas] == [base_ts + i * 1000 for i in range(N)]

    got = kp_consume(bootstrap, topic, [0], N)
    assert [r.offset for r in got] == list(range(N))
    assert [r.value for r in got] == [r["value"] for r in recs]
    assert [r.key for r in got] == [r["key"] for r in recs]
    assert [list(r.headers) for r in got] == [r["headers"] for r in recs]
    assert [r.timestamp for r in got] == [base_ts + i * 1000 for i in range(N)]


def test_kafka_python_to_confluent_and_aiokafka(bootstrap: str, topic: str) -> None:
    base_ts = 1_650_000_000_000
    recs = _records(N, base_ts)
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        for r in recs:
            producer.send(topic, partition=0, **r)
        producer.flush(timeout=15)
    finally:
        producer.close(timeout=5)

    for got in (ck_consume(bootstrap, topic, [0], N), aio_consume(bootstrap, topic, [0], N)):
        assert [(r.partition, r.offset) for r in got] == [(0, i) for i in range(N)]
        assert [(r.key, r.value, list(r.headers), r.timestamp) for r in got] == \
            [(r["key"], r["value"], r["headers"], r["timestamp_ms"]) for r in recs]


def test_confluent_to_kafka_python(bootstrap: str, topic: str) -> None:
    base_ts = 1_700_000_000_000
    recs = [{"key": f"k{i}".encode(), "value": f"v{i}".encode(), "headers": [("i", str(i).encode())],
             "timestamp": base_ts + i, "partition": 0} for i in range(N)]
    delivered = ck_produce(bootstrap, topic, recs)
    assert delivered == [(0, i) for i in range(N)]
    got = kp_consume(bootstrap, topic, [0], N)
    assert [(r.offset, r.key, r.value, list(r.headers), r.timestamp) for r in got] == \
        [(i, r["key"], r["value"], r["headers"], r["timestamp"]) for i, r in enumerate(recs)]


def test_null_key_null_value_and_empty_headers(bootstrap: str, topic: str) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        m0 = producer.send(topic, partition=0, key=b"tombstone", value=None).get(timeout=10)
        m1 = producer.send(topic, partition=0, key=None, value=b"").get(timeout=10)
        m2 = producer.send(topic, partition=0, key=b"", value=b"x", headers=[("empty", b"")]).get(timeout=10)
    finally:
        producer.close(timeout=5)
    assert (m0.offset, m1.offset, m2.offset) == (0, 1, 2)
    got = kp_consume(bootstrap, topic, [0], 3)
    assert [(r.key, r.value, list(r.headers)) for r in got] == \
        [(b"tombstone", None, []), (None, b"", []), (b"", b"x", [("empty", b"")])]


def test_begin_end_offsets_and_offsets_for_times(bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic, partitions=2)
    base_ts = 1_500_000_000_000
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        for i in range(10):
            producer.send(topic, partition=0, value=b"p0-%d" % i, timestamp_ms=base_ts + i * 100)
        for i in range(4):
            producer.send(topic, partition=1, value=b"p1-%d" % i, timestamp_ms=base_ts + i * 100)
        producer.flush(timeout=15)
    finally:
        producer.close(timeout=5)

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        assert consumer.beginning_offsets([tp0, tp1]) == {tp0: 0, tp1: 0}
        assert consumer.end_offsets([tp0, tp1]) == {tp0: 10, tp1: 4}
        found = consumer.offsets_for_times({tp0: base_ts + 350, tp1: base_ts})
        assert found[tp0].offset == 4 and found[tp0].timestamp == base_ts + 400
        assert found[tp1].offset == 0 and found[tp1].timestamp == base_ts
        # a timestamp after every record: no offset
        assert consumer.offsets_for_times({tp1: base_ts + 10_000})[tp1] is None
    finally:
        consumer.close()


def test_readme_snippet_with_localhost(broker: EmbeddedBroker, topic: str) -> None:
    """The README's snippet, unchanged except the port (a 'localhost:PORT' string)."""
    address = f"localhost:{broker.port}"
    producer = KafkaProducer(bootstrap_servers=address)
    meta = producer.send(topic, key=b"customer-42", value=b"first order").get(timeout=10)
    producer.close(timeout=5)
    assert (meta.partition, meta.offset) == (0, 0)

    started = time.monotonic()
    consumer = KafkaConsumer(topic, bootstrap_servers=address,
                             auto_offset_reset="earliest", consumer_timeout_ms=2000)
    seen = [(m.partition, m.offset, m.key, m.value) for m in consumer]
    consumer.close()
    assert seen == [(0, 0, b"customer-42", b"first order")]
    assert time.monotonic() - started < 20
