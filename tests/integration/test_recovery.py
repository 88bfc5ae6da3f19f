"""Crash recovery of a real broker process: SIGKILL with torn/garbage tails on the active
segment, lost index files, and clean SIGTERM restarts."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from kio.schema.delete_records.v2.request import DeleteRecordsPartition, DeleteRecordsRequest, DeleteRecordsTopic
from kio.schema.errors import ErrorCode

from suoi.protocol.records import build_batch
from suoi.testing import EmbeddedBroker
from tests.conftest import wait_until
from tests.integration.support import (
    EARLIEST,
    LogWatch,
    create_topic,
    list_offset,
    log_end,
    log_start,
    metadata_req,
    ms,
    produce,
    read_all,
    segment_files,
    unique,
)
from tests.rawclient import RawClient

pytestmark = pytest.mark.timeout(60)

MakeBroker = Callable[..., EmbeddedBroker]


def confluent_produce(bootstrap: str, topic: str, values: list[bytes], partition: int = 0) -> list[int]:
    """Produce one message per batch (flush after each); return the acked offsets."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "all",
                         "enable.idempotence": False})
    offsets: list[int] = []
    errors: list[object] = []

    def on_delivery(err: object, msg: object) -> None:
        if err is not None:
            errors.append(err)
        else:
            offsets.append(msg.offset())  # type: ignore[attr-defined]

    for value in values:
        producer.produce(topic, value=value, partition=partition, on_delivery=on_delivery)
        assert producer.flush(10) == 0
    assert errors == []
    return offsets


def confluent_consume(bootstrap: str, topic: str, start: int, count: int, partition: int = 0,
                      timeout: float = 10.0) -> list[tuple[int, bytes]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("g"),
                         "enable.auto.commit": False, "auto.offset.reset": "error"})
    try:
        consumer.assign([TopicPartition(topic, partition, start)])
        got: list[tuple[int, bytes]] = []
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            got.append((msg.offset(), msg.value()))
        return got
    finally:
        consumer.close()


def _half_batch(next_offset: int) -> bytes:
    b = build_batch([(b"key", b"torn" * 50)], base_offset=next_offset, timestamp_ms=int(time.time() * 1000))
    return b[: len(b) // 2]


def _corrupt_whole_batch(next_offset: int) -> bytes:
    b = bytearray(build_batch([(b"key", b"flipped" * 10)], base_offset=next_offset,
                              timestamp_ms=int(time.time() * 1000)))
    b[-5] ^= 0xFF
    return bytes(b)


def _header_only(next_offset: int) -> bytes:
    return build_batch([(b"key", b"v" * 100)], base_offset=next_offset, timestamp_ms=int(time.time() * 1000))[:61]


TAILS: dict[str, Callable[[int], bytes]] = {
    "random-garbage": lambda _: os.urandom(777),
    "half-batch": _half_batch,
    "header-only": _header_only,
    "zero-fill": lambda _: b"\x00" * 4096,
    "crc-corrupt-batch": _corrupt_whole_batch,
}


@pytest.mark.parametrize("tail", list(TAILS))
def test_sigkill_with_torn_tail_recovers_whole_batches(make_broker: MakeBroker, tail: str) -> None:
    broker = make_broker()
    topic = unique(f"torn-{tail}")
    # Small segments: the tail is damaged in the active segment while sealed ones exist.
    create_topic(broker.bootstrap, topic, configs={"segment.bytes": "2048"})
    values = [f"value-{i:03d}-".encode() * 8 for i in range(30)]
    offsets = confluent_produce(broker.bootstrap, topic, values)
    assert offsets == list(range(30))
    logs_before = segment_files(broker, topic)
    assert len(logs_before) >= 2, "expected the topic to roll segments"

    assert broker.kill() == -9
    active = logs_before[-1]
    good_size = active.stat().st_size
    with open(active, "ab") as f:
        f.write(TAILS[tail](30))
    assert active.stat().st_size > good_size

    watch = LogWatch(broker)
    broker.start()
    watch.wait_for(rf"truncating \d+ bytes .* at position {good_size} of .*{active.name}")
    assert active.stat().st_size == good_size, "torn tail not truncated back to the last whole batch"
    assert segment_files(broker, topic) == logs_before

    assert log_end(broker.bootstrap, topic) == 30
    assert log_start(broker.bootstrap, topic) == 0
    assert read_all(broker.bootstrap, topic) == list(enumerate(values))
    # A real client reads the recovered log with the same offsets...
    assert confluent_consume(broker.bootstrap, topic, 0, 30) == list(enumerate(values))
    # ...and new data continues right after the last whole batch.
    assert confluent_produce(broker.bootstrap, topic, [b"after-crash-1", b"after-crash-2"]) == [30, 31]
    assert read_all(broker.bootstrap, topic, offset=29) == [(29, values[29]), (30, b"after-crash-1"),
                                                             (31, b"after-crash-2")]


def test_sigkill_loses_no_acknowledged_message(make_broker: MakeBroker) -> None:
    """Acked data is in the page cache; a process crash (not a power cut) must not lose it."""
    broker = make_broker()
    topic = unique("acked")
    values = [os.urandom(64) for _ in range(25)]
    assert confluent_produce(broker.bootstrap, topic, values) == list(range(25))
    broker.kill()
    watch = LogWatch(broker)
    broker.start()
    assert read_all(broker.bootstrap, topic) == list(enumerate(values))
    assert "truncating" not in watch.new()


def test_missing_indexes_are_rebuilt(make_broker: MakeBroker) -> None:
    broker = make_broker()
    topic = unique("reindex")
    create_topic(broker.bootstrap, topic, configs={"segment.bytes": "2048", "index.interval.bytes": "200"})
    t0 = int(time.time() * 1000) - 100_000
    values = [f"rec-{i:02d}".encode() * 10 for i in range(50)]
    for i, v in enumerate(values):
        part = produce(broker.bootstrap, topic, 0, build_batch([(b"k", v)], timestamp_ms=t0 + i * 1000))
        assert (part.error_code, part.base_offset) == (ErrorCode.none, i)
    broker.stop()

    logs = segment_files(broker, topic)
    assert len(logs) >= 3
    removed = segment_files(broker, topic, suffix=".index") + segment_files(broker, topic, suffix=".timeindex")
    assert len(removed) == 2 * len(logs)
    for p in removed:
        p.unlink()

    watch = LogWatch(broker)
    broker.start()
    watch.wait_for(r"rebuilding indexes of")
    for log in logs:
        for suffix in (".index", ".timeindex"):
            rebuilt = log.with_suffix(suffix)
            assert rebuilt.exists(), f"{rebuilt.name} was not rebuilt"
    # Sealed segments have several batches 200+ bytes apart: their offset index has entries.
    for log in logs[:-1]:
        assert log.with_suffix(".index").stat().st_size > 0
        assert log.with_suffix(".timeindex").stat().st_size > 0

    assert log_end(broker.bootstrap, topic) == 50
    assert read_all(broker.bootstrap, topic) == list(enumerate(values))
    # Random access through the rebuilt offset index: every start offset gives that record first.
    for offset in (1, 17, 33, 49):
        assert read_all(broker.bootstrap, topic, offset=offset)[0] == (offset, values[offset])
    # Time lookups through the rebuilt time index.
    for i in (0, 12, 31, 49):
        assert list_offset(broker.bootstrap, topic, 0, t0 + i * 1000) == (ErrorCode.none, i)
        assert list_offset(broker.bootstrap, topic, 0, t0 + i * 1000 - 500) == (ErrorCode.none, i)
    assert list_offset(broker.bootstrap, topic, 0, t0 + 50 * 1000) == (ErrorCode.none, -1)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique("g")})
    try:
        found = consumer.offsets_for_times([TopicPartition(topic, 0, t0 + 20 * 1000 - 1)], timeout=10)
        assert [(tp.offset, tp.error) for tp in found] == [(20, None)]
    finally:
        consumer.close()
    # Appends after the rebuild keep indexing correctly.
    part = produce(broker.bootstrap, topic, 0, build_batch([(None, b"later")], timestamp_ms=t0 + 60_000))
    assert part.base_offset == 50
    assert list_offset(broker.bootstrap, topic, 0, t0 + 55_000) == (ErrorCode.none, 50)


