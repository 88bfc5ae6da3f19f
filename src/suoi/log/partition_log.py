"""The log of one topic partition: an ordered list of segments.

Not thread-safe by design: the broker calls it from its single event-loop
thread, and every operation is a handful of syscalls on page-cache-backed
files, so a lock would only add cost.  Time is injected (``now_ms``) so that
rolling, retention and flushing are testable without sleeping.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple, TypeVar

from suoi.log import log_reads, truncation
from suoi.log import transactions as txns
from suoi.log.batch_check import CorruptBatch
from suoi.log.config import COMPRESSION_TYPES, LogConfig
from suoi.log.errors import KafkaStorageError, OffsetOutOfRangeError
from suoi.log.leader_epoch import CHECKPOINT_FILE as LEADER_EPOCH_CHECKPOINT
from suoi.log.leader_epoch import LeaderEpochCache, load_or_rebuild
from suoi.log.log_reads import Take
from suoi.log.producer_state import SNAPSHOT_SUFFIX, ProducerStateManager, ProducerView, snapshot_offsets, write_snapshot
from suoi.log.recovery import (
    LOG_START_OFFSET_FILE,
    never_written,
    read_recovery_point,
    rebuild_producer_state,
    recover_segments,
    write_log_start_offset,
    write_recovery_point,
)
from suoi.log.retention import expired_by_size, expired_by_time
from suoi.log.segment import BatchPlacement, LogSegment
from suoi.log.txn_index import AbortedTxn
from suoi.protocol.file_records import FileRecords, FileRegion
from suoi.protocol.record_batch import (
    CONTROL_BIT,
    STAMP,
    STAMP_SIZE,
    log_append_time_header,
    recompress_batches,
)
from suoi.protocol.records import (
    HEADER_SIZE,
    BatchHeader,
    InvalidRecordError,
    build_control_batch,
    decode_batch_records,
    parse_batch_header,
    validate_batches,
)

__all__ = ["LOG_START_OFFSET_FILE", "AppendInfo", "PartitionLog", "wall_clock_ms"]

logger = logging.getLogger("suoi.log")

_T = TypeVar("_T")


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


class AppendInfo(NamedTuple):
    """What a Produce response needs to report about a successful append (a NamedTuple: one is
    built per append, and a frozen dataclass's ``__init__`` costs a ``__setattr__`` per field)."""

    base_offset: int
    last_offset: int
    log_append_time_ms: int  # -1 for CreateTime topics
    log_start_offset: int
    max_timestamp: int
    record_count: int


_new_info = tuple.__new__  # an AppendInfo without NamedTuple's Python-level __new__


class PartitionLog:
    """Append-only, segmented log of a single partition (use ``open``)."""

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
        self.on_corrupt: Callable[[PartitionLog, CorruptBatch], None] | None = None
        self._log_end_offset = segments[-1].next_offset
        self._log_start_offset = log_start_offset
        #: Last offset (exclusive) visible to consumers: the log end offset after every append
        #: with ``hw_follows_leo`` (default), else owned by replication (``set_high_watermark``).
        self._high_watermark = self._log_end_offset
        self.hw_follows_leo = hw_follows_leo
        self._unflushed_messages = 0
        self._last_flush_ms = now_ms()
        self._unflushed_segments: list[LogSegment] = []
        #: Everything below it is on disk: recovery re-checks from it. The ``recovery-point`` file
        #: holds ``_recovery_point_persisted``, which trails it (``checkpoint_recovery_point``).
        self._recovery_point = 0 if empty else read_recovery_point(directory)
        self._recovery_point_persisted = self._recovery_point
        #: Idempotent producers' recent batches (KIP-98), rebuilt from snapshot + log tail.
        self.producer_state = ProducerStateManager(config.producer_id_expiration_ms)
        if not empty:
            self._rebuild_producer_state()
        #: Leader epoch -> start offset (KIP-101), the ``leader-epoch-checkpoint`` file.
        self.leader_epoch_cache: LeaderEpochCache = (
            LeaderEpochCache(directory / LEADER_EPOCH_CHECKPOINT) if empty
            else load_or_rebuild(directory, segments, log_start_offset, self._log_end_offset))

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
    ) -> PartitionLog:
        """Open (creating if needed) and recover the log in ``directory``.

        Sealed segments are trusted if their indexes are consistent; the last
        segment is always fully re-scanned because an unclean shutdown can
        only have torn its tail.  If recovery truncates a sealed segment, all
        later segments are dropped: their offsets no longer follow on.
        """
        empty = never_written(directory)
        segments, log_start = recover_segments(directory, topic, partition, config, empty=empty)
        return cls(directory, topic, partition, config, segments, log_start, now_ms, hw_follows_leo=hw_follows_leo,
                   empty=empty)

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
        return txns.last_stable_offset(self.producer_state, self._high_watermark, self._log_start_offset)

    @property
    def size_in_bytes(self) -> int:
        return sum(s.size for s in self._segments)

    @property
    def segments(self) -> Sequence[LogSegment]:
        return tuple(self._segments)

    @property
    def _active(self) -> LogSegment:
        return self._segments[-1]

    # ------------------------------------------------------------------ writes

    def append(self, records: bytes | bytearray | memoryview, *, leader_epoch: int | None = None) -> AppendInfo:
        """Validate, assign offsets to and append a produced records blob.

        With ``leader_epoch`` (a leader's append) each batch's partitionLeaderEpoch is
        stamped with it and the epoch is assigned in the leader-epoch cache at the first
        offset written; None leaves the batches' field as the client sent it.
        Raises the ``suoi.protocol.records`` validation errors before touching
        the log, or ``KafkaStorageError`` if the disk write fails (the log is
        then unchanged).
        """
        cfg = self._config
        headers = validate_batches(records, max_batch_bytes=cfg.max_message_bytes)
        codec = COMPRESSION_TYPES[cfg.compression_type]
        if codec is not None:  # compression.type other than "producer": store with that codec
            recompressed = recompress_batches(records, headers, codec)
            if recompressed is not None:
                records = recompressed
                headers = validate_batches(records, max_batch_bytes=cfg.max_message_bytes)
        if cfg.compacts:
            self._require_keys(records, headers)
        now = self._now_ms()
        if headers[0].producer_id >= 0:
            if len(headers) > 1:
                raise InvalidRecordError("an idempotent producer must send one batch per partition per request")
            duplicate = self.producer_state.check(headers[0])
            if duplicate is not None:
                # A retry of a batch already in the log: answer with its original offsets.
                return AppendInfo(duplicate.first_offset, duplicate.last_offset, -1,
                                  self._log_start_offset, duplicate.timestamp, 0)
        return self._write(records, headers, now, leader_epoch)

    def append_control(
        self, producer_id: int, producer_epoch: int, commit: bool, coordinator_epoch: int,
        *, leader_epoch: int | None = None,
    ) -> AppendInfo:
        """Write a COMMIT (``commit``) or ABORT marker ending ``producer_id``'s transaction.

        Raises ``InvalidProducerEpochError`` for an epoch older than the producer's
        (a newer one is accepted and becomes current) and
        ``TransactionCoordinatorFencedError`` for a coordinator epoch older than the last
        marker's. An ABORT of a transaction with data here adds an entry to the
        ``.txnindex`` of the segment holding the marker. See ``log/transactions.py``.
        """
        self.producer_state.check_marker(producer_id, producer_epoch, coordinator_epoch)
        now = self._now_ms()
        data = build_control_batch(producer_id=producer_id, producer_epoch=producer_epoch, commit=commit,
                                   coordinator_epoch=coordinator_epoch, timestamp_ms=now)
        return self._write(data, [parse_batch_header(data)], now, leader_epoch)

    def append_as_follower(self, records: bytes | bytearray | memoryview) -> AppendInfo:
        """Append batches fetched from the leader keeping their offsets, timestamps and leader
        epochs (a follower's write); checks and errors: ``truncation.validate_replica_batches``
        (the log is then unchanged). Producer state is updated without sequence checks."""
        headers, placements = truncation.validate_replica_batches(
            records, log_end_offset=self._log_end_offset, max_batch_bytes=self.config.max_message_bytes,
            allow_gaps=self.config.compacts)
        now = self._now_ms()
        first = placements[0][1]
        # stored as received (offsets, epochs kept): no copy, unless handed a memoryview
        self._place(records if not isinstance(records, memoryview) else bytes(records), headers, placements, now)
        for h in headers:
            if h.partition_leader_epoch > self.leader_epoch_cache.latest_epoch:
                self.leader_epoch_cache.assign(h.partition_leader_epoch, h.base_offset)
        return AppendInfo(base_offset=first, last_offset=self._log_end_offset - 1, log_append_time_ms=-1,
                          log_start_offset=self._log_start_offset, max_timestamp=max(p[3] for p in placements),
                          record_count=sum(h.records_count for h in headers))

    def _write(self, records: bytes | bytearray | memoryview, headers: list[BatchHeader], now: int,
               leader_epoch: int | None = None) -> AppendInfo:
        """Assign offsets to validated batches (stamping ``leader_epoch``), then ``_place`` them.

        Nothing is copied: each batch is written as its rewritten first bytes (`STAMP`: base
        offset, length, leader epoch - outside the CRC) followed by a view of the rest as
        received; for LogAppendTime topics the rewritten part is the whole header, with the CRC
        recomputed over it and the records (`log_append_time_header`)."""
        if leader_epoch is not None and leader_epoch < 0:
            raise ValueError(f"leader epoch must be >= 0, got {leader_epoch}")
        append_time = self._config.log_append_time
        view = memoryview(records)
        stamp = STAMP.pack
        parts: list[bytes | bytearray | memoryview] = []
        placements: list[BatchPlacement] = []
        first_offset = next_offset = self._log_end_offset
        pos = 0
        max_ts = -1
        count = 0
        for h in headers:
            base = next_offset
            epoch = h.partition_leader_epoch if leader_epoch is None else leader_epoch
            size = h.size
            if append_time:
                parts.append(log_append_time_header(view, pos, h, base, epoch, now))
                parts.append(view[pos + HEADER_SIZE:pos + size])
                ts = now
            else:
                parts.append(stamp(base, h.batch_length, epoch))
                parts.append(view[pos + STAMP_SIZE:pos + size])
                ts = h.max_timestamp
            next_offset = base + h.last_offset_delta + 1
            placements.append((pos, base, next_offset - 1, ts, size))
            if ts > max_ts:
                max_ts = ts
            count += h.records_count
            pos += size
        self._place(records, headers, placements, now, parts)
        if leader_epoch is not None:
            self.leader_epoch_cache.assign(leader_epoch, first_offset)
        return _new_info(AppendInfo, (first_offset, next_offset - 1, now if append_time else -1,
                                       self._log_start_offset, max_ts, count))

    def _place(self, buf: bytes | bytearray | memoryview, headers: list[BatchHeader], placements: list[BatchPlacement],
               now: int, parts: list[bytes | bytearray | memoryview] | None = None) -> None:
        """Write offset-assigned batches: roll if due, append, update producer state, LEO/HW, markers.

        ``buf`` holds the batches as stored, or (a leader's append) as received with ``parts``
        the bytes to store (`_write`): their positions and sizes are the same, and what is read
        back from ``buf`` (control records) is not rewritten by the stamping."""
        cfg = self._config
        next_offset = placements[-1][2] + 1
        epochs = self.leader_epoch_cache
        if epochs.stale:
            epochs.flush()  # the checkpoint covers every batch stored
        size = len(buf)
        seg = self._segments[-1]
        if seg.should_roll(size, next_offset - 1, now, cfg.segment_bytes, cfg.segment_ms):
            seg = self._roll()
        seg.append_parts([buf] if parts is None else parts, size, placements, now)
        producers = self.producer_state
        count = 0
        markers = False
        for h, (_, base, last, ts, _) in zip(headers, placements, strict=True):
            count += h.records_count
            if h.producer_id >= 0:  # else there is no producer state to keep
                producers.update(h, base, last, ts)
                markers = markers or bool(h.attributes & CONTROL_BIT)
        self._log_end_offset = next_offset
        if self.hw_follows_leo:
            self._high_watermark = next_offset
        if markers:  # after every batch's update, as before (append_control; clients may send one too)
            for h, (rel, base, *_) in zip(headers, placements, strict=True):
                if h.attributes & CONTROL_BIT:
                    txns.apply_control(producers, seg, buf, rel, h, base)
        self._unflushed_messages += count
        if cfg.flush_interval_messages is not None and self._unflushed_messages >= cfg.flush_interval_messages:
            self.flush()

    def set_high_watermark(self, high_watermark: int) -> int:
        """Set (replication layer) the high watermark, clamped to [log start, log end]."""
        self._high_watermark = min(max(high_watermark, self._log_start_offset), self._log_end_offset)
        return self._high_watermark

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
        self._log_end_offset = self._active.next_offset
        self._high_watermark = min(self._high_watermark, self._log_end_offset)
        if self._recovery_point > self._log_end_offset:  # what is rewritten there is not on disk yet
            self._set_recovery_point(self._log_end_offset)
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
        self._log_start_offset = self._log_end_offset = self._high_watermark = offset
        self._persist_log_start_offset()
        self._set_recovery_point(offset)
        self.leader_epoch_cache.clear()
        for stale in snapshot_offsets(self.directory):
            (self.directory / f"{stale:020d}{SNAPSHOT_SUFFIX}").unlink(missing_ok=True)
        self.producer_state.truncate_to(offset)
        self._rebuild_producer_state()

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
        return new

    def flush(self) -> None:
        """fsync everything written since the last flush."""
        try:
            for seg in (*self._unflushed_segments, self._active):
                if not seg.closed:
                    seg.flush()
        except OSError as e:
            raise KafkaStorageError(e.errno, f"fsync of {self.directory} failed: {e.strerror}") from e
        self._unflushed_segments.clear()
        self._unflushed_messages = 0
        self._last_flush_ms = self._now_ms()
        self._recovery_point = self._log_end_offset  # persisted by `checkpoint_recovery_point`

    def checkpoint_recovery_point(self) -> bool:
        """Persist the recovery point if a flush moved it; returns whether it wrote.

        Not done per flush (a temp file, an fsync and a rename per partition each time, as
        costly as the flush itself with flush.messages=1): as Kafka's
        log.flush.offset.checkpoint.interval.ms, the log manager calls this periodically and
        ``close`` does. A persisted point that trails only makes recovery re-check more.
        """
        if self._recovery_point == self._recovery_point_persisted:
            return False
        self._set_recovery_point(self._recovery_point)
        return True

    def _set_recovery_point(self, offset: int) -> None:
        """Persist ``offset`` now (at once when it moves down: truncation rewrites below it)."""
        write_recovery_point(self.directory, offset)
        self._recovery_point = self._recovery_point_persisted = offset

    def maybe_flush(self, now_ms: int) -> bool:
        """Honour ``flush.ms``; returns whether a flush happened."""
        interval = self.config.flush_interval_ms
        if interval is None or self._unflushed_messages == 0 or now_ms - self._last_flush_ms < interval:
            return False
        self.flush()
        return True

    # ------------------------------------------------------------------ reads

    def read(
        self, offset: int, max_bytes: int, *, max_offset: int | None = None, min_one_batch: bool = True
    ) -> bytes | memoryview:
        """Whole batches starting with the one containing ``offset`` (bytes, or a read-only
        view of them: the read may have taken a partial batch after them, see ``log_reads``).

        Stops before any batch reaching ``max_offset`` (default: the high
        watermark) and within ``max_bytes`` - except that with
        ``min_one_batch`` the first batch is returned whatever its size, as
        Kafka does so that a consumer can never get stuck.  May span segments.
        Raises ``OffsetOutOfRangeError`` outside [log start, log end].
        """
        parts = self._walk(offset, max_bytes, max_offset, min_one_batch, log_reads.read_bytes)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def read_records(
        self, offset: int, max_bytes: int, *, max_offset: int | None = None, min_one_batch: bool = True,
        next_offset: bool = False,
    ) -> tuple[bytes | memoryview | FileRecords, int]:
        """What ``read`` selects, for a Fetch answer: ``(records, offset after them)`` (that offset
        only with ``next_offset``, for read_committed; else -1). Records of a segment that were
        verified before and reach ``log_reads.SENDFILE_MIN_BYTES`` are a pinned file region (a
        `FileRecords`, sent by ``sendfile``), else checked bytes."""
        taken = self._walk(offset, max_bytes, max_offset, min_one_batch, log_reads.take_records)
        following = offset if next_offset else -1
        if next_offset:
            for chunk, nxt in taken:
                following = nxt if nxt is not None else txns.next_offset_after(chunk, following)  # type: ignore[arg-type]
        if len(taken) == 1 and not isinstance(taken[0][0], FileRegion):
            return taken[0][0], following  # type: ignore[return-value]
        if not any(isinstance(chunk, FileRegion) for chunk, _ in taken):
            return b"".join(chunk for chunk, _ in taken), following  # type: ignore[misc]
        return FileRecords([chunk for chunk, _ in taken]), following

    def read_regions(
        self, offset: int, max_bytes: int, *, max_offset: int | None = None, min_one_batch: bool = True
    ) -> log_reads.Regions:
        """Same selection as ``read`` but as ``(fd, position, length)`` file regions,
        for a zero-copy ``sendfile`` path.  Only batch headers are read once the batches are
        verified (the first read of a range reads and checks its data).  The fds
        belong to the segments and stay open (pinned) until ``release()`` of the result: send
        them first, and before the next retention/deletion."""
        taken = self._walk(offset, max_bytes, max_offset, min_one_batch, log_reads.read_region)
        return log_reads.Regions([region for region, _ in taken], [file for _, file in taken])

    def _walk(self, offset: int, max_bytes: int, max_offset: int | None, min_one_batch: bool, take: Take[_T]) -> list[_T]:
        """Visit segments from the one holding ``offset`` while budget remains."""
        if offset < self._log_start_offset or offset > self._log_end_offset:
            raise OffsetOutOfRangeError(
                f"offset {offset} is out of range [{self._log_start_offset}, {self._log_end_offset}] "
                f"for {self.topic}-{self.partition}"
            )
        limit = self._high_watermark if max_offset is None else max_offset
        return log_reads.walk(self._segments, self._bases, offset, max_bytes, limit, min_one_batch, take,
                              self.report_corrupt)

    def report_corrupt(self, bad: CorruptBatch) -> None:
        """A read, recovery or the scrubber found ``bad``: tell ``on_corrupt`` (replication)."""
        hook = self.on_corrupt
        if hook is not None:
            hook(self, bad)

    def first_corrupt(self) -> CorruptBatch | None:
        """The lowest bad batch known in this log (found by recovery, reads or the scrubber)."""
        for seg in self._segments:
            if seg.corrupt:
                return seg.corrupt[min(seg.corrupt)]
        return None

    def aborted_transactions(self, fetch_offset: int, upper_bound: int) -> list[AbortedTxn]:
        """Aborted transactions overlapping ``[fetch_offset, upper_bound)``, for a
        read_committed fetch (Kafka's collectAbortedTxns)."""
        return txns.collect_aborted(self._segments, self._bases, fetch_offset, upper_bound)

    def describe_producers(self) -> list[ProducerView]:
        """DescribeProducers: id, epoch, last sequence/timestamp, coordinator epoch and the
        ongoing transaction's first offset (-1) of every producer known here."""
        return self.producer_state.describe()

    def offset_for_timestamp(self, timestamp_ms: int) -> tuple[int, int] | None:
        """``(offset, timestamp)`` of the first record with timestamp >= target.

        Batch headers (via the time index) find the batch; only that one batch
        is decoded to find the record, as Kafka does. None if no such record
        exists below the high watermark.
        """
        return log_reads.offset_for_timestamp(self._segments, timestamp_ms, self._log_start_offset, self._high_watermark)

    def max_timestamp(self) -> tuple[int, int]:
        """``(timestamp, offset)`` for ListOffsets MAX_TIMESTAMP; (-1, -1) if empty.

        The offset is that of the first record carrying the max timestamp (Kafka 3.7.1+,
        KAFKA-16310): segment and time index find the first batch whose max it is, and only
        that batch is decoded (the first offset for LogAppendTime batches, whose records all
        share it). A rare admin query: appends and fetches never decode records.
        """
        return log_reads.max_timestamp(self._segments, self._log_start_offset)

    # ------------------------------------------------------------------ deletion

    def _require_keys(self, records: bytes | bytearray | memoryview, headers: list[BatchHeader]) -> None:
        """Compacted topics reject null keys, as Kafka does (decodes records, so compact topics only)."""
        pos = 0
        for h in headers:
            if not h.is_control and any(r.key is None for r in decode_batch_records(records, pos, h)):
                raise InvalidRecordError(
                    f"Compacted topic cannot accept message without key in topic partition {self.topic}-{self.partition}."
                )
            pos += h.size

    def replace_segments(self, old: Sequence[LogSegment], new: LogSegment) -> None:
        """Log-cleaner hook: ``old`` (consecutive, sealed, files already gone) become ``new``."""
        i = self._segments.index(old[0])
        assert self._segments[i : i + len(old)] == list(old), "cleaned segments must be consecutive"
        self._segments[i : i + len(old)] = [new]
        new.contiguous = False  # compaction leaves gaps between batches
        self._bases[i : i + len(old)] = [new.base_offset]
        # Aborted records are kept by the cleaner, so their index entries move along.
        # (A crash after the old files are deleted and before this loses these entries.)
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

    def _persist_log_start_offset(self) -> None:
        write_log_start_offset(self.directory, self._log_start_offset)

    def close(self) -> None:
        try:
            # An empty log has no producers to remember. A stale leader-epoch checkpoint is not
            # written either: it lacks only an epoch that wrote nothing (see assign(durable=False)).
            if self._log_end_offset > 0:
                write_snapshot(self.directory, self._log_end_offset, self.producer_state)
        except (OSError, KafkaStorageError) as e:
            logger.warning("%s-%d: cannot write producer snapshot: %s", self.topic, self.partition, e)
        try:
            self.checkpoint_recovery_point()
        except KafkaStorageError as e:
            logger.warning("%s-%d: cannot write the recovery point: %s", self.topic, self.partition, e)
        for seg in self._segments:
            seg.close()

    def _rebuild_producer_state(self) -> None:
        """Producer snapshot + log-tail replay (``recovery.rebuild_producer_state``)."""
        rebuild_producer_state(
            self.directory, self._segments, self.producer_state, self._log_end_offset, self._log_start_offset
        )

    def expire_producers(self, now_ms: int) -> int:
        """Forget idle producer ids (producer.id.expiration.ms)."""
        return self.producer_state.expire(now_ms)

    def delete(self) -> None:
        """Close and remove the whole partition directory."""
        self.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __repr__(self) -> str:
        return (
            f"PartitionLog({self.topic}-{self.partition}, start={self._log_start_offset}, "
            f"end={self._log_end_offset}, segments={len(self._segments)})"
        )
