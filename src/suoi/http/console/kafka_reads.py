"""The console's Kafka client: kio requests sent through `suoi.client` to any Kafka-compatible
cluster (suoi, Apache Kafka, Redpanda), so the console needs nothing but the Kafka protocol.

Versions are ones every Kafka since 3.x and suoi accept (Metadata v12, ListOffsets v7, Fetch
v12 with topic names, ...). Requests go to the node that must answer them (ListOffsets and
Fetch to the partition leader, DescribeLogDirs and ListGroups to each broker, DescribeGroups and
OffsetFetch to the group coordinator); the rest to any live broker, the bootstrap ones first
until a Metadata answer names the brokers. Async all the way: the console shares the event
loop with a node's own listeners when `console.listeners` is set.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from suoi.client import NodeClient

__all__ = ["ClusterClient", "KafkaReadError", "OnDemand", "UnsupportedRequest", "parse_bootstrap"]

EARLIEST, LATEST = -2, -1
GROUP_KEY_TYPE = 0
TOPIC_RESOURCE = 2


class KafkaReadError(Exception):
    """A request no broker answered, or answered with an error for the whole request."""


class UnsupportedRequest(KafkaReadError):
    """The cluster's ApiVersions lacks this request's version: not sent, since a Kafka-compatible
    broker may close the connection on it, failing every other request in flight there."""


def parse_bootstrap(text: str) -> list[tuple[str, int]]:
    """`HOST:PORT[,HOST:PORT]` (a `PLAINTEXT://` prefix is allowed) as (host, port) pairs."""
    out = []
    for addr in filter(None, (a.strip() for a in text.split(","))):
        host, sep, port = addr.split("://", 1)[-1].rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"--bootstrap-server expects HOST:PORT, got {addr!r}")
        out.append((host.strip("[]") or "localhost", int(port)))
    if not out:
        raise ValueError("--bootstrap-server names no broker")
    return out


def error_name(code: Any) -> str:
    return str(getattr(code, "name", code)).upper()


def failed(code: Any) -> bool:
    return int(getattr(code, "value", code)) != 0


class ClusterClient:
    """Connections to a cluster's brokers by node id (bootstrap addresses get ids -1, -2, ...)."""

    def __init__(self, bootstrap: Iterable[tuple[str, int]], *, timeout: float = 5.0, security: Any = None) -> None:
        # security: a suoi.security.client.ClientSecurity (TLS, SASL) for every broker, or None for
        # PLAINTEXT; brokers answer Metadata with the endpoints of the listener asked, so one suffices
        extra = {"security": security} if security is not None else {}
        self.pool = NodeClient(client_id="suoi-console", connect_timeout=timeout, reconnect_backoff_max_ms=500,
                               **extra)
        self.timeout = timeout
        self._bootstrap = []
        for i, (host, port) in enumerate(bootstrap, start=1):
            self.pool.register(-i, host, port)
            self._bootstrap.append(-i)
        self.brokers: list[int] = []
        self.requests = 0  # sent so far: the console's load on the cluster (/api/stats)
        #: api key -> (min, max) version from the first broker's ApiVersions; None until asked,
        #: {} when the answer was unusable (then every request is tried)
        self.versions: dict[int, tuple[int, int]] | None = None

    async def close(self) -> None:
        await self.pool.close()

    async def to(self, node_id: int, request: Any) -> Any:
        if self.versions:
            low, high = self.versions.get(request.__api_key__, (0, -1))
            if not low <= request.__version__ <= high:
                raise UnsupportedRequest(f"{type(request).__name__} v{request.__version__} is not supported by the cluster")
        self.requests += 1
        return await self.pool.request(node_id, request, timeout=self.timeout)

    async def any(self, request: Any) -> Any:
        """Send to the first live broker that answers (known brokers, then the bootstrap list)."""
        reasons = []
        for node_id in [*self.brokers, *self._bootstrap]:
            try:
                return await self.to(node_id, request)
            except (OSError, LookupError) as exc:
                reasons.append(str(exc) or type(exc).__name__)
        raise KafkaReadError(f"no broker answered: {reasons[-1] if reasons else 'no broker known'}")

    # ------------------------------------------------------------------ cluster-wide reads
    async def api_versions(self) -> None:
        """Learn which request versions the cluster takes (once; brokers of a cluster agree)."""
        from kio.schema.api_versions.v3.request import ApiVersionsRequest

        from suoi import __version__

        self.versions = {}  # while asking: send ApiVersions itself unchecked
        try:
            response = await self.any(ApiVersionsRequest(client_software_name="suoi-console",
                                                         client_software_version=__version__))
        except KafkaReadError:  # nobody answered: ask again next time
            self.versions = None
            raise
        except Exception:  # noqa: BLE001 - an answer we cannot read (an old broker's v0): try every request
            return
        if not failed(response.error_code):
            self.versions = {int(k.api_key): (int(k.min_version), int(k.max_version)) for k in response.api_keys}

    async def metadata(self) -> Any:
        from kio.schema.metadata.v12.request import MetadataRequest

        if self.versions is None:
            await self.api_versions()

        response = await self.any(MetadataRequest(topics=None, allow_auto_topic_creation=False,
                                                  include_topic_authorized_operations=False))
        for b in response.brokers:
            self.pool.register(int(b.node_id), str(b.host), int(b.port))
        self.brokers = [int(b.node_id) for b in response.brokers]
        return response

    async def describe_quorum(self) -> Any | None:
        """The KRaft quorum's __cluster_metadata partition, or None (ZooKeeper-era cluster, or a
        broker that does not forward DescribeQuorum)."""
        from kio.schema.describe_quorum.v2.request import DescribeQuorumRequest, PartitionData, TopicData
        from kio.schema.types import TopicName
        from kio.static.primitive import i32

        request = DescribeQuorumRequest(topics=(TopicData(topic_name=TopicName("__cluster_metadata"),
                                                          partitions=(PartitionData(partition_index=i32(0)),)),))
        try:
            response = await self.any(request)
        except KafkaReadError:
            return None
        if failed(response.error_code):
            return None
        part = next((p for t in response.topics for p in t.partitions), None)
        return None if part is None or failed(part.error_code) else part

    async def min_isr(self, topics: list[str]) -> dict[str, int]:
        """min.insync.replicas of each topic (one DescribeConfigs for all of them)."""
        if not topics:
            return {}
        from kio.schema.describe_configs.v4.request import DescribeConfigsRequest, DescribeConfigsResource
        from kio.static.primitive import i8

        request = DescribeConfigsRequest(resources=tuple(
            DescribeConfigsResource(resource_type=i8(TOPIC_RESOURCE), resource_name=t,
                                    configuration_keys=("min.insync.replicas",)) for t in topics),
            include_synonyms=False, include_documentation=False)
        out = {}
        for r in (await self.any(request)).results:
            for c in r.configs:
                if c.name == "min.insync.replicas" and c.value and c.value.isdigit():
                    out[r.resource_name] = int(c.value)
        return out

    async def topic_configs(self, topic: str) -> list[dict[str, Any]]:
        from kio.schema.describe_configs.v4.request import DescribeConfigsRequest, DescribeConfigsResource
        from kio.static.primitive import i8

        request = DescribeConfigsRequest(resources=(DescribeConfigsResource(
            resource_type=i8(TOPIC_RESOURCE), resource_name=topic, configuration_keys=None),),
            include_synonyms=False, include_documentation=False)
        [result] = (await self.any(request)).results
        if failed(result.error_code):
            raise KafkaReadError(f"DescribeConfigs {topic}: {error_name(result.error_code)}")
        return [{"name": c.name, "value": None if c.is_sensitive else c.value, "source": int(c.config_source),
                 "sensitive": bool(c.is_sensitive), "read_only": bool(c.read_only)}
                for c in sorted(result.configs, key=lambda c: c.name)]

    # ------------------------------------------------------------------ per-broker reads
    async def list_offsets(self, leader: int, parts: list[tuple[str, int]], timestamp: int) -> dict[tuple[str, int], int]:
        """Offsets of `parts` (all led by `leader`) at `timestamp` (EARLIEST, LATEST = the high
        watermark, or a time in ms: the first offset at or after it, -1 if none)."""
        from kio.schema.list_offsets.v7.request import ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic
        from kio.schema.types import BrokerId, TopicName
        from kio.static.primitive import i8, i32, i64

        by_topic: dict[str, list[int]] = {}
        for t, p in parts:
            by_topic.setdefault(t, []).append(p)
        request = ListOffsetsRequest(replica_id=BrokerId(-1), isolation_level=i8(0), topics=tuple(
            ListOffsetsTopic(name=TopicName(t), partitions=tuple(
                ListOffsetsPartition(partition_index=i32(p), current_leader_epoch=i32(-1), timestamp=i64(timestamp))
                for p in ps)) for t, ps in by_topic.items()))
        response = await self.to(leader, request)
        return {(str(t.name), int(p.partition_index)): int(p.offset)
                for t in response.topics for p in t.partitions if not failed(p.error_code)}

    async def log_dirs(self, broker: int) -> dict[tuple[str, int], tuple[int, int]]:
        """(size, offset lag behind the high watermark) of each replica the broker holds."""
        from kio.schema.describe_log_dirs.v4.request import DescribeLogDirsRequest

        response = await self.to(broker, DescribeLogDirsRequest(topics=None))
        out: dict[tuple[str, int], tuple[int, int]] = {}
        for d in response.results:
            for t in d.topics:
                for p in t.partitions:
                    if not p.is_future_key:
                        out[(str(t.name), int(p.partition_index))] = (int(p.partition_size), int(p.offset_lag))
        return out

    async def list_groups(self, broker: int) -> list[tuple[str, str, str]]:
        from kio.schema.list_groups.v4.request import ListGroupsRequest

        response = await self.to(broker, ListGroupsRequest(states_filter=()))
        return [(str(g.group_id), g.protocol_type, g.group_state) for g in response.groups]

    async def coordinators(self, groups: list[str]) -> dict[str, int]:
        from kio.schema.find_coordinator.v4.request import FindCoordinatorRequest
        from kio.static.primitive import i8

        if not groups:
            return {}
        response = await self.any(FindCoordinatorRequest(key_type=i8(GROUP_KEY_TYPE), coordinator_keys=tuple(groups)))
        return {c.key: int(c.node_id) for c in response.coordinators if not failed(c.error_code)}

    async def describe_groups(self, coordinator: int, groups: list[str]) -> list[Any]:
        from kio.schema.describe_groups.v5.request import DescribeGroupsRequest
        from kio.schema.types import GroupId

        response = await self.to(coordinator, DescribeGroupsRequest(
            groups=tuple(GroupId(g) for g in groups), include_authorized_operations=False))
        return [g for g in response.groups if not failed(g.error_code)]

    async def committed(self, coordinator: int, groups: list[str]) -> dict[str, dict[tuple[str, int], int]]:
        from kio.schema.offset_fetch.v8.request import OffsetFetchRequest, OffsetFetchRequestGroup
        from kio.schema.types import GroupId

        response = await self.to(coordinator, OffsetFetchRequest(groups=tuple(
            OffsetFetchRequestGroup(group_id=GroupId(g), topics=None) for g in groups), require_stable=False))
        return {str(g.group_id): {(str(t.name), int(p.partition_index)): int(p.committed_offset)
                                  for t in g.topics for p in t.partitions
                                  if not failed(p.error_code) and int(p.committed_offset) >= 0}
                for g in response.groups if not failed(g.error_code)}

    async def fetch(self, leader: int, topic: str, partition: int, offset: int, max_bytes: int) -> Any:
        """One Fetch of `topic`-`partition` from `offset` (read_uncommitted, no wait)."""
        from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
        from kio.schema.types import BrokerId, TopicName
        from kio.static.primitive import i8, i32, i32Timedelta, i64

        request = FetchRequest(
            cluster_id=None, replica_id=BrokerId(-1), max_wait=i32Timedelta.parse(datetime.timedelta(0)), min_bytes=i32(0),
            max_bytes=i32(max_bytes), isolation_level=i8(0), session_id=i32(0), session_epoch=i32(-1),
            topics=(FetchTopic(topic=TopicName(topic), partitions=(FetchPartition(
                partition=i32(partition), current_leader_epoch=i32(-1), fetch_offset=i64(offset),
                last_fetched_epoch=i32(-1), log_start_offset=i64(-1), partition_max_bytes=i32(max_bytes)),)),),
            forgotten_topics_data=(), rack_id="")
        response = await self.to(leader, request)
        if failed(response.error_code):
            raise KafkaReadError(f"Fetch: {error_name(response.error_code)}")
        return response.responses[0].partitions[0]


async def gather_ok(coros: Iterable[Any]) -> list[Any]:
    """Results of `coros` run together; a failed one gives None (one broker down must not blank
    the whole picture: its boxes show as offline instead)."""
    results = await asyncio.gather(*coros, return_exceptions=True)
    return [None if isinstance(r, BaseException) else r for r in results]


class OnDemand:
    """A read the pages ask for when open (not part of the shared snapshot), done at most once per
    `max_age` seconds however many tabs ask: callers within that time, or while it runs, share it."""

    def __init__(self, read: Callable[..., Awaitable[dict[str, Any]]], max_age: float) -> None:
        self.read = read
        self.max_age = max_age
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    async def get(self, *args: Any) -> dict[str, Any]:
        async with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] > self.max_age:
                self._cached = (time.monotonic(), await self.read(*args))
            return self._cached[1]

    def forget(self) -> None:
        """After a write: the next read asks the cluster again."""
        self._cached = None
