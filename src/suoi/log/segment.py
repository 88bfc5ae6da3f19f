"""One log segment: a ``.log`` file of record batches plus its two indexes.

A segment only ever holds whole v2 batches, stored byte-for-byte as the
producer sent them (after offset assignment).  All reads go through one file
descriptor with ``os.pread``, so concurrent readers never share a file position.
Descriptors are `LazyFile`s (``handles.py``): opened on use and closed when idle,
so a node holds more partitions than ``ulimit -n`` allows open files.

Batches are located with the sparse offset index and then a forward scan
that only reads 61-byte headers - record payloads are never decoded here.
Every batch served is checked first (``batch_check``: framing, offsets, CRC32C), once, by
the reads in ``log_reads`` (``read_from`` / ``region_from``): ``verified`` remembers the
checked byte ranges, ``corrupt`` the bad batches.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from pathlib import Path

from suoi.log.batch_check import CorruptBatch, VerifiedRanges, recovery_scan
from suoi.log.errors import KafkaStorageError
from suoi.log.handles import LazyFile
from suoi.log.index import OffsetIndex, TimeIndex
from suoi.log.txn_index import TransactionIndex
from suoi.protocol.records import HEADER_SIZE, LOG_OVERHEAD, BatchHeader, parse_batch_header

__all__ = ["BatchPlacement", "LogSegment", "segment_file_name"]

logger = logging.getLogger("suoi.log")

#: Fault-injection seam: tests replace this to simulate ENOSPC/EIO (every `.log` write goes
#: through it: a leader's append writes each batch as its stamped prefix + the bytes received).
_writev = os.writev
#: Most buffers one writev takes (Linux: 1024).
_IOV_MAX = os.sysconf("SC_IOV_MAX") if "SC_IOV_MAX" in os.sysconf_names else 16

_MIN_BATCH_LENGTH = HEADER_SIZE - LOG_OVERHEAD
_HEADER_SCAN_CHUNK = 16 * 1024
_RECOVERY_CHUNK = 8 * 1024 * 1024
_INT32_MAX = 2**31 - 1
#: `LogSegment._recent_*`: trimmed to the last _RECENT_KEEP batches once over _RECENT_MAX
_RECENT_MAX = 256
_RECENT_KEEP = 128
#: Read positions remembered per segment (one per consumer position that reads it).
_READ_HINTS = 16

#: (position relative to the appended chunk, base offset, last offset, max timestamp, size)
BatchPlacement = tuple[int, int, int, int, int]


def _write_rest(fd: int, parts: Sequence[bytes | bytearray | memoryview], size: int, written: int) -> None:
    """After a short ``writev`` (rare), or none (more parts than one writev takes: hundreds of
    batches in one produce), write the rest of ``parts`` from one joined buffer."""
    rest = memoryview(b"".join(parts))
    while written < size:
        written += _writev(fd, [rest[written:]])


def segment_file_name(base_offset: int, suffix: str) -> str:
    """Kafka's naming: the base offset zero-padded to 20 digits."""
    return f"{base_offset:020d}{suffix}"


