"""What a Raft node persists, as an interface, and an in-memory implementation that models a crash.

The node needs three durable things (KIP-595 / KIP-630):

* the **quorum state** – current epoch, the candidate voted for in it, the leader known in it –
  written atomically and durably before the node acts on it (votes, candidacies);
* the **log** – entries ``(offset, epoch, payload, control)`` appended in offset order, truncated
  from the end on divergence; appends and truncations become durable at ``flush()``;
* **snapshots** – opaque bytes covering every entry below ``SnapshotId.end_offset``, written
  atomically; writing one moves the log start to its end offset (the prefix is deleted).

:class:`FileStorage` (``file_storage.py``) persists the same interface in a directory.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from suoi.raft.messages import Entry, SnapshotId

__all__ = ["MemoryStorage", "QuorumStateData", "RaftStorage"]


@dataclass(frozen=True, slots=True)
class QuorumStateData:
    """The ``quorum-state`` record. ``voted_id``/``leader_id`` refer to ``epoch`` only."""

    epoch: int = 0
    voted_id: int | None = None
    leader_id: int | None = None


class RaftStorage(Protocol):
    def read_quorum_state(self) -> QuorumStateData:
        """The last written quorum state, or the initial one (epoch 0) if none was ever written."""
        ...

    def write_quorum_state(self, state: QuorumStateData) -> None:
        """Replace the quorum state atomically; durable when this returns."""
        ...

    def read_log(self) -> tuple[SnapshotId | None, list[Entry]]:
        """Recovery: the latest snapshot id and the contiguous entries after it that survived."""
        ...

    def append(self, entries: Sequence[Entry]) -> None:
        """Append entries whose first offset is the current end offset (not durable until flush)."""
        ...

    def truncate(self, end_offset: int) -> None:
        """Remove every entry at or above ``end_offset`` (not durable until flush)."""
        ...

    def flush(self) -> None:
        """Make every append and truncation so far durable."""
        ...

    def write_snapshot(self, snapshot_id: SnapshotId, data: bytes) -> None:
        """Store a snapshot atomically and durably; entries below its end offset are deleted."""
        ...

    def read_snapshot(self, snapshot_id: SnapshotId) -> bytes | None:
        """The bytes of a stored snapshot, or None if it is unknown (or was deleted)."""
        ...


class MemoryStorage:
    """In-memory :class:`RaftStorage` for tests and the simulation.

    It keeps two images: what the node sees (``entries``) and what a crash would leave
    (``durable``). :meth:`crash` throws the volatile image away, as a power cut would; with an
    ``rng`` a random prefix of unflushed *appends* may survive too (a page written back early),
    which the protocol must tolerate. Quorum state and snapshots are durable on write.
    """

    SNAPSHOTS_KEPT = 2

    def __init__(self) -> None:
        self.quorum_state = QuorumStateData()
        self.start_offset = 0
        self.entries: list[Entry] = []
        self.durable: list[Entry] = []
        self.snapshots: dict[SnapshotId, bytes] = {}
        self._dirty_from: int | None = None  # lowest offset changed since the last flush
        self._truncated = False  # a truncation happened since the last flush
        self.flushes = 0

    # --- quorum state ------------------------------------------------------------------------
    def read_quorum_state(self) -> QuorumStateData:
        return self.quorum_state

    def write_quorum_state(self, state: QuorumStateData) -> None:
        self.quorum_state = state

    # --- log ---------------------------------------------------------------------------------
    def read_log(self) -> tuple[SnapshotId | None, list[Entry]]:
        return self.latest_snapshot_id(), list(self.entries)

    def _end(self) -> int:
        return self.start_offset + len(self.entries)

    def append(self, entries: Sequence[Entry]) -> None:
        if not entries:
            return
        if entries[0].offset != self._end():
            raise ValueError(f"append at {entries[0].offset} but log ends at {self._end()}")
        self._mark_dirty(entries[0].offset)
        self.entries.extend(entries)

    def truncate(self, end_offset: int) -> None:
        if end_offset >= self._end():
            return
        if end_offset < self.start_offset:
            raise ValueError(f"truncate to {end_offset} below log start {self.start_offset}")
        self._mark_dirty(end_offset)
        self._truncated = True
        del self.entries[end_offset - self.start_offset :]

    def _mark_dirty(self, offset: int) -> None:
        if self._dirty_from is None or offset < self._dirty_from:
            self._dirty_from = offset

    def flush(self) -> None:
        self.flushes += 1
        if self._dirty_from is None:
            return
        i = max(0, self._dirty_from - self.start_offset)
        del self.durable[i:]
        self.durable.extend(self.entries[i:])
        self._dirty_from = None
        self._truncated = False

    # --- snapshots ---------------------------------------------------------------------------
    def latest_snapshot_id(self) -> SnapshotId | None:
        return max(self.snapshots) if self.snapshots else None

    def write_snapshot(self, snapshot_id: SnapshotId, data: bytes) -> None:
        self.snapshots[snapshot_id] = bytes(data)
        for old in sorted(self.snapshots)[: -self.SNAPSHOTS_KEPT]:
            del self.snapshots[old]
        if snapshot_id.end_offset > self.start_offset:
            drop = snapshot_id.end_offset - self.start_offset
            del self.entries[:drop]
            del self.durable[:drop]
            self.start_offset = snapshot_id.end_offset
            if self._dirty_from is not None and self._dirty_from < self.start_offset:
                self._dirty_from = self.start_offset

    def read_snapshot(self, snapshot_id: SnapshotId) -> bytes | None:
        return self.snapshots.get(snapshot_id)

    # --- crash model -------------------------------------------------------------------------
    def crash(self, rng: random.Random | None = None) -> None:
        """Lose whatever was not flushed (maybe keeping a prefix of unflushed appends)."""
        if rng is not None and not self._truncated and len(self.entries) > len(self.durable):
            keep = rng.randint(len(self.durable), len(self.entries))
            self.durable = self.entries[:keep]
        self.entries = list(self.durable)
        self._dirty_from = None
        self._truncated = False
