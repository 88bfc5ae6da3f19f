"""Reads of a partition log, as functions of its segments: batch selection for Fetch
(`walk`, as bytes or as sendfile regions), the checked read of one segment (`read_from`,
`region_from`: every batch served is checked first, once, see ``batch_check``) and the
timestamp lookups of ListOffsets.

`PartitionLog` keeps the public methods (`read`, `read_regions`, `offset_for_timestamp`,
`max_timestamp`) and calls these with its segments, offsets and high watermark.
"""

from __future__ import annotations

import logging
import os
import struct
from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import TypeVar

from suoi.log.batch_check import _MIN_BATCH_LENGTH, CorruptBatch, crc_problem, framing_problem
from suoi.log.errors import CorruptRecordError
from suoi.log.handles import LazyFile
from suoi.log.segment import LogSegment
from suoi.protocol.codec import GatherBuffer
from suoi.protocol.file_records import FileRegion
from suoi.protocol.records import HEADER_SIZE, LOG_OVERHEAD, BatchHeader, iter_records, parse_batch_header

logger = logging.getLogger("suoi.log")

#: base offset, batch length, magic, last offset delta: what framing checks need of a header
_FRAMING = struct.Struct(">qi4xb4x2xi")

_T = TypeVar("_T")

#: A segment's part of a Fetch answer goes out by ``sendfile`` (`FileRegion`) from this many
#: bytes; smaller ones are read into memory and sent with the answer's other bytes. Below it the
#: extra syscalls (header reads, ``sendfile`` and a write for the bytes after it) cost more
#: than copying: 16 KiB answers cost 25 % more CPU by sendfile, 32 KiB ones 15 % less
#: (benchmarks/README.md "Fetch answers by sendfile").
SENDFILE_MIN_BYTES = 32 * 1024
# Answer encoders (protocol.compiled_dict_writer) join every piece below GatherBuffer.LARGE into
# one bytes object without looking at its type: a region must never be that small.
if SENDFILE_MIN_BYTES < GatherBuffer.LARGE:
    raise ImportError("SENDFILE_MIN_BYTES must be at least protocol.codec.GatherBuffer.LARGE")
#: Header reads of the verified walk below: a chunk while batches are small, else one header.
_SPAN_CHUNK = 4096

#: ``take(segment, position, expected base offset, byte budget, offset limit, first)``
#: -> (item, bytes taken, reached segment end, bad batch that stopped it)
Take = Callable[[LogSegment, int, int, int, int, bool], tuple[_T, int, bool, "CorruptBatch | None"]]


def read_bytes(seg: LogSegment, pos: int, expected: int, budget: int, limit: int,
               first: bool) -> tuple[bytes | memoryview, int, bool, CorruptBatch | None]:
    """`walk` step for ``PartitionLog.read``: the (checked) batches' bytes."""
    data, at_end, bad = read_from(seg, pos, budget, limit, first, expected)
    return data, len(data), at_end, bad


def read_region(seg: LogSegment, pos: int, expected: int, budget: int, limit: int, first: bool
                ) -> tuple[tuple[tuple[int, int, int], LazyFile], int, bool, CorruptBatch | None]:
    """`walk` step for ``PartitionLog.read_regions``: ``(fd, position, length)`` of checked
    batches and its file, the descriptor pinned open (idle ones are closed, ``handles.py``)
    until `Regions.release`. Batches verified before are measured from their headers only."""
    length, at_end, bad = region_from(seg, pos, budget, limit, first, expected)
    return ((seg.file.pin(), pos, length), seg.file), length, at_end, bad


def take_records(seg: LogSegment, pos: int, expected: int, budget: int, limit: int, first: bool
                 ) -> tuple[tuple[bytes | memoryview | FileRegion, int | None], int, bool, CorruptBatch | None]:
    """`walk` step for ``PartitionLog.read_records``: ``(chunk, next offset)`` where the chunk
    is a pinned `FileRegion` of batches all verified before (only their headers are read: the
    data goes out by ``sendfile``), or the checked bytes ``read_from`` reads (a span below
    `SENDFILE_MIN_BYTES`, or one holding batches not verified yet: reading checks them, and
    what was copied is sent as bytes); the next offset is None for bytes."""
    if (seg.size - pos >= SENDFILE_MIN_BYTES and (budget >= SENDFILE_MIN_BYTES or first)
            and pos not in seg.corrupt):
        span = _verified_span(seg, pos, expected, budget, limit, first)
        if span is not None:
            length, following, at_end = span
            if length and length >= SENDFILE_MIN_BYTES:
                f = seg.file
                return (FileRegion(f.pin(), pos, length, f, f.cuts), following), length, at_end, None
            copy = os.pread(seg.file.fd, length, pos) if length else b""  # checked: verified before
            return (copy, following), length, at_end, None
    data, at_end, bad = read_from(seg, pos, budget, limit, first, expected)
    return (data, None), len(data), at_end, bad


