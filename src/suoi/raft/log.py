"""The node's view of its replicated log: entries after the latest snapshot, an epoch cache,
and the offset/epoch arithmetic Kafka's ``ReplicatedLog`` provides (end offset for an epoch,
fetch validation, truncation to a diverging epoch). Every change goes through the storage.

Durability: ``flushed_end`` is the end of the prefix known durable. A flush is two steps so the
fsync can leave the event loop: :meth:`begin_flush` (storage writes its buffers; the job's
target is the end offset now) and :meth:`flush_done` once the storage's job has run. Only then
does ``flushed_end`` move, and never past a truncation made while the job ran (the job made the
entries before that point durable, not the ones appended after it). One flush at a time.
:meth:`flush` does both steps at once (snapshot installs, tests)."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from suoi.raft.messages import Entry, EpochEndOffset, SnapshotId
from suoi.raft.storage import FlushRun, RaftStorage

__all__ = ["FlushJob", "RaftLog", "RaftSafetyError", "ValidOffset"]


class RaftSafetyError(AssertionError):
    """The node was asked to do something that would break Raft's safety (e.g. truncate
    committed entries). It means a bug or corrupted storage; the node must stop."""


@dataclass(frozen=True, slots=True, eq=False)
class FlushJob:
    """A flush begun by :meth:`RaftLog.begin_flush`: everything below ``end_offset`` (as the log
    was then) is durable once ``run`` has returned (``run`` None: it already is)."""

    end_offset: int
    run: FlushRun | None


@dataclass(frozen=True, slots=True)
class ValidOffset:
    """Result of validating a follower's (fetch offset, last fetched epoch) on the leader."""

    kind: str  # "valid" | "diverging" | "snapshot"
    diverging: EpochEndOffset | None = None
    snapshot_id: SnapshotId | None = None


