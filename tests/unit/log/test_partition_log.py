"""Append/read behaviour of PartitionLog."""

from __future__ import annotations

import errno
import os

import pytest

from suoi.log import segment as segment_module
from suoi.log.errors import KafkaStorageError, OffsetOutOfRangeError
from suoi.protocol.records import (
    CorruptRecordError,
    InvalidRecordError,
    RecordTooLargeError,
    iter_batches,
    iter_records,
    validate_batches,
)
from tests.unit.log.log_helpers import Clock, OpenLog, batch, batch_bytes


def offsets(data: bytes) -> list[int]:
    return [r.offset for r in iter_records(data)]  # type: ignore[misc]


def test_empty_log(open_log: OpenLog) -> None:
    log = open_log()
    assert (log.log_start_offset, log.log_end_offset, log.high_watermark) == (0, 0, 0)
    assert log.read(0, 1000) == b""
    assert log.offset_for_timestamp(0) is None
    assert log.max_timestamp() == (-1, -1)
    # a new partition makes its directory only: the files come with the first write
    assert sorted(p.name for p in log.directory.iterdir()) == []
    log.close()
    reopened = open_log()  # restarting an untouched partition is an empty log again
    assert reopened.log_end_offset == 0
    assert reopened.append(batch(2)).last_offset == 1
    reopened.roll()
    assert {p.name for p in reopened.directory.iterdir()} >= {
        "00000000000000000000.log", "00000000000000000000.index", "00000000000000000000.timeindex",
        "00000000000000000002.log"}
    reopened.close()
    assert open_log().read(0, 1000) == batch_bytes(reopened)


def test_append_assigns_consecutive_offsets(open_log: OpenLog) -> None:
    log = open_log()
    info = log.append(batch(3))
    assert (info.base_offset, info.last_offset, info.record_count) == (0, 2, 3)
    assert info.log_append_time_ms == -1 and info.max_timestamp == 1000
    info = log.append(batch(2) + batch(4))  # two batches in one produce
    assert (info.base_offset, info.last_offset, info.record_count) == (3, 8, 6)
    assert (log.log_end_offset, log.high_watermark) == (9, 9)
    data = log.read(0, 1 << 20)
    assert offsets(data) == list(range(9))
    assert [h.base_offset for _, h in iter_batches(data)] == [0, 3, 5]
    validate_batches(data, max_batch_bytes=1 << 20)  # stored bytes are intact batches


def test_read_from_middle_returns_containing_batch(open_log: OpenLog) -> None:
    log = open_log()
    for _ in range(3):
        log.append(batch(5))
    assert offsets(log.read(7, 1 << 20)) == list(range(5, 15))
    assert log.read(15, 100) == b""  # == log end offset


def test_read_out_of_range(open_log: OpenLog) -> None:
    log = open_log()
    log.append(batch(2))
    with pytest.raises(OffsetOutOfRangeError) as info:
        log.read(3, 100)
    assert info.value.error_code == 1
    with pytest.raises(OffsetOutOfRangeError):
        log.read(-1, 100)


