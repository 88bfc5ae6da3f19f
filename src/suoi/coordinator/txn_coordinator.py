"""The transaction coordinator runtime: the sans-IO `txn` machine plus durability,
markers and timers.

- Transaction metadata is appended to `__transaction_state` (compacted; the partition is
  Kafka's abs(hash(transactional.id)) % transaction.state.log.num.partitions); the replies
  that depend on it are sent once it is replicated. A partition is replayed when this node
  becomes its leader (its ids answer COORDINATOR_LOAD_IN_PROGRESS until done; transactions
  caught in PrepareCommit/PrepareAbort are completed then) and forgotten on resignation.
- Commit/abort markers are written once the PrepareCommit/PrepareAbort record is
  replicated, with the `__transaction_state` partition's leader epoch as coordinator epoch
  (KRaft mode): by `write_markers` (KRaft mode: to each partition's leader), or standalone
  by this broker directly into each partition log (`PartitionLog.append_control`). A marker
  on a `__consumer_offsets` partition also publishes or drops the transaction's pending
  offsets in the group coordinator. Once all markers are written the machine is told, and
  it persists CompleteCommit/CompleteAbort.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from suoi.coordinator.group_coordinator import GroupCoordinator
from suoi.coordinator.records import OFFSETS_TOPIC, parse_txn, txn_key, txn_value
from suoi.coordinator.runtime import CoordinatorRuntime, PartitionSlot, append_error
from suoi.coordinator.txn import (
    TRANSACTION_STATE_TOPIC,
    AddOffsetsResult,
    AddPartitionsResult,
    EndTxnResult,
    InitProducerIdResult,
    PersistTxn,
    Reply,
    TxnConfig,
    TxnSnapshot,
    TxnStateMachine,
    WriteMarkers,
    txn_partition_for,
)
from suoi.coordinator.txn.producer_ids import ProducerIdManager
from suoi.coordinator.writer import MarkerWriter, PartitionWriter
from suoi.log.errors import LogError
from suoi.log.manager import LogManager
from suoi.model import ErrorCode, TopicPartition
from suoi.protocol.records import BatchHeader, SimpleRecord, build_batch

log = logging.getLogger("suoi.coordinator.txn")

#: Markers wait for their PrepareCommit/PrepareAbort record to replicate; after a failed wait
#: (a timeout, while still the leader) they wait again after this long (retry.backoff.ms).
MARKER_RETRY_BACKOFF_S = 0.1

#: An InitProducerId/AddPartitionsToTxn/AddOffsetsToTxn refused with CONCURRENT_TRANSACTIONS
#: because the id's previous transaction is still writing its markers is held this long at most
#: for them (then answered CONCURRENT_TRANSACTIONS, as before). librdkafka starts its next
#: transaction as soon as EndTxn is answered (once PrepareCommit is replicated, as in Kafka), and
#: on CONCURRENT_TRANSACTIONS backs off retry.backoff.ms (100 ms): most of a transaction's time.
#: Markers take a few ms; the bound keeps a stuck marker writer from holding requests for long.
CONCURRENT_HOLD_S = 1.0


@dataclass(frozen=True, slots=True)
class TxnCoordinatorConfig:
    state_partitions: int = 50  # transaction.state.log.num.partitions
    state_segment_bytes: int = 100 * 1024 * 1024  # transaction.state.log.segment.bytes
    txn: TxnConfig = TxnConfig()


class TransactionCoordinator(CoordinatorRuntime):
    topic = TRANSACTION_STATE_TOPIC

    def __init__(self, logs: LogManager, writer: PartitionWriter, now_ms: Callable[[], int],
                 config: TxnCoordinatorConfig, producer_ids: ProducerIdManager, groups: GroupCoordinator) -> None:
        super().__init__(logs, writer, now_ms)
        self.config = config
        self._groups = groups
        self.machine = TxnStateMachine(config.txn, producer_ids.next_id)
        #: Last record per transactional id of each partition being loaded.
        self._replaying: dict[int, dict[str, dict[str, Any] | None]] = {}
        #: Requests held while the id's transaction completes (see `CONCURRENT_HOLD_S`), by id:
        #: set when its markers are written or the id is unloaded.
        self._completing: dict[str, asyncio.Event] = {}

    @property
    def write_markers(self) -> MarkerWriter | None:
        """The writer's: a cluster writes a transaction's markers to every partition's leader,
        returning when all are written (or their partitions are gone). None: this runtime
        appends them to the local logs itself."""
        return self.writer.write_markers

    def _replay_batch(self, partition: int, header: BatchHeader, records: list[SimpleRecord]) -> None:
        """The last record per transactional id wins; a tombstone forgets the id."""
        latest = self._replaying.setdefault(partition, {})
        for record in records:
            parsed = parse_txn(record.key, record.value)
            if parsed is None:
                log.warning("skipping an unreadable record in %s", TRANSACTION_STATE_TOPIC)
                continue
            latest[parsed[0]] = parsed[1]

    def _loaded(self, partition: int, now: int) -> None:
        latest = self._replaying.pop(partition, {})
        preparing = []
        for tid, snapshot in latest.items():
            if snapshot is not None:  # Prepare* snapshots re-emit their markers here
                outputs = self.machine.restore(TxnSnapshot.from_dict(snapshot), now)
                if any(isinstance(out, WriteMarkers) for out in outputs):
                    preparing.append(tid)
                self._process(outputs)
        loaded = sum(1 for s in latest.values() if s is not None)
        log.log(logging.INFO if loaded else logging.DEBUG,  # as the group coordinator: one line per partition
                "%s-%d: loaded %d transactional ids%s", TRANSACTION_STATE_TOPIC, partition, loaded,
                f"; completing {len(preparing)} found in PrepareCommit/PrepareAbort: {', '.join(sorted(preparing))}"
                if preparing else "")

    def _unload(self, partition: int) -> None:
        """Forget the ids of `partition`; markers waiting on it are dropped (the next leader
        completes those transactions)."""
        self._replaying.pop(partition, None)
        self.machine.unload([tid for tid in self.machine.transactional_ids() if self.partition_for(tid) == partition])
        for tid in [tid for tid in self._completing if self.partition_for(tid) == partition]:
            self._completing.pop(tid).set()

    def partition_for(self, transactional_id: str) -> int:
        return txn_partition_for(transactional_id, self.config.state_partitions)

    # -- requests --------------------------------------------------------------------
    async def call(self, method: Callable[[Any, int], list[Any]], request: Any) -> Any:
        """Run one request through the machine; returns its reply data once the id's
        partition has replicated every write made so far (else the mapped error).

        Every reply comes back in the same output list (the machine never parks a
        transaction request), after its persistence effects have been appended here. A request
        refused with CONCURRENT_TRANSACTIONS while the id's transaction writes its markers
        (`machine.completing`) is run again once they are written (at most CONCURRENT_HOLD_S
        later): the answer the client's own retry would get, without its retry backoff.
        """
        data = self._run(method, request)
        if data.error_code == ErrorCode.concurrent_transactions and self.machine.completing(request.transactional_id):
            event = self._completing.setdefault(request.transactional_id, asyncio.Event())
            try:
                await asyncio.wait_for(event.wait(), CONCURRENT_HOLD_S)
            except TimeoutError:
                return data
            if moved := self.check_transactional_id(request.transactional_id):
                return _failed(data, moved)  # unloaded meanwhile: the id is another node's now
            data = self._run(method, request)
        if data.error_code:
            return data  # an error depends on no write
        error = append_error(await self._replicated(self.mark(self.partition_for(request.transactional_id))))
        return data if error == ErrorCode.none else _failed(data, error)

    def _run(self, method: Callable[[Any, int], list[Any]], request: Any) -> Any:
        token = object()
        replies = self._process(method(replace(request, token=token), self._now_ms()))
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
            self._start_markers(marker)
        return replies

    def _persist(self, effect: PersistTxn) -> None:
        partition = self.partition_for(effect.transactional_id)
        value = txn_value(effect.snapshot.to_dict()) if effect.snapshot is not None else None
        try:
            self._append_to(partition, build_batch([(txn_key(effect.transactional_id), value)],
                                                   timestamp_ms=self._now_ms()))
        except (LogError, OSError) as exc:
            log.error("cannot persist transaction %s: %s", effect.transactional_id, exc)

    def _start_markers(self, m: WriteMarkers) -> None:
        """Write the markers once the Prepare* record (and every write before it) is
        replicated: at once if it already is, else from a background task. The coordinator
        epoch is the `__transaction_state` partition's leader epoch (KRaft mode)."""
        slot, end = self.mark(self.partition_for(m.transactional_id))
        if slot is None or end is None:
            log.warning("transaction %s: not coordinated here any more; not writing its markers", m.transactional_id)
            return
        if slot.epoch is not None:
            m = replace(m, coordinator_epoch=slot.epoch)
        if self.write_markers is None and self._is_committed(slot, end):
            self._write_local_markers(m)
            self._markers_written(m)
        else:
            self._spawn_background(self._send_markers(slot, end, m), f"txn-markers-{m.transactional_id}")

    async def _send_markers(self, slot: PartitionSlot, end: int, m: WriteMarkers) -> None:
        """Wait for the Prepare* record to replicate (again after a failed wait, while still
        leading), write the markers, then complete the transaction - unless the partition was
        resigned meanwhile (its next leader finds the Prepare* record and does all that). A
        transaction never stays in Prepare* while this node coordinates it: a marker writer
        that fails unexpectedly is run again after a backoff."""
        while True:
            error = await self._replicated((slot, end))
            if slot.resigned.done():
                log.info("transaction %s: coordinator moved; the next one writes its markers", m.transactional_id)
                return
            if error == ErrorCode.none:
                break
            log.warning("transaction %s: %s-%d not replicated up to %d (error %d); waiting again",
                        m.transactional_id, TRANSACTION_STATE_TOPIC, slot.partition, end, error)
            await asyncio.sleep(MARKER_RETRY_BACKOFF_S)
        if self.write_markers is None:
            self._write_local_markers(m)
        elif not await self._write_markers_while_leading(slot, m):
            return
        self._markers_written(m)

    async def _write_markers_while_leading(self, slot: PartitionSlot, m: WriteMarkers) -> bool:
        """Run `write_markers` until it returns (True), or until `slot` is resigned (False: the
        writer is cancelled, Kafka's removal of a former coordinator epoch's markers)."""
        assert self.write_markers is not None
        backoff = MARKER_RETRY_BACKOFF_S
        while True:
            writer = asyncio.ensure_future(self.write_markers(m))
            try:
                await asyncio.wait((writer, slot.resigned), return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not writer.done():
                    writer.cancel()
            if slot.resigned.done():
                log.info("transaction %s: coordinator moved while writing markers; the next one writes them",
                         m.transactional_id)
                return False
            if writer.exception() is None:
                return True
            log.error("transaction %s: writing its markers failed; retrying in %.1f s", m.transactional_id,
                      backoff, exc_info=writer.exception())
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    def _markers_written(self, m: WriteMarkers) -> None:
        log.info("transaction %s (producer %d, epoch %d) %s on %d partitions", m.transactional_id, m.producer_id,
                 m.producer_epoch, "committed" if m.commit else "aborted", len(m.partitions))
        self._process(self.machine.markers_written(m.transactional_id, self._now_ms(),
                                                   producer_epoch=m.producer_epoch))
        if (event := self._completing.pop(m.transactional_id, None)) is not None:
            event.set()  # held requests run again (in the order they came)

    def _write_local_markers(self, m: WriteMarkers) -> None:
        """Standalone: append COMMIT/ABORT markers to every (local) partition of the transaction."""
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
            self.writer.appended(TopicPartition(tp.topic, tp.partition))

    def check_transactional_id(self, transactional_id: str | None) -> ErrorCode:
        if not transactional_id:
            return ErrorCode.invalid_request
        return self.partition_error(self.partition_for(transactional_id))

    def offsets_partition(self, group_id: str) -> TopicPartition:
        return TopicPartition(OFFSETS_TOPIC, self._groups.partition_for(group_id))


def _failed(result: Any, error: ErrorCode) -> Any:
    """The answer to send instead of `result` when the writes it depends on did not replicate (or
    the id moved to another coordinator while its request was held)."""
    if isinstance(result, InitProducerIdResult):
        return InitProducerIdResult(error_code=error)
    if isinstance(result, AddPartitionsResult):
        return AddPartitionsResult(error_code=error, results=tuple((tp, int(error)) for tp, _ in result.results))
    if isinstance(result, AddOffsetsResult):
        return AddOffsetsResult(error_code=error)
    return EndTxnResult(error_code=error)