def _verified_span(seg: LogSegment, pos: int, expected: int, max_bytes: int, max_offset: int,
                   min_one: bool) -> tuple[int, int, bool] | None:
    """``(length, next offset, reached segment end)`` of the whole batches from ``pos`` that a
    read would serve, when all of them were verified before (`VerifiedRanges`: framing and CRC
    checked on append or by a read) and the headers walked frame as expected (the checks of
    `_verified_prefix`); None when ``read_from`` must read and check (and report what is
    wrong). Reads headers only, and few: after the first batch the walk jumps to the last
    offset-index entry within the budget and below ``max_offset`` (a batch start of known
    offset, checked by the walk from there), so a span of thousands of small batches costs two
    or three small reads. Notes where it ends (`LogSegment.note_read_end`)."""
    end = seg.size
    strict = seg.contiguous
    end_offset = seg.next_offset
    fd = seg.file.fd
    unpack = _FRAMING.unpack_from
    p = pos
    buf = b""
    buf_at = 0
    chunk = _SPAN_CHUNK
    at_end = True
    jumped = False
    while end - p >= HEADER_SIZE:
        rel = p - buf_at
        if rel + HEADER_SIZE > len(buf):
            buf = os.pread(fd, min(chunk, end - p), p)
            buf_at, rel = p, 0
            if len(buf) < HEADER_SIZE:
                return None
        base, length, magic, last_delta = unpack(buf, rel)
        size = length + LOG_OVERHEAD
        if (magic != 2 or length < _MIN_BATCH_LENGTH or last_delta < 0 or p + size > end
                or (base != expected if strict else base < expected) or base + last_delta >= end_offset):
            return None
        if base + last_delta >= max_offset or (p + size - pos > max_bytes and not (min_one and p == pos)):
            at_end = False
            break
        expected = base + last_delta + 1
        p += size
        chunk = _SPAN_CHUNK if size < _SPAN_CHUNK else HEADER_SIZE
        if not jumped:  # over the batches up to the last offset-index entry the read may reach
            jumped = True
            entry = seg.offset_index.last_within(pos + max_bytes, max_offset)
            if entry is not None and entry[1] > p:
                expected, p = entry  # the header there must be a batch of that offset (checked next)
    else:
        if p != end:
            return None  # a tail too short for a header: read_from reports it
    if p == pos:
        return 0, expected, at_end
    if not seg.verified.covers(pos, p):
        return None
    seg.note_read_end(expected, p)
    return p - pos, expected, at_end


def read_from(
    seg: LogSegment, pos: int, max_bytes: int, max_offset: int, min_one: bool, expected: int | None = None
) -> tuple[bytes | memoryview, bool, CorruptBatch | None]:
    """Whole, checked batches of ``seg`` from file position ``pos``: at most ``max_bytes`` and all below ``max_offset``
    (a read-only view of what was read when that ends in a partial batch). Where it stops is
    remembered (`LogSegment.note_read_end`) for the next read from there.

    With ``min_one`` the first batch is returned even if it alone exceeds
    ``max_bytes``, so a consumer can always make progress.  Returns the bytes, whether
    the scan reached the end of the segment, and the bad batch that stopped it (the
    bytes are then the good batches before it). ``expected`` is the base offset the
    batch at ``pos`` must have (``LogSegment.locate_expected``), None for any.
    """
    end = seg.size
    known = seg.corrupt.get(pos)
    if known is not None:
        return b"", False, known
    want = min(max(max_bytes, 0), end - pos)
    data = os.pread(seg.file.fd, want, pos) if want > 0 else b""
    n = len(data)
    if expected is not None:
        p, following = _verified_prefix(seg, data, pos, expected, max_offset)
        if p:
            seg.note_read_end(following, pos + p)
            # A view, not ``data[:p]``: the read over-reads up to a partial batch at the end of
            # the budget, and copying megabytes to drop it cost as much as the pread itself.
            return (data if p == n else memoryview(data)[:p]), pos + p >= end, None
    p = 0
    bad: CorruptBatch | None = None
    while n - p >= HEADER_SIZE:
        h = parse_batch_header(data, p)
        if expected is None:
            expected = h.base_offset
        bad = _check(seg, data, p, pos + p, h, expected, whole=p + h.size <= n)
        if bad is not None or p + h.size > n or h.last_offset >= max_offset:
            break
        expected = h.next_offset
        p += h.size
    if p == 0 and bad is None and min_one and pos < end:
        head = os.pread(seg.file.fd, HEADER_SIZE, pos)
        if len(head) < HEADER_SIZE:
            bad = CorruptBatch(seg.log_path, pos, expected if expected is not None else -1,
                               f"{end - pos} bytes at the end of the segment are not a whole batch header")
        else:
            h = parse_batch_header(head)
            if expected is None:
                expected = h.base_offset
            bad = _check(seg, head, 0, pos, h, expected, whole=False)
            if bad is None:
                if h.last_offset >= max_offset:
                    return b"", False, None
                data = os.pread(seg.file.fd, h.size, pos)
                bad = _check(seg, data, 0, pos, h, expected, whole=True)
                if bad is None:
                    seg.note_read_end(h.next_offset, pos + h.size)
                    return data, pos + h.size >= end, None
    elif p == 0 and bad is None and 0 < end - pos < HEADER_SIZE and n == end - pos:
        bad = CorruptBatch(seg.log_path, pos, expected if expected is not None else -1,
                           f"{end - pos} bytes at the end of the segment are not a whole batch header")
    if bad is not None:
        seg.note_corrupt(bad)
        return data[:p], False, bad
    if p == 0:
        return b"", pos >= end, None
    assert expected is not None
    seg.note_read_end(expected, pos + p)
    return (data if p == n else memoryview(data)[:p]), pos + p >= end, None


