"""The transaction coordinator runtime: the sans-IO `txn` machine plus durability,
markers and timers.

- Transaction metadata is appended to `__transaction_state` (compacted; the partition is
  Kafka's abs(hash(transactional.id)) % transaction.state.log.num.partitions) before the
  replies that depend on it are sent, and replayed at start (COORDINATOR_LOAD_IN_PROGRESS
  until done; transactions caught in PrepareCommit/PrepareAbort are completed then).
- Commit/abort markers are written by this broker directly into each partition log
  (`PartitionLog.append_control`): on a single node every partition is local. A marker on
  a `__consumer_offsets` partition also publishes or drops the transaction's pending
  offsets in the group coordinator. Once all markers are written the machine is told, and
  it persists CompleteCommit/CompleteAbort.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from suoi.coordinator.group_coordinator import GroupCoordinator
from suoi.coordinator.records import OFFSETS_TOPIC, parse_txn, txn_key, txn_value
from suoi.coordinator.runtime import CoordinatorRuntime
from suoi.coordinator.txn import (
    TRANSACTION_STATE_TOPIC,
    PersistTxn,
    Reply,
    TxnConfig,
    TxnSnapshot,
    TxnStateMachine,
    WriteMarkers,
    txn_partition_for,
)
from suoi.coordinator.txn.producer_ids import ProducerIdManager
from suoi.log.errors import LogError
from suoi.log.manager import LogManager
from suoi.model import ErrorCode, TopicPartition
from suoi.protocol.records import BatchHeader, SimpleRecord, build_batch

log = logging.getLogger("suoi.coordinator.txn")


@dataclass(frozen=True, slots=True)
class TxnCoordinatorConfig:
    state_partitions: int = 50  # transaction.state.log.num.partitions
    state_segment_bytes: int = 100 * 1024 * 1024  # transaction.state.log.segment.bytes
    txn: TxnConfig = TxnConfig()


class TransactionCoordinator(CoordinatorRuntime):
    topic = TRANSACTION_STATE_TOPIC

    def __init__(self, logs: LogManager, appended: Callable[[TopicPartition], None], now_ms: Callable[[], int],
                 config: TxnCoordinatorConfig, producer_ids: ProducerIdManager, groups: GroupCoordinator) -> None:
        super().__init__(logs, appended, now_ms)
        self.config = config
        self._groups = groups
        self.machine = TxnStateMachine(config.txn, producer_ids.next_id)
        self._latest: dict[str, dict[str, Any] | None] = {}  # only during the replay

    def _replay_batch(self, partition: int, header: BatchHeader, records: list[SimpleRecord]) -> None:
        """The last record per transactional id wins; a tombstone forgets the id."""
        for record in records:
            parsed = parse_txn(record.key, record.value)
            if parsed is None:
                log.warning("skipping an unreadable record in %s", TRANSACTION_STATE_TOPIC)
                continue
            self._latest[parsed[0]] = parsed[1]

    def _loaded(self, now: int) -> None:
        latest, self._latest = self._latest, {}
        for snapshot in latest.values():
            if snapshot is not None:  # Prepare* snapshots re-emit their markers here
                self._process(self.machine.restore(TxnSnapshot.from_dict(snapshot), now))
        log.info("loaded %d transactional ids", sum(1 for s in latest.values() if s is not None))

    # -- requests --------------------------------------------------------------------
    def call(self, method: Callable[[Any, int], list[Any]], request: Any) -> Any:
        """Run one request through the machine; returns its reply data.

        Every reply comes back in the same output list (the machine never parks a
        transaction request), after its persistence effects have been appended here.
        """
        token = object()
        outputs = method(replace(request, token=token), self._now_ms())
        replies = self._process(outputs)
        self._kick()
        return replies[token]

    def _process(self, outputs: Iterable[Any]) -> dict[object, Any]:
        """Persist, then collect replies, then write markers (Kafka's order)."""
        replies: dict[object, Any] = {}
        markers: list[WriteMarkers] = []
        for out in outputs:
            if isinstance(out, PersistTxn):
                self._persist(out)
            elif isinstance(out, Reply):
                replies[out.token] = out.data
            elif isinstance(out, WriteMarkers):
                markers.append(out)
        for marker in markers:
            self._write_markers(marker)
        return replies

    def _persist(self, effect: PersistTxn) -> None:
        self.ensure_state_topic()
        partition = txn_partition_for(effect.transactional_id, self.config.state_partitions)
        value = txn_value(effect.snapshot.to_dict()) if effect.snapshot is not None else None
        try:
            self._append_to(partition, build_batch([(txn_key(effect.transactional_id), value)],
                                                   timestamp_ms=self._now_ms()))
        except (LogError, OSError) as exc:
            log.error("cannot persist transaction %s: %s", effect.transactional_id, exc)

    def _write_markers(self, m: WriteMarkers) -> None:
        """Write COMMIT/ABORT markers into every partition of the transaction."""
        for tp in m.partitions:
            plog = self._logs.get_log(tp.topic, tp.partition)
            if plog is None:
                log.warning("transaction %s: partition %s is gone; skipping its marker", m.transactional_id, tp)
                continue
            try:
                plog.append_control(m.producer_id, m.producer_epoch, m.commit, m.coordinator_epoch)
            except (LogError, OSError) as exc:
                log.error("transaction %s: cannot write %s marker to %s: %s", m.transactional_id,
                          "COMMIT" if m.commit else "ABORT", tp, exc)
                continue
            if tp.topic == OFFSETS_TOPIC:
                self._groups.complete_transaction(tp.partition, m.producer_id, m.commit)
            self._appended(TopicPartition(tp.topic, tp.partition))
        log.info("transaction %s (producer %d, epoch %d) %s on %d partitions", m.transactional_id, m.producer_id,
                 m.producer_epoch, "committed" if m.commit else "aborted", len(m.partitions))
        self._process(self.machine.markers_written(m.transactional_id, self._now_ms(),
                                                   producer_epoch=m.producer_epoch))

    def ensure_state_topic(self) -> None:
        self._ensure_internal_topic(self.config.state_partitions, self.config.state_segment_bytes)

    def check_transactional_id(self, transactional_id: str | None) -> ErrorCode:
        if self.loading:
            return ErrorCode.coordinator_load_in_progress
        if not transactional_id:
            return ErrorCode.invalid_request
        if not self.owns(txn_partition_for(transactional_id, self.config.state_partitions)):
            return ErrorCode.not_coordinator
        return ErrorCode.none

    def offsets_partition(self, group_id: str) -> TopicPartition:
        self._groups.ensure_offsets_topic()
        return TopicPartition(OFFSETS_TOPIC, self._groups.partition_for(group_id))
