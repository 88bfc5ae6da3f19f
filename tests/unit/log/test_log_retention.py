"""Retention, DeleteRecords and the log start offset."""

from __future__ import annotations

import pytest

from suoi.log.errors import OffsetOutOfRangeError
from suoi.protocol.records import iter_records
from tests.unit.log.log_helpers import Clock, OpenLog, batch

DAY = 86_400_000


def offsets(data: bytes) -> list[int]:
    return [r.offset for r in iter_records(data)]  # type: ignore[misc]


def _fill(log, clock: Clock, n: int, step_ms: int = 1000) -> None:  # type: ignore[no-untyped-def]
    """n one-record batches, one per segment (tiny segment.bytes), timestamps = clock."""
    for _ in range(n):
        log.append(batch(1, ts=clock.now))
        clock.advance(step_ms)


def test_retention_by_time(open_log: OpenLog, clock: Clock) -> None:
    log = open_log(segment_bytes=100, retention_ms=5000)
    start = clock.now
    _fill(log, clock, 5)  # timestamps start .. start+4000, one segment each
    assert len(log.segments) == 5
    assert log.apply_retention(start + 5000) == 0  # nothing strictly older than retention
    assert log.apply_retention(start + 7500) == 3  # ts start, +1000, +2000 are > 5000 ms old
    assert log.log_start_offset == 3 == log.segments[0].base_offset
    with pytest.raises(OffsetOutOfRangeError):
        log.read(2, 100)
    assert offsets(log.read(3, 1 << 20)) == [3, 4]


def test_retention_expires_active_segment_by_rolling(open_log: OpenLog, clock: Clock) -> None:
    log = open_log(segment_bytes=100, retention_ms=DAY)
    _fill(log, clock, 3)
    deleted = log.apply_retention(clock.now + 2 * DAY)
    assert deleted == 3
    assert [s.base_offset for s in log.segments] == [3]  # fresh active segment at the old LEO
    assert (log.log_start_offset, log.log_end_offset) == (3, 3)
    assert log.read(3, 100) == b""
    assert log.append(batch(2)).base_offset == 3  # offsets never reused
    log.close()
    log = open_log(segment_bytes=100, retention_ms=DAY)
    assert (log.log_start_offset, log.log_end_offset) == (3, 5)


def test_retention_infinite_and_compact(open_log: OpenLog, clock: Clock) -> None:
    log = open_log(segment_bytes=100, retention_ms=-1)
    _fill(log, clock, 3)
    assert log.apply_retention(clock.now + 100 * DAY) == 0
    log.config = type(log.config)(segment_bytes=100, retention_ms=1, cleanup_policy=("compact",))
    assert log.apply_retention(clock.now + 100 * DAY) == 0


def test_retention_by_bytes(open_log: OpenLog, clock: Clock) -> None:
    size = len(batch(1))
    log = open_log(segment_bytes=100, retention_ms=-1, retention_bytes=size * 2)
    _fill(log, clock, 5)
    assert log.apply_retention(clock.now) == 3
    assert [s.base_offset for s in log.segments] == [3, 4]
    assert log.log_start_offset == 3 and log.size_in_bytes == size * 2
    log.config = type(log.config)(segment_bytes=100, retention_ms=-1, retention_bytes=0)
    assert log.apply_retention(clock.now) == 1  # never the active segment
    assert [s.base_offset for s in log.segments] == [4]


def test_delete_records(open_log: OpenLog, clock: Clock) -> None:
    log = open_log(segment_bytes=100)
    _fill(log, clock, 5)
    with pytest.raises(OffsetOutOfRangeError):
        log.delete_records_before(6)
    assert log.delete_records_before(2) == 2
    assert [s.base_offset for s in log.segments] == [2, 3, 4]
    assert log.delete_records_before(1) == 2  # never moves backwards
    log.close()
    log = open_log(segment_bytes=100)
    assert log.log_start_offset == 2
    assert offsets(log.read(2, 1 << 20)) == [2, 3, 4]


def test_delete_records_inside_segment(open_log: OpenLog) -> None:
    log = open_log()
    for ts in (10, 20, 30):
        log.append(batch(2, ts=ts))
    assert log.delete_records_before(3) == 3
    assert len(log.segments) == 1  # only whole segments are removed
    with pytest.raises(OffsetOutOfRangeError):
        log.read(2, 100)
    assert offsets(log.read(3, 1 << 20)) == [2, 3, 4, 5]  # containing batch, like Kafka
    assert log.offset_for_timestamp(0) == (3, 20)
    log.close()
    log = open_log()
    assert log.log_start_offset == 3
    assert log.delete_records_before(-1) == 6  # -1 = high watermark
