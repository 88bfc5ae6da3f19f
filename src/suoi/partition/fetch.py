"""Fetch over many partitions, with long-poll: Kafka's ReplicaManager.fetchMessages + DelayedFetch.

A fetch that finds at least min_bytes answers at once, and so does one with an error, a
KIP-392 redirection or a diverging epoch for any partition. Otherwise it parks on the
partitions it reads (`AppendNotifier`) and re-reads as soon as any of them gets an append
(or, for consumers, a high watermark move), or answers with what it has when max_wait runs
out. A follower (replica id >= 0) is woken by appends only: it reads up to the log end.
Bytes go from the segment file to the response without being decoded.

The response budget (max_bytes) is shared in request order; the first partition with data
returns at least one whole batch even if it is larger than the budget (KIP-74).

A parked fetch is a `ParkedFetch` (a `suoi.pending.Pending`): a notifier registration and an
entry in the node's max-wait deadlines (`fetch_deadlines`: one loop timer for all), answered
from a callback; no Task and no coroutine (see `suoi.pending` for why).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from suoi.model import TopicPartition
from suoi.partition.fetch_deadlines import FetchDeadlines
from suoi.partition.fetch_resolve import FetchResolution, Resolver, resolve
from suoi.partition.partition import NO_EPOCH_CHECK, ReadResult
from suoi.pending import Pending

if TYPE_CHECKING:
    from suoi.notify import AppendNotifier


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


class PartitionSource(Resolver, Protocol):
    """What a Fetch reads through (`PartitionDirectory` is one): named here, not imported, so the
    directory, which serves Fetch through this module, and this module do not import each other."""

    @property
    def notifier(self) -> AppendNotifier: ...


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


def fetch_messages(directory: PartitionSource, params: FetchParams, topics: list[FetchTopic],
                   remember: bool = False) -> TopicReads | ParkedFetch:
    """Read `topics` now, or park until there is something to answer. `remember`: the
    partitions' resolution may come from (and go to) the directory's memo of recent Fetches
    naming the same partitions (`fetch_resolve`; sessionless consumers name the same set each time)."""
    resolution = resolve(directory, topics, params.replica_id < 0 and params.follower_reads, None, remember)
    reads, total, tps, answer_now = _read_all(params, topics, resolution)
    if total >= params.min_bytes or answer_now or params.max_wait_ms <= 0 or not tps:
        return reads
    return ParkedFetch(directory, params, topics, tps, resolution)


class ParkedFetch(Pending[TopicReads]):
    """A Fetch waiting for min_bytes (Kafka's DelayedFetch): parked on its partitions in the
    notifier from the moment it is handled, with a deadline for its max wait (`fetch_deadlines`).
    A wake-up schedules one re-read (appends to several partitions in one loop iteration: one
    re-read); the re-read answers (`resolve`, which runs the layers' steps and writes the answer)
    or parks again on what it read, under the same deadline. The deadline answers with what
    there is, unless the fetch is done by then. `cancel` (the connection closed) unparks it;
    its deadline is skipped when it comes (nothing else is left behind)."""

    __slots__ = ("_directory", "_loop", "_params", "_replica", "_resolution", "_scheduled", "_topics", "_tps")

    def __init__(self, directory: PartitionSource, params: FetchParams, topics: list[FetchTopic],
                 tps: list[TopicPartition], resolution: FetchResolution) -> None:
        super().__init__()
        self._directory, self._params, self._topics, self._tps = directory, params, topics, tps
        self._resolution = resolution
        self._replica = params.replica_id >= 0
        self._scheduled = False
        loop = self._loop = asyncio.get_running_loop()
        notifier = directory.notifier
        deadlines = notifier.fetch_deadlines
        if deadlines is None or deadlines.loop is not loop:
            deadlines = notifier.fetch_deadlines = FetchDeadlines(loop)
        deadlines.add(params.max_wait_ms, self)
        notifier.park(self, tps, replica=self._replica)

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
            reads, total, tps, answer_now = _read_all(self._params, self._topics, self._resolved())
        except Exception as exc:
            self.fail(exc)
            return
        if total >= self._params.min_bytes or answer_now or not tps:
            self._run(reads, None)  # (`resolve` inline: the usual wake-up; its deadline is skipped when due)
            return
        self._tps = tps
        self._directory.notifier.park(self, tps, replica=self._replica)

    def _expire(self) -> None:
        if self.done:
            return
        if not self._scheduled:
            self._directory.notifier.unpark(self, self._tps, replica=self._replica)
        try:
            reads = _read_all(self._params, self._topics, self._resolved())[0]
        except Exception as exc:
            self.fail(exc)
            return
        self.resolve(reads)

    def _resolved(self) -> FetchResolution:
        """The partitions as first resolved, unless the image, the partition tables or a log
        changed since (then resolved again: Kafka's DelayedFetch looks every partition up anew)."""
        params = self._params
        resolution = self._resolution = resolve(self._directory, self._topics,
                                                params.replica_id < 0 and params.follower_reads, self._resolution)
        return resolution

    def _cancelled(self) -> None:
        if not self._scheduled:
            self._directory.notifier.unpark(self, self._tps, replica=self._replica)


def _read_all(params: FetchParams, topics: list[FetchTopic],
              resolution: FetchResolution) -> tuple[TopicReads, int, list[TopicPartition], bool]:
    """One pass over every requested partition: (reads, bytes, partitions read, answer now).
    The partitions read are the resolution's (all of them when it has no error; with an error the
    fetch answers at once). A caught-up partition's read is its reused empty result: no records,
    so no size to count (the loop makes no call it does not need: it runs per partition per pass)."""
    budget = params.max_bytes
    total = 0
    answer_now = False
    out: TopicReads = []
    replica_id, read_committed, rack, follower_reads = (params.replica_id, params.read_committed, params.client_rack,
                                                        params.follower_reads)
    for (name, topic_id, partitions), (_resolved, found) in zip(topics, resolution.topics, strict=True):
        results: list[tuple[int, ReadResult]] = []
        for p, (partition, error) in zip(partitions, found, strict=True):
            if partition is None:
                result = ReadResult(error, answer_now=True)
            else:
                limit = p.partition_max_bytes
                result = partition.read(
                    p.fetch_offset, limit if limit < budget else budget, read_committed, replica_id, rack,
                    p.current_leader_epoch, p.last_fetched_epoch, p.log_start_offset, total == 0, follower_reads)
            if result.answer_now:
                answer_now = True
            if result.records:
                size = len(result.records)
                total += size
                budget -= size
            results.append((p.partition, result))
        out.append((name, topic_id, results))
    return out, total, resolution.tps, answer_now
