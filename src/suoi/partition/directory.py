"""Finding the `Partition` a request names: the part of Kafka's ReplicaManager the API layer calls.

`PartitionDirectory` is what Produce and Fetch (and the transaction-marker writer) see of the
partition layer: `get_partition(topic, index)` -> (Partition, NONE) or (None, the error the
client must get), plus the two entry points built on it, `append_records` and
`fetch_messages` (`fetch.py`). The replica manager is the directory of a broker
(`replica_manager.py`); `NoPartitions` is a controller-only node's.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from suoi.model import ErrorCode, TopicPartition
from suoi.partition.fetch import fetch_messages
from suoi.partition.partition import AppendResult, Partition, append_refused

if TYPE_CHECKING:
    from suoi.log.manager import LogManager
    from suoi.notify import AppendNotifier
    from suoi.partition.fetch import FetchParams, FetchTopic, ParkedFetch, TopicReads
    from suoi.partition.fetch_resolve import FetchResolution
    from suoi.partition.fetch_session import FetchSessionCache


class PartitionDirectory:
    logs: LogManager
    notifier: AppendNotifier
    #: KIP-227 fetch sessions of the clients and followers fetching here (None: every fetch sessionless)
    fetch_sessions: FetchSessionCache | None = None
    #: bumped by every change to the partition tables `get_partition` reads (leading, following,
    #: resigning, dropping a replica): with the metadata image, what a `FetchResolution` is valid for
    generation: int = 0
    #: the resolutions of recent Fetches, by the partitions they name (`fetch_resolve.resolve`)
    resolutions: dict[object, FetchResolution]

    def resolution_stamp(self) -> tuple[object, int]:
        """What `get_partition`'s answers depend on besides the logs: the metadata image and
        `generation` (a controller-only node has neither: its answers never change)."""
        return None, self.generation

    def get_partition(self, topic: str, partition: int, *,
                      follower_read: bool = False) -> tuple[Partition | None, ErrorCode]:
        """The local replica to serve `topic`-`partition` from: a partition this node leads, or
        (`follower_read`: a KIP-392 consumer) one it follows. Otherwise why not, in Kafka's order:
        KAFKA_STORAGE_ERROR (its log dir failed), UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER."""
        raise NotImplementedError

    # -- the wake-ups of `PartitionHost` (every directory is its partitions' host) -----------
    def appended(self, tp: TopicPartition) -> None:
        self.notifier.appended(tp)

    def high_watermark_moved(self, tp: TopicPartition) -> None:
        self.notifier.high_watermark_moved(tp)

    def topic_name(self, topic_id: uuid.UUID | None) -> str | None:
        """The name of a hosted topic by id (Fetch v13+ names topics by id)."""
        info = self.logs.topic_by_id(topic_id) if topic_id else None
        return info.name if info is not None else None

    def append_records(self, topic: str, partition: int, records: bytes | memoryview | None, acks: int,
                       origin: str = "") -> AppendResult:
        """Kafka's ReplicaManager.appendRecords for one partition (see `Partition.append_records`)."""
        target, error = self.get_partition(topic, partition)
        if target is None:
            return append_refused(error)
        if not records:
            return append_refused(ErrorCode.invalid_record, "empty record set")
        return target.append_records(records, acks, origin)

    def fetch_messages(self, params: FetchParams, topics: list[FetchTopic]) -> TopicReads | ParkedFetch:
        """Kafka's ReplicaManager.fetchMessages: read now, or long-poll (see `fetch.py`)."""
        return fetch_messages(self, params, topics)


class NoPartitions(PartitionDirectory):
    """A node that hosts no partitions (controller only)."""

    def __init__(self, logs: LogManager, notifier: AppendNotifier) -> None:
        self.logs = logs
        self.notifier = notifier
        self.resolutions = {}

    def get_partition(self, topic: str, partition: int, *,
                      follower_read: bool = False) -> tuple[Partition | None, ErrorCode]:
        return None, ErrorCode.not_leader_or_follower
