"""Transaction data: the states, their legal predecessors, and one transactional id's metadata.

No timers and no replies here: `machine.TxnStateMachine` owns those and mutates these
objects through `TxnMetadata.transition`, which refuses a transition Kafka would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from suoi.model.types import TopicPartition

from .types import MAX_PRODUCER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, TxnSnapshot


class TxnState(Enum):
    EMPTY = "Empty"
    ONGOING = "Ongoing"
    PREPARE_COMMIT = "PrepareCommit"
    PREPARE_ABORT = "PrepareAbort"
    COMPLETE_COMMIT = "CompleteCommit"
    COMPLETE_ABORT = "CompleteAbort"
    PREPARE_EPOCH_FENCE = "PrepareEpochFence"  # transient: never persisted, never seen at rest
    DEAD = "Dead"  # transient: the id is removed (tombstone) in the same step

    @classmethod
    def from_name(cls, name: str) -> TxnState | None:
        try:
            return cls(name)
        except ValueError:
            return None


S = TxnState

# Kafka's TransactionState.validPreviousStates
VALID_PREVIOUS: dict[TxnState, frozenset[TxnState]] = {
    S.EMPTY: frozenset({S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT}),
    S.ONGOING: frozenset({S.ONGOING, S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT}),
    S.PREPARE_COMMIT: frozenset({S.ONGOING}),
    S.PREPARE_ABORT: frozenset({S.ONGOING, S.PREPARE_EPOCH_FENCE}),
    S.COMPLETE_COMMIT: frozenset({S.PREPARE_COMMIT}),
    S.COMPLETE_ABORT: frozenset({S.PREPARE_ABORT}),
    S.PREPARE_EPOCH_FENCE: frozenset({S.ONGOING}),
    S.DEAD: frozenset({S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT}),
}

PREPARING = frozenset({S.PREPARE_COMMIT, S.PREPARE_ABORT})
COMPLETED = frozenset({S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT})  # no transaction open


def is_epoch_exhausted(epoch: int) -> bool:
    """Kafka keeps MAX_PRODUCER_EPOCH for fencing: a client never holds it."""
    return epoch >= MAX_PRODUCER_EPOCH - 1


class IllegalTransition(RuntimeError):
    """A bug: the machine tried a transition Kafka's state table forbids."""


@dataclass(slots=True, kw_only=True)
class TxnMetadata:
    transactional_id: str
    producer_id: int
    last_producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_PRODUCER_EPOCH
    last_producer_epoch: int = NO_PRODUCER_EPOCH
    timeout_ms: int
    state: TxnState = S.EMPTY
    partitions: set[TopicPartition] = field(default_factory=set)
    txn_start_ms: int = -1
    last_update_ms: int = -1
    #: The producer (current id and epoch) asked to add partitions or offsets after its last
    #: EndTxn(commit) and was told CONCURRENT_TRANSACTIONS (that transaction's markers were
    #: still being written): it has begun its next transaction, which holds nothing here yet.
    #: An EndTxn(abort) from it aborts that empty transaction, not the one ending. Persisted
    #: (suoi's field, not Kafka's) so the coordinator that takes the id over answers the same.
    next_txn_refused: bool = False

    def transition(self, new_state: TxnState) -> None:
        if self.state not in VALID_PREVIOUS[new_state]:
            raise IllegalTransition(f"{self.transactional_id}: {self.state.value} -> {new_state.value}")
        self.state = new_state

    def is_(self, *states: TxnState) -> bool:
        return self.state in states

    def sorted_partitions(self) -> tuple[TopicPartition, ...]:
        return tuple(sorted(self.partitions))

    def snapshot(self) -> TxnSnapshot:
        return TxnSnapshot(
            transactional_id=self.transactional_id,
            producer_id=self.producer_id,
            last_producer_id=self.last_producer_id,
            producer_epoch=self.producer_epoch,
            last_producer_epoch=self.last_producer_epoch,
            timeout_ms=self.timeout_ms,
            state=self.state.value,
            partitions=self.sorted_partitions(),
            txn_start_ms=self.txn_start_ms,
            last_update_ms=self.last_update_ms,
            next_txn_refused=self.next_txn_refused,
        )

    @classmethod
    def from_snapshot(cls, s: TxnSnapshot) -> TxnMetadata:
        state = TxnState.from_name(s.state)
        if state is None or state in (S.PREPARE_EPOCH_FENCE, S.DEAD):
            raise ValueError(f"transactional id {s.transactional_id!r}: cannot load state {s.state!r}")
        return cls(
            transactional_id=s.transactional_id,
            producer_id=s.producer_id,
            last_producer_id=s.last_producer_id,
            producer_epoch=s.producer_epoch,
            last_producer_epoch=s.last_producer_epoch,
            timeout_ms=s.timeout_ms,
            state=state,
            partitions=set(s.partitions),
            txn_start_ms=s.txn_start_ms,
            last_update_ms=s.last_update_ms,
            next_txn_refused=s.next_txn_refused,
        )
