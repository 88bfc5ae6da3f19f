"""Log compaction (``cleanup.policy=compact``), with Kafka's semantics.

A compacted log keeps, for every key, at least its latest record.  The log is
split by the *first dirty offset* (persisted in the cleaner checkpoint) into a
clean head, already compacted, and a dirty tail.  A cleaning pass:

1. picks the cleanable range: sealed segments only (never the active one),
   ending at the first segment holding records younger than
   ``min.compaction.lag.ms``; it runs when dirty bytes / cleanable bytes
   exceeds ``min.cleanable.dirty.ratio``, when the first dirty segment is older
   than ``max.compaction.lag.ms``, or when a tombstone's delete horizon passed;
2. builds an offset map key -> latest offset over the dirty segments;
3. rewrites every segment from the start of the log to the end of that range,
   grouped into runs of at most ``segment.bytes``, keeping a record only if no
   later record has the same key.  Records keep their offsets.  Batches whose
   records all survive are copied byte for byte; others are re-encoded with
   the same codec, producer id/epoch/base sequence, timestamp type and last
   offset (Kafka keeps the last offset so that consumers and producer state
   see the same batch range).

Tombstones (null values) survive their first cleaning: the rewritten batch
gets the delete-horizon attribute (KIP-534, baseTimestamp = now +
``delete.retention.ms``); a later cleaning after that time drops them.
Null-key records are dropped (Kafka rejects them on produce).  Records of
aborted transactions (from the abort indexes, ``cleaner_txn``) are dropped and
never count as a key's latest value; the range ends below the last stable
offset, so every other transaction in it committed.  Control
batches are always kept (simplification: Kafka also drops markers of
emptied transactions after the horizon).  A batch whose records are all
dropped disappears, except the last batch of an active idempotent producer
and the last batch of each rewritten group, which stay as header-only empty
batches (the first so a restart rebuilds producer sequences, the second so a
cleaned segment always ends where its originals did - see ``cleaner_files``).

Threading: ``plan`` and ``commit`` run on the event-loop thread (they touch
the ``PartitionLog``); ``build`` may run in a worker thread - it reads the
planned sealed segments through its own file descriptors and writes only
``.cleaned`` files.  ``commit`` discards the result if the log's segments
changed meanwhile; its fsyncs may run on a thread (``cleaner_swap``).  ``build`` paces itself
(``cleaner_pace``): Kafka's I/O throttle, and a release of the GIL once per switch interval so
the event loop need not wait one out.

CPU: both passes read each record's offset and key only (``protocol.record_keys``), never a
record object; batches are read in place from the segment chunk and a batch kept whole is
written from it as read; a batch that lost records copies its kept records' bytes
(``record_keys.rebuild``).  The output is byte for byte what decoding and ``build_batch`` give.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from itertools import chain
from itertools import count as count_from

from suoi.log import cleaner_files as files
from suoi.log.cleaner_pace import IoThrottle, Pace
from suoi.log.cleaner_plan import CleanGroup, CleanPlan, CleanResult, PlannedSegment
from suoi.log.cleaner_swap import commit_steps, run_steps
from suoi.log.cleaner_txn import AbortedRanges
from suoi.log.partition_log import PartitionLog
from suoi.log.segment import BatchPlacement, LogSegment
from suoi.protocol.record_keys import decode_kept, rebuild, record_keys
from suoi.protocol.records import HEADER_SIZE, BatchHeader, SimpleRecord, build_batch, parse_batch_header

__all__ = ["CleanPlan", "CleanResult", "LogCleaner"]

logger = logging.getLogger("suoi.log.cleaner")

_READ_CHUNK = 8 * 1024 * 1024
_WRITE_CHUNK = 1024 * 1024
_INT32_MAX = 2**31 - 1


class LogCleaner:
    """Compacts ``PartitionLog``s; one instance may serve every log."""

    def __init__(self, *, max_map_entries: int = 2_000_000, io_max_bytes_per_s: float = math.inf) -> None:
        #: Bounds the offset map (Kafka's dedupe buffer); a pass that would
        #: exceed it stops at a segment boundary and the rest waits.
        self.max_map_entries = max_map_entries
        #: ``log.cleaner.io.max.bytes.per.second``: bytes read and written by ``build`` (``cleaner_pace``);
        #: dynamic, read by a build in progress too.
        self.io_throttle = IoThrottle(io_max_bytes_per_s)

    @property
    def io_max_bytes_per_s(self) -> float:
        return self.io_throttle.bytes_per_s

    @io_max_bytes_per_s.setter
    def io_max_bytes_per_s(self, rate: float) -> None:
        self.io_throttle.bytes_per_s = rate

    def stop(self) -> None:
        """The node stops: a build sleeping in the throttle gives up (``CleanerStopped``)."""
        self.io_throttle.stopped = True

    # ------------------------------------------------------------------ phase 1

    def plan(self, log: PartitionLog, now_ms: int, *, force: bool = False) -> CleanPlan | None:
        """Event-loop thread: choose what to clean, or None if nothing is due.

        ``force`` ignores the dirty ratio (but still honours the lag and the
        active segment).
        """
        cfg = log.config
        if not cfg.compacts:
            return None
        segs = log.segments
        cp = files.read_checkpoint(log.directory)
        first_dirty = cp.first_dirty_offset
        if first_dirty < log.log_start_offset or first_dirty > log.log_end_offset:
            first_dirty = log.log_start_offset
        # never at or above the last stable offset (<= the high watermark): an open transaction may abort
        limit = min(segs[-1].base_offset, log.last_stable_offset)
        lag = cfg.min_compaction_lag_ms
        cleanable: list[LogSegment] = []
        for seg in segs[:-1]:
            if seg.next_offset > limit:
                break
            if lag > 0 and seg.next_offset > first_dirty and seg.largest_timestamp > now_ms - lag:
                break
            cleanable.append(seg)
        if not cleanable or all(s.size == 0 for s in cleanable):
            return None
        dirty = [s for s in cleanable if s.next_offset > first_dirty]
        dirty_bytes = sum(s.size for s in dirty)
        total = sum(s.size for s in cleanable)
        due = force or (dirty_bytes > 0 and dirty_bytes / total > cfg.min_cleanable_dirty_ratio)
        if not due and dirty and cfg.max_compaction_lag_ms is not None:
            h = dirty[0].header_at_offset(dirty[0].base_offset)
            due = h is not None and now_ms - h.max_timestamp > cfg.max_compaction_lag_ms
        if not due and 0 <= cp.delete_horizon_ms <= now_ms:
            due = True
        if not due:
            return None
        planned: list[PlannedSegment] = []
        try:
            for seg in cleanable:
                fd = os.open(seg.log_path, os.O_RDONLY)
                planned.append(PlannedSegment(seg, seg.base_offset, seg.next_offset, seg.size, fd))
        except OSError:
            for p in planned:
                os.close(p.fd)
            raise
        producers = {
            pid: e.batches[-1].last_offset for pid, e in log.producer_state.producers.items() if e.batches
        }
        aborted = list(chain.from_iterable(s.txn_index.entries for s in segs))  # no per-entry work here
        return CleanPlan(
            directory=log.directory, name=f"{log.topic}-{log.partition}", segments=planned,
            first_dirty_offset=first_dirty, now_ms=now_ms, delete_retention_ms=cfg.delete_retention_ms,
            segment_bytes=cfg.segment_bytes, index_interval_bytes=cfg.index_interval_bytes,
            producer_last_offsets=producers, aborted_txns=aborted,
        )  # fmt: skip

    # ------------------------------------------------------------------ phase 2

    def build(self, plan: CleanPlan) -> CleanResult:
        """Any thread: write the cleaned segments as ``.cleaned`` files.

        Closes the plan's descriptors.  On failure nothing is left behind.
        """
        groups: list[CleanGroup] = []
        try:
            aborted = AbortedRanges(plan.aborted_txns, plan.segments[0].base_offset, plan.segments[-1].next_offset)
            pace = Pace(self.io_throttle)
            offset_map, end = self._build_offset_map(plan, aborted, pace)
            segs = [s for s in plan.segments if s.next_offset <= end]
            ctx = _Filter(plan, offset_map, aborted)
            for run in _group_by_size(segs, plan.segment_bytes):
                group = CleanGroup(run[0].base_offset, [s.segment for s in run])
                groups.append(group)
                if not self._clean_group(plan, run, ctx, group, pace):
                    groups.pop()
            files.crash_hook("built")
            return CleanResult(
                plan, groups, end, ctx.min_horizon, ctx.removed,
                sum(g.bytes_in for g in groups), sum(g.bytes_out for g in groups),
            )  # fmt: skip
        except BaseException:
            for g in groups:
                files.remove_cleaned(plan.directory, g.base_offset)
            raise
        finally:
            plan.close()

    def _build_offset_map(
        self, plan: CleanPlan, aborted: AbortedRanges, pace: Pace
    ) -> tuple[dict[bytes | None, int], int]:
        """key -> latest offset over the dirty segments (records of aborted transactions left
        out); returns (map, end of range)."""
        offset_map: dict[bytes | None, int] = {}  # None: never once built
        end = plan.first_dirty_offset
        for s in plan.segments:
            if s.next_offset <= plan.first_dirty_offset:
                end = s.next_offset
                continue
            if len(offset_map) >= self.max_map_entries and end > plan.first_dirty_offset:
                break
            for chunk, pos, h in _iter_batches(s, pace):
                if h.is_control or h.records_count == 0 or (
                    h.is_transactional and aborted.aborted(h.producer_id, h.base_offset)
                ):
                    continue
                rk = record_keys(chunk, pos, h)
                offset_map.update(zip(rk.keys, rk.offsets, strict=True))  # a null key lands under None: popped below
            offset_map.pop(None, None)
            end = s.next_offset
        return offset_map, end

    def _clean_group(
        self, plan: CleanPlan, run: list[PlannedSegment], ctx: _Filter, group: CleanGroup, pace: Pace
    ) -> bool:
        out = LogSegment.create(
            plan.directory, group.base_offset, index_interval_bytes=plan.index_interval_bytes, suffix=files.CLEANED
        )
        try:
            buf = bytearray()
            placements: list[BatchPlacement] = []
            last: BatchHeader | None = None
            last_kept = False
            for s in run:
                group.bytes_in += s.size
                for chunk, pos, h in _iter_batches(s, pace):
                    last = h
                    kept = ctx.filter(chunk, pos, h)
                    last_kept = kept is not None
                    if isinstance(kept, bytes):  # re-encoded
                        _add(buf, placements, kept)
                    elif kept is not None:  # written as read
                        placements.append((len(buf), h.base_offset, h.last_offset, h.max_timestamp, h.size))
                        buf += memoryview(chunk)[pos : pos + h.size]
                    if len(buf) >= _WRITE_CHUNK:
                        out.append(buf, placements, plan.now_ms)
                        pace.io(len(buf))
                        buf, placements = bytearray(), []
            if last is None:
                out.delete()
                return False
            if not last_kept:  # keep the group's end offset: header-only batch
                _add(buf, placements, _empty_batch(last))
            if buf:
                out.append(buf, placements, plan.now_ms)
                pace.io(len(buf))
            out.seal()
            out.flush()
            group.bytes_out = out.size
        finally:
            out.close()
        return True

    # ------------------------------------------------------------------ phase 3

    def commit(self, log: PartitionLog, result: CleanResult) -> bool:
        """Swap the cleaned segments in, every step on the caller's thread (tests, tools); False if
        the result was discarded (its files deleted): a segment it replaces is no longer part of
        the log - retention, DeleteRecords or topic deletion got there first. The broker runs the
        same steps with their fsyncs on a thread (`cleaner_swap.commit_steps`, `suoi.log_cleaning`)."""
        return run_steps(commit_steps(log, result))

    # ------------------------------------------------------------------ convenience

    def clean(self, log: PartitionLog, now_ms: int, *, force: bool = False) -> CleanResult | None:
        """All three phases synchronously (tests, tools); None if nothing was due."""
        plan = self.plan(log, now_ms, force=force)
        if plan is None:
            return None
        result = self.build(plan)
        return result if self.commit(log, result) else None


# ---------------------------------------------------------------------- helpers


def _iter_batches(s: PlannedSegment, pace: Pace) -> Iterator[tuple[bytes, int, BatchHeader]]:
    """Whole batches of a planned segment, read in chunks through its own fd: (chunk, position
    of the batch in it, header) - the batch is not copied out of its chunk."""
    pos = 0
    while pos < s.size:
        chunk = os.pread(s.fd, min(_READ_CHUNK, s.size - pos), pos)
        pace.io(len(chunk))
        p = 0
        while len(chunk) - p >= HEADER_SIZE:
            h = parse_batch_header(chunk, p)
            if h.size < HEADER_SIZE:
                raise OSError(f"corrupt batch at position {pos + p} of segment {s.base_offset}")
            if p + h.size > len(chunk):
                break
            yield chunk, p, h
            p += h.size
            pace.batch()  # releases the GIL once per switch interval
        if p == 0:
            if len(chunk) >= HEADER_SIZE and (h := parse_batch_header(chunk)).size <= s.size - pos:
                yield os.pread(s.fd, h.size, pos), 0, h  # a batch larger than the chunk
                p = h.size
            else:
                raise OSError(f"unreadable batch at position {pos} of segment {s.base_offset}")
        pos += p


def _add(buf: bytearray, placements: list[BatchPlacement], data: bytes) -> None:
    hdr = parse_batch_header(data)
    placements.append((len(buf), hdr.base_offset, hdr.last_offset, hdr.max_timestamp, len(data)))
    buf += data


def _empty_batch(h: BatchHeader) -> bytes:
    """Kafka's header-only batch: same offsets, producer fields and max timestamp, no records."""
    return build_batch(
        [], base_offset=h.base_offset, timestamp_ms=h.max_timestamp, producer_id=h.producer_id,
        producer_epoch=h.producer_epoch, base_sequence=h.base_sequence,
        partition_leader_epoch=h.partition_leader_epoch, is_transactional=h.is_transactional,
        is_control=h.is_control, log_append_time=h.timestamp_type == 1,
        last_offset_delta=h.last_offset_delta, max_timestamp=h.max_timestamp,
    )  # fmt: skip


