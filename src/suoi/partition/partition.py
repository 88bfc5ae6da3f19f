"""One hosted replica of one partition: Kafka's `cluster/Partition.scala`, on the event loop.

A `Partition` owns its `PartitionLog` and the sans-IO state of its role on this node: a
`LeaderPartitionState` (follower positions, ISR, high watermark) with the parked acks=all
waits, or a `FollowerPartitionState` driven by a `ReplicaFetcher`. The API layer calls two
things, and nothing else about replication:

* `append_records(records, acks, origin)` -> `AppendResult` (Produce). The batches are
  appended as received (headers and CRC checked, records never decoded), stamped with the
  leader epoch. acks=-1 is refused with NOT_ENOUGH_REPLICAS when the ISR is below
  min.insync.replicas; an append the ISR does not have yet names this partition and the
  offset to wait for in its result, and the request waits with `await_isr` (a callback, no
  future: `DelayedProduce` in `append.py` applies the request's timeout across partitions);
  one the ISR has at once (ISR = this node) is answered as acks=1. Why `origin` and no
  producer context object: the idempotence and transaction checks live in the log
  (`PartitionLog.append` reads the batch header); the only thing the request adds is who
  sent it, for the one warning line.
* `read(...)` -> `ReadResult` (Fetch): leader-epoch check (FENCED_/UNKNOWN_LEADER_EPOCH), then
  a follower's read up to the log end (recording its position: ISR and HW), a consumer's
  redirection to a preferred read replica (KIP-392), or a consumer's read up to the HW or LSO.
  A follower replica answers consumers sent to it by KIP-392 up to its own HW. Long-polling
  over many partitions is `fetch.py`'s (`fetch_messages`).

Leadership changes come from the replica manager (`replica_manager.py`), which builds one
`Partition` per role: a new one when this node starts leading or following (so "is this
still the partition I parked on" is an identity check). What the partition needs from that
manager is `PartitionHost` (clock, node id, wake-ups, AlterPartition proposals, the KIP-392
selector). A single-node cluster is one voter with RF=1 partitions: a leader whose ISR is
itself, so every append commits at once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple, Protocol

from suoi.log.errors import LogError
from suoi.log.partition_log import PartitionLog  # at run time: the compiled (mypyc) Partition names it
from suoi.model import ErrorCode, TopicPartition
from suoi.partition.schema_validation import SchemaIds, check_schema_ids
from suoi.protocol.file_records import Records
from suoi.protocol.records import RecordValidationError
from suoi.replication import AcksAllWaiters, AlterPartitionProposal, FollowerPartitionState, LeaderPartitionState
from suoi.replication.partition_state import NO_CHANGE

log = logging.getLogger("suoi.partition")

#: `current_leader_epoch` meaning "do not check" (RecordBatch.NO_PARTITION_LEADER_EPOCH).
NO_EPOCH_CHECK = -1


def compare_epochs(current: int, requested: int) -> ErrorCode:
    """Kafka's check of a request's ``current_leader_epoch`` against the partition's: -1 is not
    checked, an older one is FENCED_LEADER_EPOCH (the client's metadata is stale), a newer one
    UNKNOWN_LEADER_EPOCH (this node's is)."""
    if requested == NO_EPOCH_CHECK:
        return ErrorCode.none
    if requested < current:
        return ErrorCode.fenced_leader_epoch
    if requested > current:
        return ErrorCode.unknown_leader_epoch
    return ErrorCode.none


class PartitionHost(Protocol):
    """What a `Partition` needs from its replica manager."""

    node_id: int

    def now_ms(self) -> int: ...

    def appended(self, tp: TopicPartition) -> None:
        """Wake fetches parked on `tp` (consumers and followers)."""

    def high_watermark_moved(self, tp: TopicPartition) -> None:
        """Wake consumer fetches parked on `tp` (records below the new HW became readable)."""

    def follower_fetched(self, partition: Partition) -> None:
        """A follower reported its log start (DeleteRecords' low watermark may have moved)."""

    def propose(self, partition: Partition, proposal: AlterPartitionProposal) -> None:
        """Send an ISR change to the controller (AlterPartition)."""

    def preferred_read_replica(self, partition: Partition, client_rack: str, fetch_offset: int) -> int:
        """KIP-392: the broker a consumer in `client_rack` should read from."""

    @property
    def schema_ids(self) -> SchemaIds | None:
        """The node's schema registry, for topics with schema id validation (None: the node runs none)."""


class AppendResult(NamedTuple):
    """One partition's answer to an append (a tuple: one is built per partition of every Produce).
    `partition` is set (with `required_offset`, the log end right after the append) when an
    acks=-1 append must still wait for its ISR: the caller waits with `partition.await_isr`."""

    error: ErrorCode
    base_offset: int = -1
    log_append_time_ms: int = -1
    log_start_offset: int = -1
    message: str | None = None
    #: records appended (for the node's messages-in counter; the batches are not decoded for it)
    record_count: int = 0
    partition: Partition | None = None
    required_offset: int = -1


_new_result = tuple.__new__  # an AppendResult without NamedTuple's Python-level __new__


def append_refused(error: ErrorCode, message: str | None = None) -> AppendResult:
    return _new_result(AppendResult, (error, -1, -1, -1, message, 0, None, -1))


def _settle_future(future: asyncio.Future[int], error: int) -> None:
    if not future.done():
        future.set_result(error)


@dataclass(slots=True)
class ReadResult:
    """One partition's answer to a read. `answer_now`: an error, a redirection or a divergence
    the client must act on, so the fetch must not park."""

    error: ErrorCode
    high_watermark: int = -1
    last_stable_offset: int = -1
    log_start_offset: int = -1
    #: checked batches: bytes, or (large reads of verified batches) file regions sent by sendfile
    records: Records = b""
    aborted: list[dict[str, int]] | None = None
    preferred_read_replica: int = -1
    diverging_epoch: dict[str, int] | None = None
    answer_now: bool = False
    #: the partition hands this same result to every read at the end of what it may read until
    #: its offsets move (`Partition.read`): never change one, the API layer may keep its encoding
    reused: bool = False
    #: the API layer's memo of its answer to a reused result (set and read by it: `api.fetch`)
    answer: Any = None


@dataclass(eq=False)
class Partition:
    """One replica in one role (module doc). Exactly one of `leader_state`/`follower_state` is set."""

    tp: TopicPartition
    topic_id: uuid.UUID
    plog: PartitionLog
    host: PartitionHost
    leader_state: LeaderPartitionState | None = None
    follower_state: FollowerPartitionState | None = None
    #: leader: parked acks=all waits (sans-IO) and what each calls with its error code, by token
    waiters: AcksAllWaiters = field(default_factory=AcksAllWaiters)
    waits: dict[int, Callable[[int], object]] = field(default_factory=dict)
    _tokens: int = 0
    #: follower: the broker whose fetcher fetches it (None: not fetched)
    fetcher_id: int | None = None
    #: follower: the leader epoch a FENCED_LEADER_EPOCH answer was given for: wait for newer metadata
    blocked_epoch: int | None = None
    #: follower: loop time before which this partition is not fetched (after an error)
    backoff_until: float = 0.0
    #: the empty results of reads at the HW / at the LSO (read_committed), reused while the
    #: offsets are the same: every caught-up partition of every full Fetch reads one (`read`)
    _at_hw: ReadResult | None = field(default=None, repr=False)
    _at_lso: ReadResult | None = field(default=None, repr=False)

    # -- roles -------------------------------------------------------------------------
    @property
    def state(self) -> LeaderPartitionState:
        """The leader role's state (only on a partition this node leads)."""
        assert self.leader_state is not None, f"{self.tp} is not led here"
        return self.leader_state

    @property
    def follower(self) -> FollowerPartitionState:
        """The follower role's state (only on a partition this node follows)."""
        assert self.follower_state is not None, f"{self.tp} is not followed here"
        return self.follower_state

    @property
    def is_leader(self) -> bool:
        return self.leader_state is not None

    @property
    def leader_epoch(self) -> int:
        role = self.leader_state if self.leader_state is not None else self.follower_state
        return role.leader_epoch if role is not None else -1

    # -- produce -----------------------------------------------------------------------
    def append_records(self, records: bytes | memoryview, acks: int, origin: str = "") -> AppendResult:
        """Append a Produce's batches for this partition (module doc). acks is -1, 0 or 1."""
        state = self.leader_state
        if state is None:
            return append_refused(ErrorCode.not_leader_or_follower)
        plog = self.plog
        config = plog.config
        if acks == -1:
            state.min_insync_replicas = config.min_insync_replicas
            if state.is_under_min_isr():  # Kafka's appendRecordsToLeader: refused before the append
                return append_refused(ErrorCode.not_enough_replicas, "the ISR is smaller than min.insync.replicas")
        if config.schema_validation:  # the one read a topic without validation pays
            refused = self._check_schema_ids(records)
            if refused is not None:
                log.warning("produce to %s-%d from %s rejected: %s", self.tp.topic, self.tp.partition, origin, refused[1])
                return append_refused(*refused)
        try:
            info = plog.append(records, leader_epoch=state.leader_epoch)
        except (RecordValidationError, LogError) as exc:
            log.warning("produce to %s-%d from %s rejected: %s", self.tp.topic, self.tp.partition, origin, exc)
            return append_refused(ErrorCode(exc.error_code), str(exc))
        self.on_append()
        required = info.last_offset + 1
        # acks=-1 the ISR has already (ISR = this node): answered now, as Kafka's DelayedProduce
        # completes at once; the ISR cannot have shrunk below min.insync.replicas since the check
        # above (nothing else ran), so the answer is NONE.
        waits = acks == -1 and not state.acks_all_satisfied(required)
        return _new_result(AppendResult, (ErrorCode.none, info.base_offset, info.log_append_time_ms,
                                          info.log_start_offset, None, info.record_count,
                                          self if waits else None, required if waits else -1))

    def _check_schema_ids(self, records: bytes | memoryview) -> tuple[ErrorCode, str] | None:
        config = self.plog.config
        return check_schema_ids(records, self.tp.topic, config.validate_key_schema_ids,
                                config.validate_value_schema_ids, self.host.schema_ids)

    def on_append(self) -> None:
        """After any append to a led partition (produce, markers, coordinator records): the
        HW may move (ISR = this node alone), waits may complete, parked fetches wake (one
        wake-up: `appended` wakes the consumers a HW move would, and the followers)."""
        state = self.leader_state
        if state is not None:
            # no clock: the HW rule does not read it (`_maybe_increment_hw`), and every append passes here
            new_hw = state.on_leader_append(self.plog.log_end_offset, 0)
            if new_hw is not None:
                self.plog.set_high_watermark(new_hw)
                if self.waits:
                    self._complete(self.waiters.check_state(state))
        self.host.appended(self.tp)

    def await_isr(self, required_offset: int, done: Callable[[int], object]) -> int:
        """Call `done(error code)` once every ISR member has every offset below `required_offset`
        (NONE or NOT_ENOUGH_REPLICAS_AFTER_APPEND), or with NOT_LEADER_OR_FOLLOWER if leadership
        moves first; called from whatever moved the HW (a follower's fetch), no loop hop. The
        caller checked it is not satisfied yet and applies its own timeout (`cancel_wait` with
        the token returned)."""
        self._tokens += 1
        token = self._tokens
        self.waits[token] = done
        self.waiters.register(token, required_offset, None)  # the caller's timeout: nothing to poll
        return token

    def cancel_wait(self, token: int) -> None:
        if self.waits.pop(token, None) is not None:
            self.waiters.cancel(token)

    def wait_for_replication(self, required_offset: int) -> asyncio.Future[int]:
        """`await_isr` as a future (coordinator writes, transaction markers); already satisfied:
        done at once."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        state = self.state
        if state.acks_all_satisfied(required_offset):
            future.set_result(int(state.acks_all_error()))
        else:
            token = self.await_isr(required_offset, partial(_settle_future, future))
            future.add_done_callback(partial(self._abandoned, token))
        return future

    def _abandoned(self, token: int, future: asyncio.Future[int]) -> None:
        if future.cancelled():  # the caller's timeout or cancellation: the wait is withdrawn
            self.cancel_wait(token)

    async def wait_replicated(self, end_offset: int, timeout_s: float) -> int:
        """Error code once the HW reaches `end_offset` (coordinator writes, transaction markers)."""
        future = self.wait_for_replication(end_offset)
        try:
            return await asyncio.wait_for(future, timeout_s)  # a timeout cancels it: the wait is withdrawn
        except TimeoutError:
            return int(ErrorCode.request_timed_out)

    def fail_waits(self, error: ErrorCode = ErrorCode.not_leader_or_follower) -> None:
        """This node stops leading: every parked acks=all wait answers `error`."""
        self._complete(self.waiters.fail_all(error))

    # -- fetch -------------------------------------------------------------------------
    def read(self, fetch_offset: int, max_bytes: int, read_committed: bool = False, replica_id: int = -1,
             client_rack: str = "", current_leader_epoch: int = NO_EPOCH_CHECK, last_fetched_epoch: int = -1,
             replica_log_start: int = -1, min_one_batch: bool = True, follower_reads: bool = False) -> ReadResult:
        """One partition of a Fetch (module doc). `replica_id` >= 0 is a follower (its fetch
        offset is its log end, `replica_log_start` its log start, `last_fetched_epoch` the epoch
        of its last batch); `follower_reads` says the client speaks KIP-392 (Fetch v11+), so it
        may be redirected and may read a follower replica. (Not keyword-only: `fetch.py` passes
        every argument by position, for every partition of every Fetch.)"""
        if self.leader_state is None and (replica_id >= 0 or not follower_reads):
            return ReadResult(ErrorCode.not_leader_or_follower, answer_now=True)
        if current_leader_epoch != NO_EPOCH_CHECK:
            error = compare_epochs(self.leader_epoch, current_leader_epoch)
            if error:
                return ReadResult(error, answer_now=True)
        if replica_id >= 0:
            return self._read_for_follower(replica_id, fetch_offset, max_bytes, last_fetched_epoch, replica_log_start,
                                           min_one_batch)
        if follower_reads and client_rack and self.leader_state is not None:  # no rack: no other choice
            chosen = self.host.preferred_read_replica(self, client_rack, fetch_offset)
            if chosen != self.host.node_id:  # no records: the client goes to that replica
                return self._result(ErrorCode.none, b"", [] if read_committed else None, preferred=chosen)
        plog = self.plog
        hw, lso, log_start = plog.fetch_offsets()  # a read does not move them
        if fetch_offset == (lso if read_committed else hw) and fetch_offset >= log_start:
            # At the end of what it may read (a long-poll's usual read, and every partition of a
            # consumer that has caught up): nothing to read, no aborted transaction in [offset, offset).
            # The same result as the last such read while HW, LSO and log start are the same.
            empty = self._at_lso if read_committed else self._at_hw
            if (empty is None or empty.high_watermark != hw or empty.last_stable_offset != lso
                    or empty.log_start_offset != log_start):
                empty = ReadResult(ErrorCode.none, hw, lso, log_start, b"", [] if read_committed else None,
                                   reused=True)
                if read_committed:
                    self._at_lso = empty
                else:
                    self._at_hw = empty
            return empty
        data: Records = b""
        following = fetch_offset
        error = ErrorCode.none
        if max_bytes > 0 or min_one_batch:
            try:
                data, following = plog.read_records(fetch_offset, max(max_bytes, 0), max_offset=lso if read_committed
                                                    else hw, min_one_batch=min_one_batch, next_offset=read_committed)
            except LogError as exc:
                error = ErrorCode(exc.error_code)
        aborted = None
        if read_committed:
            aborted = [{"producer_id": t.producer_id, "first_offset": t.first_offset} for t in
                       plog.aborted_transactions(fetch_offset, following)]
        return ReadResult(error, hw, lso, log_start, data, aborted, answer_now=bool(error))

    def _read_for_follower(self, replica_id: int, fetch_offset: int, max_bytes: int, last_fetched_epoch: int,
                           replica_log_start: int, min_one_batch: bool) -> ReadResult:
        """Kafka's follower fetch: read up to the log end, then record the follower's position
        (`updateFollowerFetchState`); a diverging epoch (KIP-595) makes it truncate first.
        Every follower fetch passes here twice per round trip (on arrival, caught up, and when
        an append wakes it), so the usual case takes no detour: a last fetched epoch that is
        this log's latest cannot diverge below the log end, and a follower at the log end has
        nothing to read (the log read is skipped, not asked for nothing)."""
        plog = self.plog
        leo = plog.log_end_offset
        if last_fetched_epoch >= 0 and (fetch_offset > leo or last_fetched_epoch != plog.leader_epoch_cache.latest_epoch):
            diverging = self._diverging_epoch(fetch_offset, last_fetched_epoch)
            if diverging is not None:
                # As Kafka's Partition.readRecords: an epoch whose end this log cannot tell (newer
                # than any it knows) or an offset below the log start is out of range; written as a
                # diverging epoch, (-1, -1) is the field's default, which the wire leaves out (the
                # follower would see no divergence and fetch the same offset again and again).
                if diverging["epoch"] < 0 or diverging["end_offset"] < 0 or fetch_offset < plog.log_start_offset:
                    return self._result(ErrorCode.offset_out_of_range, b"", None)
                result = self._result(ErrorCode.none, b"", None)  # answer at once: the follower must truncate
                result.diverging_epoch, result.answer_now = diverging, True
                return result
        data: Records = b""
        try:
            if fetch_offset != leo:  # out of range (below the log start, above the end) raises here
                data, _ = plog.read_records(fetch_offset, max(max_bytes, 0), max_offset=leo,
                                            min_one_batch=min_one_batch)
            error = self._on_follower_fetch(replica_id, fetch_offset, leo, replica_log_start)
        except LogError as exc:
            error = ErrorCode(exc.error_code)
        log_start = plog.log_start_offset
        # answer at once when the follower must move its log start up to ours (DeleteRecords waits for it)
        return ReadResult(error, plog.high_watermark, plog.last_stable_offset, log_start, data, None, -1, None,
                          bool(error) or 0 <= replica_log_start < log_start)

    def _diverging_epoch(self, fetch_offset: int, last_fetched: int) -> dict[str, int] | None:
        """Fetch v12+: the follower's last fetched epoch ends earlier in this log than its fetch
        offset, or is unknown here -> it must truncate."""
        if last_fetched < 0:
            return None
        epoch, end = self.plog.leader_epoch_cache.end_offset_for(last_fetched, self.plog.log_end_offset)
        if epoch == last_fetched and end >= fetch_offset:
            return None
        return {"epoch": epoch, "end_offset": end}

    def _result(self, error: ErrorCode, data: Records, aborted: list[dict[str, int]] | None, *,
                preferred: int = -1) -> ReadResult:
        plog = self.plog
        return ReadResult(error, plog.high_watermark, plog.last_stable_offset, plog.log_start_offset, data, aborted,
                          preferred, answer_now=bool(error) or preferred >= 0)

    def _on_follower_fetch(self, replica_id: int, fetch_offset: int, leader_leo: int, log_start_offset: int) -> ErrorCode:
        state = self.leader_state  # (`read` let only a leader's partition come here)
        assert state is not None
        result = state.on_follower_fetch(replica_id, fetch_offset, leader_leo, self.host.now_ms(), log_start_offset)
        if result.error:
            return ErrorCode(int(result.error))
        self.host.follower_fetched(self)
        if result is NO_CHANGE:  # the usual re-read of a parked fetch: no HW move, no ISR change
            return ErrorCode.none
        if result.proposal is not None:
            self.host.propose(self, result.proposal)
        if result.high_watermark is not None:  # acks=all waits complete only when the HW moves
            self._leader_changed(result.high_watermark)
        return ErrorCode.none

    # -- HW / ISR ----------------------------------------------------------------------
    def leader_changed(self, new_hw: int | None) -> None:
        """The leader state moved (new registration, AlterPartition answer): publish the HW,
        complete the waits it satisfies. A registration's ISR change can move the state's HW
        without reporting it (`update_registration` answers whether it applied): published too,
        or consumers would not see what the smaller ISR committed until the next append."""
        state = self.leader_state
        if new_hw is None and state is not None and state.high_watermark > self.plog.high_watermark:
            new_hw = state.high_watermark
        self._leader_changed(new_hw)

    def _leader_changed(self, new_hw: int | None) -> None:
        if new_hw is not None:
            self.plog.set_high_watermark(new_hw)
            self.host.high_watermark_moved(self.tp)  # consumers parked below the HW may read now
        if self.waits:
            self._complete(self.waiters.check_state(self.state))

    def _complete(self, done: Iterable[tuple[Any, int]]) -> None:
        waits = self.waits
        for token, error in done:
            callback = waits.pop(token, None)
            if callback is not None:
                try:  # a waiter answers its request from here: its failure must not stop the others
                    callback(int(error))
                except Exception:
                    log.exception("%s: an acks=all wait failed to complete", self.tp)
