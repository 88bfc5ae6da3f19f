"""Kafka's transaction coordinator (transaction protocol V1) as a sans-IO state machine.

`TxnStateMachine` owns the transactional ids of one coordinator. Each event method takes a
request (with the runtime's opaque `token`) and the current time in ms and returns a list
of outputs (see `types.py` for the order the runtime must honour): `PersistTxn` records
for `__transaction_state`, exactly one `Reply` for the request, and `WriteMarkers` when a
transaction enters PrepareCommit/PrepareAbort. Nothing is parked: every request is
answered in the list its own call returns.

Timers, by key (fired only by `poll(now_ms)`; call it whenever `next_deadline()` <= now):
  ("timeout", tid)  an Ongoing transaction past txn_start + timeout: fence the producer
                    (epoch + 1) and abort, as Kafka's abortTimedOutTransactions does
  ("expire", tid)   an Empty/Complete* id idle for transactional.id.expiration.ms: tombstone

Semantics follow Apache Kafka's TransactionCoordinator / TransactionMetadata. On purpose:
state changes apply when the outputs are returned, not when the append completes (append
failures are not modelled, so Kafka's "pending state" and failed-epoch-fence bookkeeping
are not needed; the runtime must not send a reply, or start markers, before the
`PersistTxn`s issued before it - by this or an earlier call - are durable).
Not thread-safe: one caller at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable

from suoi.coordinator.records import partition_for
from suoi.model import ErrorCode
from suoi.model.types import TopicPartition

from ..group.timers import Timers
from .state import COMPLETED, PREPARING, TxnMetadata, TxnState, is_epoch_exhausted
from .types import (
    MAX_PRODUCER_EPOCH,
    NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
    AddOffsetsRequest,
    AddOffsetsResult,
    AddPartitionsRequest,
    AddPartitionsResult,
    EndTxnRequest,
    EndTxnResult,
    InitProducerIdRequest,
    InitProducerIdResult,
    ListTransactionsResult,
    Output,
    PersistTxn,
    Reply,
    TopicPartitions,
    TxnConfig,
    TxnDescription,
    TxnListing,
    TxnSnapshot,
    WriteMarkers,
)

S = TxnState
TRANSACTION_STATE_TOPIC = "__transaction_state"
DEFAULT_TXN_PARTITIONS = 50  # transaction.state.log.num.partitions


def txn_partition_for(transactional_id: str, partitions: int = DEFAULT_TXN_PARTITIONS) -> int:
    """Kafka's Utils.abs(transactionalId.hashCode) % transaction.state.log.num.partitions."""
    return partition_for(transactional_id, partitions)


