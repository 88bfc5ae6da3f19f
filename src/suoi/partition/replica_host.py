"""`ReplicaHost`: the replica manager as its helpers take it, as a `typing.Protocol`.

`replica_manager.py` (`ReplicaManager`) builds the replica fetchers, the corrupt-replica
repair and the transaction marker sender, handing them itself; they name this protocol instead
of importing `ReplicaManager`, so the manager sits above its helpers and the package's import
graph has no ring (even a type-checking-only one). mypy checks that `ReplicaManager` is one
where it passes itself.

Layering: imports only modules below the replica manager (client, log, controller_channel,
partition), for type checking only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from suoi.client import NodeClient
    from suoi.log.manager import LogManager
    from suoi.model import TopicPartition
    from suoi.partition.controller_channel import ControllerChannel
    from suoi.partition.partition import Partition

__all__ = ["FollowerFetcher", "ReplicaHost"]


class FollowerFetcher(Protocol):
    """A replica fetcher as the repair sees it: a follower handed (back) to it fetches again now."""

    def add(self, replica: Partition) -> None: ...


class ReplicaHost(Protocol):
    """What the replica fetchers, the corrupt-replica repair and the marker sender read of the
    broker's replicas and settings (`suoi.partition.replica_manager.ReplicaManager` is one)."""

    @property
    def node_id(self) -> int: ...

    @property
    def kraft(self) -> ControllerChannel: ...

    #: broker-to-broker connections, a lane per purpose
    @property
    def pool(self) -> NodeClient: ...

    @property
    def logs(self) -> LogManager: ...

    @property
    def leaders(self) -> Mapping[TopicPartition, Partition]: ...

    @property
    def followers(self) -> Mapping[TopicPartition, Partition]: ...

    #: follower fetchers by leader broker id
    @property
    def fetchers(self) -> Mapping[int, FollowerFetcher]: ...

    # replica.fetch.* and replica.socket.timeout.ms, as the replica manager read them
    @property
    def fetch_wait_max_ms(self) -> int: ...

    @property
    def fetch_min_bytes(self) -> int: ...

    @property
    def fetch_max_bytes(self) -> int: ...

    @property
    def fetch_response_max_bytes(self) -> int: ...

    @property
    def fetch_backoff_s(self) -> float: ...

    @property
    def socket_timeout_s(self) -> float: ...

    def leader(self, topic: str, partition: int) -> Partition | None: ...

    def appended(self, tp: TopicPartition) -> None:
        """A local log grew (a follower append): wake what waits on it."""
        ...
