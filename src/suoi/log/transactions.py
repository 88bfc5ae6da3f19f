"""Partition-log side of transactions (KIP-98): markers, the LSO and aborted-txn lookups.

Kept out of ``partition_log`` so that it only holds small hooks:

* ``apply_marker`` - a COMMIT/ABORT control batch was written (or is replayed on
  recovery) at ``offset`` in ``segment``: end the producer's ongoing transaction and,
  for an ABORT of a transaction that wrote data here, add an ``AbortedTxn`` to the
  segment's ``.txnindex``.
* ``apply_control`` / ``replay_control`` - decode a control batch being appended /
  stored (recovery) and apply it.
* ``last_stable_offset`` - Kafka's LSO on a node where the high watermark is the log
  end: the first offset of the oldest ongoing transaction, else the high watermark,
  never below the log start offset.
* ``collect_aborted`` - Kafka's collectAbortedTxns over the segments from the one
  holding the fetch offset, stopping once an entry's LSO covers the fetched range.
* ``next_offset_after`` - the offset after the last whole batch of fetched bytes.

The transaction coordinator is not here: it decides when to write markers and calls
``PartitionLog.append_control``.
"""

from __future__ import annotations

import logging
import os
import struct
from bisect import bisect_right
from collections.abc import Sequence

from suoi.log.errors import KafkaStorageError
from suoi.log.producer_state import ProducerStateManager
from suoi.log.segment import LogSegment
from suoi.log.txn_index import AbortedTxn
from suoi.protocol.records import HEADER_SIZE, LOG_OVERHEAD, BatchHeader, CorruptRecordError, decode_end_txn_marker

__all__ = ["apply_control", "apply_marker", "collect_aborted", "last_stable_offset", "next_offset_after", "replay_control"]

#: base offset, batch length, last offset delta of a batch header
_NEXT_OFFSET = struct.Struct(">qi11xi")

logger = logging.getLogger("suoi.log")


def apply_marker(
    state: ProducerStateManager, segment: LogSegment, *, producer_id: int, producer_epoch: int,
    coordinator_epoch: int, commit: bool, offset: int, timestamp: int,
) -> AbortedTxn | None:
    """Update producer state for a marker at ``offset`` (already in ``segment``).

    Returns the ``AbortedTxn`` written to the segment's transaction index, if any. A
    marker for a producer with no ongoing transaction here (Kafka writes markers to
    every partition of the transaction) changes only its epochs.
    """
    first = state.complete_txn(producer_id, producer_epoch, coordinator_epoch, timestamp)
    if commit or first < 0:
        return None
    others = state.first_unstable_offset(excluding=producer_id)
    txn = AbortedTxn(producer_id, first, offset, offset + 1 if others is None else others)
    try:
        segment.txn_index.append(txn)
    except OSError as e:
        raise KafkaStorageError(e.errno, f"cannot write {segment.txn_index.path}: {e.strerror}") from e
    return txn


def apply_control(
    state: ProducerStateManager, segment: LogSegment, buf: bytes | bytearray | memoryview, pos: int,
    h: BatchHeader, offset: int,
) -> AbortedTxn | None:
    """Decode the control batch ``h`` at ``pos`` of ``buf`` (written at ``offset`` in
    ``segment``) and apply it if it is a COMMIT/ABORT marker with a producer id."""
    if h.producer_id < 0:
        return None
    try:
        marker = decode_end_txn_marker(buf, pos, h)
    except CorruptRecordError as e:
        logger.warning("%s: unreadable control batch at offset %d: %s", segment.log_path, offset, e)
        return None
    if marker is None:
        return None
    return apply_marker(state, segment, producer_id=h.producer_id, producer_epoch=h.producer_epoch,
                        coordinator_epoch=marker.coordinator_epoch, commit=marker.commit,
                        offset=offset, timestamp=h.max_timestamp)


def replay_control(state: ProducerStateManager, segment: LogSegment, pos: int, h: BatchHeader) -> None:
    """Recovery: apply the stored control batch ``h`` at file position ``pos``."""
    apply_control(state, segment, os.pread(segment.fd, h.size, pos), 0, h, h.base_offset)


def last_stable_offset(state: ProducerStateManager, high_watermark: int, log_start_offset: int) -> int:
    if not state.ongoing_txns:  # the usual case, on every Fetch answer: no transaction open
        return high_watermark if high_watermark > log_start_offset else log_start_offset
    first = state.first_unstable_offset()
    lso = high_watermark if first is None else min(first, high_watermark)
    return max(lso, log_start_offset)


def collect_aborted(
    segments: Sequence[LogSegment], bases: Sequence[int], fetch_offset: int, upper_bound: int
) -> list[AbortedTxn]:
    """Aborted transactions overlapping ``[fetch_offset, upper_bound)``, in marker order."""
    out: list[AbortedTxn] = []
    if upper_bound <= fetch_offset:
        return out
    for i in range(max(bisect_right(bases, fetch_offset) - 1, 0), len(segments)):
        found, complete = segments[i].txn_index.collect(fetch_offset, upper_bound)
        out.extend(found)
        if complete:
            break
    return out


def next_offset_after(data: bytes | bytearray | memoryview, default: int) -> int:
    """Offset following the last complete batch of ``data`` (``default`` if none).

    Every read_committed fetch (librdkafka's default) asks this of the bytes it serves: the
    three header fields it needs come from one small struct, not a `BatchHeader` per batch."""
    end = default
    pos = 0
    n = len(data)
    unpack = _NEXT_OFFSET.unpack_from
    while n - pos >= HEADER_SIZE:
        base, length, last_delta = unpack(data, pos)
        size = length + LOG_OVERHEAD
        if length < HEADER_SIZE - LOG_OVERHEAD or pos + size > n:
            break
        end = base + last_delta + 1
        pos += size
    return end
