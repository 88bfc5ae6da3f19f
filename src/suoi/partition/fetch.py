"""Fetch over many partitions, with long-poll: Kafka's ReplicaManager.fetchMessages + DelayedFetch.

A fetch that finds at least min_bytes answers at once, and so does one with an error, a
KIP-392 redirection or a diverging epoch for any partition. Otherwise it parks on the
partitions it reads (`AppendNotifier`) and re-reads as soon as any of them gets an append
(or, for consumers, a high watermark move), or answers with what it has when max_wait runs
out. A follower (replica id >= 0) is woken by appends only: it reads up to the log end.
Bytes go from the segment file to the response without being decoded.

The response budget (max_bytes) is shared in request order; the first partition with data
returns at least one whole batch even if it is larger than the budget (KIP-74).

A parked fetch is a `ParkedFetch` (a `suoi.pending.Pending`): a notifier registration and a
timer, answered from a callback; no Task and no coroutine (see `suoi.pending` for why).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from suoi.model import ErrorCode, TopicPartition
from suoi.partition.partition import NO_EPOCH_CHECK, ReadResult
from suoi.pending import Pending

if TYPE_CHECKING:
    from suoi.notify import AppendNotifier
    from suoi.partition.partition import Partition


@dataclass(slots=True)
class FetchParams:
    """The request-wide part of a Fetch."""

    max_bytes: int
    min_bytes: int
    max_wait_ms: int
    replica_id: int = -1  # a follower's broker id; -1 for consumers
    read_committed: bool = False
    client_rack: str = ""
    follower_reads: bool = False  # Fetch v11+: KIP-392 redirection and reads from followers


class PartitionSource(Protocol):
    """What a Fetch reads through (`PartitionDirectory` is one): named here, not imported, so the
    directory, which serves Fetch through this module, and this module do not import each other."""

    @property
    def notifier(self) -> AppendNotifier: ...
    def get_partition(self, topic: str, partition: int, *,
                      follower_read: bool = False) -> tuple[Partition | None, ErrorCode]: ...
    def topic_name(self, topic_id: uuid.UUID | None) -> str | None: ...


class PartitionFetch(Protocol):
    """One requested partition, as `_read_all` reads it: a `FetchPartition`, or kio's request
    entity itself (Fetch v12+ has every field, under these names: no copy per partition)."""

    @property
    def partition(self) -> int: ...
    @property
    def fetch_offset(self) -> int: ...
    @property
    def partition_max_bytes(self) -> int: ...
    @property
    def current_leader_epoch(self) -> int: ...
    @property
    def last_fetched_epoch(self) -> int: ...
    @property
    def log_start_offset(self) -> int: ...


@dataclass(slots=True)
class FetchPartition:
    """A requested partition of a Fetch older than v12 (kio's lacks fields the read takes)."""

    partition: int
    fetch_offset: int
    partition_max_bytes: int
    current_leader_epoch: int = NO_EPOCH_CHECK
    last_fetched_epoch: int = -1
    log_start_offset: int = -1  # a follower's own log start


#: (topic name or None, topic id or None, partitions) as requested
FetchTopic = tuple[str | None, uuid.UUID | None, Sequence[PartitionFetch]]
#: the same topics with one `ReadResult` per partition index
TopicReads = list[tuple[str | None, uuid.UUID | None, list[tuple[int, ReadResult]]]]


def fetch_messages(directory: PartitionSource, params: FetchParams,
                   topics: list[FetchTopic]) -> TopicReads | ParkedFetch:
    reads, total, tps, answer_now = _read_all(directory, params, topics)
    if total >= params.min_bytes or answer_now or params.max_wait_ms <= 0 or not tps:
        return reads
    return ParkedFetch(directory, params, topics, tps)


class ParkedFetch(Pending[TopicReads]):
    """A Fetch waiting for min_bytes (Kafka's DelayedFetch): parked on its partitions in the
    notifier from the moment it is handled, with one timer for its max wait. A wake-up
    schedules one re-read (appends to several partitions in one loop iteration: one re-read);
    the re-read answers (`resolve`, which runs the layers' steps and writes the answer) or
    parks again on what it read, under the same timer. The timer answers with what there is.
    `cancel` (the connection closed) unparks it and drops the timer: nothing is left behind."""

    __slots__ = ("_directory", "_loop", "_params", "_replica", "_scheduled", "_timer", "_topics", "_tps")

    def __init__(self, directory: PartitionSource, params: FetchParams, topics: list[FetchTopic],
                 tps: list[TopicPartition]) -> None:
        super().__init__()
        self._directory, self._params, self._topics, self._tps = directory, params, topics, tps
        self._replica = params.replica_id >= 0
        self._scheduled = False
        loop = self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = loop.call_later(params.max_wait_ms / 1000, self._expire)
        directory.notifier.park(self, tps, replica=self._replica)

    def wake(self) -> None:
        if self._scheduled or self.done:
            return
        self._scheduled = True
        if len(self._tps) > 1:  # the one that woke it has left the notifier's table already
            self._directory.notifier.unpark(self, self._tps, replica=self._replica)
        self._loop.call_soon(self._retry)

    def _retry(self) -> None:
        self._scheduled = False
        if self.done:
            return
        try:
            reads, total, tps, answer_now = _read_all(self._directory, self._params, self._topics)
        except Exception as exc:
            self._stop_timer()
            self.fail(exc)
            return
        if total >= self._params.min_bytes or answer_now or not tps:
            timer, self._timer = self._timer, None  # (`_stop_timer` and `resolve` inline: the usual wake-up)
            if timer is not None:
                timer.cancel()
            self._run(reads, None)
            return
        self._tps = tps
        self._directory.notifier.park(self, tps, replica=self._replica)

    def _expire(self) -> None:
        self._timer = None
        if self.done:
            return
        if not self._scheduled:
            self._directory.notifier.unpark(self, self._tps, replica=self._replica)
        try:
            reads = _read_all(self._directory, self._params, self._topics)[0]
        except Exception as exc:
            self.fail(exc)
            return
        self.resolve(reads)

    def _stop_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def _cancelled(self) -> None:
        self._stop_timer()
        if not self._scheduled:
            self._directory.notifier.unpark(self, self._tps, replica=self._replica)


def _read_all(directory: PartitionSource, params: FetchParams,
              topics: list[FetchTopic]) -> tuple[TopicReads, int, list[TopicPartition], bool]:
    """One pass over every requested partition: (reads, bytes, partitions read, answer now)."""
    budget = params.max_bytes
    total = 0
    answer_now = False
    tps: list[TopicPartition] = []
    out: TopicReads = []
    replica_id, read_committed, rack, follower_reads = (params.replica_id, params.read_committed, params.client_rack,
                                                        params.follower_reads)
    consumer_follower_read = replica_id < 0 and follower_reads
    get_partition = directory.get_partition
    for name, topic_id, partitions in topics:
        resolved = name if name is not None else directory.topic_name(topic_id)
        results: list[tuple[int, ReadResult]] = []
        for p in partitions:
            index = p.partition
            if resolved is None:
                result = ReadResult(ErrorCode.unknown_topic_id, answer_now=True)
            else:
                partition, error = get_partition(resolved, index, follower_read=consumer_follower_read)
                if partition is None:
                    result = ReadResult(error, answer_now=True)
                else:
                    tps.append(partition.tp)
                    result = partition.read(
                        p.fetch_offset, min(p.partition_max_bytes, budget), read_committed=read_committed,
                        replica_id=replica_id, client_rack=rack, current_leader_epoch=p.current_leader_epoch,
                        last_fetched_epoch=p.last_fetched_epoch, replica_log_start=p.log_start_offset,
                        min_one_batch=total == 0, follower_reads=follower_reads)
            if result.answer_now:
                answer_now = True
            size = len(result.records)
            if size:
                total += size
                budget -= size
            results.append((index, result))
        out.append((name, topic_id, results))
    return out, total, tps, answer_now
