"""Sparse offset and time indexes of a log segment.

Both are append-only files of fixed-size big-endian entries, mirrored in
memory as ``array`` columns so lookups are a C-level ``bisect``.  We skip
Kafka's mmap/preallocation: new entries are kept in memory and written with one
``os.write`` when the segment is flushed or closed (Kafka's mmap'd index reaches the
disk no sooner); until then the file holds a prefix of the entries, which is still a
valid, sparser index.  Recovery rebuilds the index of every segment above the
recovery point (the only ones whose entries may not all be written), and an index
that does not look right is simply rebuilt from the log, the source of truth.

* ``.index``: (relative offset int32, position int32) - one entry per
  ``index.interval.bytes`` of log, pointing at the start of a batch.
* ``.timeindex``: (timestamp int64, relative offset int32) - the segment's
  max timestamp so far and the base offset of the batch that first reached
  it; timestamps strictly increase.
"""

from __future__ import annotations

import logging
import os
import struct
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from pathlib import Path

from suoi.log.handles import LazyFile

__all__ = ["OffsetIndex", "TimeIndex"]

logger = logging.getLogger("suoi.log")


class _FixedIndex:
    """Two parallel sorted columns persisted as fixed-size entries."""

    _entry: struct.Struct
    _key_code: str
    _value_code: str

    def __init__(self, path: str | Path, base_offset: int, *, create: bool = True) -> None:
        """``create=False`` (a fresh segment's index): the file is made by its first write."""
        self._path = os.fspath(path)  # a string: made per partition at start-up (see LogSegment)
        self.base_offset = base_offset
        self._keys: array[int] = array(self._key_code)
        self._values: array[int] = array(self._value_code)
        #: Entries in memory not yet in the file (the last ones): written by `write_pending`.
        self._pending = bytearray()
        #: Opened on use, closed when idle (``handles.py``); created now unless ``create=False``.
        self._file = LazyFile(self._path, os.O_RDWR | os.O_CREAT | os.O_APPEND)
        if create:
            self._file.fd  # noqa: B018 - creates the file

    @property
    def path(self) -> Path:
        return Path(self._path)

    @property
    def file(self) -> LazyFile:
        """The index file (for `LogSegment.sync_jobs`)."""
        return self._file

    def __len__(self) -> int:
        return len(self._keys)

    def load(self) -> bool:
        """Read the file into memory; return False (and empty) if it is malformed.

        A size that is not a multiple of the entry size means a torn write.
        Ordering violations mean the file cannot be trusted for bisecting.
        """
        size = os.fstat(self._file.fd).st_size
        self._pending.clear()
        self._keys = array(self._key_code)
        self._values = array(self._value_code)
        if size % self._entry.size:
            return False
        data = os.pread(self._file.fd, size, 0)
        for key, value in self._entry.iter_unpack(data):
            self._keys.append(key)
            self._values.append(value)
        if not self._ordered():
            self.reset()
            return False
        return True

    def _ordered(self) -> bool:
        raise NotImplementedError

    def _add(self, key: int, value: int) -> None:
        self._pending += self._entry.pack(key, value)  # a syscall per entry was ~1/6 of an append
        self._keys.append(key)
        self._values.append(value)

    def write_pending(self) -> None:
        """Write the entries kept in memory to the file (before an fsync or a close)."""
        pending = self._pending
        if pending:
            self._file.dirty = True
            view = memoryview(pending)
            written = 0
            while written < len(view):
                written += os.write(self._file.fd, view[written:])
            del view
            pending.clear()

    def reset(self) -> None:
        """Drop every entry (before a rebuild from the log)."""
        self._pending.clear()
        if os.fstat(self._file.fd).st_size:  # a new segment's empty file needs no write (nor fsync)
            self._file.dirty = True
            os.ftruncate(self._file.fd, 0)
        self._keys = array(self._key_code)
        self._values = array(self._value_code)

    def truncate_entries(self, count: int) -> None:
        """Keep only the first ``count`` entries (undo a failed append)."""
        if count < len(self._keys):
            in_file = len(self._keys) - len(self._pending) // self._entry.size
            if count < in_file:
                self._pending.clear()
                self._file.dirty = True
                os.ftruncate(self._file.fd, count * self._entry.size)
            else:
                del self._pending[(count - in_file) * self._entry.size:]
            del self._keys[count:]
            del self._values[count:]

    def truncate_from_value(self, value: int) -> None:
        """Drop the entries whose value is >= ``value`` (values are sorted: positions in
        the offset index, relative offsets in the time index); used by log truncation."""
        self.truncate_entries(bisect_left(self._values, value))

    def flush(self) -> None:
        self.write_pending()
        self._file.fsync()

    def materialize(self) -> None:
        """Make sure the file exists (an index created with ``create=False`` and never written)."""
        if not self._file.closed:
            self._file.fd  # noqa: B018 - opening with O_CREAT creates it

    def close(self) -> None:
        if self._pending and not self._file.closed:
            try:
                self.write_pending()
            except OSError as e:  # the file keeps a prefix of the entries: still a valid index
                logger.warning("%s: index entries not written at close: %s", self._path, e)
        self._file.close()

    def delete(self) -> None:
        self._pending.clear()
        self.close()
        self.path.unlink(missing_ok=True)


