"""The coordinators' `PartitionWriter` (`suoi.coordinator.writer`): their internal partitions
are partitions like any other, so their writes go through the `Partition` that leads them.

An append moves that partition's HW (alone in its ISR: at once) and wakes parked fetches; a
reply waits until the ISR has the write (Kafka's offsets.commit.timeout.ms,
`COORDINATOR_WRITE_TIMEOUT_S`, then REQUEST_TIMED_OUT); transaction markers are written by each
partition's leader (`txn_markers.TxnMarkerSender`). The broker builds this writer before its
coordinators and hands it to their constructors; `replicas` finds the node's replica manager
once it exists (None: no replication on this node, so a write is committed at once and the
transaction coordinator appends markers locally).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from suoi.coordinator.writer import MarkerWriter
from suoi.model import ErrorCode, TopicPartition

if TYPE_CHECKING:
    from suoi.notify import AppendNotifier
    from suoi.partition.replica_manager import ReplicaManager

#: Kafka's offsets.commit.timeout.ms: how long a coordinator write waits for the ISR.
COORDINATOR_WRITE_TIMEOUT_S = 5.0


class ReplicatedWriter:
    def __init__(self, notifier: AppendNotifier, replicas: Callable[[], ReplicaManager | None]) -> None:
        self._notifier = notifier
        self._replicas = replicas

    def appended(self, tp: TopicPartition) -> None:
        manager = self._replicas()
        leader = manager.leaders.get(tp) if manager is not None else None
        if leader is not None:
            leader.on_append()
        else:
            self._notifier.appended(tp)

    async def wait_replicated(self, tp: TopicPartition, end_offset: int) -> int:
        manager = self._replicas()
        if manager is None:
            return 0
        leader = manager.leaders.get(tp)
        if leader is None:
            return int(ErrorCode.not_leader_or_follower)
        return await leader.wait_replicated(end_offset, COORDINATOR_WRITE_TIMEOUT_S)

    @property
    def write_markers(self) -> MarkerWriter | None:
        manager = self._replicas()
        return manager.write_markers if manager is not None else None
