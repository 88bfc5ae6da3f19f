"""What the log cleaner must know about transactions in the range it cleans (Kafka's
``CleanedTransactionMetadata``).

Records of an aborted transaction are not data: read_committed consumers never see them, so they
must never count as a key's latest value (else cleaning removes the key's committed value and the
key is gone for read_committed readers) -- Kafka's cleaner discards them. A transactional batch
whose COMMIT/ABORT marker lies beyond the cleaned range is undecided: it is kept as it is and does
not count either. (The cleaned range ends at the last stable offset, so a transaction still open
is never cleaned; a completed one may have its marker in the active segment.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from suoi.protocol.records import BatchHeader, decode_end_txn_marker

__all__ = ["TxnOutcomes", "scan_transactions"]


@dataclass(frozen=True, slots=True)
class TxnOutcomes:
    """Base offsets of the transactional data batches the cleaner treats specially."""

    aborted: frozenset[int]  # removed, never a key's latest value
    undecided: frozenset[int]  # kept byte for byte, never a key's latest value

    def skipped(self, base_offset: int) -> bool:
        """Whether the batch at ``base_offset`` stays out of the key -> latest offset map."""
        return base_offset in self.aborted or base_offset in self.undecided


NO_TRANSACTIONS = TxnOutcomes(frozenset(), frozenset())


def scan_transactions(batches: Iterable[tuple[bytes, BatchHeader]]) -> TxnOutcomes:
    """One pass over the range's batches (each ``(raw, header)``, in offset order): a producer's
    transactional batches since its last marker belong to the transaction that marker ends."""
    pending: dict[int, list[int]] = {}
    aborted: set[int] = set()
    for raw, h in batches:
        if not h.is_transactional:
            continue
        if not h.is_control:
            pending.setdefault(h.producer_id, []).append(h.base_offset)
            continue
        ended = pending.pop(h.producer_id, [])
        marker = decode_end_txn_marker(raw, 0, h)
        if marker is not None and not marker.commit:
            aborted.update(ended)
    if not aborted and not pending:
        return NO_TRANSACTIONS
    return TxnOutcomes(frozenset(aborted), frozenset(b for batches_ in pending.values() for b in batches_))