class OffsetIndex(_FixedIndex):
    """Maps an offset to the file position of a batch at or before it."""

    _entry = struct.Struct(">ii")
    _key_code = "i"
    _value_code = "i"

    def _ordered(self) -> bool:
        k, v = self._keys, self._values
        if k and (k[0] < 0 or v[0] < 0):
            return False
        return all(k[i] < k[i + 1] and v[i] < v[i + 1] for i in range(len(k) - 1))

    def append(self, offset: int, position: int) -> None:
        self._add(offset - self.base_offset, position)

    def lookup(self, offset: int) -> tuple[int, int]:
        """Largest indexed ``(offset, position)`` with offset <= target, else (base, 0)."""
        i = bisect_right(self._keys, offset - self.base_offset) - 1
        if i < 0:
            return self.base_offset, 0
        return self.base_offset + self._keys[i], self._values[i]

    def last_entry(self) -> tuple[int, int] | None:
        if not self._keys:
            return None
        return self.base_offset + self._keys[-1], self._values[-1]

    def last_within(self, position: int, offset: int) -> tuple[int, int] | None:
        """The last ``(offset, position)`` entry at or before both ``position`` and ``offset``
        (a read that may serve up to there jumps over the batches before it), else None."""
        i = min(bisect_right(self._values, position), bisect_right(self._keys, offset - self.base_offset)) - 1
        return None if i < 0 else (self.base_offset + self._keys[i], self._values[i])

    def entries_at_or_before(self, offset: int) -> Iterator[tuple[int, int]]:
        """Indexed ``(offset, position)`` pairs with offset <= target, newest first (a reader
        falls back to an earlier entry when one does not point at a batch of its offset)."""
        for i in range(bisect_right(self._keys, offset - self.base_offset) - 1, -1, -1):
            yield self.base_offset + self._keys[i], self._values[i]


class TimeIndex(_FixedIndex):
    """Maps a timestamp to the offset from which a forward scan may start."""

    _entry = struct.Struct(">qi")
    _key_code = "q"
    _value_code = "i"

    def _ordered(self) -> bool:
        k, v = self._keys, self._values
        if v and v[0] < 0:
            return False
        return all(k[i] < k[i + 1] and v[i] <= v[i + 1] for i in range(len(k) - 1))

    def maybe_append(self, timestamp: int, offset: int) -> bool:
        """Append only if ``timestamp`` beats the last entry (keeps keys sorted)."""
        if self._keys and timestamp <= self._keys[-1]:
            return False
        self._add(timestamp, offset - self.base_offset)
        return True

    def lookup(self, timestamp: int) -> int:
        """Offset of the last entry with timestamp <= target, else the base offset.

        Every batch before that offset has a max timestamp below the entry's,
        so a forward scan for the first batch reaching ``timestamp`` may start
        there without missing anything.
        """
        i = bisect_right(self._keys, timestamp) - 1
        if i < 0:
            return self.base_offset
        return self.base_offset + self._values[i]

    def last_entry(self) -> tuple[int, int] | None:
        """``(timestamp, offset)`` of the newest entry."""
        if not self._keys:
            return None
        return self._keys[-1], self.base_offset + self._values[-1]
