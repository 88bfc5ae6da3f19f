"""Plain inputs and outputs of the transaction coordinator state machine.

Requests carry an opaque, hashable `token` chosen by the runtime; the machine answers each
with exactly one `Reply(token, api, data)` in the list returned by the same call (nothing
is parked). Effects come in the same list, in this order:

1. `PersistTxn` - append to `__transaction_state` (tombstone if `snapshot` is None);
2. `Reply` - send only once every `PersistTxn` before it in the list is durable;
3. `WriteMarkers` - start writing the markers, also only once the `PersistTxn`s are durable;
   when every partition has its marker, call `machine.markers_written(tid, now)`.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from suoi.model.types import TopicPartition

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
MAX_PRODUCER_EPOCH = 32767  # Short.MaxValue; clients are never given more than MAX - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class TxnConfig:
    max_timeout_ms: int = 900_000  # transaction.max.timeout.ms
    id_expiration_ms: int = 604_800_000  # transactional.id.expiration.ms (7 days)
    # transaction.abort.timed.out.transaction.cleanup.interval.ms. The machine itself keeps exact
    # per-transaction deadlines (see next_deadline()), so it does not need this; it is here so the
    # runtime's transaction settings live in one place (e.g. as an upper bound between polls).
    abort_check_interval_ms: int = 10_000


# ---------------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True, kw_only=True)
class InitProducerIdRequest:
    """`transactional_id` None: an idempotent producer (a fresh id, epoch 0, nothing kept).

    `producer_id`/`producer_epoch` (v3+, KIP-360) are the producer's current ones, or -1/-1.
    """

    token: Hashable
    transactional_id: str | None
    transaction_timeout_ms: int
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_PRODUCER_EPOCH


@dataclass(frozen=True, slots=True, kw_only=True)
class AddPartitionsRequest:
    """One transaction of AddPartitionsToTxn (v0-3 carry exactly one)."""

    token: Hashable
    transactional_id: str
    producer_id: int
    producer_epoch: int
    partitions: tuple[TopicPartition, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class AddOffsetsRequest:
    """AddOffsetsToTxn: `partition` is the group's `__consumer_offsets` partition (the runtime
    computes it); the machine adds it to the transaction like any other partition."""

    token: Hashable
    transactional_id: str
    producer_id: int
    producer_epoch: int
    group_id: str
    partition: TopicPartition


@dataclass(frozen=True, slots=True, kw_only=True)
class EndTxnRequest:
    token: Hashable
    transactional_id: str
    producer_id: int
    producer_epoch: int
    commit: bool


# --------------------------------------------------------------------------------- responses


@dataclass(frozen=True, slots=True, kw_only=True)
class InitProducerIdResult:
    error_code: int
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_PRODUCER_EPOCH


@dataclass(frozen=True, slots=True, kw_only=True)
class AddPartitionsResult:
    """One code per requested partition (all the same here: the runtime sets
    UNKNOWN_TOPIC_OR_PARTITION / OPERATION_NOT_ATTEMPTED itself before asking the machine)."""

    error_code: int
    results: tuple[tuple[TopicPartition, int], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AddOffsetsResult:
    error_code: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EndTxnResult:
    error_code: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicPartitions:
    topic: str
    partitions: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class TxnDescription:
    """One entry of DescribeTransactions."""

    transactional_id: str
    error_code: int
    state: str = ""  # Kafka's name: "Empty", "Ongoing", "PrepareCommit", ...
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_PRODUCER_EPOCH
    transaction_timeout_ms: int = 0
    transaction_start_time_ms: int = -1
    topics: tuple[TopicPartitions, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class TxnListing:
    transactional_id: str
    producer_id: int
    state: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ListTransactionsResult:
    transactions: tuple[TxnListing, ...]
    unknown_state_filters: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------- snapshots


@dataclass(frozen=True, slots=True, kw_only=True)
class TxnSnapshot:
    """What Kafka's TransactionLogValue holds (plus the transactional id): enough to rebuild
    the transaction after a restart or a coordinator move. `state` is Kafka's state name.
    `next_txn_refused` is suoi's (see `TxnMetadata`): kept so an abort of the producer's empty
    next transaction gets the same answer from the coordinator that takes the id over."""

    transactional_id: str
    producer_id: int
    last_producer_id: int
    producer_epoch: int
    last_producer_epoch: int
    timeout_ms: int
    state: str
    partitions: tuple[TopicPartition, ...] = ()
    txn_start_ms: int = -1
    last_update_ms: int = -1
    next_txn_refused: bool = False

    def to_dict(self) -> dict[str, Any]:
        extra = {"next_txn_refused": True} if self.next_txn_refused else {}  # absent: False
        return {
            "transactional_id": self.transactional_id,
            "producer_id": self.producer_id,
            "last_producer_id": self.last_producer_id,
            "producer_epoch": self.producer_epoch,
            "last_producer_epoch": self.last_producer_epoch,
            "timeout_ms": self.timeout_ms,
            "state": self.state,
            "partitions": [[tp.topic, tp.partition] for tp in self.partitions],
            "txn_start_ms": self.txn_start_ms,
            "last_update_ms": self.last_update_ms,
            **extra,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TxnSnapshot:
        return cls(
            transactional_id=str(d["transactional_id"]),
            producer_id=int(d["producer_id"]),
            last_producer_id=int(d.get("last_producer_id", NO_PRODUCER_ID)),
            producer_epoch=int(d["producer_epoch"]),
            last_producer_epoch=int(d.get("last_producer_epoch", NO_PRODUCER_EPOCH)),
            timeout_ms=int(d["timeout_ms"]),
            state=str(d["state"]),
            partitions=tuple(TopicPartition(str(t), int(p)) for t, p in d.get("partitions", ())),
            txn_start_ms=int(d.get("txn_start_ms", -1)),
            last_update_ms=int(d.get("last_update_ms", -1)),
            next_txn_refused=d.get("next_txn_refused") is True,
        )


# ------------------------------------------------------------------------------------ outputs


@dataclass(frozen=True, slots=True)
class Reply:
    token: Hashable
    api: str  # "InitProducerId" | "AddPartitionsToTxn" | "AddOffsetsToTxn" | "EndTxn"
    data: InitProducerIdResult | AddPartitionsResult | AddOffsetsResult | EndTxnResult


@dataclass(frozen=True, slots=True)
class PersistTxn:
    """Append this record to `__transaction_state` before sending the replies and starting
    the markers that come with it. `snapshot` None is a tombstone (the id expired)."""

    transactional_id: str
    snapshot: TxnSnapshot | None = field(default=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteMarkers:
    """Write a COMMIT (`commit`) or ABORT control record for `producer_id`/`producer_epoch` to
    each partition (WriteTxnMarkers), then call `markers_written(transactional_id, now)`."""

    transactional_id: str
    producer_id: int
    producer_epoch: int
    commit: bool
    partitions: tuple[TopicPartition, ...]
    coordinator_epoch: int


Output = Reply | PersistTxn | WriteMarkers