class RaftLog:
    def __init__(self, storage: RaftStorage) -> None:
        self.storage = storage
        snapshot_id, entries = storage.read_log()
        self.snapshot_id: SnapshotId | None = snapshot_id
        self.start_offset = snapshot_id.end_offset if snapshot_id else 0
        self.entries: list[Entry] = [e for e in entries if e.offset >= self.start_offset]
        for i, e in enumerate(self.entries):
            if e.offset != self.start_offset + i:
                raise RaftSafetyError(f"log is not contiguous at {e.offset}")
        self._epoch_epochs: list[int] = []  # epoch of each run of entries
        self._epoch_starts: list[int] = []  # first offset of each run
        self._rebuild_epochs()
        self.flushed_end = self.end_offset
        self.dirty = False  # appended or truncated since the last flush began
        self.flush_inflight: FlushJob | None = None
        self._inflight_cap = 0  # lowest truncation point since the in-flight flush began

    # --- positions ---------------------------------------------------------------------------
    @property
    def end_offset(self) -> int:
        return self.start_offset + len(self.entries)

    @property
    def snapshot_epoch(self) -> int:
        return self.snapshot_id.epoch if self.snapshot_id else 0

    @property
    def last_epoch(self) -> int:
        return self.entries[-1].epoch if self.entries else self.snapshot_epoch

    def epoch_before(self, offset: int) -> int:
        """Epoch of the entry at ``offset - 1`` (the snapshot's epoch at the log start)."""
        if offset == self.start_offset:
            return self.snapshot_epoch
        return self.entries[offset - 1 - self.start_offset].epoch

    def entry(self, offset: int) -> Entry | None:
        if self.start_offset <= offset < self.end_offset:
            return self.entries[offset - self.start_offset]
        return None

    def read(self, start: int, end: int | None = None, max_entries: int | None = None) -> list[Entry]:
        lo = max(start, self.start_offset) - self.start_offset
        hi = (self.end_offset if end is None else min(end, self.end_offset)) - self.start_offset
        if max_entries is not None:
            hi = min(hi, lo + max_entries)
        return self.entries[lo:hi] if hi > lo else []

    def _rebuild_epochs(self) -> None:
        self._epoch_epochs.clear()
        self._epoch_starts.clear()
        for e in self.entries:
            self._note_epoch(e)

    def _note_epoch(self, e: Entry) -> None:
        if not self._epoch_epochs or self._epoch_epochs[-1] != e.epoch:
            if self._epoch_epochs and e.epoch < self._epoch_epochs[-1]:
                raise RaftSafetyError(f"epoch goes back from {self._epoch_epochs[-1]} to {e.epoch} at {e.offset}")
            self._epoch_epochs.append(e.epoch)
            self._epoch_starts.append(e.offset)

    # --- changes -----------------------------------------------------------------------------
    def append(self, entries: Sequence[Entry]) -> None:
        if not entries:
            return
        expected = self.end_offset
        last = self.last_epoch
        for e in entries:
            if e.offset != expected or e.epoch < last:
                raise RaftSafetyError(f"bad append of {e.offset}/{e.epoch} at end {self.end_offset}/{last}")
            expected += 1
            last = e.epoch
        self.storage.append(entries)
        self.dirty = True
        for e in entries:
            self.entries.append(e)
            self._note_epoch(e)

    def truncate_to(self, offset: int) -> None:
        if offset >= self.end_offset:
            return
        if offset < self.start_offset:
            raise RaftSafetyError(f"truncate to {offset} below log start {self.start_offset}")
        self.storage.truncate(offset)
        self.dirty = True
        self._inflight_cap = min(self._inflight_cap, offset)
        del self.entries[offset - self.start_offset :]
        i = bisect.bisect_left(self._epoch_starts, offset)
        del self._epoch_starts[i:]
        del self._epoch_epochs[i:]
        self.flushed_end = min(self.flushed_end, offset)

    def flush(self) -> None:
        """Flush synchronously (both steps on the caller's thread)."""
        self.storage.flush()
        self.dirty = False
        self.flushed_end = self.end_offset

    def begin_flush(self) -> FlushJob:
        """Start a flush of the log as it is now; :meth:`flush_done` when its job has run."""
        if self.flush_inflight is not None:
            raise RuntimeError("a flush of the metadata log is already in flight")
        job = FlushJob(self.end_offset, self.storage.begin_flush())
        self.dirty = False
        self.flush_inflight = job
        self._inflight_cap = job.end_offset
        return job

    def flush_done(self, job: FlushJob) -> bool:
        """The job of ``job`` has run: advance ``flushed_end``. False for a job that is not the
        one in flight (ignored)."""
        if job is not self.flush_inflight:
            return False
        self.flush_inflight = None
        durable = min(job.end_offset, self._inflight_cap, self.end_offset)
        self.flushed_end = max(self.flushed_end, durable)
        return True

    # --- epochs ------------------------------------------------------------------------------
    def end_offset_for_epoch(self, epoch: int) -> EpochEndOffset | None:
        """The largest epoch <= ``epoch`` in this log and the offset where it ends (the start of
        the next epoch, or the log end). None if that lies inside the snapshot."""
        i = bisect.bisect_right(self._epoch_epochs, epoch) - 1
        if i >= 0:
            found = self._epoch_epochs[i]
            end = self._epoch_starts[i + 1] if i + 1 < len(self._epoch_starts) else self.end_offset
            return EpochEndOffset(found, end)
        if self.snapshot_id is None:
            return EpochEndOffset(0, self.start_offset)  # nothing at or below `epoch`
        if self.snapshot_id.epoch <= epoch:
            return EpochEndOffset(self.snapshot_id.epoch, self.start_offset)
        return None

    def validate_offset_and_epoch(self, fetch_offset: int, last_fetched_epoch: int) -> ValidOffset:
        """Leader side of Kafka's divergence detection for a follower at ``fetch_offset``."""
        if fetch_offset < self.start_offset:
            return ValidOffset("snapshot", snapshot_id=self.snapshot_id)
        if fetch_offset == self.start_offset and last_fetched_epoch == self.snapshot_epoch:
            return ValidOffset("valid")
        found = self.end_offset_for_epoch(last_fetched_epoch)
        if found is None:
            return ValidOffset("snapshot", snapshot_id=self.snapshot_id)
        if found.epoch == last_fetched_epoch and found.end_offset >= fetch_offset:
            return ValidOffset("valid")
        if found.end_offset < self.start_offset:
            return ValidOffset("snapshot", snapshot_id=self.snapshot_id)
        return ValidOffset("diverging", diverging=found)

    def truncation_point(self, diverging: EpochEndOffset) -> int:
        """Follower side: where to truncate given the leader's diverging epoch."""
        local = self.end_offset_for_epoch(diverging.epoch)
        if local is None:
            raise RaftSafetyError(f"leader diverges at {diverging} inside our snapshot {self.snapshot_id}")
        return min(diverging.end_offset, local.end_offset, self.end_offset)

    # --- snapshots ---------------------------------------------------------------------------
    def create_snapshot(self, snapshot_id: SnapshotId, data: bytes) -> None:
        """Store a snapshot of the state up to ``snapshot_id.end_offset`` and drop the prefix."""
        self.storage.write_snapshot(snapshot_id, data)
        self._drop_prefix(snapshot_id)

    def install_snapshot(self, snapshot_id: SnapshotId, data: bytes) -> None:
        """Follower: replace the log with a snapshot fetched from the leader. Entries after the
        snapshot are kept only if the log has the snapshot's last entry (Raft's rule)."""
        last = self.entry(snapshot_id.end_offset - 1)
        keep = last is not None and last.epoch == snapshot_id.epoch
        if not keep and self.entries:
            self.truncate_to(self.start_offset)
            self.flush()
        self.storage.write_snapshot(snapshot_id, data)
        self._drop_prefix(snapshot_id)
        if not keep:
            self.entries.clear()
            self._rebuild_epochs()
        self.flushed_end = max(self.flushed_end, self.start_offset)

    def _drop_prefix(self, snapshot_id: SnapshotId) -> None:
        if self.snapshot_id is None or snapshot_id > self.snapshot_id:
            self.snapshot_id = snapshot_id
        if snapshot_id.end_offset > self.start_offset:
            drop = snapshot_id.end_offset - self.start_offset
            del self.entries[:drop]
            self.start_offset = snapshot_id.end_offset
            self._rebuild_epochs()
        self.flushed_end = max(self.flushed_end, self.start_offset)

    def read_snapshot(self, snapshot_id: SnapshotId) -> bytes | None:
        return self.storage.read_snapshot(snapshot_id)
