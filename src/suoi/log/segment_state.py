"""What a `LogSegment` is made of: its files, its in-memory state, and the bookkeeping that
both the append path and recovery run for every batch (`_index_batch`: the sparse offset and
time indexes, max timestamp, next offset), plus the header walk every scan uses.

Split from ``segment.py`` (which was over the size limit) at its state: this is the base of a
single-inheritance chain `SegmentState` -> `SegmentLocate` (``segment_locate.py``, finding a
batch for a read) -> `SegmentRecovery` (``segment_recovery.py``, rebuilding and cutting) ->
`LogSegment` (``segment.py``, writing). Each layer sees the attributes of those below it (so
mypy checks them without protocol stubs) and none imports the one above (no import cycle).
A method found through the chain costs what a method of one class does (CPython caches the
lookup per type), so neither the append nor the read path pays for the split.

A segment only ever holds whole v2 batches, stored byte-for-byte as the producer sent them
(after offset assignment). All reads go through one file descriptor with ``os.pread``, so
concurrent readers never share a file position. Descriptors are `LazyFile`s (``handles.py``):
opened on use and closed when idle, so a node holds more partitions than ``ulimit -n`` allows.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from suoi.log.batch_check import _MIN_BATCH_LENGTH, CorruptBatch, VerifiedRanges
from suoi.log.handles import LazyFile
from suoi.log.index import OffsetIndex, TimeIndex
from suoi.log.txn_index import TransactionIndex
from suoi.protocol.records import HEADER_SIZE, BatchHeader, parse_batch_header

__all__ = ["SegmentState", "segment_file_name"]

logger = logging.getLogger("suoi.log")

_HEADER_SCAN_CHUNK = 16 * 1024


def segment_file_name(base_offset: int, suffix: str) -> str:
    """Kafka's naming: the base offset zero-padded to 20 digits."""
    return f"{base_offset:020d}{suffix}"


class SegmentState:
    """Files and in-memory state of a single segment (`LogSegment` is the class to use)."""

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
        #: How many times the file was cut or re-scanned (`truncate_to`, `recover`): a scrubber
        #: walking this segment across steps starts over rather than resume at a position that
        #: may now fall inside another batch.
        self.truncations = 0
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

    def seal(self) -> None:
        """Called on roll: make the time index end with the segment's max timestamp,
        so retention and ``load()`` never need to scan a sealed segment."""
        if self.max_timestamp >= 0:
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
        self.offset_index.materialize()  # a sealed segment has both index files (see `load`)
        self.time_index.materialize()

    def seal_memory(self) -> None:
        """The segment takes no more batches (rolled; not the last at start-up; a cleaned one
        installed): what only a segment being appended to needs leaves memory - the last batches
        appended (`_recent_base`: up to 256 positions, for a consumer at the log end) - and the
        index entries go to their files, from which they may be read back (``index.SEALED``, a
        bounded LRU). Event-loop thread only: not part of `seal`, which the cleaner's worker
        thread also calls on its output segment."""
        self._forget_recent()
        self.offset_index.seal()
        self.time_index.seal()

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

    def note_corrupt(self, bad: CorruptBatch) -> bool:
        """Remember a bad batch; logs it and returns True the first time it is seen."""
        if bad.position in self.corrupt:
            return False
        self.corrupt[bad.position] = bad
        logger.error("%s", bad)
        return True

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
