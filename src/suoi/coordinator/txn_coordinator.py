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

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from suoi.coordinator.driver import drive_timers
from suoi.coordinator.group_coordinator import GroupCoordinator
from suoi.coordinator.records import OFFSETS_TOPIC, parse_txn, txn_key, txn_value
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
from suoi.protocol.records import build_batch, iter_records

log = logging.getLogger("suoi.coordinator.txn")

LOAD_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class TxnCoordinatorConfig:
    state_partitions: int = 50  # transaction.state.log.num.partitions
    state_segment_bytes: int = 100 * 1024 * 1024  # transaction.state.log.segment.bytes
    txn: TxnConfig = TxnConfig()


class TransactionCoordinator:
    def __init__(self, logs: LogManager, appended: Callable[[TopicPartition], None], now_ms: Callable[[], int],
                 config: TxnCoordinatorConfig, producer_ids: ProducerIdManager, groups: GroupCoordinator) -> None:
        self._logs = logs
        self._appended = appended
        self._now_ms = now_ms
        self.config = config
        self._groups = groups
        self.machine = TxnStateMachine(config.txn, producer_ids.next_id)
        self.loading = False
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        self._wake = asyncio.Event()
        if TRANSACTION_STATE_TOPIC in self._logs.topics():
            self.loading = True
            self._tasks.append(asyncio.create_task(self._load(), name="txn-load"))
        self._tasks.append(asyncio.create_task(self._timer_loop(), name="txn-timers"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _load(self) -> None:
        """Replay __transaction_state; the last record per id wins (tombstones forget)."""
        latest: dict[str, dict[str, Any] | None] = {}
        info = self._logs.topics()[TRANSACTION_STATE_TOPIC]
        for partition in range(info.partitions):
            plog = self._logs.get_log(TRANSACTION_STATE_TOPIC, partition)
            if plog is None:
                continue
            offset = plog.log_start_offset
            while offset < plog.high_watermark:
                data = plog.read(offset, LOAD_CHUNK_BYTES)
                if not data:
                    break
                for record in iter_records(data):
                    assert record.offset is not None
                    offset = record.offset + 1
                    parsed = parse_txn(record.key, record.value)
                    if parsed is None:
                        log.warning("skipping an unreadable record in %s", TRANSACTION_STATE_TOPIC)
                        continue
                    latest[parsed[0]] = parsed[1]
                await asyncio.sleep(0)
        now = self._now_ms()
        for snapshot in latest.values():
            if snapshot is not None:
                self._process(self.machine.restore(TxnSnapshot.from_dict(snapshot), now))
        self.loading = False
        log.info("loaded %d transactional ids", sum(1 for s in latest.values() if s is not None))
        self._kick()

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
        plog = self._logs.get_log(TRANSACTION_STATE_TOPIC, partition)
        value = txn_value(effect.snapshot.to_dict()) if effect.snapshot is not None else None
        try:
            if plog is None:
                raise LogError(f"{TRANSACTION_STATE_TOPIC}-{partition} is missing")
            plog.append(build_batch([(txn_key(effect.transactional_id), value)], timestamp_ms=self._now_ms()))
        except (LogError, OSError) as exc:
            log.error("cannot persist transaction %s: %s", effect.transactional_id, exc)
            return
        self._appended(TopicPartition(TRANSACTION_STATE_TOPIC, partition))

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
        if TRANSACTION_STATE_TOPIC not in self._logs.topics():
            self._logs.create_topic(TRANSACTION_STATE_TOPIC, self.config.state_partitions, {
                "cleanup.policy": "compact",
                "segment.bytes": str(self.config.state_segment_bytes),
            })
            log.info("created %s with %d partitions", TRANSACTION_STATE_TOPIC, self.config.state_partitions)

    def check_transactional_id(self, transactional_id: str | None) -> ErrorCode:
        if self.loading:
            return ErrorCode.coordinator_load_in_progress
        if not transactional_id:
            return ErrorCode.invalid_request
        return ErrorCode.none

    def offsets_partition(self, group_id: str) -> TopicPartition:
        self._groups.ensure_offsets_topic()
        return TopicPartition(OFFSETS_TOPIC, self._groups.partition_for(group_id))

    # -- timers (transaction.timeout.ms aborts, transactional.id expiry) --------------
    def _kick(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _timer_loop(self) -> None:
        assert self._wake is not None
        await drive_timers(self.machine.next_deadline, lambda now: self._process(self.machine.poll(now)),
                           self._wake, self._now_ms)
