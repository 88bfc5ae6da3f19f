"""Leader-epoch cache of one partition (KIP-101, KIP-279): which leader epoch wrote which
offsets, so a follower can find where its log diverges from a new leader's.

An ordered list of ``(epoch, start_offset)`` entries, both strictly increasing: epoch
``e`` covers ``[start_offset(e), start_offset(next entry))``, the latest one up to the log
end. Persisted after every change as Kafka's ``leader-epoch-checkpoint`` text file in the
partition directory (a version line ``0``, a count line, then ``epoch offset`` lines),
written to a temporary file, fsynced and renamed. A missing or unreadable file is rebuilt
from the ``partitionLeaderEpoch`` field of the stored batch headers
(``load_or_rebuild``), as Kafka does in segment recovery.

Kafka's rules followed here (LeaderEpochFileCache):

* ``assign`` ignores negative epochs, an epoch not above the latest one, and a start
  offset below the latest entry's (non-monotonic input, logged). An epoch above the
  latest at the *same* start offset replaces the latest entry: that epoch wrote nothing.
* ``end_offset_for`` answers OffsetsForLeaderEpoch: for the latest epoch the log end
  offset; for an older one the largest cached epoch <= the requested one and the start
  offset of the next cached epoch; ``(-1, -1)`` for UNDEFINED, an empty cache or an epoch
  above the latest. Below the first cached epoch Kafka (since KIP-279) answers with the
  *requested* epoch and the first entry's start offset (the older data is gone), and so
  does this.
* ``truncate_from_end(o)`` drops entries starting at or after ``o`` (log truncation);
  ``truncate_from_start(o)`` drops entries wholly below ``o`` and moves the start of the
  last of them up to ``o`` (log start offset moved by retention / DeleteRecords).

Where the file is written: a rebuild at open (`flush`: written, fsynced, renamed, directory
fsynced, on the thread that opens the log); a new epoch on the append path and every truncation
(`write`) only snapshot nothing on the event loop: the cache is marked ``unsynced`` and the log's
state-write notification wakes the broker's flush task, whose thread writes and fsyncs the file
(`CheckpointSync`: the entries snapshotted on the loop when the job is made, written under the
cache's lock, a snapshot never overwritten by an older one). Any flush of the log runs the same
job before its recovery point passes the new entries, as Kafka (KAFKA-15046) writes the
checkpoint and flushes it later on a scheduler thread. A file an OS crash left missing or stale
is repaired at open: the entries from the recovery point on are dropped and read again from the
batches there (`load_or_rebuild`), and those outside ``[log start, log end)`` trimmed.
"""

from __future__ import annotations

import logging
import threading
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from suoi.atomic_file import discard_tmp, write_atomically
from suoi.log.errors import KafkaStorageError
from suoi.log.segment import LogSegment
from suoi.log.sync_jobs import SyncJob

__all__ = [
    "CHECKPOINT_FILE",
    "UNDEFINED_EPOCH",
    "UNDEFINED_EPOCH_OFFSET",
    "CheckpointSync",
    "EpochEntry",
    "LeaderEpochCache",
    "load_or_rebuild",
]

logger = logging.getLogger("suoi.log")

CHECKPOINT_FILE = "leader-epoch-checkpoint"
_VERSION = 0
UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1


class EpochEntry(NamedTuple):
    epoch: int
    start_offset: int


