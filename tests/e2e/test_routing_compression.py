"""Key-based partitioning and compressed batches, end to end with real clients."""

from __future__ import annotations

import random
from collections import defaultdict

import confluent_kafka
import pytest
from kafka import KafkaProducer
from kafka.partitioner.default import murmur2

from tests.conftest import wait_until
from tests.e2e.helpers import aio_consume, ck_consume, ck_produce, create_topic, kp_consume

PARTITIONS = 6


def _partition_of_each_key(recs: list) -> dict[bytes, set[int]]:
    where: dict[bytes, set[int]] = defaultdict(set)
    for r in recs:
        where[r.key].add(r.partition)
    return where


def test_confluent_same_key_same_partition(bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic, partitions=PARTITIONS)
    keys = [f"key-{i}".encode() for i in range(40)]
    recs = [{"key": k, "value": b"%s#%d" % (k, j)} for j in range(5) for k in keys]
    delivered = ck_produce(bootstrap, topic, recs)
    got = ck_consume(bootstrap, topic, list(range(PARTITIONS)), len(recs))
    assert len(got) == len(recs) == 200
    where = _partition_of_each_key(got)
    assert set(where) == set(keys)
    assert all(len(ps) == 1 for ps in where.values()), {k: ps for k, ps in where.items() if len(ps) > 1}
    # stored where the producer was told they were stored, per key in produce order
    for k in keys:
        mine = [r for r in got if r.key == k]
        assert [r.value for r in sorted(mine, key=lambda r: r.offset)] == [b"%s#%d" % (k, j) for j in range(5)]
    assert {p for p, _ in delivered} == {p for ps in where.values() for p in ps}
    # 40 keys over 6 partitions: a hash spreads them over several partitions
    assert len({p for ps in where.values() for p in ps}) >= 3


def test_kafka_python_key_routing_is_murmur2(bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic, partitions=PARTITIONS)
    keys = [f"order-{i}".encode() for i in range(30)]
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        futs = [(k, producer.send(topic, key=k, value=b"%d" % j)) for j in range(4) for k in keys]
        producer.flush(timeout=15)
        metas = [(k, f.get(timeout=10)) for k, f in futs]
    finally:
        producer.close(timeout=5)
    # the Java client's default: murmur2(key) & 0x7fffffff % partitions
    for k, m in metas:
        assert m.partition == (murmur2(k) & 0x7FFFFFFF) % PARTITIONS
    got = kp_consume(bootstrap, topic, list(range(PARTITIONS)), len(metas))
    assert len(got) == 120
    where = _partition_of_each_key(got)
    assert {k: ps.pop() for k, ps in where.items() if len(ps) == 1} == \
        {k: (murmur2(k) & 0x7FFFFFFF) % PARTITIONS for k in keys}


def test_keyless_messages_spread(bootstrap: str, topic: str) -> None:
    """Without keys (sticky partitioner), successive batches go to more than one partition."""
    create_topic(bootstrap, topic, partitions=PARTITIONS)
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap})
    used: set[int] = set()
    total = 0

    def on_delivery(err, msg):  # noqa: ANN001
        assert err is None, err
        used.add(msg.partition())

    def one_round() -> bool:
        nonlocal total
        for _ in range(20):
            producer.produce(topic, value=b"no key %d" % total, on_delivery=on_delivery)
            total += 1
        assert producer.flush(10) == 0
        return len(used) > 1

    wait_until(one_round, timeout=15, message="keyless messages in more than one partition")
    got = ck_consume(bootstrap, topic, list(range(PARTITIONS)), total)
    assert len(got) == total
    assert {r.partition for r in got} == used and len(used) > 1
    assert sorted(r.value for r in got) == sorted(b"no key %d" % i for i in range(total))


def test_kafka_python_keyless_spread(bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic, partitions=PARTITIONS)
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    used: set[int] = set()
    sent = 0
    try:
        def one_round() -> bool:
            nonlocal sent
            futs = [producer.send(topic, value=b"v%d" % (sent + i)) for i in range(20)]
            sent += 20
            producer.flush(timeout=10)
            used.update(f.get(timeout=10).partition for f in futs)
            return len(used) > 1
        wait_until(one_round, timeout=15, message="kafka-python keyless spread")
    finally:
        producer.close(timeout=5)
    got = kp_consume(bootstrap, topic, list(range(PARTITIONS)), sent)
    assert len(got) == sent and {r.partition for r in got} == used


# ---------------------------------------------------------------- compression

CODECS = ["gzip", "snappy", "lz4", "zstd"]


def _compressible_values(n: int, seed: int) -> list[bytes]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        if i % 3 == 0:
            out.append(rnd.randbytes(rnd.randint(0, 300)))          # incompressible, binary
        else:
            out.append((f"record {i} " * rnd.randint(1, 200)).encode())  # very compressible
    return out


@pytest.fixture(scope="module")
def compressed_topics(broker) -> dict[str, tuple[str, list[dict]]]:  # noqa: ANN001
    """One topic per codec, 2 partitions, filled by confluent-kafka with compression.type=codec."""
    out = {}
    for n, codec in enumerate(CODECS):
        topic = f"compressed-{codec}"
        create_topic(broker.bootstrap, topic, partitions=2)
        values = _compressible_values(300, seed=n)
        recs = [{"key": b"k%d" % i, "value": v, "partition": i % 2, "timestamp": 1_690_000_000_000 + i,
                 "headers": [("codec", codec.encode())]} for i, v in enumerate(values)]
        delivered = ck_produce(broker.bootstrap, topic, recs, {"compression.type": codec})
        assert [o for p, o in delivered if p == 0] == list(range(150))
        assert [o for p, o in delivered if p == 1] == list(range(150))
        out[codec] = (topic, recs)
    return out


@pytest.mark.parametrize("reader", ["confluent", "kafka-python", "aiokafka"])
@pytest.mark.parametrize("codec", CODECS)
def test_compressed_batches_read_back(bootstrap: str, compressed_topics, codec: str, reader: str) -> None:  # noqa: ANN001
    topic, recs = compressed_topics[codec]
    read = {"confluent": ck_consume, "kafka-python": kp_consume, "aiokafka": aio_consume}[reader]
    got = read(bootstrap, topic, [0, 1], len(recs))
    assert len(got) == len(recs)
    for p in (0, 1):
        mine = sorted((r for r in got if r.partition == p), key=lambda r: r.offset)
        want = recs[p::2]
        assert [r.offset for r in mine] == list(range(len(want)))
        assert [(r.key, r.value, r.timestamp, list(r.headers)) for r in mine] == \
            [(w["key"], w["value"], w["timestamp"], w["headers"]) for w in want]