class TxnStateMachine:
    def __init__(
        self,
        config: TxnConfig | None,
        allocate_producer_id: Callable[[], int],
        *,
        coordinator_epoch: int = 0,
    ) -> None:
        """`allocate_producer_id()` hands out a never-used producer id (e.g.
        `ProducerIdManager.next_id`). `coordinator_epoch` goes into every `WriteMarkers`
        (the `__transaction_state` partition's leader epoch; settable attribute)."""
        self.config = config or TxnConfig()
        self.coordinator_epoch = coordinator_epoch
        self._allocate = allocate_producer_id
        self._txns: dict[str, TxnMetadata] = {}
        self._timers = Timers()

    # ================================================================== queries for the runtime

    def next_deadline(self) -> int | None:
        return self._timers.next_deadline()

    def metadata(self, transactional_id: str) -> TxnMetadata | None:
        """The live metadata object (read-only use: tests, metrics, TxnOffsetCommit checks)."""
        return self._txns.get(transactional_id)

    def transactional_ids(self) -> list[str]:
        return list(self._txns)

    def snapshot(self, transactional_id: str) -> TxnSnapshot | None:
        m = self._txns.get(transactional_id)
        return None if m is None else m.snapshot()

    def completing(self, transactional_id: str) -> bool:
        """The id's transaction is in PrepareCommit/PrepareAbort: its markers are being written,
        and what it refuses with CONCURRENT_TRANSACTIONS now may succeed once `markers_written`
        is called (the runtime may hold such a request until then instead of answering it)."""
        m = self._txns.get(transactional_id)
        return m is not None and m.state in PREPARING

    def pending_markers(self) -> list[WriteMarkers]:
        """A `WriteMarkers` for every transaction still in PrepareCommit/PrepareAbort (e.g. to
        retry after the marker writer failed). Not counted as a new emission."""
        return [self._markers(m) for m in self._txns.values() if m.state in PREPARING]

    # =========================================================================== InitProducerId

    def init_producer_id(self, req: InitProducerIdRequest, now_ms: int) -> list[Output]:
        tid = req.transactional_id
        if tid is None:
            # an idempotent producer: blindly a new id, nothing kept (Kafka does the same)
            return [_init_reply(req.token, ErrorCode.none, self._allocate(), 0)]
        if tid == "":
            return [_init_reply(req.token, ErrorCode.invalid_request)]
        if not 0 < req.transaction_timeout_ms <= self.config.max_timeout_ms:
            return [_init_reply(req.token, ErrorCode.invalid_transaction_timeout)]
        no_pid, no_epoch = req.producer_id == NO_PRODUCER_ID, req.producer_epoch == NO_PRODUCER_EPOCH
        if no_pid != no_epoch:
            return [_init_reply(req.token, ErrorCode.invalid_request)]
        expected = None if no_pid else (req.producer_id, req.producer_epoch)

        m = self._txns.get(tid)
        if m is None:
            m = TxnMetadata(transactional_id=tid, producer_id=self._allocate(), timeout_ms=req.transaction_timeout_ms,
                            last_update_ms=now_ms)
            self._txns[tid] = m
        out: list[Output] = []

        if expected is not None and not self._valid_expected_producer(m, *expected):
            out.append(_init_reply(req.token, ErrorCode.producer_fenced))
        elif m.state in PREPARING:
            out.append(_init_reply(req.token, ErrorCode.concurrent_transactions))
        elif m.state is S.ONGOING:
            # Fence the current producer and abort its transaction; the new epoch is never
            # returned: the client retries on CONCURRENT_TRANSACTIONS and bumps again then.
            self._fence_and_abort(m, now_ms, out)
            out.insert(1, _init_reply(req.token, ErrorCode.concurrent_transactions))  # after the PersistTxn
        elif m.state in COMPLETED:
            err = self._bump_epoch_or_rotate(m, req.transaction_timeout_ms, expected, now_ms)
            if err:
                out.append(_init_reply(req.token, err))
            else:
                self._persist(m, out)
                out.append(_init_reply(req.token, ErrorCode.none, m.producer_id, m.producer_epoch))
        else:  # Dead / PrepareEpochFence are never at rest
            raise AssertionError(f"{tid} found in state {m.state.value}")
        return out

    @staticmethod
    def _valid_expected_producer(m: TxnMetadata, pid: int, epoch: int) -> bool:
        # Kafka's isValidProducerId: a just-created id (no epoch yet), the current producer
        # id, or the previous one when its epochs ran out (a retry across an id rotation).
        return (
            m.producer_epoch == NO_PRODUCER_EPOCH
            or pid == m.producer_id
            or (pid == m.last_producer_id and is_epoch_exhausted(epoch))
        )

    def _bump_epoch_or_rotate(
        self, m: TxnMetadata, timeout_ms: int, expected: tuple[int, int] | None, now: int
    ) -> ErrorCode:
        if is_epoch_exhausted(m.producer_epoch) and (expected is None or expected[1] == m.producer_epoch):
            new_pid, new_epoch = self._allocate(), 0
            new_last_epoch = m.producer_epoch if expected is not None else NO_PRODUCER_EPOCH
        elif expected is None:
            new_pid, new_epoch, new_last_epoch = m.producer_id, m.producer_epoch + 1, NO_PRODUCER_EPOCH
        elif m.producer_epoch == NO_PRODUCER_EPOCH or expected[1] == m.producer_epoch:
            # the producer carries on after an error (KIP-360): bump, remember the old epoch
            new_pid, new_epoch, new_last_epoch = m.producer_id, m.producer_epoch + 1, m.producer_epoch
        elif expected[1] == m.last_producer_epoch:
            # a retry of a bump whose response was lost: the same answer again
            new_pid, new_epoch, new_last_epoch = m.producer_id, m.producer_epoch, m.last_producer_epoch
        else:
            return ErrorCode.producer_fenced
        m.transition(S.EMPTY)
        m.next_txn_refused = False
        m.last_producer_id = m.producer_id
        m.producer_id, m.producer_epoch, m.last_producer_epoch = new_pid, new_epoch, new_last_epoch
        m.timeout_ms = timeout_ms
        m.partitions.clear()
        m.txn_start_ms = -1
        m.last_update_ms = now
        self._timers.schedule(("expire", m.transactional_id), now + self.config.id_expiration_ms)
        return ErrorCode.none

    # ==================================================================== AddPartitions/Offsets

    def add_partitions(self, req: AddPartitionsRequest, now_ms: int) -> list[Output]:
        err, out = self._add(req.transactional_id, req.producer_id, req.producer_epoch, req.partitions, now_ms)
        parts = tuple(dict.fromkeys(req.partitions))
        out.append(Reply(req.token, "AddPartitionsToTxn",
                         AddPartitionsResult(error_code=err, results=tuple((tp, int(err)) for tp in parts))))
        return out

    def add_offsets(self, req: AddOffsetsRequest, now_ms: int) -> list[Output]:
        err, out = self._add(req.transactional_id, req.producer_id, req.producer_epoch, (req.partition,), now_ms)
        out.append(Reply(req.token, "AddOffsetsToTxn", AddOffsetsResult(error_code=err)))
        return out

    def _add(
        self, tid: str, pid: int, epoch: int, partitions: Iterable[TopicPartition], now: int
    ) -> tuple[int, list[Output]]:
        out: list[Output] = []
        if not tid:
            return ErrorCode.invalid_request, out
        m = self._txns.get(tid)
        if m is None or m.producer_id != pid:
            return ErrorCode.invalid_producer_id_mapping, out
        if m.producer_epoch != epoch:
            return ErrorCode.producer_fenced, out
        if m.state in PREPARING:
            if not m.next_txn_refused:
                # the producer got that EndTxn's answer and began its next transaction: written
                # down (once), so a coordinator that takes the id over answers that empty
                # transaction's abort as this one does, not INVALID_TXN_STATE
                m.next_txn_refused = True
                self._persist(m, out)
            return ErrorCode.concurrent_transactions, out
        new = set(partitions) - m.partitions
        if not new:
            # Ongoing and nothing new: Kafka's shortcut. (No partitions at all while no
            # transaction is open is a no-op here; Kafka would open an empty Ongoing one.)
            return ErrorCode.none, out
        if m.state in COMPLETED:
            m.txn_start_ms = now
            self._timers.cancel(("expire", tid))
            self._timers.schedule(("timeout", tid), now + m.timeout_ms + 1)
        m.transition(S.ONGOING)
        m.next_txn_refused = False
        m.partitions |= new
        m.last_update_ms = now
        self._persist(m, out)
        return ErrorCode.none, out

    # =================================================================================== EndTxn

    def end_txn(self, req: EndTxnRequest, now_ms: int) -> list[Output]:
        out: list[Output] = []
        err = self._end(req, now_ms, out)
        reply = Reply(req.token, "EndTxn", EndTxnResult(error_code=err))
        out.insert(1 if out else 0, reply)  # after the PersistTxn, before the WriteMarkers
        return out

    def _end(self, req: EndTxnRequest, now: int, out: list[Output]) -> ErrorCode:
        if not req.transactional_id:
            return ErrorCode.invalid_request
        m = self._txns.get(req.transactional_id)
        if m is None or m.producer_id != req.producer_id:
            return ErrorCode.invalid_producer_id_mapping
        if m.producer_epoch != req.producer_epoch:
            return ErrorCode.producer_fenced
        commit = req.commit
        if not commit and m.state is not S.ONGOING and (m.state is S.EMPTY or m.next_txn_refused):
            # The producer's current transaction holds nothing here: none began since its
            # InitProducerId, or its add was refused while the previous one's markers were
            # written. librdkafka sends EndTxn(abort) once it has *sent* an AddPartitionsToTxn,
            # whatever the answer, and INVALID_TXN_STATE is fatal to it; aborting nothing succeeds
            # (as Kafka's transaction protocol 2 does for an empty transaction). Without that
            # evidence an abort after a commit stays INVALID_TXN_STATE: the client may be aborting
            # the very transaction that committed.
            return ErrorCode.none
        match m.state:
            case S.ONGOING:
                self._prepare(m, S.PREPARE_COMMIT if commit else S.PREPARE_ABORT, now, out)
                return ErrorCode.none
            case S.COMPLETE_COMMIT:
                return ErrorCode.none if commit else ErrorCode.invalid_txn_state
            case S.COMPLETE_ABORT:
                return ErrorCode.invalid_txn_state if commit else ErrorCode.none
            case S.PREPARE_COMMIT:
                return ErrorCode.concurrent_transactions if commit else ErrorCode.invalid_txn_state
            case S.PREPARE_ABORT:
                return ErrorCode.invalid_txn_state if commit else ErrorCode.concurrent_transactions
            case S.EMPTY:
                return ErrorCode.invalid_txn_state
        raise AssertionError(f"{m.transactional_id} found in state {m.state.value}")

    # =========================================================================== markers written

    def markers_written(self, transactional_id: str, now_ms: int, *, producer_epoch: int | None = None) -> list[Output]:
        """Every marker of the last `WriteMarkers` for this id is written: complete the
        transaction. Ignored (returns []) if the id is not in PrepareCommit/PrepareAbort, or
        if `producer_epoch` is given and is not the transaction's (a stale writer)."""
        m = self._txns.get(transactional_id)
        if m is None or m.state not in PREPARING:
            return []
        if producer_epoch is not None and producer_epoch != m.producer_epoch:
            return []
        m.transition(S.COMPLETE_COMMIT if m.state is S.PREPARE_COMMIT else S.COMPLETE_ABORT)
        m.partitions.clear()
        m.last_update_ms = now_ms
        self._timers.schedule(("expire", transactional_id), now_ms + self.config.id_expiration_ms)
        out: list[Output] = []
        self._persist(m, out)
        return out

    # ============================================================================ describe/list

    def describe(self, transactional_ids: Iterable[str]) -> list[TxnDescription]:
        result = []
        for tid in transactional_ids:
            m = self._txns.get(tid)
            if not tid:
                result.append(TxnDescription(transactional_id=tid, error_code=ErrorCode.invalid_request))
            elif m is None or m.state is S.DEAD:
                result.append(TxnDescription(transactional_id=tid, error_code=ErrorCode.transactional_id_not_found))
            else:
                by_topic: dict[str, list[int]] = {}
                for tp in m.sorted_partitions():
                    by_topic.setdefault(tp.topic, []).append(tp.partition)
                result.append(TxnDescription(
                    transactional_id=tid,
                    error_code=ErrorCode.none,
                    state=m.state.value,
                    producer_id=m.producer_id,
                    producer_epoch=m.producer_epoch,
                    transaction_timeout_ms=m.timeout_ms,
                    transaction_start_time_ms=m.txn_start_ms,
                    topics=tuple(TopicPartitions(topic=t, partitions=tuple(ps)) for t, ps in by_topic.items()),
                ))
        return result

    def list_transactions(
        self,
        state_filters: Iterable[str] = (),
        producer_id_filters: Iterable[int] = (),
        duration_filter_ms: int = -1,
        *,
        now_ms: int | None = None,
    ) -> ListTransactionsResult:
        """Kafka's ListTransactions: empty filters match all; unknown state names are
        reported back. `duration_filter_ms` >= 0 (v1, KIP-994) keeps only transactions whose
        `now_ms - txn_start_ms` exceeds it, and needs `now_ms`."""
        names = list(dict.fromkeys(state_filters))
        states = {s for n in names if (s := TxnState.from_name(n)) is not None}
        unknown = tuple(n for n in names if TxnState.from_name(n) is None)
        pids = set(producer_id_filters)
        if duration_filter_ms >= 0 and now_ms is None:
            raise ValueError("duration_filter_ms needs now_ms")
        listings = []
        for tid in sorted(self._txns):
            m = self._txns[tid]
            if m.state is S.DEAD or (pids and m.producer_id not in pids) or (names and m.state not in states):
                continue
            if duration_filter_ms >= 0 and now_ms is not None and now_ms - m.txn_start_ms <= duration_filter_ms:
                continue
            listings.append(TxnListing(transactional_id=tid, producer_id=m.producer_id, state=m.state.value))
        return ListTransactionsResult(transactions=tuple(listings), unknown_state_filters=unknown)

    # ======================================================================== load and unload

    def restore(self, snapshot: TxnSnapshot, now_ms: int) -> list[Output]:
        """Rebuild one transactional id from its last `__transaction_state` record (call once
        per id, with the last record, after the partition is read). A transaction found in
        PrepareCommit/PrepareAbort gets its `WriteMarkers` again, as Kafka does on load; an
        Ongoing one gets its timeout timer (from its start time) and an idle one its expiry.
        A tombstone: `unload([tid])`."""
        m = TxnMetadata.from_snapshot(snapshot)
        tid = m.transactional_id
        self._forget(tid)
        self._txns[tid] = m
        out: list[Output] = []
        if m.state is S.ONGOING:
            self._timers.schedule(("timeout", tid), max(m.txn_start_ms, 0) + m.timeout_ms + 1)
        elif m.state in PREPARING:
            out.append(self._markers(m))
        else:
            self._timers.schedule(("expire", tid), max(m.last_update_ms, 0) + self.config.id_expiration_ms)
        return out

    def unload(self, transactional_ids: Iterable[str] | None = None) -> list[Output]:
        """Forget ids (tombstone on replay, or the coordinator moved away). Nothing is parked,
        so there is nothing to answer; markers in flight for them should be dropped."""
        for tid in list(self._txns) if transactional_ids is None else list(transactional_ids):
            self._forget(tid)
        return []

    # ==================================================================================== timers

    def poll(self, now_ms: int) -> list[Output]:
        out: list[Output] = []
        while (key := self._timers.pop_due(now_ms)) is not None:
            assert isinstance(key, tuple)
            kind, tid = key
            m = self._txns.get(tid)
            if m is None:
                continue
            if kind == "timeout":
                if m.state is S.ONGOING and m.txn_start_ms + m.timeout_ms < now_ms:
                    self._fence_and_abort(m, now_ms, out)
            elif kind == "expire" and m.state in COMPLETED and m.last_update_ms + self.config.id_expiration_ms <= now_ms:
                m.transition(S.DEAD)
                out.append(PersistTxn(tid, None))
                self._forget(tid)
        return out

    # ================================================================================= helpers

    def _fence_and_abort(self, m: TxnMetadata, now: int, out: list[Output]) -> None:
        """Kafka's prepareFenceProducerEpoch + endTransaction(ABORT, isFromClient=false): bump
        the epoch so the current producer is fenced, then PrepareAbort with the new epoch."""
        m.transition(S.PREPARE_EPOCH_FENCE)
        if m.producer_epoch < MAX_PRODUCER_EPOCH:  # a client never holds MAX, so always true
            m.producer_epoch += 1
        m.last_producer_epoch = NO_PRODUCER_EPOCH
        self._prepare(m, S.PREPARE_ABORT, now, out)

    def _prepare(self, m: TxnMetadata, state: TxnState, now: int, out: list[Output]) -> None:
        m.transition(state)
        m.next_txn_refused = False
        m.last_update_ms = now
        self._timers.cancel(("timeout", m.transactional_id))
        self._persist(m, out)
        out.append(self._markers(m))

    def _markers(self, m: TxnMetadata) -> WriteMarkers:
        return WriteMarkers(
            transactional_id=m.transactional_id,
            producer_id=m.producer_id,
            producer_epoch=m.producer_epoch,
            commit=m.state is S.PREPARE_COMMIT,
            partitions=m.sorted_partitions(),
            coordinator_epoch=self.coordinator_epoch,
        )

    @staticmethod
    def _persist(m: TxnMetadata, out: list[Output]) -> None:
        out.append(PersistTxn(m.transactional_id, m.snapshot()))

    def _forget(self, tid: str) -> None:
        self._txns.pop(tid, None)
        self._timers.cancel(("timeout", tid))
        self._timers.cancel(("expire", tid))


def _init_reply(token: Hashable, err: ErrorCode, pid: int = NO_PRODUCER_ID, epoch: int = NO_PRODUCER_EPOCH) -> Reply:
    return Reply(token, "InitProducerId", InitProducerIdResult(error_code=err, producer_id=pid, producer_epoch=epoch))
