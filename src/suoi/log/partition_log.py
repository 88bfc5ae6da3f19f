"""The log of one topic partition: an ordered list of segments (`PartitionLog`).

`PartitionLog` combines one class per responsibility, each in its own module (split for size):
`LogState` (``partition_log_state.py``: segments, offsets, roll, flush, recovery point),
`LogAppend` (``partition_log_append.py``: leader and follower appends), `LogReads`
(``partition_log_reads.py``: Fetch and ListOffsets reads), `LogRetention`
(``partition_log_retention.py``: truncation, retention, DeleteRecords). This module keeps the
life cycle (open, close, delete) and the names callers import from here (`AppendInfo`,
`LOG_START_OFFSET_FILE`, `wall_clock_ms`).

Not thread-safe by design: the broker calls it from its single event-loop
thread, and every operation is a handful of syscalls on page-cache-backed
files, so a lock would only add cost.  Time is injected (``now_ms``) so that
rolling, retention and flushing are testable without sleeping.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from suoi.log.config import LogConfig
from suoi.log.errors import KafkaStorageError
from suoi.log.partition_log_append import AppendInfo, LogAppend
from suoi.log.partition_log_reads import LogReads
from suoi.log.partition_log_retention import LogRetention
from suoi.log.producer_state import write_snapshot
from suoi.log.recovery import LOG_START_OFFSET_FILE, RecoveryStats, never_written, recover_segments

__all__ = ["LOG_START_OFFSET_FILE", "AppendInfo", "PartitionLog", "wall_clock_ms"]

logger = logging.getLogger("suoi.log")


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


class PartitionLog(LogAppend, LogReads, LogRetention):
    """Append-only, segmented log of a single partition (use ``open``)."""

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        directory: Path,
        topic: str,
        partition: int,
        config: LogConfig,
        now_ms: Callable[[], int] = wall_clock_ms,
        *,
        hw_follows_leo: bool = True,
        clean: bool = False,
        stats: RecoveryStats | None = None,
    ) -> PartitionLog:
        """Open (creating if needed) and recover the log in ``directory``.

        Sealed segments are trusted if their indexes are consistent; the last
        segment is fully re-scanned because an unclean shutdown can only have
        torn its tail - unless ``clean`` (its log dir's last stop flushed
        everything, `suoi.log.clean_shutdown`); ``stats`` counts what it did.  If recovery truncates a sealed
        segment, all later segments are dropped: their offsets no longer follow on.
        """
        empty = never_written(directory)
        segments, log_start = recover_segments(directory, topic, partition, config, empty=empty, clean=clean,
                                               stats=stats)
        return cls(directory, topic, partition, config, segments, log_start, now_ms, hw_follows_leo=hw_follows_leo,
                   empty=empty)

    def close(self, *, durable: bool = True) -> None:
        """Producer snapshot, recovery point, segments closed. ``durable=False`` (the final
        flush, `LogManager.shutdown`): the recovery point is not fsynced here; the caller syncs
        every log's at once."""
        try:
            # An empty log has no producers to remember. A stale leader-epoch checkpoint is not
            # written either: it lacks only an epoch that wrote nothing (see assign(durable=False)).
            if self._log_end_offset > 0:
                write_snapshot(self.directory, self._log_end_offset, self.producer_state)
        except (OSError, KafkaStorageError) as e:
            logger.warning("%s-%d: cannot write producer snapshot: %s", self.topic, self.partition, e)
        try:  # a checkpoint write left to the flush task that has not run (the final flush ran it)
            if self.leader_epoch_cache.unsynced:
                self.leader_epoch_cache.flush()
        except KafkaStorageError as e:
            logger.warning("%s-%d: cannot write the leader-epoch checkpoint: %s", self.topic, self.partition, e)
        try:
            self.checkpoint_recovery_point(durable=durable)
        except KafkaStorageError as e:
            logger.warning("%s-%d: cannot write the recovery point: %s", self.topic, self.partition, e)
        for seg in self._segments:
            seg.close()

    def discard(self) -> None:
        """Close for a removal (a deleted topic, a replica moved away): the directory is renamed
        and removed next (`log_jobs`), so nothing is written into it - no producer snapshot,
        recovery point or index file - and a read in flight keeps its pinned descriptors."""
        for seg in self._segments:
            seg.discard()

    def delete(self) -> None:
        """Close and remove the whole partition directory."""
        self.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __repr__(self) -> str:
        return (
            f"PartitionLog({self.topic}-{self.partition}, start={self._log_start_offset}, "
            f"end={self._log_end_offset}, segments={len(self._segments)})"
        )
