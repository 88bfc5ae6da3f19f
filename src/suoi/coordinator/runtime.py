"""What every coordinator runtime shares: state kept in an internal, compacted topic,
loaded per partition while this node leads that partition, and a sans-IO machine whose
timers this loop fires.

Partitions come and go with leadership (Kafka's onElection/onResignation):
- `on_become_leader(partition, leader_epoch)` replays that partition's log into memory in the
  background; meanwhile its keys answer COORDINATOR_LOAD_IN_PROGRESS (other partitions keep
  serving). A newer epoch while leading (or loading) only updates the epoch.
- `on_resign(partition, leader_epoch)` drops the partition's state; requests parked on it or
  waiting for its writes to replicate are answered NOT_COORDINATOR, and so is every later one.
The internal topic is created by the controller (FindCoordinator asks for it) and the
replica manager calls `on_become_leader`/`on_resign` as leadership moves.

Writes: `_append_to` appends to the local log (stamped with the partition's leader epoch),
tells the injected `PartitionWriter` (`writer.py`) and remembers the end offset; a reply that
depends on it is released once the writer's `wait_replicated(tp, end_offset)` says the
partition's high watermark reached it (`_replicated`). Subclasses name their `topic`, decode what they replay (`_replay_batch`),
finish loading a partition (`_loaded`), forget one (`_unload`) and process the machine's
outputs (`_process`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from suoi.coordinator.writer import PartitionWriter
from suoi.log.errors import LogError
from suoi.log.manager import LogManager
from suoi.model import ErrorCode, TopicPartition
from suoi.protocol.records import BatchHeader, SimpleRecord, decode_batch_records, iter_batches

log = logging.getLogger("suoi.coordinator")

LOAD_CHUNK_BYTES = 1 << 20
#: A leadership change moves many internal partitions at once (a broker's controlled shutdown,
#: a preferred election): resignations are logged as one INFO line for those within this long
#: of the first, each partition at DEBUG.
RESIGN_LOG_WINDOW_S = 0.1


class NotCoordinatorError(LogError):
    """An append to an internal partition this node does not lead (a bug guard)."""

    error_code = ErrorCode.not_coordinator


# Kafka's mapping of a failed coordinator append to what the client is told
# (GroupCoordinatorService.handleOperationException, TransactionStateManager).
_TO_COORDINATOR_NOT_AVAILABLE = frozenset({
    ErrorCode.unknown_topic_or_partition, ErrorCode.not_enough_replicas,
    ErrorCode.not_enough_replicas_after_append, ErrorCode.request_timed_out})
_TO_NOT_COORDINATOR = frozenset({ErrorCode.not_leader_or_follower, ErrorCode.kafka_storage_error})
_TOO_LARGE = frozenset({ErrorCode.message_too_large, ErrorCode.record_list_too_large, ErrorCode.invalid_fetch_size})


def append_error(code: int, *, offsets: bool = False) -> ErrorCode:
    """What a coordinator answers when its append failed with `code` (0: NONE). `offsets`:
    an OffsetCommit/TxnOffsetCommit, where a too-large write is INVALID_COMMIT_OFFSET_SIZE."""
    if code == ErrorCode.none:
        return ErrorCode.none
    if code in _TO_COORDINATOR_NOT_AVAILABLE:
        return ErrorCode.coordinator_not_available
    if code in _TO_NOT_COORDINATOR:
        return ErrorCode.not_coordinator
    if code in _TOO_LARGE:
        return ErrorCode.invalid_commit_offset_size if offsets else ErrorCode.unknown_server_error
    try:
        return ErrorCode(code)
    except ValueError:
        return ErrorCode.unknown_server_error


class PartitionSlot:
    """One internal-topic partition this node leads: loading or active."""

    __slots__ = ("epoch", "last_written", "load", "loading", "partition", "resigned")

    def __init__(self, partition: int, epoch: int | None, *, loading: bool) -> None:
        self.partition = partition
        self.epoch = epoch  # the partition's leader epoch (KRaft); None standalone
        self.loading = loading
        self.load: asyncio.Task[None] | None = None
        #: End offset of this coordinator's last append (the log end once loaded): replies
        #: wait until the high watermark reaches it.
        self.last_written = 0
        #: Done when the partition is resigned: wakes everything waiting on its writes.
        self.resigned: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class Resignations:
    """Partitions of one internal topic resigned lately, logged together (`RESIGN_LOG_WINDOW_S`)."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.partitions: list[int] = []
        self._flush: asyncio.TimerHandle | None = None

    def add(self, partition: int, leader_epoch: int | None) -> None:
        log.debug("%s-%d: resigned (epoch %s); its state is unloaded", self.topic, partition, leader_epoch)
        self.partitions.append(partition)
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(RESIGN_LOG_WINDOW_S, self.flush)

    def flush(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        partitions, self.partitions = sorted(self.partitions), []
        if partitions:
            log.info("%s: resigned %d partition%s (%s); their state is unloaded", self.topic, len(partitions),
                     "" if len(partitions) == 1 else "s", ", ".join(map(str, partitions)))


#: Where a reply must wait before it is sent: the partition's slot and the end offset of the
#: last write it may depend on (None, None: nothing to wait for).
Mark = tuple[PartitionSlot | None, int | None]


class CoordinatorRuntime:
    topic: str = ""

    def __init__(self, logs: LogManager, writer: PartitionWriter, now_ms: Callable[[], int]) -> None:
        self._logs = logs
        self.writer = writer
        self._now_ms = now_ms
        self.machine: Any = None
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._slots: dict[int, PartitionSlot] = {}
        self._epochs: dict[int, int] = {}  # the newest leader epoch seen per partition
        self._resignations = Resignations(self.topic)
        #: How many partitions a topic has (None: no such topic): the metadata image's (the
        #: topic may live on other brokers); by default the local logs' (unit tests).
        self.partition_count: Callable[[str], int | None] = self._local_partition_count

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._spawn(self._timer_loop(), f"{self.topic}-timers")

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    def _spawn_background(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def stop(self) -> None:
        # The flag also ends the timer loop: on Python 3.11 a cancel landing as `wait_for`'s
        # inner wait completes can be swallowed, and awaiting such a task would hang shutdown.
        self._stopping = True
        self._resignations.flush()
        tasks = [*self._tasks, *self._background]
        for task in tasks:
            task.cancel()
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=5.0)
            if stuck:
                log.warning("%s: %d tasks did not stop within 5 s", self.topic, len(stuck))

    # -- leadership ------------------------------------------------------------------
    @property
    def loading(self) -> bool:
        """Some partition is still loading (ListGroups/ListTransactions wait for all)."""
        return any(slot.loading for slot in self._slots.values())

    def leads(self, partition: int) -> bool:
        return partition in self._slots

    def leader_epoch(self, partition: int) -> int | None:
        slot = self._slots.get(partition)
        return None if slot is None else slot.epoch

    def on_become_leader(self, partition: int, leader_epoch: int) -> None:
        """This node now leads `partition` of the internal topic in `leader_epoch`, and its
        local log is complete: load the partition's state (in the background)."""
        if leader_epoch < self._epochs.get(partition, -1):
            log.info("%s-%d: ignoring leadership in stale epoch %d", self.topic, partition, leader_epoch)
            return
        self._epochs[partition] = leader_epoch
        slot = self._slots.get(partition)
        if slot is None:
            self._become(partition, leader_epoch)
        elif slot.epoch is None or leader_epoch > slot.epoch:
            log.info("%s-%d: still the leader, now in epoch %d", self.topic, partition, leader_epoch)
            slot.epoch = leader_epoch  # the log is a superset of what is (being) loaded

    def on_resign(self, partition: int, leader_epoch: int | None) -> None:
        """This node no longer leads `partition` (`leader_epoch`: the epoch it moved to, or None
        when unknown or the partition is gone): stop any load, drop the partition's state and
        answer everything waiting on it NOT_COORDINATOR. A resign older than the epoch this
        node leads in is ignored."""
        slot = self._slots.get(partition)
        if leader_epoch is not None:
            if slot is not None and slot.epoch is not None and leader_epoch < slot.epoch:
                log.info("%s-%d: ignoring resignation in stale epoch %d", self.topic, partition, leader_epoch)
                return
            self._epochs[partition] = max(leader_epoch, self._epochs.get(partition, -1))
        if slot is None:
            return
        del self._slots[partition]
        if slot.load is not None and not slot.load.done():
            slot.load.cancel()
        slot.resigned.set_result(None)
        self._unload(partition)
        self._resignations.add(partition, leader_epoch)
        self._kick()

    def _become(self, partition: int, leader_epoch: int | None) -> None:
        plog = self._logs.get_log(self.topic, partition)
        if plog is not None and plog.log_start_offset >= plog.log_end_offset:
            # nothing to replay (a partition just created): serve at once, no COORDINATOR_LOAD_IN_PROGRESS
            # window (kafkajs, for one, fails a TxnOffsetCommit answered that way)
            slot = self._slots[partition] = PartitionSlot(partition, leader_epoch, loading=False)
            slot.last_written = plog.log_end_offset
            self._loaded(partition, self._now_ms())
            return
        slot = self._slots[partition] = PartitionSlot(partition, leader_epoch, loading=True)
        slot.load = self._spawn_background(self._load_partition(slot), f"{self.topic}-{partition}-load")

    def partition_error(self, partition: int) -> ErrorCode:
        """NONE if requests for keys of `partition` are served here, else why not."""
        slot = self._slots.get(partition)
        if slot is None:
            return ErrorCode.not_coordinator
        return ErrorCode.coordinator_load_in_progress if slot.loading else ErrorCode.none

    # -- replay ------------------------------------------------------------------------
    async def _load_partition(self, slot: PartitionSlot) -> None:
        """Replay one partition's local log up to its end, yielding to the event loop between
        chunks. Cancelled by `on_resign` (which also drops what was replayed)."""
        partition = slot.partition
        started = self._now_ms()
        try:
            plog = self._logs.get_log(self.topic, partition)
            if plog is not None:
                offset = plog.log_start_offset
                while offset < plog.log_end_offset:  # markers may still arrive: re-read the end
                    data = plog.read(offset, LOAD_CHUNK_BYTES, max_offset=plog.log_end_offset)
                    if not data:
                        break
                    for pos, header in iter_batches(data):
                        offset = header.next_offset
                        self._replay_batch(partition, header, decode_batch_records(data, pos, header))
                    await asyncio.sleep(0)
                slot.last_written = plog.log_end_offset
            slot.loading = False
            self._loaded(partition, self._now_ms())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("cannot load %s-%d; not coordinating it", self.topic, partition)
            slot.load = None  # this task: nothing to cancel
            if self._slots.get(partition) is slot:
                self.on_resign(partition, None)
            return
        log.info("loaded %s-%d (epoch %s) in %d ms", self.topic, partition, slot.epoch, self._now_ms() - started)
        self._kick()

    def _replay_batch(self, partition: int, header: BatchHeader, records: list[SimpleRecord]) -> None:
        raise NotImplementedError

    def _loaded(self, partition: int, now: int) -> None:
        raise NotImplementedError

    def _unload(self, partition: int) -> None:
        raise NotImplementedError

    def _local_partition_count(self, topic: str) -> int | None:
        info = self._logs.topics().get(topic)
        return None if info is None else info.partitions

    # -- writes ------------------------------------------------------------------------
    def _append_to(self, partition: int, batch: bytes) -> None:
        """Append one batch to the internal topic's partition (stamped with its leader epoch);
        raises LogError/OSError. Replies depending on it wait for `mark(partition)`."""
        slot = self._slots.get(partition)
        if slot is None:
            raise NotCoordinatorError(f"{self.topic}-{partition} is not led here")
        plog = self._logs.get_log(self.topic, partition)
        if plog is None:
            raise LogError(f"{self.topic}-{partition} is missing")
        info = plog.append(batch, leader_epoch=slot.epoch)
        slot.last_written = max(slot.last_written, info.last_offset + 1)
        self.writer.appended(TopicPartition(self.topic, partition))

    def mark(self, partition: int) -> Mark:
        """What a reply about `partition` must wait for: every write made so far."""
        slot = self._slots.get(partition)
        return (None, None) if slot is None else (slot, slot.last_written)

    def _is_committed(self, slot: PartitionSlot, end_offset: int) -> bool:
        plog = self._logs.get_log(self.topic, slot.partition)
        return plog is not None and plog.high_watermark >= end_offset

    async def _replicated(self, mark: Mark) -> int:
        """Wait until the writes of `mark` are committed: 0, or the error code (as the log
        append would give it; map it with `append_error`). A resignation meanwhile is
        NOT_LEADER_OR_FOLLOWER."""
        slot, end = mark
        if slot is None or end is None or self._is_committed(slot, end):
            return 0
        if slot.resigned.done():
            return int(ErrorCode.not_leader_or_follower)
        wait = asyncio.ensure_future(self.writer.wait_replicated(TopicPartition(self.topic, slot.partition), end))
        try:
            await asyncio.wait((wait, slot.resigned), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not wait.done():
                wait.cancel()
        if not wait.done() or wait.cancelled():
            return int(ErrorCode.not_leader_or_follower)
        if wait.exception() is not None:
            log.error("%s-%d: waiting for replication failed", self.topic, slot.partition, exc_info=wait.exception())
            return int(ErrorCode.unknown_server_error)
        return int(wait.result())

    # -- timers ------------------------------------------------------------------------
    def _process(self, outputs: Iterable[Any]) -> Any:
        raise NotImplementedError

    def _kick(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _timer_loop(self) -> None:
        """Fire the machine's timers: sleep until its next deadline or until an event
        (`_kick`) may have moved it."""
        wake = self._wake
        assert wake is not None
        while not self._stopping:
            deadline = self.machine.next_deadline()
            now = self._now_ms()
            if deadline is not None and deadline <= now:
                self._process(self.machine.poll(now))
                continue
            wake.clear()
            timeout = None if deadline is None else (deadline - now) / 1000
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout)
