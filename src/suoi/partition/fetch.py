"""Fetch over many partitions, with long-poll: Kafka's ReplicaManager.fetchMessages + DelayedFetch.

A fetch that finds at least min_bytes answers at once, and so does one with an error, a
KIP-392 redirection or a diverging epoch for any partition. Otherwise it parks on the
partitions it reads (`AppendNotifier`) and re-reads as soon as any of them gets an append
(or, for consumers, a high watermark move), or answers with what it has when max_wait runs
out. A follower (replica id >= 0) is woken by appends only: it reads up to the log end.
Bytes go from the segment file to the response without being decoded.

The response budget (max_bytes) is shared in request order; the first partition with data
returns at least one whole batch even if it is larger than the budget (KIP-74).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from suoi.model import ErrorCode, TopicPartition
from suoi.partition.partition import NO_EPOCH_CHECK, ReadResult

if TYPE_CHECKING:
    from suoi.partition.directory import PartitionDirectory


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


@dataclass(slots=True)
class FetchPartition:
    partition: int
    fetch_offset: int
    max_bytes: int
    current_leader_epoch: int = NO_EPOCH_CHECK
    last_fetched_epoch: int = -1
    log_start_offset: int = -1  # a follower's own log start


#: (topic name or None, topic id or None, partitions) as requested
FetchTopic = tuple[str | None, uuid.UUID | None, list[FetchPartition]]
#: the same topics with one `ReadResult` per partition index
TopicReads = list[tuple[str | None, uuid.UUID | None, list[tuple[int, ReadResult]]]]


def fetch_messages(directory: PartitionDirectory, params: FetchParams,
                   topics: list[FetchTopic]) -> TopicReads | Awaitable[TopicReads]:
    reads, total, tps, answer_now = _read_all(directory, params, topics)
    if total >= params.min_bytes or answer_now or params.max_wait_ms <= 0 or not tps:
        return reads
    # Parked now, before the coroutine below first runs (`AppendNotifier.wait`).
    parked = directory.notifier.wait(tps, params.max_wait_ms / 1000, replica=params.replica_id >= 0)
    return _long_poll(directory, params, topics, parked)


async def _long_poll(directory: PartitionDirectory, params: FetchParams, topics: list[FetchTopic],
                     parked: asyncio.Future[bool]) -> TopicReads:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + params.max_wait_ms / 1000
    while True:
        await parked
        reads, total, tps, answer_now = _read_all(directory, params, topics)
        remaining = deadline - loop.time()
        if total >= params.min_bytes or answer_now or remaining <= 0:
            return reads
        parked = directory.notifier.wait(tps, remaining, replica=params.replica_id >= 0)


def _read_all(directory: PartitionDirectory, params: FetchParams,
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
    for name, topic_id, partitions in topics:
        resolved = name if name is not None else directory.topic_name(topic_id)
        results: list[tuple[int, ReadResult]] = []
        for p in partitions:
            if resolved is None:
                result = ReadResult(ErrorCode.unknown_topic_id, answer_now=True)
            else:
                partition, error = directory.get_partition(resolved, p.partition, follower_read=consumer_follower_read)
                if partition is None:
                    result = ReadResult(error, answer_now=True)
                else:
                    tps.append(partition.tp)
                    result = partition.read(
                        p.fetch_offset, min(p.max_bytes, budget), read_committed=read_committed, replica_id=replica_id,
                        client_rack=rack, current_leader_epoch=p.current_leader_epoch,
                        last_fetched_epoch=p.last_fetched_epoch, replica_log_start=p.log_start_offset,
                        min_one_batch=total == 0, follower_reads=follower_reads)
            answer_now = answer_now or result.answer_now
            size = len(result.records)
            total += size
            budget -= size
            results.append((p.partition, result))
        out.append((name, topic_id, results))
    return out, total, tps, answer_now
