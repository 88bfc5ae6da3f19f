"""Checking stored batches before they are served: framing, offsets and CRC32C.

suoi never serves a batch whose framing or CRC32C does not check out (Kafka trusts its
files; we do not). The checks need only the 61-byte header and one CRC32C over the batch
(hardware, ~0.1 ms per MB) - records are never decoded:

* framing: magic 2, a batch length of at least a header, inside the file;
* offsets: a non-negative last-offset delta, ending below the segment's next offset, and a
  base offset that continues the previous batch exactly (``strict``, every log that was
  never compacted) or at least does not go back (``strict=False``, compacted logs have gaps);
* CRC32C over attributes..end of batch (the base offset and leader epoch are outside it,
  hence the offset checks).

A CRC is computed once per batch: ``VerifiedRanges`` remembers which byte ranges of a
segment were checked (batches appended by this process were checked on produce / replica
fetch, and a recovery scan checks what it reads), so re-reads of hot data cost nothing.
"""

from __future__ import annotations

import os
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from suoi.protocol.records import HEADER_SIZE, LOG_OVERHEAD, BatchHeader, parse_batch_header, verify_crc

__all__ = [
    "CorruptBatch",
    "VerifiedRanges",
    "crc_problem",
    "find_next_batch",
    "framing_problem",
    "is_crc_problem",
    "recovery_scan",
    "scan_batches",
]

_MIN_BATCH_LENGTH = HEADER_SIZE - LOG_OVERHEAD


@dataclass(frozen=True, slots=True)
class CorruptBatch:
    """Where a bad batch sits: ``expected_offset`` is the offset it should start at (the end
    of the last good batch), the point a replica truncates to before refetching."""

    path: Path
    position: int
    expected_offset: int
    reason: str

    def __str__(self) -> str:
        return f"corrupt batch at position {self.position} of {self.path} (offset {self.expected_offset}): {self.reason}"


def framing_problem(h: BatchHeader, *, room: int, expected_offset: int, end_offset: int, strict: bool) -> str | None:
    """Why the batch whose header is ``h`` cannot be trusted, from its header alone (None
    if it can); ``room`` is the bytes left in the file from the batch's start and
    ``end_offset`` the segment's next offset."""
    if h.magic != 2:
        return f"magic byte {h.magic}, expected 2"
    if h.batch_length < _MIN_BATCH_LENGTH:
        return f"batch length {h.batch_length} is shorter than a batch header"
    if h.size > room:
        return f"batch length {h.batch_length} runs {h.size - room} bytes past the end of the segment"
    if h.last_offset_delta < 0:
        return f"negative last offset delta {h.last_offset_delta}"
    if h.base_offset != expected_offset and (strict or h.base_offset < expected_offset):
        return f"base offset {h.base_offset}, expected {expected_offset}"
    if h.next_offset > end_offset:
        return f"last offset {h.last_offset} is past the segment's end offset {end_offset}"
    return None


_CRC = "CRC32C mismatch"


def crc_problem(buf: bytes | bytearray | memoryview, rel: int, h: BatchHeader) -> str | None:
    """A CRC32C mismatch of the whole batch at ``buf[rel:]`` (None if it matches)."""
    if verify_crc(buf, rel, h):
        return None
    return f"{_CRC} (stored {h.crc:#010x})"


def is_crc_problem(problem: str) -> bool:
    """Only the CRC failed: the framing (so the next batch's position) is intact."""
    return problem.startswith(_CRC)


class VerifiedRanges:
    """Disjoint, sorted ``[start, end)`` byte ranges of a segment whose batches were checked.

    Sequential readers (consumers, followers) extend one range, so the list stays short.
    """

    __slots__ = ("_starts", "_ends")

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def covers(self, start: int, end: int) -> bool:
        i = bisect_right(self._starts, start) - 1
        return i >= 0 and self._ends[i] >= end

    def add(self, start: int, end: int) -> None:
        """Mark ``[start, end)`` checked, merging with touching or overlapping ranges."""
        if end <= start:
            return
        ends = self._ends
        if ends and ends[-1] == start:  # an append right after the last range (every produce)
            ends[-1] = end
            return
        i = bisect_right(self._starts, start) - 1
        if i >= 0 and self._ends[i] >= start:
            start = self._starts[i]
        else:
            i += 1
        j = i
        while j < len(self._starts) and self._starts[j] <= end:
            end = max(end, self._ends[j])
            j += 1
        self._starts[i:j] = [start]
        self._ends[i:j] = [end]

    def truncate(self, position: int) -> None:
        """Forget everything from ``position`` on (the file was cut there)."""
        i = bisect_right(self._starts, position - 1) if position > 0 else 0
        del self._starts[i:]
        del self._ends[i:]
        if self._ends and self._ends[-1] > position:
            self._ends[-1] = position

    def clear(self) -> None:
        self._starts.clear()
        self._ends.clear()

    @property
    def total(self) -> int:
        """Bytes covered."""
        return sum(e - s for s, e in zip(self._starts, self._ends, strict=True))

    def first_gap(self, start: int, end: int) -> tuple[int, int] | None:
        """The first unchecked ``[a, b)`` within ``[start, end)`` (None if all is checked)."""
        pos = start
        i = bisect_right(self._starts, pos) - 1
        if i >= 0 and self._ends[i] > pos:
            pos = self._ends[i]
        if pos >= end:
            return None
        nxt = bisect_right(self._starts, pos)
        gap_end = self._starts[nxt] if nxt < len(self._starts) else end
        return pos, min(gap_end, end)


