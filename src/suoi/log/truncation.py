"""Replica-side log operations kept out of ``partition_log``: checking the batches a
follower fetched before ``PartitionLog.append_as_follower`` writes them with the leader's
offsets, and cutting the segments for ``PartitionLog.truncate_to``.

Truncation order (crash safety): later segments are deleted newest first, so a crash
leaves a contiguous prefix of the log (which the next ``truncate_to`` finishes); then the
segment holding the cut has its ``.log`` cut before its indexes, and a crash in between
leaves it as the last segment, which recovery always rescans and re-indexes. Producer
snapshots past the new end and leader-epoch entries past it are dropped on the next open
(``load_snapshot``, ``leader_epoch.load_or_rebuild``) if the crash came first.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from crc32c import crc32c

from suoi.log.errors import OffsetOutOfRangeError, TruncationBelowHighWatermarkError, UnexpectedAppendOffsetError
from suoi.log.segment import BatchPlacement, LogSegment
from suoi.protocol.record_batch import (
    ATTRIBUTES_OFFSET,
    HEADER_SIZE,
    MAGIC_OFFSET,
    BatchHeader,
    CorruptRecordError,
    InvalidRecordError,
    RecordTooLargeError,
    UnsupportedForMessageFormatError,
    parse_batch_header,
)

__all__ = ["check_cut", "cut_offset", "truncate_segments", "validate_replica_batches"]

_MIN_BATCH_LENGTH = HEADER_SIZE - 12


def validate_replica_batches(
    buf: bytes | bytearray | memoryview, *, log_end_offset: int, max_batch_bytes: int, allow_gaps: bool
) -> tuple[list[BatchHeader], list[BatchPlacement]]:
    """Check fetched batches for a follower append: framing, magic 2, size, CRC32C, and
    that their offsets continue the log - the first batch starts at ``log_end_offset`` and
    each next one where the previous ended. ``allow_gaps`` (compacted topics, whose cleaned
    batches may leave holes) only requires the offsets to increase from the log end.
    Records are not decoded and a batch's count may be below its offset span (compaction).
    """
    end = len(buf)
    if end == 0:
        raise InvalidRecordError("follower append contains no record batches")
    view = memoryview(buf)
    headers: list[BatchHeader] = []
    placements: list[BatchPlacement] = []
    expected = log_end_offset
    pos = 0
    # flat (header parse, properties and CRC inline, as `validate_batches`): once per fetched batch
    while pos < end:
        if end - pos > MAGIC_OFFSET and view[pos + MAGIC_OFFSET] != 2:
            raise UnsupportedForMessageFormatError(f"record batch magic {view[pos + MAGIC_OFFSET]} at byte {pos}")
        if end - pos < HEADER_SIZE:
            raise CorruptRecordError(f"truncated record batch header at byte {pos}")
        h = parse_batch_header(view, pos)
        size = h.size
        if h.batch_length < _MIN_BATCH_LENGTH or pos + size > end:
            raise CorruptRecordError(f"record batch at byte {pos} has a bad length {h.batch_length}")
        if size > max_batch_bytes:
            raise RecordTooLargeError(f"record batch of {size} bytes exceeds max.message.bytes={max_batch_bytes}")
        if crc32c(view[pos + ATTRIBUTES_OFFSET:pos + size]) != h.crc:
            raise CorruptRecordError(f"record batch at byte {pos} failed CRC32C check")
        if h.last_offset_delta < 0:
            raise InvalidRecordError(f"record batch at byte {pos} has a negative lastOffsetDelta")
        base = h.base_offset
        if base != expected and not (allow_gaps and base > expected):
            where = "the log end offset" if pos == 0 else "the end of the previous batch"
            raise UnexpectedAppendOffsetError(
                f"follower append: batch at byte {pos} starts at offset {base}, expected {expected} "
                f"({where})")
        headers.append(h)
        last = base + h.last_offset_delta
        placements.append((pos, base, last, h.max_timestamp, size))
        expected = last + 1
        pos += size
    return headers, placements


def cut_offset(segments: Sequence[LogSegment], bases: Sequence[int], offset: int) -> int:
    """Lowest offset that ``truncate_segments(.., offset)`` removes: ``offset`` itself, or
    the base of the batch holding it when that batch starts below it."""
    seg = segments[max(bisect_right(bases, offset) - 1, 0)]
    found = seg.locate_expected(offset)  # the expected base: the batch there may be corrupt
    return offset if found is None else min(offset, found[1])


def check_cut(
    segments: Sequence[LogSegment], bases: Sequence[int], offset: int, log_start_offset: int,
    high_watermark: int | None,
) -> int:
    """The lowest offset truncating to ``offset`` removes; raises ``OffsetOutOfRangeError``
    if that is below the log start offset, ``TruncationBelowHighWatermarkError`` if below
    ``high_watermark`` (None: no such limit, a forced truncation)."""
    cut = cut_offset(segments, bases, offset)
    if cut < log_start_offset:
        raise OffsetOutOfRangeError(f"cannot truncate to {cut}: below the log start offset {log_start_offset}")
    if high_watermark is not None and cut < high_watermark:
        raise TruncationBelowHighWatermarkError(f"cannot truncate to {cut}: below the high watermark {high_watermark}")
    return cut


def truncate_segments(segments: list[LogSegment], bases: list[int], offset: int) -> list[LogSegment]:
    """Remove every batch from the one holding ``offset`` on: segments based above
    ``offset`` are deleted (newest first), then the last remaining one is cut. ``segments``
    and ``bases`` are updated in place; returns the deleted segments. Raises ``OSError``."""
    removed: list[LogSegment] = []
    while len(segments) > 1 and segments[-1].base_offset > offset:
        seg = segments.pop()
        bases.pop()
        seg.file.note_cut(0)  # truncated away, not expired: a queued send of its batches is not made
        seg.delete()
        removed.append(seg)
    segments[-1].truncate_to(offset)
    return removed