def _group_by_size(segs: list[PlannedSegment], max_bytes: int) -> Iterator[list[PlannedSegment]]:
    """Consecutive segments whose total size fits ``segment.bytes`` (Kafka's groupSegmentsBySize)."""
    i = 0
    while i < len(segs):
        run = [segs[i]]
        size = segs[i].size
        i += 1
        while (
            i < len(segs)
            and size + segs[i].size <= max_bytes
            and segs[i].next_offset - 1 - run[0].base_offset <= _INT32_MAX
        ):
            size += segs[i].size
            run.append(segs[i])
            i += 1
        yield run


def _ts(r: SimpleRecord) -> int:
    return -1 if r.timestamp_ms is None else r.timestamp_ms


class _Filter:
    """Decides, batch by batch, what survives; counts removals and horizons."""

    def __init__(self, plan: CleanPlan, offset_map: dict[bytes | None, int], aborted: AbortedRanges) -> None:
        self.map = offset_map
        self.aborted = aborted
        self.now = plan.now_ms
        self.retention = plan.delete_retention_ms
        self.producers = plan.producer_last_offsets
        self.min_horizon = -1
        self.removed = 0

    def _note_horizon(self, horizon: int) -> None:
        if self.min_horizon < 0 or horizon < self.min_horizon:
            self.min_horizon = horizon

    def _emptied(self, h: BatchHeader) -> bytes | None:
        """A batch all of whose records go: dropped, or header-only if it is its producer's last."""
        retain = h.producer_id >= 0 and self.producers.get(h.producer_id) == h.last_offset
        return _empty_batch(h) if retain else None

    def filter(self, chunk: bytes, pos: int, h: BatchHeader) -> BatchHeader | bytes | None:
        """What to write of the batch at ``pos`` of ``chunk``: ``h`` itself for the batch as read,
        a re-encoded batch, or None to drop it. Retention is decided from the records' offsets
        and keys alone (``record_keys``); a re-encoded batch copies its kept records' keys and
        values as read (``rebuild``), or decodes them if it cannot."""
        if h.is_control:
            return h
        if h.is_transactional and self.aborted.aborted(h.producer_id, h.base_offset):
            self.removed += h.records_count
            return self._emptied(h)
        rk = record_keys(chunk, pos, h)
        has_horizon = h.has_delete_horizon
        nulls = rk.null_values
        drop_tombstones = bool(nulls) and has_horizon and self.now >= h.base_timestamp
        get = self.map.get
        # a record stays unless its key is null or a later record has the same key (-1: none)
        kept = [i for i, key, offset in zip(count_from(), rk.keys, rk.offsets) if key is not None and get(key, -1) <= offset]
        if drop_tombstones:
            kept = [i for i in kept if i not in nulls]
        count = len(rk.keys)
        self.removed += count - len(kept)
        tombstones = bool(nulls) and not set(nulls).isdisjoint(kept)
        horizon = h.base_timestamp if has_horizon else (self.now + self.retention if tombstones else None)
        if tombstones and horizon is not None:
            self._note_horizon(horizon)
        if len(kept) == count and (has_horizon or not tombstones):
            return h
        if not kept:
            return self._emptied(h)
        rebuilt = rebuild(rk, kept, h, horizon)
        if rebuilt is not None:
            return rebuilt
        records = decode_kept(rk, kept, h)  # headers or unusual varints: decode and build
        log_append = h.timestamp_type == 1
        return build_batch(
            records, base_offset=h.base_offset, producer_id=h.producer_id, producer_epoch=h.producer_epoch,
            base_sequence=h.base_sequence, partition_leader_epoch=h.partition_leader_epoch,
            is_transactional=h.is_transactional, log_append_time=log_append, compression=h.compression,
            keep_offsets=True, last_offset_delta=h.last_offset_delta,
            max_timestamp=h.max_timestamp if log_append else max(_ts(r) for r in records),
            delete_horizon_ms=horizon,
        )  # fmt: skip