#: How much a scan reads at a time.
SCAN_CHUNK = 8 * 1024 * 1024


class _ChunkReader:
    """Reads a file forwards in large chunks (scans of whole segments)."""

    def __init__(self, fd: int, end: int, chunk: int) -> None:
        self.fd = fd
        self.end = end
        self.chunk = chunk
        self._buf = b""
        self._start = 0

    def at(self, pos: int, length: int) -> tuple[bytes, int]:
        """``(buffer, offset in it)`` holding ``length`` bytes from ``pos`` (fewer at EOF)."""
        rel = pos - self._start
        if rel < 0 or rel + length > len(self._buf):
            self._buf = os.pread(self.fd, min(max(self.chunk, length), self.end - pos), pos)
            self._start, rel = pos, 0
        return self._buf, rel


def scan_batches(
    fd: int, start: int, end: int, expected_offset: int, *, strict: bool, end_offset: int = 2**63 - 1,
    chunk: int = SCAN_CHUNK,
) -> Iterator[tuple[int, BatchHeader | None, str | None]]:
    """Check every batch of a file from ``start`` (where one begins, at ``expected_offset``)
    to ``end``: yields ``(position, header, problem)``; after a framing problem (the next
    boundary is then unknown; ``header`` is None when not even a header fits) it stops."""
    pos = start
    reader = _ChunkReader(fd, end, chunk)
    while pos < end:
        if end - pos < HEADER_SIZE:
            yield pos, None, f"{end - pos} bytes at the end are not a whole batch header"
            return
        buf, rel = reader.at(pos, HEADER_SIZE)
        h = parse_batch_header(buf, rel)
        problem = framing_problem(h, room=end - pos, expected_offset=expected_offset, end_offset=end_offset,
                                  strict=strict)
        if problem is not None:
            yield pos, h, problem
            return
        buf, rel = reader.at(pos, h.size)
        yield pos, h, crc_problem(buf, rel, h)
        expected_offset = h.next_offset
        pos += h.size


def recovery_scan(
    fd: int, end: int, base_offset: int, *, strict: bool, chunk: int = SCAN_CHUNK
) -> Iterator[tuple[int, BatchHeader, str | None]]:
    """The batches recovery keeps, from the start of a segment file: ``(position, header,
    problem)``. It stops at the first bad batch (the rest is a torn tail), except that a batch
    whose framing holds but whose CRC32C fails is yielded with its problem, and the scan goes
    on, when the log is contiguous and the next batch starts exactly where that one's length
    says, at the offset it implies, and checks out: the boundaries are then certain."""
    for pos, h, problem in scan_batches(fd, 0, end, base_offset, strict=strict, chunk=chunk):
        if h is None or (problem is not None and not is_crc_problem(problem)):
            return
        if problem is not None and not (strict and _continues_cleanly(fd, pos + h.size, end, h.next_offset)):
            return
        yield pos, h, problem


def _continues_cleanly(fd: int, pos: int, end: int, expected_offset: int) -> bool:
    """A whole, checked batch starting at ``expected_offset`` sits at ``pos``."""
    for _, h, problem in scan_batches(fd, pos, end, expected_offset, strict=True, chunk=HEADER_SIZE):
        return h is not None and problem is None
    return False


def find_next_batch(fd: int, start: int, end: int, chunk: int = SCAN_CHUNK) -> int | None:
    """The first position after ``start`` where a whole batch with a matching CRC32C starts
    (offline resynchronisation after a framing error: a tool may go on from there; the
    broker never does, see the README)."""
    pos = start + 1
    while pos < end - HEADER_SIZE:
        buf = os.pread(fd, min(chunk + HEADER_SIZE, end - pos), pos)
        i = buf.find(b"\x02", 16)
        while i >= 0:
            rel = i - 16
            if rel + HEADER_SIZE <= len(buf):
                h = parse_batch_header(buf, rel)
                if h.batch_length >= _MIN_BATCH_LENGTH and pos + rel + h.size <= end:
                    whole = buf if rel + h.size <= len(buf) else os.pread(fd, h.size, pos + rel)
                    if crc_problem(whole, rel if whole is buf else 0, h) is None:
                        return pos + rel
            i = buf.find(b"\x02", i + 1)
        pos += chunk
    return None
