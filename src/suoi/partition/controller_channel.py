"""What the partition layer needs from the rest of the node, as `Protocol`s (no import of
`cluster` or `broker`).

`ControllerChannel`: `cluster/kraft.py` (`KRaftServices`) builds the replica manager and
satisfies it; the partition layer only reads the metadata image and sends AlterPartition to
the active controller. `HostingNode`: what the replica manager and the marker writer use of the
node (`Broker` satisfies it). Typing against these instead of `KRaftServices` / `Broker` keeps
the package graph one-way (broker -> cluster -> partition), type-only imports included.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, Protocol

from suoi.config import BrokerConfig
from suoi.controller.image import MetadataImage
from suoi.coordinator.group_coordinator import GroupCoordinator
from suoi.coordinator.txn_coordinator import TransactionCoordinator
from suoi.log.manager import LogManager
from suoi.metrics_recorder import MetricsRecorder
from suoi.notify import AppendNotifier
from suoi.partition.schema_validation import SchemaIds


class ControllerChannel(Protocol):
    node_id: int
    broker_epoch: int
    image: MetadataImage

    async def call_controller(self, request: Any, *, quick: bool = False, lane: str = ...) -> Any: ...


class HostingNode(Protocol):
    node_id: int
    config: BrokerConfig
    logs: LogManager
    notifier: AppendNotifier
    groups: GroupCoordinator
    transactions: TransactionCoordinator
    metrics: MetricsRecorder
    #: the node's schema registry (None: schema.registry.listeners unset), `schema_validation`
    schema_registry: SchemaIds | None

    @property
    def kraft(self) -> ControllerChannel | None: ...

    def now_ms(self) -> int: ...


class Ticker(Protocol):
    """Cooperative pacing for long jobs (`cluster.pacing.Pacer`)."""

    async def tick(self) -> None: ...


class Unpaced:
    """A `Ticker` that never yields (tests that call `apply` directly)."""

    async def tick(self) -> None:
        return None


def alter_partition_request(channel: ControllerChannel, topic_id: uuid.UUID, partition: int, *, leader_epoch: int,
                            partition_epoch: int, new_isr: Iterable[int]) -> Any:
    """AlterPartition v2 from this partition leader: the ISR it proposes. Build it just before
    each send: it carries the broker epoch of now, which changes if this broker registers again."""
    from kio.schema.alter_partition.v2.request import AlterPartitionRequest

    from suoi.protocol.codec import build

    return build(AlterPartitionRequest, {
        "broker_id": channel.node_id, "broker_epoch": channel.broker_epoch,
        "topics": [{"topic_id": topic_id, "partitions": [{
            "partition_index": partition, "leader_epoch": leader_epoch, "new_isr": list(new_isr),
            "leader_recovery_state": 0, "partition_epoch": partition_epoch}]}]})
