"""What request handlers may call: the node's services, as small `typing.Protocol`s.

Handlers (`suoi.api`) and the listener (`suoi.net`) receive a `Services` object, never the
`Broker`: `broker.py` is the composition root that builds the parts and satisfies these
protocols structurally, and only `cli/broker.py` and `suoi.testing` import it. Typing the
handlers against this narrow surface is what keeps the import graph free of rings
(api -> services -> log|coordinator|controller|cluster, never api -> broker -> api), and it
names, in one place, everything a handler can reach.

The protocols are grouped as Kafka's request handlers see the broker: local partitions,
the group and transaction coordinators, the KRaft metadata view and controller channel,
the node's configuration, client telemetry and the listener's connections. The parts the
runtimes below share (config, logs, coordinators) come from `suoi.node`.

Layering: this module imports lower packages only (node, controller, raft_driver, cluster for
the replica manager's type), for type checking; `cluster` and `partition` must not import it
(they take `suoi.node.Node`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from suoi.node import Coordinators, LocalLogs, NodeConfig

if TYPE_CHECKING:
    from suoi.authorizer.standard import StandardAuthorizer
    from suoi.client_telemetry import ClientTelemetry
    from suoi.config import BrokerConfig, Listener
    from suoi.controller import MetadataImage, QuorumController
    from suoi.metrics_recorder import MetricsRecorder
    from suoi.partition.replica_manager import ReplicaManager
    from suoi.raft_driver.cluster_mismatch import ClusterIdMismatchLog
    from suoi.raft_driver.driver import QuorumDriver

__all__ = [
    "ControllerChannel",
    "Coordinators",
    "HandlerConfig",
    "KRaft",
    "MetadataView",
    "Partitions",
    "Services",
    "Telemetry",
]


class Partitions(LocalLogs, Protocol):
    """The partitions stored on this node; whether Metadata/Produce may auto-create a topic (the
    controller creates it: every node is a KRaft node)."""

    def auto_create_enabled(self) -> bool: ...


class MetadataView(Protocol):
    """This node's copy of the cluster metadata (KRaft's MetadataImage) and what changes it."""

    image: MetadataImage
    #: topics whose CreateTopics this node sent and whose records it has not seen yet
    creating_topics: set[str]
    #: auto-creation refusals (topic -> error code) to answer the next Metadata with
    auto_create_rejections: dict[str, int]

    async def wait_image(self, condition: Callable[[MetadataImage], bool], timeout: float, *,
                         applied: bool = False) -> bool: ...

    @property
    def controller_id(self) -> int: ...

    @property
    def live_controller_id(self) -> int: ...


class ControllerChannel(Protocol):
    """The way to the active controller: run an operation here if this node is it, or forward."""

    #: the active controller's state machine when this node is the active controller
    controller: QuorumController | None
    cluster_mismatch: ClusterIdMismatchLog

    async def run_on_controller(self, op: Callable[[QuorumController], Any]) -> Any: ...

    async def call_controller(self, request: Any, *, timeout: float = ..., quick: bool = ...,
                              lane: str = ...) -> Any: ...

    def broker_connection_lost(self, broker_id: int, broker_epoch: int) -> None: ...


class _KRaftSettings(Protocol):
    @property
    def controller_listener(self) -> str: ...


class KRaft(MetadataView, ControllerChannel, Protocol):
    """The KRaft runtime of this node as handlers see it."""

    @property
    def settings(self) -> _KRaftSettings: ...

    @property
    def replicas(self) -> ReplicaManager | None:
        """Leader and follower replicas of this node's partitions (None on a controller-only node)."""

    @property
    def driver(self) -> QuorumDriver:
        """The metadata quorum's driver (Vote, BeginQuorumEpoch, ..., metadata Fetch)."""


class HandlerConfig(NodeConfig, Protocol):
    """The node's configuration as handlers see it (DescribeConfigs, AlterConfigs, Metadata)."""

    #: server.properties + flags only (no dynamic configs)
    static_config: BrokerConfig
    #: the listeners as bound (port 0 resolved)
    bound: list[Listener]

    @property
    def endpoint(self) -> tuple[str, int]: ...


class Telemetry(Protocol):
    """KIP-714 client telemetry (what clients push) and the node's own request/byte counters
    (`suoi.metrics_recorder.MetricsRecorder`, bumped on the request path, read at scrape time)."""

    client_telemetry: ClientTelemetry
    metrics: MetricsRecorder


class Services(Partitions, Coordinators, HandlerConfig, Telemetry, Protocol):
    """Everything a request handler may call; `suoi.broker.Broker` satisfies it."""

    @property
    def kraft(self) -> KRaft:
        """Metadata view + controller channel + replicas + the quorum's driver (every node is a
        KRaft node; one without process.roles is its own one-voter quorum)."""

    #: authorizer.class.name's StandardAuthorizer, None when ACLs are off (`suoi.authorizer`)
    authorizer: StandardAuthorizer | None
    #: open client connections (the listener adds and removes them; stop() closes them)
    connections: set[Any]
