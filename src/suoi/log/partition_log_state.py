"""What a `PartitionLog` is made of: its segments and offsets (log start, log end, high
watermark), the recovery point and flushing, rolling to a new segment, and the producer-state
and leader-epoch caches it keeps in step with its data.

Split from ``partition_log.py`` (over the size limit) at this state: `LogState` is the base of
the classes that use it, one module each - `LogAppend` (``partition_log_append.py``, writing),
`LogReads` (``partition_log_reads.py``, reading), `LogRetention`
(``partition_log_retention.py``, removing data) - which `PartitionLog` combines. They are
mixins over one base rather than functions taking the log, so every caller keeps calling
``log.append(...)`` / ``log.read(...)`` and pays nothing for the split (CPython caches a
method's lookup per type), and each sees the state it uses typed, without an import of
``partition_log.py`` (no import cycle). Roll and flush live here because the append and
retention both call them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple, Self

from suoi.log import transactions as txns
from suoi.log.batch_check import CorruptBatch
from suoi.log.config import LogConfig
from suoi.log.errors import KafkaStorageError
from suoi.log.leader_epoch import CHECKPOINT_FILE as LEADER_EPOCH_CHECKPOINT
from suoi.log.leader_epoch import CheckpointSync, LeaderEpochCache, load_or_rebuild
from suoi.log.producer_state import SNAPSHOT_SUFFIX, ProducerStateManager, write_snapshot
from suoi.log.recovery import (
    LOG_START_OFFSET_FILE,
    RECOVERY_POINT_FILE,
    read_recovery_point,
    rebuild_producer_state,
    write_log_start_offset,
    write_recovery_point,
)
from suoi.log.segment import LogSegment
from suoi.log.sync_jobs import FlushPoint, PathSync, StateSync, SyncJob
from suoi.log.txn_upgrade import TxnIndexCheck

logger = logging.getLogger("suoi.log")

__all__ = ["LogState"]


class Tail(NamedTuple):
    """A small leader append as stored, kept for the reads that follow it at once (a consumer
    parked at the log end): valid while the active segment is `segment` at `size` bytes."""

    base_offset: int
    end_offset: int  # the offset after it (the log end when it was written)
    data: bytes
    batches: int
    segment: object
    size: int


class LogState:
    """State, rolling and flushing of one partition's log (`PartitionLog` is the class to use)."""

    def __init__(
        self,
        directory: Path,
        topic: str,
        partition: int,
        config: LogConfig,
        segments: list[LogSegment],
        log_start_offset: int,
        now_ms: Callable[[], int],
        *,
        hw_follows_leo: bool = True,
        empty: bool = False,
    ) -> None:
        """``empty``: the directory holds no file (`recovery.never_written`), so there is no
        recovery point, producer snapshot or leader-epoch checkpoint to read."""
        self.directory = directory
        self.topic = topic
        self.partition = partition
        self._config = config
        self._now_ms = now_ms
        self._segments = segments
        self._bases = [s.base_offset for s in segments]
        #: Called whenever a read or the scrubber meets a bad batch (and, via ``first_corrupt``,
        #: for what recovery found): replication repairs it (and ignores repeats).
        self.on_corrupt: Callable[[Self, CorruptBatch], None] | None = None
        #: Called after each roll (the log manager notes the log for its flush at a roll, which
        #: the broker's flush task runs off the event loop: `suoi.log_flush`).
        self.on_roll: Callable[[], None] | None = None
        #: Called when a state file was written unsynced (`state_written`): the log manager notes
        #: the log and wakes the broker's flush task, which syncs it off the loop (`state_sync_jobs`).
        self.on_state_write: Callable[[], None] | None = None
        #: State files (and the directory) written on the loop without an fsync, not synced yet.
        self._state_paths: set[Path] = set()
        #: Unsynced state writes so far, the last one at a truncation, the last one known durable.
        self._state_gen = self._truncated_gen = self._synced_gen = 0
        self._log_end_offset = segments[-1].next_offset
        self._log_start_offset = log_start_offset
        #: Last offset (exclusive) visible to consumers: the log end offset after every append
        #: with ``hw_follows_leo`` (default), else owned by replication (``set_high_watermark``).
        self._high_watermark = self._log_end_offset
        self.hw_follows_leo = hw_follows_leo
        #: The last leader append while it is the log's tail (`LogAppend._write`, `LogReads.read_records`)
        self._tail: Tail | None = None
        self._unflushed_messages = 0
        #: Truncations so far: a flush that ran meanwhile must not move the recovery point up.
        self._truncations = 0
        self._last_flush_ms = now_ms()
        self._unflushed_segments: list[LogSegment] = []
        #: Everything below it is on disk: recovery re-checks from it. The ``recovery-point`` file
        #: holds ``_recovery_point_persisted``, which trails it (``checkpoint_recovery_point``).
        self._recovery_point = 0 if empty else read_recovery_point(directory)
        self._recovery_point_persisted = self._recovery_point
        #: Idempotent producers' recent batches (KIP-98), rebuilt from snapshot + log tail.
        self.producer_state = ProducerStateManager(config.producer_id_expiration_ms)
        #: What the last rebuild of the producer state did about the abort indexes (`txn_upgrade`).
        self.txn_index_check = TxnIndexCheck.NEW
        if not empty:
            self._rebuild_producer_state()
        #: Leader epoch -> start offset (KIP-101), the ``leader-epoch-checkpoint`` file.
        self.leader_epoch_cache: LeaderEpochCache = (
            LeaderEpochCache(directory / LEADER_EPOCH_CHECKPOINT) if empty
            else load_or_rebuild(directory, segments, log_start_offset, self._log_end_offset, self._recovery_point))
        self.leader_epoch_cache.on_write = self._epoch_written

    # ------------------------------------------------------------------ properties

    @property
    def config(self) -> LogConfig:
        return self._config

    @config.setter
    def config(self, config: LogConfig) -> None:
        """A new topic config; once compaction is on, batches may have gaps between them."""
        self._config = config
        if config.compacts:
            for seg in self._segments:
                seg.contiguous = False

    @property
    def log_start_offset(self) -> int:
        return self._log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self._log_end_offset

    @property
    def high_watermark(self) -> int:
        return self._high_watermark

    @property
    def last_stable_offset(self) -> int:
        """First offset of the oldest ongoing transaction, else the high watermark (KIP-98)."""
        return self.fetch_offsets()[1]

    def fetch_offsets(self) -> tuple[int, int, int]:
        """(high watermark, last stable offset, log start): what a Fetch answer carries for a
        partition, in one call (a read of every partition of every Fetch asks for all three).
        With no transaction open (almost always) the LSO is the HW, without the producers' scan."""
        hw, start = self._high_watermark, self._log_start_offset
        if not self.producer_state.ongoing_txns:
            return hw, (hw if hw >= start else start), start
        return hw, txns.last_stable_offset(self.producer_state, hw, start), start

    @property
    def size_in_bytes(self) -> int:
        return sum(s.size for s in self._segments)

    @property
    def segments(self) -> Sequence[LogSegment]:
        return tuple(self._segments)

    @property
    def _active(self) -> LogSegment:
        return self._segments[-1]

    def set_high_watermark(self, high_watermark: int) -> int:
        """Set (replication layer) the high watermark, clamped to [log start, log end]."""
        self._high_watermark = min(max(high_watermark, self._log_start_offset), self._log_end_offset)
        return self._high_watermark

    def roll(self) -> LogSegment:
        """Start a new segment at the log end offset (no-op if the active one is empty)."""
        if self._active.size == 0:
            return self._active
        return self._roll()

    def _roll(self) -> LogSegment:
        old = self._active
        try:
            write_snapshot(self.directory, self._log_end_offset, self.producer_state)
            old.seal()
            new = LogSegment.create(
                self.directory, self._log_end_offset, index_interval_bytes=self.config.index_interval_bytes
            )
            new.contiguous = old.contiguous
        except OSError as e:
            raise KafkaStorageError(e.errno, f"cannot roll {self.directory}: {e.strerror}") from e
        self._unflushed_segments.append(old)
        self._segments.append(new)
        self._bases.append(new.base_offset)
        old.seal_memory()
        if self.on_roll is not None:
            self.on_roll()
        return new

    def flush(self) -> None:
        """fsync everything written since the last flush."""
        point = self.flush_point()
        try:
            for seg in (*self._unflushed_segments, self._active):
                if not seg.closed:
                    seg.flush()
            for job in self.state_sync_jobs():  # the leader-epoch checkpoint's write, the state files
                try:
                    job()
                except BaseException:
                    job.done(False)
                    raise
                job.done(True)
        except OSError as e:
            raise KafkaStorageError(e.errno, f"fsync of {self.directory} failed: {e.strerror}") from e
        self.flushed(point)

    def sync_jobs(self, rolled: bool = False) -> list[SyncJob]:
        """What `flush` would fsync, as jobs other threads may run in parallel (the final flush,
        `suoi.log.flushing.flush_logs`); `flushed` once every job succeeded. ``rolled``: only what
        the flush at a roll syncs (`flush_point(rolled=True)`): the rolled segments' files, the
        partition directory (their names, the new segment's) and the producer snapshot taken at
        the roll - not the active segment, which takes writes on."""
        segments = self._unflushed_segments if rolled else (*self._unflushed_segments, self._active)
        jobs = [job for seg in segments if not seg.closed for job in seg.sync_jobs()]
        if rolled:
            jobs += (PathSync(self.directory / f"{self._active.base_offset:020d}{SNAPSHOT_SUFFIX}"),
                     PathSync(self.directory))
        return jobs + self.state_sync_jobs()  # the leader-epoch checkpoint's: before the recovery point passes it

    # ------------------------------------------------------------------ state files

    def state_written(self, path: Path | None, *, truncation: bool = False) -> None:
        """A state file (``path``; None: only the directory's entries changed, a truncation's
        unlinks) was written on the event loop without an fsync: `state_sync_jobs` sync it and
        the directory on a thread - the broker's flush task, woken by `on_state_write`; the replica
        fetcher before it appends after a truncation (`truncation_unsynced`); any flush of this
        log, whose recovery point then moves only once they are durable."""
        if path is not None:
            self._state_paths.add(path)
        self._state_paths.add(self.directory)
        self._state_gen += 1
        if truncation:
            self._truncated_gen = self._state_gen
        if self.on_state_write is not None:
            self.on_state_write()

    @property
    def state_unsynced(self) -> bool:
        """State files written without an fsync wait for one (`state_sync_jobs`)."""
        return bool(self._state_paths) or self.leader_epoch_cache.unsynced

    def _epoch_written(self) -> None:
        """The leader-epoch checkpoint waits for its write (`LeaderEpochCache.write`): as a state file."""
        if self.on_state_write is not None:
            self.on_state_write()

    @property
    def truncation_unsynced(self) -> bool:
        """The last truncation's recovery point and directory are not known durable yet: nothing
        may be appended to this log as a follower before they are (Kafka's fetcher checkpoints
        the recovery points after a truncation before its next append). Else an OS crash could
        bring back the older, higher recovery point together with a rewritten, half-written
        segment below it, which the restart would then trust without a re-scan."""
        return self._truncated_gen > self._synced_gen

    def state_sync_jobs(self, *, truncated: bool = False) -> list[SyncJob]:
        """The fsync of the state files written unsynced so far (a thread runs it; `done` on the
        loop): the files, then the directory; before them, the write of a leader-epoch checkpoint
        left to a thread (`CheckpointSync`, also when one is in flight: the flush that asks must
        not see it durable before it is). Empty when nothing waits. ``truncated``: for a
        caller that must see the last truncation durable (the replica fetcher) while another
        thread may still be syncing it: the recovery point and the directory are synced again."""
        epochs = self.leader_epoch_cache
        jobs: list[SyncJob] = [CheckpointSync(epochs)] if epochs.unsynced or epochs.syncing else []
        if truncated and self.truncation_unsynced:
            self._state_paths.update((self.directory / RECOVERY_POINT_FILE, self.directory))
        if not self._state_paths:
            return jobs
        paths = sorted(self._state_paths - {self.directory}) + [self.directory]
        self._state_paths.clear()
        return [*jobs, StateSync(paths, self._state_gen, self._state_synced)]

    def _state_synced(self, gen: int, paths: Sequence[Path]) -> None:
        if gen >= 0:
            self._synced_gen = max(self._synced_gen, gen)
        else:  # failed (logged by the caller) or cancelled: the next sync takes them again
            self._state_paths.update(paths)

    def flush_point(self, rolled: bool = False) -> FlushPoint:
        """Where a flush starts (taken with its `sync_jobs`); `flushed` once they succeeded.
        ``rolled``: Kafka's flush at a roll (`UnifiedLog.roll` schedules
        ``flushUptoOffsetExclusive(newSegment.baseOffset)``): up to the active segment's base."""
        if rolled:
            return FlushPoint(self._active.base_offset, 0, self._truncations, True)
        return FlushPoint(self._log_end_offset, self._unflushed_messages, self._truncations)

    def flushed(self, point: FlushPoint) -> None:
        """Everything below ``point.end`` (the log end when the flush began, or the active
        segment's base for a flush at a roll) is on disk. A flush whose fsyncs ran while the loop
        went on (`suoi.log_flush.flush_logs_off_loop`) keeps what came since: messages appended
        meanwhile stay counted as unflushed, and after a truncation meanwhile the recovery point
        stays where the truncation put it (what is below the old end may since have been
        rewritten) and so do the unflushed segments (one rolled since may hold rewritten offsets
        below ``point.end`` that no fsync of this flush covered). The recovery point never moves
        back here."""
        end_offset = point.end
        if point.truncations != self._truncations:
            return
        self._unflushed_segments = [s for s in self._unflushed_segments if s.next_offset > end_offset]
        if not point.rolled:
            self._unflushed_messages = max(self._unflushed_messages - point.messages, 0)
            self._last_flush_ms = self._now_ms()
        if end_offset > self._recovery_point:
            self._recovery_point = end_offset  # persisted by `checkpoint_recovery_point`

    def checkpoint_recovery_point(self, *, durable: bool = True) -> bool:
        """Persist the recovery point if a flush moved it; returns whether it wrote.

        Not done per flush (a temp file, an fsync and a rename per partition each time, as
        costly as the flush itself with flush.messages=1): as Kafka's
        log.flush.offset.checkpoint.interval.ms, the log manager calls this periodically and
        ``close`` does. A persisted point that trails only makes recovery re-check more.
        ``durable=False``: not fsynced (`write_recovery_point`; the final flush syncs them all).
        """
        if self._recovery_point == self._recovery_point_persisted:
            return False
        self._set_recovery_point(self._recovery_point, durable=durable)
        return True

    def _set_recovery_point(self, offset: int, *, durable: bool = True) -> None:
        """Persist ``offset`` now (the periodic checkpoint, a close)."""
        write_recovery_point(self.directory, offset, durable=durable)
        self._recovery_point = self._recovery_point_persisted = offset

    def _lower_recovery_point(self, offset: int) -> None:
        """A truncation rewrites below the recovery point: ``offset`` is written at once, on the
        loop without an fsync, and synced (file and directory) off it before this log takes a
        follower's append (`truncation_unsynced`) or its recovery point moves up again (`flushed`
        waits for the flush's `state_sync_jobs`). Kafka writes its recovery-point checkpoint
        (fsync, dir fsync) on the fetcher thread right after the truncation."""
        write_recovery_point(self.directory, offset, durable=False)
        self._recovery_point = self._recovery_point_persisted = offset
        self.state_written(self.directory / RECOVERY_POINT_FILE, truncation=True)

    def flush_is_due(self, now_ms: int) -> bool:
        """``flush.ms`` has passed since the last flush and something is unflushed. (A roll's
        flush is not due here: the roll itself asks for it, `on_roll`, and only the rolled
        segments are flushed then, `flush_point(rolled=True)`.)"""
        interval = self.config.flush_interval_ms
        return interval is not None and self._unflushed_messages > 0 and now_ms - self._last_flush_ms >= interval

    @property
    def rolled_unflushed(self) -> bool:
        """Rolled segments wait for their flush (Kafka's flush at a roll)."""
        return bool(self._unflushed_segments)

    def maybe_flush(self, now_ms: int) -> bool:
        """Honour ``flush.ms``; returns whether a flush happened."""
        if not self.flush_is_due(now_ms):
            return False
        self.flush()
        return True

    def _persist_log_start_offset(self) -> None:
        """On the loop without an fsync, synced off it soon (`state_written`): an OS crash
        before that brings back an older log start (Kafka checkpoints it every 60 s)."""
        write_log_start_offset(self.directory, self._log_start_offset, durable=False)
        self.state_written(self.directory / LOG_START_OFFSET_FILE)

    def _rebuild_producer_state(self) -> None:
        """Producer snapshot + log-tail replay (``recovery.rebuild_producer_state``). A snapshot
        older than the follower fix was checked (and the abort indexes rebuilt if need be): a
        current one is written at once, so the next start trusts it (`txn_upgrade`)."""
        check = self.txn_index_check = rebuild_producer_state(
            self.directory, self._segments, self.producer_state, self._log_end_offset, self._log_start_offset
        )
        if check is TxnIndexCheck.REBUILT:
            logger.info("%s-%d: rebuilt the transaction index from the log's batch headers (written by a version "
                        "before the follower fix)", self.topic, self.partition)
        if check in (TxnIndexCheck.CHECKED, TxnIndexCheck.REBUILT) and self._log_end_offset > 0:
            try:
                write_snapshot(self.directory, self._log_end_offset, self.producer_state)
            except OSError as e:  # the next open checks again
                logger.warning("%s-%d: cannot write producer snapshot: %s", self.topic, self.partition, e)
