"""Reads of a partition log, as functions of its segments: batch selection for Fetch
(`walk`, as bytes or as sendfile regions) and the timestamp lookups of ListOffsets.

`PartitionLog` keeps the public methods (`read`, `read_regions`, `offset_for_timestamp`,
`max_timestamp`) and calls these with its segments, offsets and high watermark.
"""

from __future__ import annotations

import logging
import os
from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import TypeVar

from suoi.log.batch_check import CorruptBatch
from suoi.log.errors import CorruptRecordError
from suoi.log.handles import LazyFile
from suoi.log.segment import LogSegment
from suoi.protocol.records import BatchHeader, iter_records

logger = logging.getLogger("suoi.log")

_T = TypeVar("_T")

#: ``take(segment, position, expected base offset, byte budget, offset limit, first)``
#: -> (item, bytes taken, reached segment end, bad batch that stopped it)
Take = Callable[[LogSegment, int, int, int, int, bool], tuple[_T, int, bool, "CorruptBatch | None"]]


def read_bytes(seg: LogSegment, pos: int, expected: int, budget: int, limit: int,
               first: bool) -> tuple[bytes, int, bool, CorruptBatch | None]:
    """`walk` step for ``PartitionLog.read``: the (checked) batches' bytes."""
    data, at_end, bad = seg.read_from(pos, budget, limit, first, expected)
    return data, len(data), at_end, bad


def read_region(seg: LogSegment, pos: int, expected: int, budget: int, limit: int, first: bool
                ) -> tuple[tuple[tuple[int, int, int], LazyFile], int, bool, CorruptBatch | None]:
    """`walk` step for ``PartitionLog.read_regions``: ``(fd, position, length)`` of checked
    batches and its file, the descriptor pinned open (idle ones are closed, ``handles.py``)
    until `Regions.release`. Batches verified before are measured from their headers only."""
    length, at_end, bad = seg.region_from(pos, budget, limit, first, expected)
    return ((seg.file.pin(), pos, length), seg.file), length, at_end, bad


class Regions(list[tuple[int, int, int]]):
    """``(fd, position, length)`` file regions whose descriptors stay open until `release`
    (or the end of a ``with`` block): send them, then release."""

    def __init__(self, regions: Sequence[tuple[int, int, int]], files: Sequence[LazyFile]) -> None:
        super().__init__(regions)
        self._files = list(files)

    def release(self) -> None:
        for f in self._files:
            f.unpin()
        self._files.clear()

    def __enter__(self) -> Regions:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def walk(
    segments: Sequence[LogSegment],
    bases: Sequence[int],
    offset: int,
    max_bytes: int,
    limit: int,
    min_one_batch: bool,
    take: Take[_T],
    on_corrupt: Callable[[CorruptBatch], None] | None = None,
) -> list[_T]:
    """Visit segments from the one holding ``offset`` while budget remains, stopping
    before ``limit`` (``offset`` must already be within the log) or before a bad batch:
    raises ``CorruptRecordError`` if that is the first batch to serve (so a reader never
    skips it), else returns the good batches before it. ``on_corrupt`` hears of each bad
    batch found."""
    out: list[_T] = []
    if offset >= limit:
        return out
    remaining = max_bytes
    first = min_one_batch
    i = bisect_right(bases, offset) - 1
    while i < len(segments) and (remaining > 0 or first):
        seg = segments[i]
        found = seg.locate_expected(offset)
        if found is not None:
            item, n, at_end, bad = take(seg, found[0], found[1], remaining, limit, first)
            if n:
                out.append(item)
                remaining -= n
                first = False
            if bad is not None:
                if on_corrupt is not None:
                    on_corrupt(bad)
                if not out:
                    raise CorruptRecordError(bad)
                break
            if not at_end:
                break
        i += 1
        if i < len(segments):
            offset = segments[i].base_offset
    return out


def offset_for_timestamp(
    segments: Sequence[LogSegment], timestamp_ms: int, log_start: int, high_watermark: int
) -> tuple[int, int] | None:
    """``(offset, timestamp)`` of the first record with timestamp >= target below the high
    watermark (see ``PartitionLog.offset_for_timestamp``)."""
    lso = log_start
    for seg in segments:
        if seg.max_timestamp < timestamp_ms or seg.next_offset <= lso:
            continue
        h = seg.find_timestamp(timestamp_ms, lso)
        if h is not None:
            if h.last_offset >= high_watermark:
                return None
            return _first_record_at_or_after(seg, h, timestamp_ms, lso)
    return None


def max_timestamp(segments: Sequence[LogSegment], log_start: int) -> tuple[int, int]:
    """``(timestamp, offset)`` for ListOffsets MAX_TIMESTAMP (see ``PartitionLog.max_timestamp``)."""
    lso = log_start
    best: LogSegment | None = None
    for seg in segments:
        if seg.next_offset > lso and (best is None or seg.max_timestamp > best.max_timestamp):
            best = seg
    if best is None or best.max_timestamp < 0:
        return -1, -1
    h = best.header_at_offset(best.offset_of_max_timestamp)
    if h is None:
        return -1, -1
    if h.timestamp_type == 1:  # LogAppendTime: every record of the batch carries the max
        return best.max_timestamp, max(h.base_offset, lso)
    # The first record carrying the max, as Kafka since KAFKA-16310 (RecordBatch.offsetOfMaxTimestamp):
    # the segment (time index) leads to the first batch holding it; only that batch is decoded.
    offset, _ts = _first_record_at_or_after(best, h, best.max_timestamp, lso)
    return best.max_timestamp, offset


def _first_record_at_or_after(seg: LogSegment, h: BatchHeader, timestamp_ms: int, lso: int) -> tuple[int, int]:
    """Decode the one batch ``h`` to find its first record at or after ``timestamp_ms``."""
    pos = seg.locate(h.base_offset)
    if pos is not None:
        try:
            for record in iter_records(os.pread(seg.fd, h.size, pos)):
                assert record.offset is not None and record.timestamp_ms is not None
                if record.offset >= lso and record.timestamp_ms >= timestamp_ms:
                    return record.offset, record.timestamp_ms
        except (NotImplementedError, ValueError, IndexError) as e:
            logger.warning("%s: cannot decode batch at offset %d for a time lookup: %s", seg, h.base_offset, e)
    return max(h.base_offset, lso), h.max_timestamp