def test_read_max_bytes_whole_batches_and_first_batch_always(open_log: OpenLog) -> None:
    log = open_log()
    sizes = [len(batch(3, payload=100)) for _ in range(4)]
    for _ in range(4):
        log.append(batch(3, payload=100))
    one = sizes[0]
    assert len(log.read(0, one * 2 + one // 2)) == one * 2  # never a partial batch
    assert len(log.read(0, 10)) == one  # first batch even if larger than max_bytes
    assert log.read(0, 10, min_one_batch=False) == b""
    assert len(log.read(0, 0)) == one


def test_read_respects_max_offset(open_log: OpenLog) -> None:
    log = open_log()
    for _ in range(3):
        log.append(batch(2))
    assert offsets(log.read(0, 1 << 20, max_offset=4)) == [0, 1, 2, 3]
    assert log.read(4, 1 << 20, max_offset=4) == b""


def test_roll_by_segment_bytes_and_reads_across_segments(open_log: OpenLog) -> None:
    size = len(batch(2))
    log = open_log(segment_bytes=size * 3, index_interval_bytes=0)
    for _ in range(10):
        log.append(batch(2))
    assert [s.base_offset for s in log.segments] == [0, 6, 12, 18]
    assert [s.size for s in log.segments] == [size * 3] * 3 + [size]
    assert offsets(log.read(0, 1 << 20)) == list(range(20))  # spans segments
    for target in range(20):  # index lookups + header scan in every segment
        assert offsets(log.read(target, 1))[0] == target - target % 2
    assert log.size_in_bytes == size * 10
    assert (log.directory / "00000000000000000012.index").exists()


def test_batch_larger_than_segment_still_appends(open_log: OpenLog) -> None:
    log = open_log(segment_bytes=100)
    log.append(batch(5, payload=100))
    log.append(batch(5, payload=100))
    assert [s.base_offset for s in log.segments] == [0, 5]


def test_roll_by_segment_ms(open_log: OpenLog, clock: Clock) -> None:
    log = open_log(segment_ms=1000)
    log.append(batch())
    clock.advance(1000)
    log.append(batch())  # not yet: Kafka rolls when strictly older
    clock.advance(1)
    log.append(batch())
    assert [s.base_offset for s in log.segments] == [0, 6]
    clock.advance(5000)
    assert len(log.segments) == 2  # time alone never rolls; an append does
    log.append(batch())
    assert [s.base_offset for s in log.segments] == [0, 6, 9]


def test_sparse_index_many_segments(open_log: OpenLog) -> None:
    log = open_log(segment_bytes=20_000, index_interval_bytes=500)
    for i in range(300):
        log.append(batch(1, payload=150, tag=i))
    assert len(log.segments) > 3
    seg = log.segments[1]
    assert 0 < len(seg.offset_index) < 300 // len(log.segments)
    for target in (0, 1, 57, 58, 150, 299):
        (rec,) = iter_records(log.read(target, 1))
        assert rec.offset == target and rec.value.startswith(b"%d-0-" % target)  # type: ignore[union-attr]


def test_offset_for_timestamp_and_max_timestamp(open_log: OpenLog) -> None:
    log = open_log(segment_bytes=600, index_interval_bytes=100)
    for i in range(20):
        log.append(batch(2, ts=1000 + i * 10))  # batch i: offsets 2i, 2i+1
    assert len(log.segments) > 2
    assert log.offset_for_timestamp(0) == (0, 1000)
    assert log.offset_for_timestamp(1000) == (0, 1000)
    assert log.offset_for_timestamp(1001) == (2, 1010)
    assert log.offset_for_timestamp(1095) == (20, 1100)
    assert log.offset_for_timestamp(1190) == (38, 1190)
    assert log.offset_for_timestamp(1191) is None
    assert log.max_timestamp() == (1190, 38)  # the first record carrying it (KAFKA-16310)


def test_offset_for_timestamp_with_out_of_order_timestamps(open_log: OpenLog) -> None:
    log = open_log(index_interval_bytes=0)
    for ts in (500, 300, 900, 100, 950):
        log.append(batch(1, ts=ts))
    assert log.offset_for_timestamp(400) == (0, 500)
    assert log.offset_for_timestamp(600) == (2, 900)
    assert log.offset_for_timestamp(920) == (4, 950)
    assert log.max_timestamp() == (950, 4)


def test_log_append_time(open_log: OpenLog, clock: Clock) -> None:
    log = open_log(message_timestamp_type="LogAppendTime")
    info = log.append(batch(3, ts=5))
    assert info.log_append_time_ms == clock.now and info.max_timestamp == clock.now
    data = log.read(0, 1 << 20)
    (h,) = validate_batches(data, max_batch_bytes=1 << 20)  # CRC recomputed
    assert h.timestamp_type == 1 and h.max_timestamp == clock.now
    assert {r.timestamp_ms for r in iter_records(data)} == {clock.now}
    assert log.max_timestamp() == (clock.now, 0)


@pytest.mark.parametrize(
    ("mangle", "error"),
    [
        (lambda b: b + b[:-3], CorruptRecordError),  # a good batch, then a torn one
        (lambda b: b + b[:-1] + bytes([b[-1] ^ 1]), CorruptRecordError),  # then a bad CRC
        (lambda b: b"", InvalidRecordError),
    ],
)
def test_invalid_produce_appends_nothing(open_log: OpenLog, mangle, error) -> None:  # type: ignore[no-untyped-def]
    log = open_log()
    log.append(batch())
    with pytest.raises(error):
        log.append(mangle(batch()))
    assert log.log_end_offset == 3 and log.size_in_bytes == len(batch())


def test_record_too_large(open_log: OpenLog) -> None:
    log = open_log(max_message_bytes=200)
    with pytest.raises(RecordTooLargeError):
        log.append(batch(3, payload=200))
    assert log.log_end_offset == 0


def test_enospc_leaves_log_unchanged(open_log: OpenLog, monkeypatch: pytest.MonkeyPatch) -> None:
    log = open_log(index_interval_bytes=0)
    for _ in range(3):
        log.append(batch())
    before = log.read(0, 1 << 20)
    n_index = len(log.segments[-1].offset_index)

    def half_then_fail(fd: int, parts: list[memoryview]) -> int:
        data = b"".join(parts)
        if len(data) > 40:
            return os.write(fd, data[:40])  # a short write first...
        raise OSError(errno.ENOSPC, "No space left on device")  # ...then the disk is full

    monkeypatch.setattr(segment_module, "_writev", half_then_fail)
    with pytest.raises(KafkaStorageError) as info:
        log.append(batch())
    assert info.value.error_code == 56 and info.value.errno == errno.ENOSPC
    assert log.log_end_offset == 9 and log.read(0, 1 << 20) == before
    assert os.path.getsize(log.segments[-1].log_path) == len(before)
    assert len(log.segments[-1].offset_index) == n_index
    monkeypatch.undo()
    assert log.append(batch()).base_offset == 9
    assert offsets(log.read(0, 1 << 20)) == list(range(12))


def test_flush_interval_messages_and_ms(open_log: OpenLog, clock: Clock) -> None:
    log = open_log(flush_interval_messages=5, flush_interval_ms=100)
    log.append(batch(3))
    assert log._unflushed_messages == 3
    log.append(batch(3))
    assert log._unflushed_messages == 0  # reached flush.messages
    log.append(batch(1))
    assert not log.maybe_flush(clock.now + 50)
    assert log.maybe_flush(clock.advance(100))
    assert not log.maybe_flush(clock.advance(100))  # nothing new to flush


def test_read_regions_select_the_same_bytes_as_read(open_log: OpenLog) -> None:
    log = open_log(segment_bytes=700, index_interval_bytes=150)
    for i in range(30):
        log.append(batch(1 + i % 3, payload=40 + i * 3, tag=i))
    assert len(log.segments) > 3
    for offset in (0, 1, 7, 20, 33, 50, log.log_end_offset):
        for max_bytes in (0, 1, 150, 700, 1500, 1 << 20):
            for min_one in (True, False):
                for max_offset in (None, 25):
                    expected = log.read(offset, max_bytes, max_offset=max_offset, min_one_batch=min_one)
                    regions = log.read_regions(offset, max_bytes, max_offset=max_offset, min_one_batch=min_one)
                    got = b"".join(os.pread(fd, length, pos) for fd, pos, length in regions)
                    assert got == expected, (offset, max_bytes, min_one, max_offset)
                    assert all(length > 0 for _, _, length in regions)


def test_on_disk_index_format(open_log: OpenLog) -> None:
    """Kafka's layout: .index = (relative offset int32, position int32) big-endian,
    .timeindex = (timestamp int64, relative offset int32)."""
    import struct

    size = len(batch(2))
    log = open_log(segment_bytes=size * 4, index_interval_bytes=0)
    for ts in (10, 20, 15, 30, 40, 50):
        log.append(batch(2, ts=ts))
    seg = log.segments[1]
    assert seg.log_path.name == "00000000000000000008.log"
    log.flush()  # index entries are written at flush (or close), not per append
    index = (log.directory / "00000000000000000008.index").read_bytes()
    assert list(struct.iter_unpack(">ii", index)) == [(2, size)]  # offset 10 at 2nd batch
    log.roll()  # sealing appends the final max-timestamp entry
    log.flush()
    timeindex = (log.directory / "00000000000000000008.timeindex").read_bytes()
    assert list(struct.iter_unpack(">qi", timeindex)) == [(50, 2)]  # first batch needs no entry
    timeindex0 = (log.directory / "00000000000000000000.timeindex").read_bytes()
    assert list(struct.iter_unpack(">qi", timeindex0)) == [(20, 2), (30, 6)]


def test_compression_type_recompresses_a_produced_batch(open_log: OpenLog) -> None:
    log = open_log(compression_type="lz4")
    log.append(batch(3))  # the producer sent it uncompressed
    (h,) = validate_batches(log.read(0, 1 << 20), max_batch_bytes=1 << 20)
    assert (h.compression, h.base_offset, h.records_count) == (3, 0, 3)
    assert [r.offset for r in iter_records(log.read(0, 1 << 20))] == [0, 1, 2]
