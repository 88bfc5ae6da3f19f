"""What a Raft node persists, as an interface, and an in-memory implementation that models a crash.

The node needs three durable things (KIP-595 / KIP-630):

* the **quorum state** – current epoch, the candidate voted for in it, the leader known in it –
  written atomically and durably before the node acts on it (votes, candidacies);
* the **log** – entries ``(offset, epoch, payload, control)`` appended in offset order, truncated
  from the end on divergence; appends and truncations become durable at ``flush()``, or when the
  job ``begin_flush()`` returns has run (the driver runs it on a thread: the fsync leaves the loop);
* **snapshots** – opaque bytes covering every entry below ``SnapshotId.end_offset``, written
  atomically; writing one moves the log start to its end offset (the prefix is deleted).

:class:`FileStorage` (``file_storage.py``) persists the same interface in a directory.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from suoi.raft.messages import Entry, SnapshotId

__all__ = ["FlushRun", "MemoryStorage", "QuorumStateData", "RaftStorage"]

FlushRun = Callable[[], None]
"""The blocking half of a flush (the fsyncs): safe to run on another thread while the node keeps
appending and truncating, since it touches only file descriptors it owns."""


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
        """Make every append and truncation so far durable (also those of a begun flush whose
        job has not run yet)."""
        ...

    def begin_flush(self) -> FlushRun | None:
        """Start a flush of every append and truncation so far: the quick part (buffered bytes
        written to the files) now, the fsyncs in the returned job (None: nothing to wait for).
        Once the job has returned, all of it is durable; later changes need another flush."""
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
    (``durable``). A flush takes a copy of ``entries`` when it begins and makes it the durable
    image when its job runs (the simulation runs it after a delay, as a disk would complete an
    fsync; a crash before that loses it). :meth:`crash` throws the volatile image away, as a
    power cut would; with an ``rng`` a random prefix of unflushed *appends* may survive too (a
    page written back early), which the protocol must tolerate. Quorum state and snapshots are
    durable on write.
    """

    SNAPSHOTS_KEPT = 2

    def __init__(self) -> None:
        self.quorum_state = QuorumStateData()
        self.start_offset = 0
        self.entries: list[Entry] = []
        self.durable: list[Entry] = []
        self.snapshots: dict[SnapshotId, bytes] = {}
        self._flush_seq = 0  # flushes begun
        self._durable_seq = 0  # the latest flush whose job ran (an older job's image is stale)
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
        self.entries.extend(entries)

    def truncate(self, end_offset: int) -> None:
        if end_offset >= self._end():
            return
        if end_offset < self.start_offset:
            raise ValueError(f"truncate to {end_offset} below log start {self.start_offset}")
        del self.entries[end_offset - self.start_offset :]

    def flush(self) -> None:
        run = self.begin_flush()
        if run is not None:
            run()

    def begin_flush(self) -> FlushRun | None:
        self._flush_seq += 1
        # the whole image, even if nothing changed since the last flush began: that one's job may
        # not have run yet (or ever, if a later job overtakes it)
        seq, start, image = self._flush_seq, self.start_offset, list(self.entries)

        def run() -> None:
            if seq <= self._durable_seq:
                return  # a later flush already completed (a synchronous one overtook this job)
            self._durable_seq = seq
            self.flushes += 1
            self.durable = image[max(0, self.start_offset - start) :]

        return run

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

    def read_snapshot(self, snapshot_id: SnapshotId) -> bytes | None:
        return self.snapshots.get(snapshot_id)

    # --- crash model -------------------------------------------------------------------------
    def durable_end(self) -> int:
        """The log end a crash now would leave at least (what every completed flush made durable)."""
        return self.start_offset + len(self.durable)

    def crash(self, rng: random.Random | None = None) -> None:
        """Lose whatever was not flushed (maybe keeping a prefix of unflushed appends)."""
        n = len(self.durable)
        if rng is not None and len(self.entries) > n and self.entries[:n] == self.durable:
            self.durable = self.entries[: rng.randint(n, len(self.entries))]
        self.entries = list(self.durable)
