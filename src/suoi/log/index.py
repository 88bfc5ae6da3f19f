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

A sealed segment's index (`seal`: rolled, or every segment but the last one at start-up) is
complete in its file, so its columns need not stay in memory: sealing parks it (`park`:
columns dropped), a use reads them back from the file, and `SEALED` keeps the columns of the
sealed indexes read most recently, up to `SealedIndexes.max_entries`, parking the least
recently used beyond that. Kafka maps its
index files (page cache, not heap); kept all in memory they grew with the retained bytes
(~20 bytes per indexed batch: up to 5 MiB per GiB retained at ``index.interval.bytes`` = 4 KiB,
twice that while unflushed segments also kept them pending, issue 19).
"""

from __future__ import annotations

import logging
import operator
import os
import struct
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from suoi.log.handles import LazyFile

__all__ = ["SEALED", "OffsetIndex", "SealedIndexes", "TimeIndex", "columns"]

logger = logging.getLogger("suoi.log")

#: Entries of sealed indexes kept in memory by default (offset and time entries: 8-12 bytes
#: each in the columns, so ~10 MiB; at 128 MB segments of 32 KB batches, ~250 segments' worth).
SEALED_MAX_ENTRIES = 1 << 20


def columns(data: bytes, key_code: str, value_code: str) -> tuple[array[int], array[int]]:
    """Split fixed-size big-endian (key, value) entries into two native arrays with C-level
    strided copies (a parked index is read back on the event loop: a Python loop over
    `iter_unpack` took ~0.3 us per entry, 80 ms for a 1 GiB segment indexed every 4 KiB)."""
    keys, values = array(key_code), array(value_code)
    ks, vs = keys.itemsize, values.itemsize
    entry = ks + vs
    n = len(data) // entry
    kbuf, vbuf = bytearray(n * ks), bytearray(n * vs)
    for k in range(ks):
        kbuf[k::ks] = data[k:n * entry:entry]
    for k in range(vs):
        vbuf[k::vs] = data[ks + k:n * entry:entry]
    keys.frombytes(kbuf)
    values.frombytes(vbuf)
    if sys.byteorder == "little":
        keys.byteswap()
        values.byteswap()
    return keys, values


class SealedIndexes:
    """The sealed indexes whose entries are in memory, least recently used first: at most
    ``max_entries`` entries in all (the most recently used index always stays loaded).

    Event-loop thread only, as the log is (the cleaner's worker thread seals its output
    segment's files but never registers them here: see `LogSegment.seal_memory`)."""

    def __init__(self, max_entries: int = SEALED_MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._loaded: OrderedDict[_FixedIndex, int] = OrderedDict()
        #: Entries of the indexes in `_loaded`.
        self.entries = 0

    def __len__(self) -> int:
        return len(self._loaded)

    def __contains__(self, index: object) -> bool:
        return index in self._loaded

    def note(self, index: _FixedIndex, entries: int) -> None:
        """``index`` (sealed) holds ``entries`` in memory now: the most recently used; park the
        least recently used others while over the bound."""
        self.forget(index)
        self._loaded[index] = entries
        self.entries += entries
        while self.entries > self.max_entries and len(self._loaded) > 1:
            victim, n = self._loaded.popitem(last=False)
            self.entries -= n
            victim.park()

    def touch(self, index: _FixedIndex) -> None:
        self._loaded.move_to_end(index)

    def forget(self, index: _FixedIndex) -> None:
        n = self._loaded.pop(index, None)
        if n is not None:
            self.entries -= n


SEALED = SealedIndexes()


class _FixedIndex:
    """Two parallel sorted columns persisted as fixed-size entries."""

    _entry: struct.Struct
    _key_code: str
    _value_code: str

    def __init__(self, path: str | Path, base_offset: int, *, create: bool = True,
                 sealed: SealedIndexes | None = None) -> None:
        """``create=False`` (a fresh segment's index): the file is made by its first write.
        ``sealed``: the LRU this index joins once sealed (`SEALED` unless a test gives one)."""
        self._path = os.fspath(path)  # a string: made per partition at start-up (see LogSegment)
        self.base_offset = base_offset
        self._keys: array[int] = array(self._key_code)
        self._values: array[int] = array(self._value_code)
        #: Entries in memory not yet in the file (the last ones): written by `write_pending`.
        self._pending = bytearray()
        #: Complete in the file, no entry will be added (`seal`): the columns may be dropped.
        self._sealed = False
        #: The columns were dropped (`park`); `_unpark` reads them back from the file.
        self._parked = False
        self._lru = sealed or SEALED
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
        if self._sealed:
            self._use()
        return len(self._keys)

    @property
    def parked(self) -> bool:
        """The entries are in the file only (read back on the next use)."""
        return self._parked

    def seal(self) -> None:
        """No entry will be added (the segment was rolled): write the pending entries and drop
        the columns. Consumers at the log end never read a sealed index (a lagging one mostly
        follows its read hints); one that is read comes back into memory under `SEALED`'s
        bound. A failed write keeps the index in memory, as before (its entries are written
        again at the next flush or close)."""
        if self._sealed:
            return
        try:
            self.write_pending()
        except OSError as e:
            logger.warning("%s: index entries not written at seal, kept in memory: %s", self._path, e)
            return
        self._sealed = True
        self.park()  # kept in memory again only if read (`_unpark`), as an mmap'd file is paged in

    def _clear_columns(self) -> None:
        self._keys = array(self._key_code)
        self._values = array(self._value_code)

    def park(self) -> None:
        """Drop the columns of a sealed index (called by `SealedIndexes`)."""
        if self._sealed and not self._pending:
            self._clear_columns()
            self._parked = True

    def _use(self) -> None:
        """Before reading a sealed index: read it back if parked, else mark it recently used."""
        if self._parked:
            self._unpark()
        else:
            self._lru.touch(self)

    def _unpark(self) -> None:
        """Read the columns back from the file. A file that no longer reads back whole and in
        order (changed under us) leaves the index empty and unsealed: readers then scan the
        segment from its start, slower but right; the next recovery rebuilds it."""
        self._parked = False
        if self._read_file():
            self._lru.note(self, len(self._keys))
            return
        logger.error("%s: index file does not read back: segment reads scan from its start", self._path)
        self._clear_columns()
        self._sealed = False

    def _unseal(self) -> None:
        """Before changing a sealed index (a truncation, a rebuild): back in memory, for good."""
        if self._parked:
            self._unpark()
        self._sealed = False
        self._lru.forget(self)

    def _read_file(self) -> bool:
        """The columns from the file; False if it is torn (a size that is not a multiple of the
        entry size) or out of order (it cannot be trusted for bisecting)."""
        size = os.fstat(self._file.fd).st_size
        self._clear_columns()
        if size % self._entry.size:
            return False
        self._keys, self._values = columns(os.pread(self._file.fd, size, 0), self._key_code, self._value_code)
        return self._ordered()

    def load(self) -> bool:
        """Read the file into memory; return False (and empty) if it is malformed (`_read_file`)."""
        self._pending.clear()
        self._sealed = self._parked = False
        self._lru.forget(self)
        if self._read_file():
            return True
        if self._keys:  # whole but out of order (a torn file is left as it is to the rebuild)
            self.reset()
        return False

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
        self._sealed = self._parked = False
        self._lru.forget(self)
        self._pending.clear()
        if os.fstat(self._file.fd).st_size:  # a new segment's empty file needs no write (nor fsync)
            self._file.dirty = True
            os.ftruncate(self._file.fd, 0)
        self._clear_columns()

    def truncate_entries(self, count: int) -> None:
        """Keep only the first ``count`` entries (undo a failed append)."""
        if self._sealed:
            self._unseal()
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
        if self._sealed:
            self._unseal()
        self.truncate_entries(bisect_left(self._values, value))

    def flush(self) -> None:
        self.write_pending()
        self._file.fsync()

    def materialize(self) -> None:
        """Make sure the file exists (an index created with ``create=False`` and never written)."""
        if not self._file.closed:
            self._file.fd  # noqa: B018 - opening with O_CREAT creates it

    def close(self) -> None:
        self._lru.forget(self)  # a closed or deleted segment's index leaves nothing behind
        if self._pending and not self._file.closed:
            try:
                self.write_pending()
            except OSError as e:  # the file keeps a prefix of the entries: still a valid index
                logger.warning("%s: index entries not written at close: %s", self._path, e)
        self._file.close()

    def discard(self) -> None:
        """Close without writing the pending entries (the file is about to be removed)."""
        self._pending.clear()
        self.close()

    def delete(self) -> None:
        self.discard()
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
        return all(map(operator.lt, k, islice(k, 1, None))) and all(map(operator.lt, v, islice(v, 1, None)))

    def append(self, offset: int, position: int) -> None:
        if self._sealed:
            self._unseal()
        self._add(offset - self.base_offset, position)

    def lookup(self, offset: int) -> tuple[int, int]:
        """Largest indexed ``(offset, position)`` with offset <= target, else (base, 0)."""
        if self._sealed:
            self._use()
        i = bisect_right(self._keys, offset - self.base_offset) - 1
        if i < 0:
            return self.base_offset, 0
        return self.base_offset + self._keys[i], self._values[i]

    def last_entry(self) -> tuple[int, int] | None:
        if self._sealed:
            self._use()
        if not self._keys:
            return None
        return self.base_offset + self._keys[-1], self._values[-1]

    def last_within(self, position: int, offset: int) -> tuple[int, int] | None:
        """The last ``(offset, position)`` entry at or before both ``position`` and ``offset``
        (a read that may serve up to there jumps over the batches before it), else None."""
        if self._sealed:
            self._use()
        i = min(bisect_right(self._values, position), bisect_right(self._keys, offset - self.base_offset)) - 1
        return None if i < 0 else (self.base_offset + self._keys[i], self._values[i])

    def entries_at_or_before(self, offset: int) -> Iterator[tuple[int, int]]:
        """Indexed ``(offset, position)`` pairs with offset <= target, newest first (a reader
        falls back to an earlier entry when one does not point at a batch of its offset)."""
        if self._sealed:
            self._use()
        keys, values = self._keys, self._values  # the columns of now, even if parked meanwhile
        for i in range(bisect_right(keys, offset - self.base_offset) - 1, -1, -1):
            yield self.base_offset + keys[i], values[i]


class TimeIndex(_FixedIndex):
    """Maps a timestamp to the offset from which a forward scan may start."""

    _entry = struct.Struct(">qi")
    _key_code = "q"
    _value_code = "i"

    def _ordered(self) -> bool:
        k, v = self._keys, self._values
        if v and v[0] < 0:
            return False
        return all(map(operator.lt, k, islice(k, 1, None))) and all(map(operator.le, v, islice(v, 1, None)))

    def maybe_append(self, timestamp: int, offset: int) -> bool:
        """Append only if ``timestamp`` beats the last entry (keeps keys sorted)."""
        if self._sealed:
            self._use()
        if self._keys and timestamp <= self._keys[-1]:
            return False
        if self._sealed:
            self._unseal()
        self._add(timestamp, offset - self.base_offset)
        return True

    def lookup(self, timestamp: int) -> int:
        """Offset of the last entry with timestamp <= target, else the base offset.

        Every batch before that offset has a max timestamp below the entry's,
        so a forward scan for the first batch reaching ``timestamp`` may start
        there without missing anything.
        """
        if self._sealed:
            self._use()
        i = bisect_right(self._keys, timestamp) - 1
        if i < 0:
            return self.base_offset
        return self.base_offset + self._values[i]

    def last_entry(self) -> tuple[int, int] | None:
        """``(timestamp, offset)`` of the newest entry."""
        if self._sealed:
            self._use()
        if not self._keys:
            return None
        return self._keys[-1], self.base_offset + self._values[-1]