def test_sigterm_restart_keeps_everything(make_broker: MakeBroker) -> None:
    broker = make_broker()
    topic = unique("restart")
    create_topic(broker.bootstrap, topic, partitions=2, configs={"max.message.bytes": "1024",
                                                                 "segment.bytes": "2048"})
    v0 = [f"p0-{i}".encode() * 10 for i in range(20)]
    v1 = [f"p1-{i}".encode() * 10 for i in range(7)]
    assert confluent_produce(broker.bootstrap, topic, v0, partition=0) == list(range(20))
    assert confluent_produce(broker.bootstrap, topic, v1, partition=1) == list(range(7))
    with RawClient(broker.bootstrap) as c:
        dr = c.request(DeleteRecordsRequest(topics=(DeleteRecordsTopic(name=topic, partitions=(
            DeleteRecordsPartition(partition_index=0, offset=5),)),), timeout=ms(5000)))
    assert dr.topics[0].partitions[0].low_watermark == 5
    files_before = {p.name: p.stat().st_size for p in segment_files(broker, topic)}

    watch = LogWatch(broker)
    assert broker.stop() == 0, "SIGTERM shutdown should exit 0"
    wait_until(lambda: "stopped cleanly" in watch.new(), 5, message="clean-stop log line")
    broker.start()
    assert "truncating" not in watch.new(), "a clean shutdown left a torn tail"
    assert {p.name: p.stat().st_size for p in segment_files(broker, topic)} == files_before

    with RawClient(broker.bootstrap) as c:
        md = c.request(metadata_req(topic, allow_create=False))
    assert md.topics[0].error_code == ErrorCode.none
    assert sorted(p.partition_index for p in md.topics[0].partitions) == [0, 1]
    assert (log_start(broker.bootstrap, topic, 0), log_end(broker.bootstrap, topic, 0)) == (5, 20)
    assert (log_start(broker.bootstrap, topic, 1), log_end(broker.bootstrap, topic, 1)) == (0, 7)
    assert list_offset(broker.bootstrap, topic, 0, EARLIEST) == (ErrorCode.none, 5)
    assert read_all(broker.bootstrap, topic, 0, offset=5) == list(enumerate(v0))[5:]
    assert read_all(broker.bootstrap, topic, 1) == list(enumerate(v1))
    # The topic's configs survived: max.message.bytes=1024 is still enforced.
    big = produce(broker.bootstrap, topic, 0, build_batch([(None, b"x" * 3000)], timestamp_ms=int(time.time() * 1000)))
    assert big.error_code == ErrorCode.message_too_large
    assert confluent_produce(broker.bootstrap, topic, [b"next"], partition=0) == [20]
    assert confluent_produce(broker.bootstrap, topic, [b"next"], partition=1) == [7]
