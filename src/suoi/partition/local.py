"""The partitions of a node without a metadata quorum ("standalone"): every local log is led
here, at leader epoch 0, with an ISR of this node alone, so an append is committed at once.

This is exactly what a one-voter KRaft node's RF=1 partitions are, minus the metadata image;
it goes away with the standalone mode (issue 12: every node a KRaft node). The directory is
made on first use per `LogManager` (`standalone_partitions`), so the broker needs no wiring.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from suoi.model import ErrorCode, TopicPartition
from suoi.partition.directory import PartitionDirectory
from suoi.partition.partition import Partition
from suoi.replication import AlterPartitionProposal, LeaderPartitionState

if TYPE_CHECKING:
    from suoi.log.manager import LogManager
    from suoi.notify import AppendNotifier


class LocalPartitions(PartitionDirectory):
    """`PartitionDirectory` and `PartitionHost` of a standalone node (module doc)."""

    def __init__(self, logs: LogManager, notifier: AppendNotifier, node_id: int, now_ms: Callable[[], int]) -> None:
        self.logs = logs
        self.notifier = notifier
        self.node_id = node_id
        self.now_ms = now_ms
        self._partitions: dict[TopicPartition, Partition] = {}

    def get_partition(self, topic: str, partition: int, *,
                      follower_read: bool = False) -> tuple[Partition | None, ErrorCode]:
        plog = self.logs.get_log(topic, partition)
        if plog is None:
            offline = self.logs.is_offline(topic, partition)
            return None, ErrorCode.kafka_storage_error if offline else ErrorCode.unknown_topic_or_partition
        tp = TopicPartition(topic, partition)
        found = self._partitions.get(tp)
        if found is None or found.plog is not plog:  # new, or the topic was deleted and made again
            state = LeaderPartitionState(topic, partition, self.node_id, 0, 0, (self.node_id,), (self.node_id,),
                                         plog.config.min_insync_replicas, leader_leo=plog.log_end_offset,
                                         high_watermark=plog.high_watermark, now_ms=self.now_ms())
            info = self.logs.topic(topic)
            topic_id = info.topic_id if info is not None else uuid.UUID(int=0)
            found = self._partitions[tp] = Partition(tp, topic_id, plog, self, leader_state=state)
        return found, ErrorCode.none

    # -- PartitionHost: nobody to replicate to -------------------------------------------
    def follower_fetched(self, partition: Partition) -> None:
        return None

    def propose(self, partition: Partition, proposal: AlterPartitionProposal) -> None:
        return None

    def preferred_read_replica(self, partition: Partition, client_rack: str, fetch_offset: int) -> int:
        return self.node_id


_standalone: weakref.WeakKeyDictionary[LogManager, LocalPartitions] = weakref.WeakKeyDictionary()


def standalone_partitions(logs: LogManager, notifier: AppendNotifier, node_id: int,
                          now_ms: Callable[[], int]) -> LocalPartitions:
    directory = _standalone.get(logs)
    if directory is None:
        directory = _standalone[logs] = LocalPartitions(logs, notifier, node_id, now_ms)
    return directory
