"""Log compaction end to end: real broker, confluent-kafka producing and consuming.

``test_broker_compacts_in_the_background`` relies on the broker scheduling the
cleaner every ``log.cleaner.backoff.ms``; it is skipped while the broker does
not know that config.  ``test_cleaned_segments_are_served_to_real_clients``
cleans the data directory of a stopped broker directly, so it checks what
clients make of cleaned segments whatever the scheduling.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import confluent_kafka
import pytest
from kafka import KafkaConsumer, TopicPartition

from suoi.log.cleaner import LogCleaner
from suoi.log.config import LogConfig
from suoi.log.manager import LogManager
from suoi.testing import EmbeddedBroker
from tests.e2e.helpers import ck_produce, create_topic

KEYS = 8
ROUNDS = 40
DEAD = {b"key-1", b"key-5"}  # tombstoned at the end
TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "segment.bytes": "2048",
    "min.cleanable.dirty.ratio": "0.01",
    "delete.retention.ms": "1000",
}


@pytest.fixture
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    b = EmbeddedBroker(tmp_path_factory.mktemp("compaction"), overrides={"log.cleaner.backoff.ms": "200"})
    b.start()
    try:
        yield b
    finally:
        b.stop()


def produce_updates(bootstrap: str, topic: str, compression: str = "none") -> dict[bytes, bytes]:
    """Many updates to a few keys, tombstones for DEAD, then unique filler keys so that
    no duplicate stays in the (never cleaned) active segment.  Returns the expected view."""
    conf = {"compression.type": compression, "linger.ms": 5, "batch.num.messages": 7}
    updates = [{"key": b"key-%d" % k, "value": b"value-%d-%d-" % (k, r) + b"x" * 40}
               for r in range(ROUNDS) for k in range(KEYS)]
    ck_produce(bootstrap, topic, updates, conf)
    ck_produce(bootstrap, topic, [{"key": k, "value": None} for k in sorted(DEAD)], conf)
    # incompressible, so that they fill the active segment whatever the codec
    fillers = [{"key": b"filler-%03d" % i, "value": os.urandom(40).hex().encode()} for i in range(80)]
    ck_produce(bootstrap, topic, fillers, conf)
    expected = {r["key"]: r["value"] for r in updates + fillers}
    for k in DEAD:
        del expected[k]
    return expected


def consume_all(bootstrap: str, topic: str) -> list[tuple[int, bytes, bytes | None]]:
    """Everything from the beginning to the end of the partition, with confluent-kafka."""
    c = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex[:6]}",
                                  "enable.auto.commit": False, "enable.partition.eof": True})
    out: list[tuple[int, bytes, bytes | None]] = []
    try:
        c.assign([confluent_kafka.TopicPartition(topic, 0, confluent_kafka.OFFSET_BEGINNING)])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == confluent_kafka.KafkaError._PARTITION_EOF:
                    return out
                raise AssertionError(m.error())
            out.append((m.offset(), m.key(), m.value()))
        raise AssertionError("no end of partition within 15 s")
    finally:
        c.close()


def as_view(records: list[tuple[int, bytes, bytes | None]]) -> dict[bytes, bytes | None]:
    return {k: v for _, k, v in records}


def test_broker_compacts_in_the_background(broker: EmbeddedBroker) -> None:
    topic = f"compacted-{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap, topic, config=TOPIC_CONFIG)
    expected = produce_updates(broker.bootstrap, topic, compression="lz4")
    deadline = time.monotonic() + 30
    while True:
        got = consume_all(broker.bootstrap, topic)
        keys = [k for _, k, _ in got]
        if (as_view(got) == expected and len(keys) == len(set(keys))) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert as_view(got) == expected  # latest value per key; tombstoned keys gone
    assert len(keys) == len(set(keys)), "duplicates left after compaction"
    offsets = [o for o, _, _ in got]
    assert offsets == sorted(offsets)


@pytest.mark.parametrize("compression", ["none", "gzip", "snappy", "zstd"])
def test_cleaned_segments_are_served_to_real_clients(tmp_path_factory: pytest.TempPathFactory,
                                                     compression: str) -> None:
    broker = EmbeddedBroker(tmp_path_factory.mktemp("offline"))
    broker.start()
    try:
        topic = f"compacted-{uuid.uuid4().hex[:8]}"
        create_topic(broker.bootstrap, topic, config=TOPIC_CONFIG)
        expected = produce_updates(broker.bootstrap, topic, compression)
        before = consume_all(broker.bootstrap, topic)
        original_offset = {k: o for o, k, _ in before}
        broker.stop()

        logs = LogManager(broker.log_dirs, LogConfig())
        logs.load()
        (log,) = [plog for plog in logs.compactable_logs() if plog.topic == topic]
        cleaner = LogCleaner()
        now = int(time.time() * 1000)
        assert cleaner.clean(log, now) is not None
        cleaner.clean(log, now + 2000)  # past delete.retention.ms: tombstones go
        logs.close()

        broker.start()
        got = consume_all(broker.bootstrap, topic)
        assert as_view(got) == expected
        assert len(got) == len(expected)
        assert all(original_offset[k] == o for o, k, _ in got)  # offsets never change

        kc = KafkaConsumer(bootstrap_servers=broker.bootstrap)
        kp: list[tuple[int, bytes, bytes | None]] = []
        try:
            tp = TopicPartition(topic, 0)
            kc.assign([tp])
            kc.seek_to_beginning(tp)
            deadline = time.monotonic() + 15
            while len(kp) < len(got) and time.monotonic() < deadline:
                for msgs in kc.poll(timeout_ms=500).values():
                    kp += [(m.offset, m.key, m.value) for m in msgs]
        finally:
            kc.close()
        assert kp == got
    finally:
        broker.close()
