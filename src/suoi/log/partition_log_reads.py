"""The read side of a `PartitionLog`: Fetch (`read`, `read_records` - checked bytes or a
pinned file region for ``sendfile`` -, `read_regions`), ListOffsets by timestamp, the aborted
transactions of a read_committed fetch, and what reads report of bad batches.

Split from ``partition_log.py`` as everything a consumer's request reaches: thin methods over
``log_reads`` (which walks the segments and checks each batch once), so the per-read cost is
that module's; none of them writes the log.
"""

from __future__ import annotations

from typing import Self, TypeVar

from suoi.log import log_reads
from suoi.log import transactions as txns
from suoi.log.batch_check import CorruptBatch
from suoi.log.errors import OffsetOutOfRangeError
from suoi.log.log_reads import Take
from suoi.log.partition_log_state import LogState
from suoi.log.producer_state import ProducerView
from suoi.log.regions import Regions
from suoi.log.txn_index import AbortedTxn
from suoi.protocol.file_records import FileRecords, FileRegion

__all__ = ["LogReads"]

_T = TypeVar("_T")


class LogReads(LogState):
    """Reads of a partition's log (`PartitionLog` is the class to use)."""

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
        `FileRecords`, sent by ``sendfile``), else checked bytes.

        A read of exactly the last leader append, still the log's tail (a consumer parked at the
        log end, woken by it), is served from that append's bytes as stored (`Tail`: the same
        bytes the file holds, checked when appended) when all of it may be read: no file read."""
        tail = self._tail
        if (tail is not None and offset == tail.base_offset and tail.end_offset == self._log_end_offset
                and offset >= self._log_start_offset
                and tail.end_offset <= (self._high_watermark if max_offset is None else max_offset)
                and (len(tail.data) <= max_bytes or (min_one_batch and tail.batches == 1))):
            seg = self._segments[-1]
            if seg is tail.segment and seg.size == tail.size:
                return tail.data, tail.end_offset if next_offset else -1
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
    ) -> Regions:
        """Same selection as ``read`` but as ``(fd, position, length)`` file regions,
        for a zero-copy ``sendfile`` path.  Only batch headers are read once the batches are
        verified (the first read of a range reads and checks its data).  The fds
        belong to the segments and stay open (pinned) until ``release()`` of the result: send
        them first, and before the next retention/deletion."""
        taken = self._walk(offset, max_bytes, max_offset, min_one_batch, log_reads.read_region)
        return Regions([region for region, _ in taken], [file for _, file in taken])

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

    def report_corrupt(self: Self, bad: CorruptBatch) -> None:
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

