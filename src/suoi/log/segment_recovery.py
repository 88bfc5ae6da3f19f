"""Rebuilding a segment's state from its ``.log`` file, and cutting it: `load` (a sealed
segment's cheap open), `recover` (a full CRC-checked scan) and `truncate_to`.

Split from ``segment.py`` because these run at start-up and on a follower's truncation, never
per append or per read: each resets the in-memory bookkeeping (indexes, verified ranges,
recent batches, read hints) and walks the file again. The torn-tail and kept-bad-batch rules
are in ``batch_check.recovery_scan`` and the package README.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from suoi.log.batch_check import CorruptBatch, recovery_scan
from suoi.log.segment_locate import SegmentLocate
from suoi.log.segment_state import logger
from suoi.protocol.records import BatchHeader

__all__ = ["SegmentRecovery"]

_RECOVERY_CHUNK = 8 * 1024 * 1024


class SegmentRecovery(SegmentLocate):
    """Recovery and truncation of a segment (`LogSegment` is the class to use)."""

    def load(self, *, active: bool = False) -> int:
        """Open a sealed segment cheaply, falling back to full recovery.

        Trusts the indexes if they are well-formed and the batches from the
        last offset-index entry to the end of file chain up exactly; only that
        tail is read.  Returns the number of bytes truncated by recovery.
        ``active``: the last segment of a log that was closed by a clean shutdown
        (`suoi.log.clean_shutdown`): flushed like a sealed one, but an inconsistency there
        is a torn tail, recovered with truncation, and its segment.ms clock starts at its
        first batch (as `recover` sets it).
        """
        fallback = self.recover if active else self._recover_sealed
        if self._indexes_missing or not (self.offset_index.load() and self.time_index.load()):
            logger.warning("rebuilding indexes of %s", self.log_path)
            return fallback()
        last = self.offset_index.last_entry()
        start_offset, start = last if last is not None else (self.base_offset, 0)
        if start >= self.size and self.size:
            return fallback()
        end = start
        self._bytes_since_index = 0
        tail_max_ts, tail_max_offset = -1, self.base_offset
        for pos, h in self.headers_at(start):
            if (pos == start and last is not None and h.base_offset != start_offset) or h.magic != 2:
                break
            if h.max_timestamp > tail_max_ts:
                tail_max_ts, tail_max_offset = h.max_timestamp, h.base_offset
            self.next_offset = h.next_offset
            self._bytes_since_index += h.size
            if self.rolling_base_ms is None and pos == 0:
                self.rolling_base_ms = h.max_timestamp
            end = pos + h.size
        if end != self.size:
            logger.warning("index of %s is inconsistent with the log, rebuilding", self.log_path)
            return fallback()
        entry = self.time_index.last_entry()
        if entry is not None:
            self.max_timestamp, self.offset_of_max_timestamp = entry
        if tail_max_ts > self.max_timestamp:
            self.max_timestamp, self.offset_of_max_timestamp = tail_max_ts, tail_max_offset
        if active and self.rolling_base_ms is None:
            first = next(self.headers_at(0), None)
            if first is not None:
                self.rolling_base_ms = first[1].max_timestamp
        return 0

    def _recover_sealed(self) -> int:
        """Rebuild the indexes of a sealed, flushed segment. A bad batch there is rot, not a
        torn write: nothing is truncated (the bytes stay; reads refuse them, replicas repair)."""
        truncated = self.recover(truncate=False)
        self.seal()
        return truncated

    def recover(self, *, truncate: bool = True) -> int:
        """Rebuild both indexes by scanning every batch with CRC checks.

        The log is truncated at the first torn or corrupt batch, unless that batch is
        framed correctly and the next batch continues it and checks out: then it stays
        (reads refuse it, replicas repair it) and the scan goes on (see the README).
        With ``truncate=False`` (a sealed, flushed segment) nothing is cut: the first
        unreadable position is remembered as corrupt. Returns the number of bytes removed.
        """
        self.truncations += 1
        self.offset_index.reset()
        self.time_index.reset()
        self._forget_recent()
        self.next_offset = self.base_offset
        self.max_timestamp, self.offset_of_max_timestamp = -1, self.base_offset
        self._bytes_since_index = 0
        self.rolling_base_ms = None
        self.verified.clear()
        self.corrupt.clear()
        self._read_hints.clear()
        valid_end = 0
        for pos, h, problem in self._iter_verified():
            if pos == 0:
                self.rolling_base_ms = h.max_timestamp
            self._index_batch(pos, h.base_offset, h.last_offset, h.max_timestamp, h.size)
            valid_end = pos + h.size
            if problem is None:
                self.verified.add(pos, valid_end)
            else:
                self.note_corrupt(CorruptBatch(self.log_path, pos, h.base_offset, problem))
        self.offset_index.write_pending()  # rebuilt entries are written now, as before, not at flush
        self.time_index.write_pending()
        truncated = self.size - valid_end
        if truncated and not truncate:
            self.note_corrupt(CorruptBatch(self.log_path, valid_end, self.next_offset,
                                           "the batch there cannot be read (found by recovery)"))
            return 0
        if truncated:
            logger.warning(
                "truncating %d bytes of torn/corrupt data at position %d of %s",
                truncated, valid_end, self.log_path,
            )  # fmt: skip
            self._file.truncate(valid_end)
            self.size = valid_end
        return truncated

    def truncate_to(self, offset: int) -> int:
        """Remove the batches from the one holding ``offset`` on (Kafka's LogSegment.truncateTo);
        returns the bytes removed. A batch holding ``offset`` goes whole, so ``next_offset``
        may end below ``offset``. The ``.log`` file is cut first: a crash before the indexes
        follow leaves a segment that ``recover`` (it is then the last one) fixes."""
        found = self.locate_expected(offset)
        if found is None:
            return 0
        pos, cut = found  # ``cut``: where the batch at ``pos`` should start (it may be corrupt)
        self._forget_recent()
        self.truncations += 1
        removed = self.size - pos
        self._file.truncate(pos)  # counted: a queued send of the bytes cut is not made
        self.size = pos
        self.verified.truncate(pos)
        self._read_hints.clear()
        for bad in [p for p in self.corrupt if p >= pos]:
            del self.corrupt[bad]
        self.offset_index.truncate_from_value(pos)
        self.time_index.truncate_from_value(cut - self.base_offset)
        self.txn_index.truncate_from(cut)
        last = self.offset_index.last_entry()
        self.next_offset = self.base_offset
        self.max_timestamp, self.offset_of_max_timestamp = -1, self.base_offset
        self._bytes_since_index = 0
        for bpos, h in self.headers_at(0):  # headers only
            if h.max_timestamp > self.max_timestamp:
                self.max_timestamp, self.offset_of_max_timestamp = h.max_timestamp, h.base_offset
            if last is None or bpos >= last[1]:
                self._bytes_since_index += h.size
            self.next_offset = h.next_offset
        if pos == 0:
            self.rolling_base_ms = None
        return removed

    def _iter_verified(self) -> Iterator[tuple[int, BatchHeader, str | None]]:
        """Walk whole batches from the start, checking framing, CRC and offsets
        (``batch_check.recovery_scan``: which bad batches it goes past, and why)."""
        self.size = os.fstat(self._file.fd).st_size
        return recovery_scan(self._file.fd, self.size, self.base_offset, strict=self.contiguous, chunk=_RECOVERY_CHUNK)