class LogSegment:
    """Files and in-memory state of a single segment."""

    def __init__(
        self, directory: Path, base_offset: int, *, index_interval_bytes: int, suffix: str = "", fresh: bool = False
    ) -> None:
        """``suffix`` (e.g. ``.cleaned``) is appended to all three file names;
        the log cleaner writes its output segments that way. ``fresh``: the directory was just
        made, so no file exists yet; they are created by their first use (`fresh_segment`)."""
        self.base_offset = base_offset
        # The file names as plain strings: a restart opens a segment per partition (10,000s), and
        # joining pathlib paths was most of that; `log_path` is made on first use.
        prefix = os.path.join(directory, segment_file_name(base_offset, ""))
        self._log_name = prefix + ".log" + suffix
        self._file = LazyFile(self._log_name, os.O_RDWR | os.O_CREAT | os.O_APPEND)
        index_path = prefix + ".index" + suffix
        time_index_path = prefix + ".timeindex" + suffix
        #: An absent index cannot be told apart from an empty one once created.
        self._indexes_missing = not fresh and not (os.path.exists(index_path) and os.path.exists(time_index_path))
        self.offset_index = OffsetIndex(index_path, base_offset, create=not fresh)
        self.time_index = TimeIndex(time_index_path, base_offset, create=not fresh)
        #: Aborted transactions whose marker is in this segment (file created on first abort).
        self.txn_index = TransactionIndex(prefix + ".txnindex" + suffix, load=not fresh)
        #: When a fresh segment was made (its retention clock while its file does not exist).
        self._created_ms = int(time.time() * 1000)
        self.size = 0 if fresh else os.fstat(self._file.fd).st_size
        #: Offset after the last batch: the log end offset while this segment is active.
        self.next_offset = base_offset
        self.max_timestamp = -1
        self.offset_of_max_timestamp = base_offset
        #: Time from which segment.ms is measured (first append), None while empty.
        self.rolling_base_ms: int | None = None
        self._index_interval = index_interval_bytes
        self._bytes_since_index = 0
        #: Byte ranges whose batches were checked (appended here, or read and verified).
        self.verified = VerifiedRanges()
        #: Bad batches found, by position (each is logged once).
        self.corrupt: dict[int, CorruptBatch] = {}
        #: Batches continue each other exactly (False for logs that were compacted: gaps).
        self.contiguous = True
        self._bad_index_entries: set[int] = set()
        #: The last batches appended (base offset, last offset, position), oldest first: a
        #: consumer at the log end reads one of them, found without scanning headers from the
        #: last index entry (up to index.interval.bytes of small batches, each a header parse).
        self._recent_base: list[int] = []
        self._recent_last: list[int] = []
        self._recent_pos: list[int] = []
        #: Where recent reads ended: next offset -> file position of the batch that follows
        #: (`note_read_end`), so a consumer's next fetch starts there without an index
        #: lookup and a header scan. Bounded (`_READ_HINTS`); cleared when the file is cut.
        self._read_hints: dict[int, int] = {}

    @functools.cached_property
    def log_path(self) -> Path:
        """The ``.log`` file."""
        return Path(self._log_name)

    # ------------------------------------------------------------------ life cycle

    @classmethod
    def create(
        cls, directory: Path, base_offset: int, *, index_interval_bytes: int, suffix: str = ""
    ) -> LogSegment:
        """A fresh, empty segment (stale files with the same name are cleared)."""
        seg = cls(directory, base_offset, index_interval_bytes=index_interval_bytes, suffix=suffix)
        if seg.size:
            os.ftruncate(seg._file.fd, 0)
            seg._file.dirty = True
            seg.size = 0
        seg.offset_index.reset()
        seg.time_index.reset()
        seg.txn_index.reset()
        return seg

    @classmethod
    def fresh_segment(cls, directory: Path, base_offset: int, *, index_interval_bytes: int) -> LogSegment:
        """The first segment of a partition whose directory was just created: no file is made
        until something is written (creating a topic of thousands of partitions costs one
        ``mkdir`` each). A restart finds no ``.log`` there and starts an empty segment again."""
        return cls(directory, base_offset, index_interval_bytes=index_interval_bytes, fresh=True)

    def load(self) -> int:
        """Open a sealed segment cheaply, falling back to full recovery.

        Trusts the indexes if they are well-formed and the batches from the
        last offset-index entry to the end of file chain up exactly; only that
        tail is read.  Returns the number of bytes truncated by recovery.
        """
        if self._indexes_missing or not (self.offset_index.load() and self.time_index.load()):
            logger.warning("rebuilding indexes of %s", self.log_path)
            return self._recover_sealed()
        last = self.offset_index.last_entry()
        start_offset, start = last if last is not None else (self.base_offset, 0)
        if start >= self.size and self.size:
            return self._recover_sealed()
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
            return self._recover_sealed()
        entry = self.time_index.last_entry()
        if entry is not None:
            self.max_timestamp, self.offset_of_max_timestamp = entry
        if tail_max_ts > self.max_timestamp:
            self.max_timestamp, self.offset_of_max_timestamp = tail_max_ts, tail_max_offset
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

    def seal(self) -> None:
        """Called on roll: make the time index end with the segment's max timestamp,
        so retention and ``load()`` never need to scan a sealed segment."""
        if self.max_timestamp >= 0:
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
        self.offset_index.materialize()  # a sealed segment has both index files (see `load`)
        self.time_index.materialize()

    def flush(self) -> None:
        self._file.fsync()
        self.offset_index.flush()
        self.time_index.flush()
        self.txn_index.flush()

    def close(self) -> None:
        if self.size and not self._file.closed:  # a segment with data leaves its index files behind
            try:
                self.offset_index.materialize()
                self.time_index.materialize()
            except OSError as e:  # rebuilt from the log at the next start
                logger.warning("%s: index files not created at close: %s", self.log_path, e)
        self._file.close()
        self.offset_index.close()
        self.time_index.close()

    def delete(self) -> None:
        self.close()
        self.log_path.unlink(missing_ok=True)
        self.offset_index.delete()
        self.time_index.delete()
        self.txn_index.delete()

    @property
    def fd(self) -> int:
        """The ``.log`` descriptor, opened if idle (use it at once, see ``handles.py``); -1 once closed."""
        return -1 if self._file.closed else self._file.fd

    @property
    def closed(self) -> bool:
        return self._file.closed

    @property
    def file(self) -> LazyFile:
        """The ``.log`` file, to `pin` its descriptor for a later ``sendfile``."""
        return self._file

    @property
    def largest_timestamp(self) -> int:
        """Kafka's retention clock: max record timestamp, else file mtime."""
        if self.max_timestamp >= 0:
            return self.max_timestamp
        try:
            return int(os.stat(self.log_path).st_mtime * 1000)
        except FileNotFoundError:  # a fresh segment nothing was written to yet
            return self._created_ms

    def should_roll(
        self, incoming_bytes: int, last_offset: int, now_ms: int, segment_bytes: int, segment_ms: int
    ) -> bool:
        """Roll criteria; an empty segment is never rolled (it would stay empty)."""
        if self.size == 0:
            return False
        if self.size + incoming_bytes > segment_bytes:
            return True
        if self.rolling_base_ms is not None and now_ms - self.rolling_base_ms > segment_ms:
            return True
        # Relative offsets in the index are int32.
        return last_offset - self.base_offset > _INT32_MAX

    # ------------------------------------------------------------------ writes

    def append(self, data: bytes | bytearray | memoryview, batches: list[BatchPlacement], now_ms: int) -> None:
        """Write already-offset-assigned batches with one write and index them (`append_parts`)."""
        self.append_parts([data], len(data), batches, now_ms)

    def append_parts(self, parts: Sequence[bytes | bytearray | memoryview], size: int, batches: list[BatchPlacement],
                     now_ms: int) -> None:
        """Write the batches whose bytes are ``parts`` (``size`` in all; a leader's append passes
        each batch as its stamped prefix and a view of the rest as received, so no payload is
        copied in Python) with one ``writev``, then index them.

        On any OSError the file is cut back to its previous size and nothing else has changed
        (the bookkeeping below runs only after the write), so a failed append is invisible.
        """
        pos0 = self.size
        file = self._file
        try:
            file.dirty = True
            fd = file.fd
            written = _writev(fd, parts) if len(parts) <= _IOV_MAX else 0
            if written < size:
                _write_rest(fd, parts, size, written)
        except OSError as e:
            try:
                if file.is_open:  # else the file could not even be opened: nothing was written
                    os.ftruncate(file.fd, pos0)
            except OSError:
                logger.exception("could not roll back failed append to %s", self.log_path)
            raise KafkaStorageError(e.errno, f"append to {self.log_path} failed: {e.strerror}") from e
        self.size = pos0 + size
        self.verified.add(pos0, self.size)  # checked on produce / replica fetch
        recent_base, recent_last, recent_pos = self._recent_base, self._recent_last, self._recent_pos
        for rel, base, last, max_ts, batch_size in batches:
            self._index_batch(pos0 + rel, base, last, max_ts, batch_size)
            recent_base.append(base)
            recent_last.append(last)
            recent_pos.append(pos0 + rel)
        if len(recent_base) > _RECENT_MAX:
            del recent_base[:-_RECENT_KEEP], recent_last[:-_RECENT_KEEP], recent_pos[:-_RECENT_KEEP]
        if self.rolling_base_ms is None:
            self.rolling_base_ms = now_ms

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

    def _forget_recent(self) -> None:
        self._recent_base.clear()
        self._recent_last.clear()
        self._recent_pos.clear()

    def _index_batch(self, pos: int, base: int, last: int, max_ts: int, size: int) -> None:
        if max_ts > self.max_timestamp:
            self.max_timestamp, self.offset_of_max_timestamp = max_ts, base
        if self._bytes_since_index > self._index_interval:
            self.offset_index.append(base, pos)
            if self.max_timestamp >= 0:
                self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
            self._bytes_since_index = 0
        self._bytes_since_index += size
        self.next_offset = last + 1

    # ------------------------------------------------------------------ reads

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

    def note_corrupt(self, bad: CorruptBatch) -> bool:
        """Remember a bad batch; logs it and returns True the first time it is seen."""
        if bad.position in self.corrupt:
            return False
        self.corrupt[bad.position] = bad
        logger.error("%s", bad)
        return True

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

    def headers_at(self, start: int) -> Iterator[tuple[int, BatchHeader]]:
        """Walk batch headers from file position ``start`` reading in chunks; stops at junk."""
        end = self.size
        pos = start
        buf = b""
        buf_start = 0
        while end - pos >= HEADER_SIZE:
            rel = pos - buf_start
            if rel + HEADER_SIZE > len(buf):
                buf = os.pread(self._file.fd, min(_HEADER_SCAN_CHUNK, end - pos), pos)
                buf_start, rel = pos, 0
                if len(buf) < HEADER_SIZE:
                    return
            h = parse_batch_header(buf, rel)
            if h.batch_length < _MIN_BATCH_LENGTH or pos + h.size > end:
                return
            yield pos, h
            pos += h.size

    def _iter_verified(self) -> Iterator[tuple[int, BatchHeader, str | None]]:
        """Walk whole batches from the start, checking framing, CRC and offsets
        (``batch_check.recovery_scan``: which bad batches it goes past, and why)."""
        self.size = os.fstat(self._file.fd).st_size
        return recovery_scan(self._file.fd, self.size, self.base_offset, strict=self.contiguous, chunk=_RECOVERY_CHUNK)
