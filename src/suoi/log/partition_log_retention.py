"""Everything that removes data from a `PartitionLog`: a follower's truncation
(`truncate_to`, `truncate_fully_and_start_at`), DeleteRecords (`delete_records_before`),
retention (`apply_retention`), the log cleaner's segment swap (`replace_segments`) and the
expiry of idle producer ids.

Split from ``partition_log.py`` because these share one concern - moving the log start or end
offset and keeping the segment list, producer state, leader-epoch cache, recovery point and
``log-start-offset`` file consistent with it - and none runs per append or per read. The
segment cutting itself is ``truncation.py``; which segments expire, ``retention.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

from suoi.log import truncation
from suoi.log.errors import KafkaStorageError, OffsetOutOfRangeError
from suoi.log.partition_log_state import LogState
from suoi.log.producer_state import SNAPSHOT_SUFFIX, snapshot_offsets
from suoi.log.retention import expired_by_size, expired_by_time
from suoi.log.segment import LogSegment

__all__ = ["LogRetention"]


class LogRetention(LogState):
    """Truncation, retention and deletion of a partition's log (`PartitionLog` is the class to use)."""

    def truncate_to(self, offset: int, *, force: bool = False) -> int:
        """Remove every record from ``offset`` on (a diverged follower, KIP-101); returns the
        new log end offset (below ``offset`` if a batch holds it: batches go whole). Indexes,
        txn index, producer state and epoch cache follow. At or past the log end no record
        goes, but epochs starting at the log end do (Kafka's truncateTo): one this replica began
        as leader and wrote nothing in is not in the new leader's log, and as the follower's last
        fetched epoch it would make the leader answer every Fetch with a diverging epoch ending
        at this very log end. Raises as ``truncation.check_cut`` (``force`` allows going below
        the high watermark, which then follows) and ``KafkaStorageError``."""
        if offset >= self._log_end_offset:
            self.leader_epoch_cache.truncate_from_end(self._log_end_offset)
            return self._log_end_offset
        truncation.check_cut(self._segments, self._bases, offset, self._log_start_offset,
                             None if force else self._high_watermark)
        try:
            removed = truncation.truncate_segments(self._segments, self._bases, offset)
        except OSError as e:
            raise KafkaStorageError(e.errno, f"cannot truncate {self.directory}: {e.strerror}") from e
        self._unflushed_segments = [s for s in self._unflushed_segments if s not in removed and s is not self._active]
        self._truncations += 1  # a flush in flight must not claim what is rewritten from here
        self._log_end_offset = self._active.next_offset
        self._high_watermark = min(self._high_watermark, self._log_end_offset)
        if self._recovery_point > self._log_end_offset:  # what is rewritten there is not on disk yet
            self._lower_recovery_point(self._log_end_offset)
        else:  # the unlinks and the cut: the directory synced before the next append all the same
            self.state_written(None, truncation=True)
        self.leader_epoch_cache.truncate_from_end(self._log_end_offset)
        self._rebuild_producer_state()
        return self._log_end_offset

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """Drop every record and restart the log empty at ``offset`` (Kafka's
        truncateFullyAndStartAt): a follower whose log end is below the leader's log start
        offset (retention or DeleteRecords on the leader) cannot fetch what it lacks."""
        try:
            for seg in self._segments:
                seg.delete()
            new = LogSegment.create(self.directory, offset, index_interval_bytes=self.config.index_interval_bytes)
            new.contiguous = self._segments[-1].contiguous
        except OSError as e:
            raise KafkaStorageError(e.errno, f"cannot reset {self.directory}: {e.strerror}") from e
        self._segments = [new]
        self._bases = [offset]
        self._unflushed_segments = []
        self._truncations += 1
        self._log_start_offset = self._log_end_offset = self._high_watermark = offset
        self._persist_log_start_offset()
        self._lower_recovery_point(offset)
        self.leader_epoch_cache.clear()
        for stale in snapshot_offsets(self.directory):
            (self.directory / f"{stale:020d}{SNAPSHOT_SUFFIX}").unlink(missing_ok=True)
        self.producer_state.truncate_to(offset)
        self._rebuild_producer_state()

    def replace_segments(self, old: Sequence[LogSegment], new: LogSegment) -> None:
        """Log-cleaner hook: ``old`` (consecutive, sealed, closed: `cleaner_swap` retires their files) become ``new``."""
        i = self._segments.index(old[0])
        assert self._segments[i : i + len(old)] == list(old), "cleaned segments must be consecutive"
        self._segments[i : i + len(old)] = [new]
        new.contiguous = False  # compaction leaves gaps between batches
        self._bases[i : i + len(old)] = [new.base_offset]
        # Aborted records are kept by the cleaner, so their index entries move along (on disk
        # already: `cleaner_files.install_group` wrote them into the new segment's .txnindex).
        aborted = [t for s in old for t in s.txn_index.entries]
        if aborted and not new.txn_index.entries:
            new.txn_index.extend(aborted)
        self._unflushed_segments = [s for s in self._unflushed_segments if s not in old]

    def delete_records_before(self, offset: int) -> int:
        """DeleteRecords: advance the log start offset (-1 means the high watermark).

        Whole segments below the new start are removed at once; the rest of
        the data becomes unreadable immediately and goes with its segment.
        """
        if offset == -1:
            offset = self._high_watermark
        if offset < 0 or offset > self._high_watermark:
            raise OffsetOutOfRangeError(
                f"cannot delete records before {offset}: high watermark is {self._high_watermark}"
            )
        if offset > self._log_start_offset:
            self._log_start_offset = offset
            while len(self._segments) > 1 and self._segments[1].base_offset <= offset:
                self._delete_oldest()
            self._persist_log_start_offset()
            self.producer_state.truncate_to(offset)
            self.leader_epoch_cache.truncate_from_start(offset)
        return self._log_start_offset

    def apply_retention(self, now_ms: int) -> int:
        """Delete expired segments (retention.ms / retention.bytes); returns how many.

        Only applies with ``cleanup.policy`` containing ``delete``.  When
        every segment, including a non-empty active one, is past retention.ms,
        the log is rolled first so the data can expire; the new segment
        starts at the log end offset, so offsets are never reused.
        """
        cfg = self.config
        if not cfg.deletes:
            return 0
        deleted = expired_by_time(self._segments, now_ms, cfg.retention_ms)
        if deleted == len(self._segments):
            self._roll()
        for _ in range(deleted):
            self._delete_oldest()
        by_size = expired_by_size(self._segments, cfg.retention_bytes)
        for _ in range(by_size):
            self._delete_oldest()
        deleted += by_size
        if deleted and self._segments[0].base_offset > self._log_start_offset:
            self._log_start_offset = self._segments[0].base_offset
            self._persist_log_start_offset()
            self.producer_state.truncate_to(self._log_start_offset)
            self.leader_epoch_cache.truncate_from_start(self._log_start_offset)
        return deleted

    def _delete_oldest(self) -> None:
        seg = self._segments.pop(0)
        self._bases.pop(0)
        if seg in self._unflushed_segments:
            self._unflushed_segments.remove(seg)
        seg.delete()

    def expire_producers(self, now_ms: int) -> int:
        """Forget idle producer ids (producer.id.expiration.ms)."""
        return self.producer_state.expire(now_ms)

