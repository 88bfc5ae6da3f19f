"""A read of exactly the last leader append, while it is the log's tail (a consumer parked at the
log end, woken by it), is served from the append's bytes as stored (`partition_log_append.Tail`):
the same bytes, and the same selection (max bytes, min one batch, max offset, the offset after
them), as the file walk serves; anything that changes the tail (a truncation, a follower's
append, a deleted log start) leaves the reads to the file. Real segment files."""

from __future__ import annotations

import pytest

from suoi.log.errors import OffsetOutOfRangeError
from suoi.log.transactions import next_offset_after
from tests.unit.log.log_helpers import OpenLog, batch


def _same_as_the_file(log: object, offset: int) -> int:
    """Every selection of a read at `offset` equals the file walk's (`read`); how many came from the tail."""
    tail = log._tail  # type: ignore[attr-defined]
    from_tail = 0
    for max_bytes in (0, 1, 60, 150, 1 << 20):
        for min_one in (True, False):
            for max_offset in (None, offset, offset + 1, offset + 2, offset + 100):
                expected = bytes(log.read(offset, max_bytes, max_offset=max_offset,  # type: ignore[attr-defined]
                                          min_one_batch=min_one))
                records, following = log.read_records(  # type: ignore[attr-defined]
                    offset, max_bytes, max_offset=max_offset, min_one_batch=min_one, next_offset=True)
                case = (offset, max_bytes, min_one, max_offset)
                assert bytes(records) == expected, case  # type: ignore[call-overload]
                assert following == next_offset_after(expected, offset), case
                from_tail += tail is not None and records is tail.data
    return from_tail


@pytest.mark.parametrize("timestamp_type", ["CreateTime", "LogAppendTime"])
def test_the_tail_read_serves_the_bytes_and_selection_the_file_walk_does(open_log: OpenLog, timestamp_type: str) -> None:
    log = open_log(segment_bytes=1500, message_timestamp_type=timestamp_type)
    served = 0
    for i in range(30):  # single batches, and two batches in one append; rolls on the way
        base = log.log_end_offset
        blob = batch(1 + i % 2, payload=30 + i, tag=i) + (batch(2, payload=20, tag=100 + i) if i % 3 == 0 else b"")
        log.append(blob, leader_epoch=3)
        assert log._tail is not None and log._tail.base_offset == base  # type: ignore[attr-defined]
        served += _same_as_the_file(log, base)
    assert len(log.segments) > 2
    assert served > 100  # the tail path was taken (its own bytes object), not only the file walk


def test_a_truncated_or_replicated_tail_is_read_from_the_file(open_log: OpenLog) -> None:
    log = open_log()
    for i in range(3):
        log.append(batch(2, tag=i), leader_epoch=1)
    base = log.log_end_offset
    log.append(batch(2, tag=7), leader_epoch=1)
    tail = log._tail  # type: ignore[attr-defined]
    log.truncate_to(base, force=True)  # (as a follower truncating below what it had)
    with pytest.raises(OffsetOutOfRangeError):  # the offset is past the log end now
        log.read_records(base + 1, 1 << 20)
    assert bytes(log.read_records(base, 1 << 20)[0]) == b""
    # a follower's append of other bytes to the same offsets: the file's, not the old tail's
    other = bytearray(batch(2, tag=8))
    other[0:8] = base.to_bytes(8, "big")
    log.append_as_follower(bytes(other))
    records, _ = log.read_records(base, 1 << 20)
    assert records is not tail.data and bytes(records) == bytes(log.read(base, 1 << 20)) != tail.data
    assert log._tail is None  # type: ignore[attr-defined]


def test_a_log_start_past_the_tail_refuses_the_read(open_log: OpenLog) -> None:
    log = open_log()
    log.append(batch(2, tag=1), leader_epoch=1)
    base = log.log_end_offset
    log.append(batch(2, tag=2), leader_epoch=1)
    log.delete_records_before(log.log_end_offset)
    with pytest.raises(OffsetOutOfRangeError):
        log.read_records(base, 1 << 20)


def test_a_large_append_is_not_kept(open_log: OpenLog) -> None:
    log = open_log()
    log.append(batch(200, payload=200), leader_epoch=1)  # ~40 KB: read from the file, not copied
    assert log._tail is None  # type: ignore[attr-defined]
