"""Retention on a real broker: time- and size-based segment deletion, what consumers see
afterwards, offsets never reused, and DeleteRecords through the confluent AdminClient."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient
from kafka import KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition
from kio.schema.errors import ErrorCode

from suoi.protocol.records import build_batch
from suoi.testing import EmbeddedBroker
from tests.conftest import wait_until
from tests.integration.support import (
    LogWatch,
    create_topic,
    fetch,
    log_end,
    log_start,
    module_broker,
    produce,
    read_all,
    segment_files,
    unique,
)

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    yield from module_broker(tmp_path_factory, {"log.retention.check.interval.ms": "200"})


def now_ms() -> int:
    return int(time.time() * 1000)


def fill(broker: EmbeddedBroker, topic: str, count: int, start: int = 0, size: int = 100) -> list[bytes]:
    """`count` single-record batches with current timestamps; asserts their offsets."""
    values = []
    for i in range(start, start + count):
        value = f"{i:06d}".encode().ljust(size, b".")
        part = produce(broker.bootstrap, topic, 0, build_batch([(b"k", value)], timestamp_ms=now_ms()))
        assert (part.error_code, part.base_offset) == (ErrorCode.none, i)
        values.append(value)
    return values


def segment_bases(broker: EmbeddedBroker, topic: str) -> list[int]:
    return [int(p.stem) for p in segment_files(broker, topic)]


def test_size_retention_deletes_old_segments_and_clients_start_at_new_log_start(broker: EmbeddedBroker) -> None:
    topic = unique("ret-bytes")
    create_topic(broker.bootstrap, topic, configs={"segment.bytes": "1024", "retention.bytes": "2048"})
    watch = LogWatch(broker)
    values = fill(broker, topic, 60)
    assert log_end(broker.bootstrap, topic) == 60

    def settled() -> int | None:
        """The log start once retention is done: the checker (every 200 ms) may still be
        catching up with the produces when they end, so wait until Kafka's rule deletes nothing
        more (dropping the oldest segment would leave under retention.bytes)."""
        try:
            sizes = [p.stat().st_size for p in segment_files(broker, topic)]
        except FileNotFoundError:  # retention deleted a segment between the listing and its stat
            return None
        if not sizes or segment_bases(broker, topic)[0] == 0 or sum(sizes) - sizes[0] >= 2048:
            return None
        return log_start(broker.bootstrap, topic) or None

    start = wait_until(settled, 10, message="size retention to delete the old segments")
    bases = segment_bases(broker, topic)
    assert start == bases[0], "log start offset must be the base of the oldest remaining segment"
    assert not (segment_files(broker, topic)[0].parent / "00000000000000000000.log").exists()
    for suffix in (".index", ".timeindex"):
        assert {int(p.stem) for p in segment_files(broker, topic, suffix=suffix)} == set(bases), \
            f"{suffix} files of deleted segments left behind"
    # retention.bytes keeps at least 2048 bytes; the log still ends at 60.
    total = sum(p.stat().st_size for p in segment_files(broker, topic))
    assert total >= 2048
    assert log_end(broker.bootstrap, topic) == 60
    assert read_all(broker.bootstrap, topic, offset=start) == list(enumerate(values))[start:]
    wait_until(lambda: "retention deleted" in watch.new(), 5, message="a retention log line")

    # A raw fetch at a deleted offset is out of range.
    assert fetch(broker.bootstrap, topic, 0, 0).error_code == ErrorCode.offset_out_of_range

    # kafka-python with no group and no committed offsets: auto_offset_reset=earliest
    # resolves to the new log start.
    kc = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, auto_offset_reset="earliest",
                       enable_auto_commit=False)
    try:
        tp = KafkaTopicPartition(topic, 0)
        kc.assign([tp])
        got: list[int] = []
        deadline = time.monotonic() + 10
        while len(got) < 60 - start and time.monotonic() < deadline:
            for records in kc.poll(timeout_ms=500).values():
                got += [r.offset for r in records]
        assert got == list(range(start, 60))
    finally:
        kc.close()

    # confluent positioned at a deleted offset: OFFSET_OUT_OF_RANGE -> reset to earliest.
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique("g"),
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        msgs: list[tuple[int, bytes]] = []
        deadline = time.monotonic() + 10
        while len(msgs) < 60 - start and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            msgs.append((msg.offset(), msg.value()))
        assert msgs == list(enumerate(values))[start:]
    finally:
        consumer.close()


def test_confluent_auto_offset_reset_error_reports_out_of_range(broker: EmbeddedBroker) -> None:
    topic = unique("ret-reset-error")
    create_topic(broker.bootstrap, topic, configs={"segment.bytes": "1024", "retention.bytes": "1024"})
    fill(broker, topic, 40)
    wait_until(lambda: log_start(broker.bootstrap, topic) > 0, 10, message="log start to advance")
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique("g"),
                         "enable.auto.commit": False, "auto.offset.reset": "error"})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + 10
        error = None
        while error is None and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None:
                assert msg.error() is not None, f"got a record at offset {msg.offset()} below log start"
                error = msg.error()
        assert error is not None and error.code() == KafkaError._AUTO_OFFSET_RESET
    finally:
        consumer.close()


def test_time_retention_expires_everything_and_offsets_are_not_reused(broker: EmbeddedBroker) -> None:
    topic = unique("ret-ms")
    create_topic(broker.bootstrap, topic, configs={"segment.bytes": "1024", "retention.ms": "1000"})
    fill(broker, topic, 30)
    assert len(segment_files(broker, topic)) >= 3

    # Every record is older than 1 s soon: all segments go, including the active one.
    wait_until(lambda: log_start(broker.bootstrap, topic) == 30, 10, message="all 30 records to expire")
    assert log_end(broker.bootstrap, topic) == 30
    assert segment_bases(broker, topic) == [30], "expected only an empty segment at the old LEO"
    assert segment_files(broker, topic)[0].stat().st_size == 0
    p = fetch(broker.bootstrap, topic, 0, 30)
    assert (p.error_code, p.records or b"", p.log_start_offset, p.high_watermark) == (ErrorCode.none, b"", 30, 30)
    assert fetch(broker.bootstrap, topic, 0, 29).error_code == ErrorCode.offset_out_of_range

    # New data continues at the old log end offset: offsets are never reused.
    new = fill(broker, topic, 3, start=30)
    assert read_all(broker.bootstrap, topic, offset=30) == [(30, new[0]), (31, new[1]), (32, new[2])]


def test_retention_survives_restart(make_broker) -> None:  # type: ignore[no-untyped-def]
    """The advanced log start offset persists across a clean restart."""
    b = make_broker(overrides={"log.retention.check.interval.ms": "200"})
    topic = unique("ret-restart")
    create_topic(b.bootstrap, topic, configs={"segment.bytes": "1024", "retention.bytes": "1024"})
    fill(b, topic, 40)
    start = wait_until(lambda: log_start(b.bootstrap, topic) or None, 10, message="log start to advance")
    b.stop()
    b.start()
    assert log_start(b.bootstrap, topic) >= start
    assert log_end(b.bootstrap, topic) == 40
    assert fill(b, topic, 1, start=40)


def test_delete_records_through_admin_client(broker: EmbeddedBroker) -> None:
    topic = unique("delete-records")
    create_topic(broker.bootstrap, topic, configs={"segment.bytes": "1024"})
    values = fill(broker, topic, 40)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = admin.delete_records([TopicPartition(topic, 0, 25)], request_timeout=10)
    [(tp, future)] = list(futures.items())
    deleted = future.result(timeout=10)
    assert deleted.low_watermark == 25
    assert log_start(broker.bootstrap, topic) == 25
    assert fetch(broker.bootstrap, topic, 0, 24).error_code == ErrorCode.offset_out_of_range
    assert read_all(broker.bootstrap, topic, offset=25) == list(enumerate(values))[25:]
    # Whole segments below the new start are gone from disk.
    bases = segment_bases(broker, topic)
    assert bases[0] <= 25 and (len(bases) == 1 or bases[1] > 25)

    # OFFSET_END (-1) deletes up to the high watermark.
    futures = admin.delete_records([TopicPartition(topic, 0, -1)], request_timeout=10)
    assert next(iter(futures.values())).result(timeout=10).low_watermark == 40
    assert log_start(broker.bootstrap, topic) == 40

    # Beyond the high watermark is refused and changes nothing.
    futures = admin.delete_records([TopicPartition(topic, 0, 1000)], request_timeout=10)
    with pytest.raises(Exception) as exc_info:
        next(iter(futures.values())).result(timeout=10)
    assert exc_info.value.args[0].code() == KafkaError.OFFSET_OUT_OF_RANGE
    assert log_start(broker.bootstrap, topic) == 40
    assert fill(broker, topic, 1, start=40)
