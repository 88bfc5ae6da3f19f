"""The aborted-transaction index of one segment (``<base>.txnindex``), Kafka's format.

An entry is written when an ABORT marker ends a transaction that wrote data to the
partition; it goes to the index of the segment holding the marker. Entries are 34
bytes, big-endian, in marker order::

    version int16 (= 0) | producerId int64 | firstOffset int64 | lastOffset int64 |
    lastStableOffset int64

``lastOffset`` is the marker's offset; ``lastStableOffset`` the partition's LSO once the
marker was written (the first offset of the oldest other ongoing transaction, else
the marker's offset + 1). Fetch uses it to stop scanning later segments: an entry whose
LSO is past the fetched range proves that no later-written abort can overlap it.

The file is created on the first abort only (most segments never have one), written
with a short-lived descriptor (aborts are rare, so no descriptor is held per segment),
and mirrored in memory. A torn trailing entry is dropped on load. The index of the
active segment is rebuilt by replaying the log on recovery (``truncate_from`` then
re-append), so the file itself is a cache of what the markers in the log say.
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ENTRY_SIZE", "AbortedTxn", "TransactionIndex"]

logger = logging.getLogger("suoi.log")

_ENTRY = struct.Struct(">hqqqq")
ENTRY_SIZE = _ENTRY.size  # 34
_VERSION = 0


@dataclass(frozen=True, slots=True)
class AbortedTxn:
    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int

    def encode(self) -> bytes:
        return _ENTRY.pack(_VERSION, self.producer_id, self.first_offset, self.last_offset, self.last_stable_offset)


class TransactionIndex:
    """In-memory list of a segment's aborted transactions, persisted append-only."""

    def __init__(self, path: str | Path, *, load: bool = True) -> None:
        self._path = os.fspath(path)  # a string: made per partition at start-up (see LogSegment)
        self.entries: list[AbortedTxn] = []
        self._dirty = False
        if load:  # a fresh segment has no file to read
            self.load()

    @property
    def path(self) -> Path:
        return Path(self._path)

    def load(self) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            self.entries = []
            return
        whole = len(data) - len(data) % ENTRY_SIZE
        entries = []
        for version, pid, first, last, lso in _ENTRY.iter_unpack(data[:whole]):
            if version != _VERSION:
                logger.warning("%s: unknown entry version %d, ignoring the rest", self.path, version)
                break
            entries.append(AbortedTxn(pid, first, last, lso))
        self.entries = entries
        if len(entries) * ENTRY_SIZE != len(data):
            logger.warning("%s: dropping a torn or unreadable tail", self.path)
            self._cut(len(entries))

    def append(self, txn: AbortedTxn) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            data = txn.encode()
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
        finally:
            os.close(fd)
        self.entries.append(txn)
        self._dirty = True

    def extend(self, txns: list[AbortedTxn]) -> None:
        for txn in txns:
            self.append(txn)

    def truncate_from(self, offset: int) -> None:
        """Drop entries whose marker is at or after ``offset`` (before a replay from there). The
        entries are in marker order, so those dropped are the file's tail."""
        kept = next((i for i, t in enumerate(self.entries) if t.last_offset >= offset), len(self.entries))
        if kept != len(self.entries):
            del self.entries[kept:]
            self._cut(kept)

    def collect(self, fetch_offset: int, upper_bound: int) -> tuple[list[AbortedTxn], bool]:
        """Entries overlapping ``[fetch_offset, upper_bound)`` and whether the search is
        complete (an entry's LSO reached ``upper_bound``: later segments cannot add any)."""
        out = []
        for t in self.entries:
            if t.last_offset >= fetch_offset and t.first_offset < upper_bound:
                out.append(t)
            if t.last_stable_offset >= upper_bound:
                return out, True
        return out, False

    @property
    def dirty(self) -> bool:
        """Written since its last `flush`."""
        return self._dirty

    def flush(self) -> None:
        if not self._dirty:
            return
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            self._dirty = False
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self._dirty = False

    def reset(self) -> None:
        self.entries = []
        self.path.unlink(missing_ok=True)

    def delete(self) -> None:
        """Remove the file; the in-memory entries stay readable (the log cleaner moves
        them into the segment replacing this one after the old files are gone)."""
        self.path.unlink(missing_ok=True)

    def _cut(self, count: int) -> None:
        """Keep the file's first ``count`` entries: truncated in place, as Kafka's
        `TransactionIndex.truncateTo`, not rewritten through a temporary file - the entries kept
        stay where an earlier flush made them durable (a rewrite renamed unsynced could come
        back empty after an OS crash). The cut itself is synced by the next `flush`; one an OS
        crash loses is made again by the replay of the next open (`truncate_from`)."""
        if count == 0:
            self.path.unlink(missing_ok=True)
            return
        try:
            os.truncate(self.path, count * ENTRY_SIZE)
        except FileNotFoundError:  # deleted (`delete`): the entries live on in memory only
            return
        self._dirty = True
