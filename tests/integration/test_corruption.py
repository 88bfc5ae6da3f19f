"""Damaged data files of a stopped single-replica node, read back with real clients: the
good records before a bad batch are delivered once, then CORRUPT_MESSAGE - never the bad
batch, never a silent skip, never a loop of duplicates; the broker logs the file and position
once; `suoi dump-log --verify` finds it."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition
from kafka import KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition
from kafka.errors import KafkaError as KafkaPythonError
from kio.schema.errors import ErrorCode

from suoi.cli.main import main as suoi_main
from suoi.protocol.records import build_batch
from suoi.testing import EmbeddedBroker
from tests.integration.support import LogWatch, create_topic, fetch, log_end, produce, segment_files, unique
from tests.unit.log.log_helpers import batch_positions, flip

pytestmark = pytest.mark.timeout(60)

#: librdkafka names broker error 2 (CORRUPT_MESSAGE) INVALID_MSG
MakeBroker = Callable[..., EmbeddedBroker]
BATCHES, PER_BATCH = 60, 5
TOTAL = BATCHES * PER_BATCH


def fill(broker: EmbeddedBroker, **configs: str) -> str:
    topic = unique("rot")
    create_topic(broker.bootstrap, topic, configs={"segment.bytes": "4096", "index.interval.bytes": "256", **configs})
    for b in range(BATCHES):
        records = [(b"k%d" % i, b"value-%05d-" % (b * PER_BATCH + i) + b"x" * 40) for i in range(PER_BATCH)]
        part = produce(broker.bootstrap, topic, 0, build_batch(records))
        assert (part.error_code, part.base_offset) == (ErrorCode.none, b * PER_BATCH)
    return topic


def confluent_read(bootstrap: str, topic: str, start: int = 0, settle_s: float = 0.8) -> tuple[list[int], list[int]]:
    """Offsets delivered and error codes seen, polling until `settle_s` after the first
    error (or until all records came)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("g"), "enable.auto.commit": False,
                         "fetch.error.backoff.ms": 100, "fetch.wait.max.ms": 100})
    got: list[int] = []
    errors: list[int] = []
    try:
        consumer.assign([TopicPartition(topic, 0, start)])
        deadline = time.monotonic() + 15
        first_error = None
        while time.monotonic() < deadline and len(got) < TOTAL - start:
            if first_error is not None and time.monotonic() > first_error + settle_s:
                break
            msg = consumer.poll(0.1)
            if msg is None:
                continue
            if msg.error() is not None:
                errors.append(msg.error().code())
                first_error = first_error or time.monotonic()
                continue
            got.append(msg.offset())
    finally:
        consumer.close()
    return got, errors


KINDS = {  # byte inside the batch, bit mask
    "payload": (80, 0x01),
    "crc": (18, 0x10),
    "attributes": (22, 0x01),
    "record-count": (60, 0x01),
    "batch-length": (11, 0x10),
    "base-offset": (7, 0x02),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_damage_in_an_older_segment_is_reported_not_served(make_broker: MakeBroker, kind: str) -> None:
    broker = make_broker()
    topic = fill(broker)
    broker.stop()
    logs = segment_files(broker, topic)
    assert len(logs) >= 4
    path = logs[1]
    pos, base = batch_positions(path)[3]
    at, mask = KINDS[kind]
    flip(path, pos + at, mask)
    watch = LogWatch(broker)
    broker.start()

    assert log_end(broker.bootstrap, topic) == TOTAL  # nothing truncated or lost
    got, errors = confluent_read(broker.bootstrap, topic)
    assert got == list(range(base)), "records before the bad batch, each once, then nothing"
    assert errors and set(errors) == {KafkaError.INVALID_MSG}
    assert fetch(broker.bootstrap, topic, 0, base + 1).error_code == ErrorCode.corrupt_message
    # the broker names the file and position once, however often it is asked
    assert watch.new().count(f"corrupt batch at position {pos} of {path}") == 1
    # offsets after the damaged segment are still served
    later = int(logs[2].stem)
    assert fetch(broker.bootstrap, topic, 0, later).error_code == ErrorCode.none
    assert suoi_main(["dump-log", "--files", str(path), "--verify"]) == 1


def test_kafka_python_gets_the_error_not_duplicates(make_broker: MakeBroker) -> None:
    broker = make_broker()
    topic = fill(broker)
    broker.stop()
    path = segment_files(broker, topic)[1]
    pos, base = batch_positions(path)[2]
    flip(path, pos + 80, 0x01)
    broker.start()
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                             fetch_max_wait_ms=100)
    got: list[int] = []
    raised: list[KafkaPythonError] = []
    try:
        consumer.assign([KafkaTopicPartition(topic, 0)])
        consumer.seek(KafkaTopicPartition(topic, 0), 0)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(raised) < 3:
            try:
                for records in consumer.poll(timeout_ms=200).values():
                    got += [r.offset for r in records]
            except KafkaPythonError as e:
                raised.append(e)
    finally:
        consumer.close()
    assert got == list(range(base))
    assert raised and all(e.errno == 2 for e in raised), raised


def test_an_index_entry_moved_by_one_byte_skips_nothing(make_broker: MakeBroker) -> None:
    broker = make_broker()
    topic = fill(broker)
    broker.stop()
    index = segment_files(broker, topic, suffix=".index")[1]
    raw = bytearray(index.read_bytes())
    assert len(raw) >= 16
    entry_offset = int(index.stem) + int.from_bytes(raw[8:12], "big")
    raw[12:16] = (int.from_bytes(raw[12:16], "big") + 1).to_bytes(4, "big")
    index.write_bytes(bytes(raw))
    broker.start()
    for start in range(entry_offset, entry_offset + 2 * PER_BATCH):
        got, errors = confluent_read(broker.bootstrap, topic, start, settle_s=0)
        assert (got[:1], errors) == ([start], [])
    got, errors = confluent_read(broker.bootstrap, topic)
    assert (got, errors) == (list(range(TOTAL)), [])
    assert suoi_main(["dump-log", "--files", str(index), "--verify"]) == 1


def test_payload_flip_in_the_last_segment_keeps_the_batches_after_it(make_broker: MakeBroker) -> None:
    """Unclean shutdown: recovery re-checks the unflushed segments; the flipped batch is
    framed correctly and the next one continues it, so the 40 acked batches after it stay."""
    broker = make_broker()
    topic = fill(broker, **{"segment.bytes": str(1 << 20)})
    assert broker.kill() == -9
    (path,) = segment_files(broker, topic)
    pos, base = batch_positions(path)[BATCHES - 41]
    flip(path, pos + 80, 0x01)
    watch = LogWatch(broker)
    broker.start()
    assert log_end(broker.bootstrap, topic) == TOTAL
    assert "truncating" not in watch.new()
    got, errors = confluent_read(broker.bootstrap, topic)
    assert got == list(range(base)) and set(errors) == {KafkaError.INVALID_MSG}
    after, errors = confluent_read(broker.bootstrap, topic, base + PER_BATCH)
    assert (after, errors) == (list(range(base + PER_BATCH, TOTAL)), [])
    assert suoi_main(["dump-log", "--files", str(path), "--verify"]) == 1
