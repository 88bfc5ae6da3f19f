"""Which `Partition` each partition of a Fetch names: resolved once per request, and remembered
for the next request naming the same partitions.

librdkafka, kafka-python and aiokafka do not use KIP-227 sessions: every Fetch names every
assigned partition, and a long-poll read them all at least twice (when handled, when woken).
`get_partition` (image, log manager, leader table: ~1 µs) for each of them each time was a
third of what an extra partition cost a Fetch. A `FetchResolution` is the answer for every
partition a request names, kept by its `ParkedFetch` for the re-reads, and remembered by the
directory (`resolutions`, keyed by the names and indexes in request order) for the consumer's
next Fetch naming the same set (sessionless ones only: an incremental session names a
different subset, in a different order, each time).

A resolution is valid while `get_partition` would answer the same: the metadata image is the
same object, the directory's `generation` (bumped by every change to its leader and follower
tables) is the same, and each partition's log is still the one the log manager holds for it.
A resolution with an error in it is never reused (errors can be transient: storage, offline,
leadership in flight); the fetch answers at once anyway. So a deleted, moved or resigned
partition is never served from a remembered resolution: a new image, or a changed table,
resolves the request again, in full.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from suoi.model import ErrorCode, TopicPartition

if TYPE_CHECKING:
    from suoi.log.partition_log import PartitionLog
    from suoi.partition.partition import Partition

#: remembered resolutions per directory (one per distinct set of partitions fetched); past it
#: the memo starts again (a node with more distinct consumer assignments resolves as before)
MAX_REMEMBERED = 512

#: per requested topic: (its name, or None for an unknown topic id; (partition or None, error)
#: per requested partition, in request order)
ResolvedTopic = tuple[str | None, list[tuple["Partition | None", ErrorCode]]]


class Resolver(Protocol):
    """What resolving reads of the directory (`PartitionDirectory` is one; its `logs` a `LogManager`)."""

    resolutions: dict[Any, FetchResolution]

    def resolution_stamp(self) -> tuple[object, int]: ...
    def get_partition(self, topic: str, partition: int, *,
                      follower_read: bool = False) -> tuple[Partition | None, ErrorCode]: ...
    def topic_name(self, topic_id: uuid.UUID | None) -> str | None: ...
    @property
    def logs(self) -> Any: ...


class FetchResolution:
    """Every requested partition's `Partition` (or error), with what it is valid for (module doc)."""

    __slots__ = ("complete", "generation", "image", "topics", "tps")

    def __init__(self, image: object, generation: int, topics: list[ResolvedTopic], complete: bool) -> None:
        self.image, self.generation, self.topics, self.complete = image, generation, topics, complete
        #: the partitions found, in request order: what a fetch that must wait parks on
        self.tps: list[TopicPartition] = [p.tp for _name, entries in topics for p, _error in entries if p is not None]


def resolve(directory: Resolver, topics: Sequence[tuple[str | None, uuid.UUID | None, Sequence[Any]]],
            follower_read: bool, held: FetchResolution | None = None, remember: bool = False) -> FetchResolution:
    """The resolution of `topics` ((name, topic id, partitions) as requested): `held` (the same
    request's, from its first read) or the one remembered for the same partitions when still
    valid, else a new one (remembered if `remember` and error-free)."""
    image, generation = directory.resolution_stamp()
    if held is not None:
        if _valid(held, image, generation, directory.logs.log_of):
            return held
        return _resolve(directory, topics, follower_read, image, generation)
    if not remember:
        return _resolve(directory, topics, follower_read, image, generation)
    key = (follower_read, *[(name if name is not None else topic_id, *[p.partition for p in partitions])
                            for name, topic_id, partitions in topics])
    memo = directory.resolutions
    found = memo.get(key)
    if found is not None and _valid(found, image, generation, directory.logs.log_of):
        return found
    resolution = _resolve(directory, topics, follower_read, image, generation)
    if resolution.complete:
        if memo and (len(memo) >= MAX_REMEMBERED or next(iter(memo.values())).image is not image):
            memo.clear()  # full, or the oldest made under an older image: let go of what they hold
        memo[key] = resolution
    elif found is not None:
        del memo[key]
    return resolution


def _valid(resolution: FetchResolution, image: object, generation: int,
           log_of: Callable[[tuple[str, int]], PartitionLog | None]) -> bool:
    if not resolution.complete or resolution.image is not image or resolution.generation != generation:
        return False
    for _name, entries in resolution.topics:
        for partition, _error in entries:
            if log_of(partition.tp) is not partition.plog:  # type: ignore[union-attr]  # (complete: no None)
                return False
    return True


def _resolve(directory: Resolver, topics: Sequence[tuple[str | None, uuid.UUID | None, Sequence[Any]]],
             follower_read: bool, image: object, generation: int) -> FetchResolution:
    get_partition = directory.get_partition
    complete = True
    out: list[ResolvedTopic] = []
    for name, topic_id, partitions in topics:
        resolved = name if name is not None else directory.topic_name(topic_id)
        entries: list[tuple[Partition | None, ErrorCode]] = []
        if resolved is None:
            entries = [(None, ErrorCode.unknown_topic_id)] * len(partitions)
            complete = False
        else:
            for p in partitions:
                found = get_partition(resolved, p.partition, follower_read=follower_read)
                if found[0] is None:
                    complete = False
                entries.append(found)
        out.append((resolved, entries))
    return FetchResolution(image, generation, out, complete)
