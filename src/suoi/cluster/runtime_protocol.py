"""`KRaftRuntime`: the KRaft runtime as its duty modules take it, as a `typing.Protocol`.

`kraft.py` (`KRaftServices`) calls into `active_controller.py`, `broker_lifecycle.py` and
`rpc.py`, handing them itself; they name this protocol instead of importing `KRaftServices`,
so the runtime sits above its duties and the import graph of the package has no ring (even a
type-checking-only one). mypy checks that `KRaftServices` is one where it passes itself.

Layering: imports only modules below the cluster runtime (node, controller, raft_driver,
cluster.settings/migration), for type checking only.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from suoi.cluster.migration import StandaloneMigration
    from suoi.cluster.settings import KRaftSettings
    from suoi.controller.controller import QuorumController
    from suoi.controller.image import MetadataImage
    from suoi.node import Node
    from suoi.raft_driver.cluster_mismatch import ClusterIdMismatchLog

__all__ = ["KRaftRuntime"]


class KRaftRuntime(Protocol):
    """What registration, heartbeats, controlled shutdown and the active controller's duties
    read and move of the node's KRaft state (`suoi.cluster.kraft.KRaftServices` is one)."""

    #: moved by the registration/heartbeat loop; the rest of the node reads them
    broker_epoch: int
    fenced: bool
    first_unfenced: asyncio.Event
    #: the broker epoch the previous process on this data dir registered with (-1: none known)
    previous_broker_epoch: int
    #: the active controller on this node, or None; a tick that raises drops it
    controller: QuorumController | None
    #: set when the active controller's next deadline may have come nearer (`controller_ticks`)
    controller_tick_wake: asyncio.Event

    @property
    def node_id(self) -> int: ...

    @property
    def incarnation_id(self) -> uuid.UUID: ...

    @property
    def broker(self) -> Node: ...

    @property
    def settings(self) -> KRaftSettings: ...

    @property
    def image(self) -> MetadataImage: ...

    @property
    def migration(self) -> StandaloneMigration | None: ...

    @property
    def migrated(self) -> asyncio.Event: ...

    @property
    def cluster_mismatch(self) -> ClusterIdMismatchLog: ...

    @property
    def stopping(self) -> bool: ...

    @property
    def controller_id(self) -> int: ...

    @property
    def controller_may_answer(self) -> bool: ...

    def registration_listeners(self) -> list[tuple[str, str, int]]:
        """(name, host, port) of each advertised listener a broker registers."""
        ...

    async def run_on_controller(self, op: Callable[[QuorumController], Any]) -> Any: ...

    async def call_controller(self, request: Any, *, timeout: float = ..., quick: bool = False,
                              lane: str = ...) -> Any: ...

    async def wait_image(self, condition: Callable[[MetadataImage], bool], timeout: float, *,
                         applied: bool = False) -> bool: ...