def _verified_prefix(seg: LogSegment, data: bytes, pos: int, expected: int, max_offset: int) -> tuple[int, int]:
    """``(length, next offset)`` of the whole batches at the start of ``data`` (read at ``pos``)
    below ``max_offset``, when every one frames as expected and all were verified before;
    ``(0, expected)`` otherwise, and ``read_from`` takes its checking path (which reports
    what is wrong). The same framing checks as ``_check`` on the four header fields they
    need, without a `BatchHeader` per batch: a consumer's fetch of 100-byte records walks
    hundreds of batches, and the generic walk was a fifth of its CPU."""
    n = len(data)
    room = seg.size - pos
    strict = seg.contiguous
    end_offset = seg.next_offset
    unpack = _FRAMING.unpack_from
    p = 0
    while n - p >= HEADER_SIZE:
        base, length, magic, last_delta = unpack(data, p)
        size = length + LOG_OVERHEAD
        if (magic != 2 or length < _MIN_BATCH_LENGTH or last_delta < 0 or p + size > room
                or (base != expected if strict else base < expected) or base + last_delta >= end_offset):
            return 0, expected
        if p + size > n or base + last_delta >= max_offset:
            break
        expected = base + last_delta + 1
        p += size
    if p and not seg.verified.covers(pos, pos + p):
        return 0, expected
    return p, expected


def _check(seg: LogSegment, buf: bytes, rel: int, pos: int, h: BatchHeader, expected: int, *, whole: bool) -> CorruptBatch | None:
    """The problem of the batch at file position ``pos`` (``buf[rel:]``): framing from the
    header, and - once ``whole`` is in ``buf`` - its CRC unless already verified."""
    problem = framing_problem(h, room=seg.size - pos, expected_offset=expected, end_offset=seg.next_offset,
                              strict=seg.contiguous)
    if problem is None and whole and not seg.verified.covers(pos, pos + h.size):
        problem = crc_problem(buf, rel, h)
        if problem is None:
            seg.verified.add(pos, pos + h.size)
    return None if problem is None else CorruptBatch(seg.log_path, pos, expected, problem)


def region_from(
    seg: LogSegment, pos: int, max_bytes: int, max_offset: int, min_one: bool, expected: int | None = None
) -> tuple[int, bool, CorruptBatch | None]:
    """Like ``read_from`` but only measures: returns (length, reached end, bad batch).

    A zero-copy send must serve checked bytes only, yet re-reading data that was already
    checked would double the I/O of every warm fetch: when every batch the answer needs
    is already ``verified`` (and frames as expected), only their headers are read.
    Otherwise ``read_from`` reads and checks the range (once: then it is verified).
    """
    if pos not in seg.corrupt:
        end = seg.size
        p = pos
        exp = expected
        for bpos, h in seg.headers_at(pos):
            if exp is None:
                exp = h.base_offset
            if not seg.verified.covers(bpos, bpos + h.size) or _check(seg,
                    b"", 0, bpos, h, exp, whole=False) is not None:
                break  # not checked yet, or bad: read_from checks and reports it
            if h.last_offset >= max_offset or (bpos + h.size - pos > max_bytes and not (min_one and bpos == pos)):
                return p - pos, False, None
            p = bpos + h.size
            exp = h.next_offset
        else:
            if p >= end:
                return p - pos, True, None
    data, at_end, bad = read_from(seg, pos, max_bytes, max_offset, min_one, expected)
    return len(data), at_end, bad


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