class LeaderEpochCache:
    """Epoch -> start offset entries, persisted to ``path`` (None: in memory only)."""

    def __init__(self, path: Path | None, entries: Iterable[tuple[int, int]] = ()) -> None:
        self.path = path
        #: The entries changed (``assign(durable=False)``) and no write was asked for yet (`write`).
        self.stale = False
        #: The file lags the entries (`write`): a `CheckpointSync` (the flush task's, or any flush
        #: of the log, before its recovery point passes them) writes and fsyncs it off the loop.
        self.unsynced = False
        #: Called (on the loop) when `write` marks the file unsynced: the log wakes its flush task.
        self.on_write: Callable[[], None] | None = None
        #: `CheckpointSync` jobs in flight: the file is not known durable meanwhile, so a flush
        #: must make a job of its own (which waits for them on the lock) before its recovery
        #: point passes the entries.
        self.syncing = 0
        #: Changes to the entries so far, and how many of them the file on disk holds: a snapshot
        #: (`snapshot`) is numbered with the changes it holds, and an older one is never written
        #: over a newer one (two flush threads may hold snapshots of the same file).
        self._changes = self._stored = 0
        self._lock = threading.Lock()
        self._epochs: list[int] = []
        self._starts: list[int] = []
        for epoch, start in entries:
            self._epochs.append(epoch)
            self._starts.append(start)

    # ------------------------------------------------------------------ queries

    @property
    def entries(self) -> list[EpochEntry]:
        return [EpochEntry(e, s) for e, s in zip(self._epochs, self._starts, strict=True)]

    @property
    def latest_epoch(self) -> int:
        """The newest epoch, ``UNDEFINED_EPOCH`` (-1) if the cache is empty."""
        return self._epochs[-1] if self._epochs else UNDEFINED_EPOCH

    @property
    def earliest_entry(self) -> EpochEntry | None:
        return EpochEntry(self._epochs[0], self._starts[0]) if self._epochs else None

    @property
    def latest_entry(self) -> EpochEntry | None:
        return EpochEntry(self._epochs[-1], self._starts[-1]) if self._epochs else None

    def epoch_for_offset(self, offset: int) -> int:
        """Epoch that wrote ``offset`` (the entry starting at or before it), else -1."""
        i = bisect_right(self._starts, offset) - 1
        return self._epochs[i] if i >= 0 else UNDEFINED_EPOCH

    def end_offset_for(self, requested_epoch: int, log_end_offset: int) -> tuple[int, int]:
        """OffsetsForLeaderEpoch: ``(epoch, end offset)`` for ``requested_epoch`` (see module doc)."""
        if requested_epoch < 0 or not self._epochs:
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if requested_epoch == self._epochs[-1]:
            return requested_epoch, log_end_offset
        higher = bisect_right(self._epochs, requested_epoch)  # first entry with epoch > requested
        if higher == len(self._epochs):
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if higher == 0:
            return requested_epoch, self._starts[0]
        return self._epochs[higher - 1], self._starts[higher]

    # ------------------------------------------------------------------ updates

    def assign(self, epoch: int, start_offset: int, *, durable: bool = True) -> bool:
        """Record that ``epoch`` starts at ``start_offset``; returns whether anything changed.

        ``durable=False`` (a new leader's epoch at its log end, before it wrote anything) only
        marks the file stale: `PartitionLog` writes it before its next append, so the
        checkpoint on disk covers every stored batch while a leadership change of thousands of
        partitions costs no fsync each (if the node crashes first, nothing of that epoch was
        written, and the next leadership brings a newer epoch anyway)."""
        if epoch < 0 or start_offset < 0:
            return False
        if self._epochs:
            latest, latest_start = self._epochs[-1], self._starts[-1]
            if epoch <= latest or start_offset < latest_start:
                if epoch != latest:
                    logger.warning("%s: ignoring non-monotonic leader epoch %d at offset %d (latest: %d at %d)",
                                   self.path, epoch, start_offset, latest, latest_start)
                return False
            if start_offset == latest_start:  # the latest epoch wrote nothing
                self._epochs.pop()
                self._starts.pop()
        self._epochs.append(epoch)
        self._starts.append(start_offset)
        self._changes += 1
        if durable:
            self.flush()
        else:
            self.stale = True
        return True

    def truncate_from_end(self, end_offset: int) -> None:
        """Drop entries starting at or after ``end_offset`` (the log was truncated there)."""
        if end_offset < 0 or not self._starts or self._starts[-1] < end_offset:
            return
        self._drop_from(end_offset)
        self.write()  # written and fsynced off the event loop (`CheckpointSync`)

    def _drop_from(self, end_offset: int) -> None:
        """Forget (in memory) the entries starting at or after ``end_offset``."""
        keep = bisect_right(self._starts, end_offset - 1)
        del self._epochs[keep:]
        del self._starts[keep:]
        self._changes += 1

    def truncate_from_start(self, start_offset: int) -> None:
        """Drop entries wholly below ``start_offset``; the epoch holding it now starts there."""
        i = bisect_right(self._starts, start_offset) - 1  # last entry starting at or before it
        if i < 0 or (i == 0 and self._starts[0] == start_offset):
            return
        del self._epochs[:i]
        del self._starts[:i]
        self._starts[0] = start_offset
        self._changes += 1
        self.write()  # as truncate_from_end: a stale file only holds entries the open trims

    def clear(self) -> None:
        if self._epochs:
            self._epochs.clear()
            self._starts.clear()
            self._changes += 1
            self.write()

    # ------------------------------------------------------------------ persistence

    def flush(self) -> None:
        """Write the checkpoint file now, durably (temp file, fsync, rename, fsync dir): at open,
        on the thread that opens the log, and at a close."""
        self.stale = self.unsynced = False
        self.store(*self.snapshot())

    def write(self) -> None:
        """Have the checkpoint file written off the event loop: what the append path does when a
        batch brings a new epoch, and a truncation. The file written on the loop (~0.3 ms each:
        temp file, write, rename) cost the first produce burst after a failover of 1,000
        partitions hundreds of ms; two fsyncs each stalled the node for seconds. The entry needs
        to be durable only before the data it covers is: the log's next flush writes it first
        (`CheckpointSync`), and a start after an OS crash re-reads the epochs of the batches
        above the recovery point (`load_or_rebuild`)."""
        if self.path is None:
            return
        self.stale = False
        self.unsynced = True
        if self.on_write is not None:
            self.on_write()

    def snapshot(self) -> tuple[int, str]:
        """The file's content now (on the loop), numbered by the changes it holds: `store` writes
        it (on any thread)."""
        lines = [str(_VERSION), str(len(self._epochs))]
        lines += [f"{e} {s}" for e, s in zip(self._epochs, self._starts, strict=True)]
        return self._changes, "\n".join(lines) + "\n"

    def store(self, number: int, text: str, *, missing_ok: bool = False) -> None:
        """Write snapshot ``number`` durably, unless a newer one is on disk already (it covers this
        one: a truncation since then leaves the recovery point below it). Thread-safe; the writes
        of one file are serialized. ``missing_ok``: a directory deleted meanwhile is no error."""
        if self.path is None:
            return
        with self._lock:
            if number <= self._stored:
                return
            try:
                write_atomically(self.path, text, fsync=True)
            except FileNotFoundError:
                if not missing_ok:
                    raise KafkaStorageError(2, f"cannot write {self.path}: no such directory") from None
                return
            except OSError as e:
                raise KafkaStorageError(e.errno, f"cannot write {self.path}: {e.strerror}") from e
            self._stored = number

    @classmethod
    def read(cls, path: Path) -> LeaderEpochCache | None:
        """The cache stored at ``path``; None if it is missing or malformed."""
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise KafkaStorageError(e.errno, f"cannot read {path}: {e.strerror}") from e
        try:
            entries = _parse(text.splitlines())
        except ValueError as e:
            logger.warning("%s: malformed leader epoch checkpoint (%s), rebuilding it from the log", path, e)
            return None
        return cls(path, entries)


