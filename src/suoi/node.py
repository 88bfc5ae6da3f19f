"""The node's shared resources, as `typing.Protocol`s: what its runtimes are built with.

The composition root (`suoi.broker.Broker`) owns the config, the logs, the append notifier
and the coordinators; the KRaft runtime and the replica manager (`suoi.cluster`, later
`suoi.partition`) and the request handlers (through `suoi.services`) are handed that object
typed as these protocols, never as `Broker`, so no package below the root imports it and the
import graph has no ring.

Layering: imports only packages below cluster/partition (log, coordinator, config, notify,
dynamic_config), for type checking only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from suoi.config import BrokerConfig, Listener
    from suoi.coordinator.group_coordinator import GroupCoordinator
    from suoi.coordinator.txn.producer_ids import ControllerProducerIdManager, ProducerIdManager
    from suoi.coordinator.txn_coordinator import TransactionCoordinator
    from suoi.dynamic_config import DynamicBrokerConfigs
    from suoi.log.config import LogConfig
    from suoi.log.manager import LogManager
    from suoi.metrics_recorder import MetricsRecorder
    from suoi.notify import AppendNotifier

__all__ = ["Coordinators", "LocalLogs", "Node", "NodeConfig"]


class NodeConfig(Protocol):
    """Who this node is and its configuration (static + dynamic)."""

    node_id: int
    cluster_id: str
    #: effective configuration: server.properties + flags + dynamic broker configs
    config: BrokerConfig
    log_config: LogConfig
    dynamic_configs: DynamicBrokerConfigs
    #: the listeners as clients should reach them (port 0 resolved to the bound port)
    advertised: list[Listener]
    now_ms: Callable[[], int]

    def reconfigure(self) -> None:
        """Recompute the effective config after a dynamic config change and apply it."""


class LocalLogs(Protocol):
    """The partition logs stored on this node and the events of their growth."""

    logs: LogManager
    #: wakes long-poll fetches and replica fetchers when a log grows or its HW moves
    notifier: AppendNotifier


class Coordinators(Protocol):
    """The group and transaction coordinators (state machines over their internal topics)."""

    groups: GroupCoordinator
    transactions: TransactionCoordinator

    @property
    def producer_ids(self) -> ProducerIdManager | ControllerProducerIdManager: ...


class Node(NodeConfig, LocalLogs, Coordinators, Protocol):
    """Everything the KRaft runtime and the replica manager take from the node."""

    #: the node's counters (Raft leader changes, commit latency, ISR changes), read at scrape time
    metrics: MetricsRecorder
