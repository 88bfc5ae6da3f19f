"""The append path of a `PartitionLog`: a leader's append (`append`, `append_control`) and a
follower's (`append_as_follower`), down to the segment write.

Split from ``partition_log.py`` as the path every produced batch takes, kept in one module so
its cost can be read at once: validation (``suoi.protocol.records``), offset assignment and
the stamping of each batch's first bytes (`_write`: a list of buffers for one ``writev``, no
payload copied), then `_place` (roll if due, `LogSegment.append_parts`, producer state,
LEO/HW, transaction markers, flush.messages). A follower skips the stamping: its batches
keep the leader's offsets and epochs (``truncation.validate_replica_batches``).
"""

from __future__ import annotations

from typing import NamedTuple

from suoi.log import transactions as txns
from suoi.log import truncation
from suoi.log.partition_log_state import LogState, Tail
from suoi.log.segment import BatchPlacement
from suoi.log.timestamp_bounds import check_timestamp_bounds
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

__all__ = ["AppendInfo", "LogAppend"]


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
_new_tail = tuple.__new__
#: a leader append up to this size is kept in memory as stored (`Tail`): the consumers parked at
#: the log end read it from there, not from the file (a copy of the append's bytes: small ones only)
TAIL_MAX_BYTES = 16 * 1024




class LogAppend(LogState):
    """Leader and follower appends of a partition's log (`PartitionLog` is the class to use)."""

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
        codec = cfg.recompression
        if codec is not None:  # compression.type other than "producer": store with that codec
            recompressed = recompress_batches(records, headers, codec)
            if recompressed is not None:
                records = recompressed
                headers = validate_batches(records, max_batch_bytes=cfg.max_message_bytes)
        if cfg.compacts:
            self._require_keys(records, headers)
        now = self._now_ms()
        if not cfg.log_append_time:
            check_timestamp_bounds(headers, now, cfg.message_timestamp_before_max_ms,
                                   cfg.message_timestamp_after_max_ms)
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
        (the log is then unchanged). Producer state is updated without sequence checks.
        ``records`` may be a view of the fetch answer's buffer: it is checked and written within
        this call and not kept (the segment write is synchronous), so it is not copied."""
        config = self._config
        headers, placements = truncation.validate_replica_batches(
            records, log_end_offset=self._log_end_offset, max_batch_bytes=config.max_message_bytes,
            allow_gaps=config.compacts)
        now = self._now_ms()
        self._place(records, headers, placements, now)  # stored as received (offsets, epochs kept): no copy
        epochs = self.leader_epoch_cache
        latest = epochs.latest_epoch
        count = 0
        max_ts = -1
        for h in headers:  # one pass (once per fetched partition): epochs, count, max timestamp
            if h.partition_leader_epoch > latest:
                epochs.assign(h.partition_leader_epoch, h.base_offset, durable=False)
                latest = epochs.latest_epoch
            count += h.records_count
            if h.max_timestamp > max_ts:
                max_ts = h.max_timestamp
        if epochs.stale:
            epochs.write()  # not here: written and fsynced off the loop (`LeaderEpochCache.write`)
        return _new_info(AppendInfo, (placements[0][1], self._log_end_offset - 1, -1, self._log_start_offset, max_ts,
                                      count))

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
        if pos <= TAIL_MAX_BYTES:  # kept as stored for the consumers parked at the log end (`read_records`)
            seg = self._segments[-1]
            self._tail = _new_tail(Tail, (first_offset, next_offset, b"".join(parts), len(headers), seg, seg.size))
        if leader_epoch is not None and self.leader_epoch_cache.assign(leader_epoch, first_offset, durable=False):
            self.leader_epoch_cache.write()
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
        self._tail = None
        epochs = self.leader_epoch_cache
        if epochs.stale:
            epochs.write()  # the checkpoint covers every batch stored (written off the loop, before a flush passes it)
        size = len(buf)
        seg = self._segments[-1]
        if seg.should_roll(size, next_offset - 1, now, cfg.segment_bytes, cfg.segment_ms):
            seg = self._roll()
        seg.append_parts([buf] if parts is None else parts, size, placements, now)
        self._log_end_offset = next_offset
        if self.hw_follows_leo:
            self._high_watermark = next_offset
        producers = self.producer_state
        count = 0
        for h, (rel, base, last, ts, _) in zip(headers, placements, strict=True):
            count += h.records_count
            if h.producer_id >= 0:  # else there is no producer state to keep
                if h.attributes & CONTROL_BIT:
                    # in log order: a marker ends its transaction before the batches after it in
                    # this chunk (a follower's fetch holds many) start the producer's next one
                    txns.apply_control(producers, seg, buf, rel, h, base)
                else:
                    producers.update(h, base, last, ts)
        self._unflushed_messages += count
        if cfg.flush_interval_messages is not None and self._unflushed_messages >= cfg.flush_interval_messages:
            self.flush()

    def _require_keys(self, records: bytes | bytearray | memoryview, headers: list[BatchHeader]) -> None:
        """Compacted topics reject null keys, as Kafka does (decodes records, so compact topics only)."""
        pos = 0
        for h in headers:
            if not h.is_control and any(r.key is None for r in decode_batch_records(records, pos, h)):
                raise InvalidRecordError(
                    f"Compacted topic cannot accept message without key in topic partition {self.topic}-{self.partition}."
                )
            pos += h.size