def _parse(lines: Sequence[str]) -> list[tuple[int, int]]:
    if len(lines) < 2 or int(lines[0]) != _VERSION:
        raise ValueError(f"expected version {_VERSION} and a count")
    count = int(lines[1])
    body = [line for line in lines[2:] if line.strip()]
    if count < 0 or len(body) != count:
        raise ValueError(f"expected {count} entries, found {len(body)}")
    entries: list[tuple[int, int]] = []
    for line in body:
        fields = line.split()
        if len(fields) != 2:
            raise ValueError(f"bad entry line {line!r}")
        epoch, start = int(fields[0]), int(fields[1])
        if epoch < 0 or start < 0 or (entries and (epoch <= entries[-1][0] or start <= entries[-1][1])):
            raise ValueError(f"entry {line!r} is negative or out of order")
        entries.append((epoch, start))
    return entries


class CheckpointSync(SyncJob):
    """The write and fsync of a checkpoint `LeaderEpochCache.write` left to a thread: its entries
    snapshotted now, on the loop (the cache is marked synced; a later write marks it again)."""

    __slots__ = ("cache", "number", "text")

    def __init__(self, cache: LeaderEpochCache) -> None:
        self.cache = cache
        self.number, self.text = cache.snapshot()
        cache.unsynced = False
        cache.syncing += 1

    def __call__(self) -> None:
        self.cache.store(self.number, self.text, missing_ok=True)  # deleted meanwhile: nothing to keep

    def done(self, ok: bool) -> None:
        self.cache.syncing -= 1
        if not ok:
            self.cache.unsynced = True


def _assign_from(cache: LeaderEpochCache, segments: Sequence[LogSegment], offset: int) -> None:
    """Assign (in memory) the epochs of the stored batches from ``offset`` on."""
    for seg in segments:
        if seg.next_offset <= offset:
            continue
        for _, h in seg.positioned_headers_from(max(seg.base_offset, offset)):
            if h.partition_leader_epoch > cache.latest_epoch and h.base_offset >= offset:
                cache.assign(h.partition_leader_epoch, h.base_offset, durable=False)


def load_or_rebuild(
    directory: Path, segments: Sequence[LogSegment], log_start_offset: int, log_end_offset: int,
    recovery_point: int | None = None,
) -> LeaderEpochCache:
    """The partition's cache: read from its checkpoint or, if there is none usable, rebuilt
    from the batch headers (and then written); trimmed to ``[log start, log end)``. With
    ``recovery_point``, the epochs of the batches at and above it are assigned too: the append
    path writes the checkpoint without an fsync (`LeaderEpochCache.write`), so after an OS crash
    it may lack epochs of batches the flush had not reached (Kafka's segment recovery re-assigns
    the recovered batches' epochs the same way)."""
    path = directory / CHECKPOINT_FILE
    discard_tmp(path)  # a write a crash interrupted: never read
    cache = LeaderEpochCache.read(path)
    if cache is None:
        cache = LeaderEpochCache(None)
        _assign_from(cache, segments, 0)
        cache.path = path
    elif recovery_point is not None and recovery_point < log_end_offset:
        # Entries from the recovery point on come from batches re-scanned there: a checkpoint an
        # OS crash left stale (written unsynced at a truncation) may still name epochs of batches
        # truncated since, which would refuse (non-monotonic) the epochs of those rewritten there.
        if cache.latest_entry is not None and cache.latest_entry.start_offset >= recovery_point:
            cache._drop_from(recovery_point)
            cache.stale = True
        _assign_from(cache, segments, recovery_point)
    if cache.stale and cache.entries:  # no file and no epochs (a new partition): nothing to write yet
        cache.flush()
    cache.truncate_from_end(log_end_offset)
    cache.truncate_from_start(log_start_offset)
    return cache
