"""Finding the batch a read starts at, in one segment: `SegmentLocate.locate_expected` and the
header lookups built on it (ListOffsets by timestamp, replication's epoch checks).

Split from ``segment.py`` as the read side of a segment: a consumer at the log end is answered
from memory - where recent reads ended (`note_read_end`, the read hints) or the last appended
batches (kept by the append in ``segment.py``) - before the offset index and a header scan.
It sits between `SegmentState` and `SegmentRecovery` in the chain (see ``segment_state.py``)
because truncation locates the batch it cuts at. Every batch served is checked first
(``batch_check``: framing, offsets, CRC32C), once, by the reads in ``log_reads``
(``read_from`` / ``region_from``): ``verified`` remembers the checked byte ranges, ``corrupt``
the bad batches.
"""

from __future__ import annotations

import os
from bisect import bisect_right
from collections.abc import Iterator

from suoi.log.segment_state import SegmentState, logger
from suoi.protocol.records import HEADER_SIZE, BatchHeader, parse_batch_header

__all__ = ["SegmentLocate"]

#: Read positions remembered per segment (one per consumer position that reads it).
_READ_HINTS = 16


class SegmentLocate(SegmentState):
    """Where a batch of a given offset or timestamp is (`LogSegment` is the class to use)."""

    def locate(self, offset: int) -> int | None:
        """Position of the first batch whose last offset is >= ``offset`` (see ``locate_expected``)."""
        found = self.locate_expected(offset)
        return None if found is None else found[0]

    def locate_expected(self, offset: int) -> tuple[int, int] | None:
        """``(position, expected base offset)`` of the first batch whose last offset is >=
        ``offset``, or of the place where the chain of batches breaks before it (a reader
        starting there finds out why and reports it: nothing is skipped silently).

        The index entry the scan starts from must point at a batch starting at the indexed
        offset; a bad entry is logged once and the scan starts from an earlier one.
        """
        if offset >= self.next_offset:
            return None
        hint = self._read_hints.get(offset)
        if hint is not None and hint < self.size:
            return hint, offset
        bases = self._recent_base
        if bases and offset >= bases[0]:
            i = bisect_right(bases, offset) - 1
            if self._recent_last[i] < offset:
                i += 1  # in a gap after batch i (a compacted log): the next batch holds the next offset
            if 0 < i < len(bases):  # the offset the scan expects there: the batch before's next
                return self._recent_pos[i], self._recent_last[i - 1] + 1
        strict = self.contiguous
        for expected, start in self._index_starts(offset):
            pos = start
            for pos, h in self.headers_at(start):
                if pos == start and start > 0 and (h.base_offset != expected or h.magic != 2):
                    break  # a bad index entry: try an earlier one
                if h.magic != 2 or (h.base_offset != expected if strict else h.base_offset < expected):
                    return pos, expected
                if h.last_offset >= offset:
                    return pos, expected
                expected = h.next_offset
                pos += h.size
            else:
                if pos != start or start == 0:
                    return (pos, expected) if pos < self.size else None
            if start not in self._bad_index_entries:
                self._bad_index_entries.add(start)
                logger.error("%s: offset index entry (%d, %d) does not point at a batch of that offset; "
                             "scanning from an earlier entry", self.log_path, expected, start)
        return None

    def note_read_end(self, next_offset: int, position: int) -> None:
        """A read served whole batches up to ``position``, where the batch holding
        ``next_offset`` starts (or will, once appended): the answer of `locate_expected`
        for it, whatever the chain holds there (a reader starting there checks the batch)."""
        hints = self._read_hints
        if len(hints) >= _READ_HINTS and next_offset not in hints:
            hints.clear()
        hints[next_offset] = position

    def _index_starts(self, offset: int) -> Iterator[tuple[int, int]]:
        """Index entries at or before ``offset``, newest first, then the segment start."""
        for entry in self.offset_index.entries_at_or_before(offset):
            if entry[1] not in self._bad_index_entries:
                yield entry
        yield self.base_offset, 0

    def find_timestamp(self, timestamp: int, min_offset: int) -> BatchHeader | None:
        """First batch (not wholly below ``min_offset``) with max timestamp >= target."""
        start = max(self.time_index.lookup(timestamp), min_offset)
        pos = self.locate(start)
        if pos is None:
            return None
        for _, h in self.headers_at(pos):
            if h.last_offset >= min_offset and h.max_timestamp >= timestamp:
                return h
        return None

    def header_at_offset(self, offset: int) -> BatchHeader | None:
        pos = self.locate(offset)
        if pos is None:
            return None
        return parse_batch_header(os.pread(self._file.fd, HEADER_SIZE, pos))

    def headers_from(self, offset: int) -> Iterator[BatchHeader]:
        """Batch headers from the batch holding ``offset`` (or the segment start) onwards."""
        for _, h in self.positioned_headers_from(offset):
            yield h

    def positioned_headers_from(self, offset: int) -> Iterator[tuple[int, BatchHeader]]:
        """``(file position, header)`` like ``headers_from`` (to pread a whole batch)."""
        pos = self.locate(offset) if offset > self.base_offset else 0
        yield from self.headers_at(pos or 0)
