"""What the log cleaner must know about transactions in the range it cleans (Kafka's
``collectAbortedTransactions`` and ``CleanedTransactionMetadata``).

Records of an aborted transaction are not data: read_committed consumers never see them, so they
must never count as a key's latest value (else cleaning removes the key's committed value and the
key is gone for read_committed readers) -- Kafka's cleaner discards them.

Which transactions aborted comes from the segments' abort indexes (``.txnindex``), as in Kafka,
not from a pass over the batches: ``plan`` copies, on the event-loop thread, every segment's
in-memory entry list (a C-level copy, no per-entry work, nothing read), and ``build`` keeps, on the
worker thread, the entries overlapping the cleaned range, wherever their marker lies -- in the
active segment too (Kafka's ``collectAbortedTransactions`` searches on past the range for the same
reason). The pass this replaces read every planned byte once more on the worker thread.

Every other transactional data batch in the range committed: the range ends at or below the last
stable offset, so every transaction with data in it has been decided, and a decided one without
an abort index entry committed (its marker may lie beyond the range: Kafka does not wait for it
either, nor does a read_committed fetch, which consults the same entries). The indexes are
trustworthy from the first open on: those written before the follower fix are rebuilt then
(`suoi.log.txn_upgrade`).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable

from suoi.log.txn_index import AbortedTxn

__all__ = ["AbortedRanges"]


class AbortedRanges:
    """The aborted transactions' offset ranges ``[first offset, marker offset]``, by producer.

    A producer's transactions never overlap one another (its next begins after its marker), so
    one bisection over its ranges' first offsets answers ``aborted``."""

    __slots__ = ("_firsts", "_lasts")

    def __init__(self, txns: Iterable[AbortedTxn] = (), start: int = 0, end: int = 2**63 - 1) -> None:
        """The transactions of ``txns`` that overlap the offsets ``[start, end)``."""
        ranges: dict[int, list[tuple[int, int]]] = {}
        for t in txns:
            if t.last_offset >= start and t.first_offset < end:
                ranges.setdefault(t.producer_id, []).append((t.first_offset, t.last_offset))
        self._firsts: dict[int, list[int]] = {}
        self._lasts: dict[int, list[int]] = {}
        for pid, rs in ranges.items():
            rs.sort()
            self._firsts[pid] = [f for f, _ in rs]
            self._lasts[pid] = [last for _, last in rs]

    def __bool__(self) -> bool:
        return bool(self._firsts)

    def aborted(self, producer_id: int, offset: int) -> bool:
        """Whether the transactional data batch of ``producer_id`` at ``offset`` was aborted."""
        firsts = self._firsts.get(producer_id)
        if firsts is None:
            return False
        i = bisect_right(firsts, offset) - 1
        return i >= 0 and offset <= self._lasts[producer_id][i]

