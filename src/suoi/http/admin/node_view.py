"""The one place the admin endpoint reads node internals: broker, KRaft image, replicas, logs, groups.

Everything else under `suoi.http.admin` sees plain dataclasses built here at scrape time, so
when the broker becomes a narrow services interface and replica state moves into its own
package, this file is the only one to follow them. Reads only, on the event loop thread,
never awaiting: each view is one consistent instant of the node, except `partition_table`,
read in steps with the loop running between (a scrape of many partitions is no long pause).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Generator
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from suoi.model import TopicPartition

#: The KRaft metadata partition is the quorum's, not a replica this broker serves.
_METADATA_TOPIC = "__cluster_metadata"


@dataclass(frozen=True, slots=True)
class PartitionView:
    """One partition replica hosted here, as the replica manager and its log see it."""

    topic: str
    partition: int
    leader: bool
    replicas: int = 1
    isr: int = 1
    min_isr: int = 1
    log_start_offset: int = 0
    log_end_offset: int = 0
    high_watermark: int = 0
    size_bytes: int = 0
    segments: int = 0

    @property
    def under_replicated(self) -> bool:
        return self.leader and self.isr < self.replicas

    @property
    def under_min_isr(self) -> bool:
        return self.leader and self.isr < self.min_isr

    @property
    def at_min_isr(self) -> bool:
        return self.leader and self.isr == self.min_isr


@dataclass(slots=True)
class PartitionTable:
    """The partition replicas hosted here as columns (`NodeView.partition_table`): the
    per-partition /metrics families are made of these lists, not of a `PartitionView` each."""

    partitions: int = 0
    leaders: int = 0
    under_replicated: int = 0
    under_min_isr: int = 0
    at_min_isr: int = 0
    #: (topic, partition) label values, then each log's figures, in that order
    labels: list[tuple[str, ...]] = field(default_factory=list)
    size_bytes: list[float] = field(default_factory=list)
    log_end_offset: list[float] = field(default_factory=list)
    log_start_offset: list[float] = field(default_factory=list)
    segments: list[float] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RaftView:
    state: str  # leader, follower, candidate, ...
    leader_id: int  # -1: none known
    epoch: int
    high_watermark: int
    log_end_offset: int
    voters: int


@dataclass(frozen=True, slots=True)
class ClusterView:
    """What the metadata image says about the whole cluster (KRaft mode)."""

    active_controller_id: int
    is_active_controller: bool
    is_controller: bool
    brokers: int
    fenced_brokers: int
    topics: int
    partitions: int
    offline_partitions: int
    preferred_replica_imbalance: int
    metadata_offset: int
    raft: RaftView | None


@dataclass(frozen=True, slots=True)
class GroupLag:
    group: str
    state: str
    members: int
    #: (topic, partition) -> (committed offset, high watermark here, lag); partitions with no log here are left out
    partitions: dict[tuple[str, int], tuple[int, int, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    reason: str


class NodeView:
    """Read-only accessors over a running node (`suoi.broker.Broker`, typed loosely on purpose)."""

    def __init__(self, broker: Any) -> None:
        self._broker = broker
        self.started_at = time.time()
        #: (topic, partition) label values per partition, kept between scrapes (`partition_table`)
        self._labels: dict[TopicPartition, tuple[str, ...]] = {}

    # -- identity and health ---------------------------------------------------------
    @property
    def node_id(self) -> int:
        return int(self._broker.node_id)

    def info(self) -> dict[str, Any]:
        b = self._broker
        settings = b.kraft_settings
        return {
            "node_id": self.node_id, "cluster_id": b.cluster_id,
            "mode": "kraft",
            "roles": sorted(settings.roles),
            "listeners": [f"{x.name}://{x.host}:{x.port}" for x in b.bound],
            "advertised_listeners": [f"{x.name}://{x.host}:{x.port}" for x in getattr(b, "advertised", [])],
            "log_dirs": [str(d) for d in b.config.log_dirs],
            "offline_log_dirs": sorted(str(d) for d in b.logs.offline_dirs),
            "uptime_seconds": round(time.time() - self.started_at, 3),
            "ready": self.readiness().ready,
        }

    def readiness(self) -> Readiness:
        """Ready = serving clients: logs loaded, listeners accepting, and in KRaft mode
        registered with the controller and unfenced (a broker serves only once unfenced)."""
        b = self._broker
        if b._stopped.is_set():
            return Readiness(False, "stopped")
        servers = list(b._servers)
        if not servers:
            return Readiness(False, "loading logs; listeners not bound yet")
        kraft = b.kraft
        settings = b.kraft_settings
        if settings is not None:
            if settings.is_broker:
                if kraft.broker_epoch < 0:
                    return Readiness(False, "not registered with the controller yet")
                if kraft.fenced:
                    return Readiness(False, "fenced by the controller")
            elif kraft.driver.live_leader_id is None:
                return Readiness(False, "no metadata quorum leader known")
        if not all(server.is_serving() for server in servers):
            return Readiness(False, "listeners not serving yet")
        return Readiness(True, "serving")

    # -- listeners -------------------------------------------------------------------
    def connections(self) -> dict[str, int]:
        """Open client connections per listener name (Kafka's SocketServer connection-count)."""
        by_port = {x.port: x.name for x in self._broker.bound}
        counts = dict.fromkeys(by_port.values(), 0)
        for conn in list(self._broker.connections):
            name = by_port.get(conn.local_port)
            if name is not None:
                counts[name] += 1
        return counts

    def topic_name(self, key: Any) -> str | None:
        """A recorder key (a topic name, or the id a Fetch v13+ named it by) -> the topic's name,
        or None when no such topic is on this node any more (deleted, or moved away)."""
        logs = self._broker.logs
        if isinstance(key, uuid.UUID):
            info = logs.topic_by_id(key)
            return None if info is None else str(info.name)
        return str(key) if logs.topic(str(key)) is not None else None

    # -- partitions ------------------------------------------------------------------
    def partitions(self) -> list[PartitionView]:
        """Every partition replica hosted here (the metadata log excluded)."""
        b = self._broker
        replicas = b.kraft.replicas
        out: list[PartitionView] = []
        if replicas is None:  # a controller-only node: every local log is led here
            for plog in b.logs.all_logs():
                if plog.topic != _METADATA_TOPIC:
                    out.append(_view(plog, True, 1, 1, 1))
            return out
        for leader in list(replicas.leaders.values()):
            state = leader.state
            out.append(_view(leader.plog, True, len(state.replicas), len(state.isr),
                             leader.plog.config.min_insync_replicas))
        for follower in list(replicas.followers.values()):
            out.append(_view(follower.plog, False, 0, 0, 0))
        return out

    def partition_table(self, logs_max: int, per_step: int) -> Generator[None, None, PartitionTable]:
        """`partitions()` as columns for /metrics, sorted by (topic, partition), without an object
        per partition: the replica sets are taken at once, the logs' figures read `per_step`
        partitions at a time, as are the leaders' ISR counts (a None yielded between: the
        caller lets the loop run), and only
        with at most `logs_max` partitions here (-1: always). A log deleted meanwhile is read as
        it was left (its figures are plain attributes)."""
        b = self._broker
        replicas = b.kraft.replicas
        table = PartitionTable()
        if replicas is None:  # a controller-only node: every local log is led here
            logs = [(TopicPartition(plog.topic, plog.partition), plog) for plog in b.logs.all_logs()
                    if plog.topic != _METADATA_TOPIC]
            table.partitions = table.leaders = len(logs)
            table.at_min_isr = len(logs)  # ISR 1 of 1, min ISR 1
        else:
            led = list(replicas.leaders.items())
            followed = list(replicas.followers.items())
            table.partitions, table.leaders = len(led) + len(followed), len(led)
            for start in range(0, len(led), per_step):
                yield  # a Partition keeps its role (a new role is a new Partition): still led as taken
                for _tp, leader in led[start:start + per_step]:
                    state = leader.state
                    isr, min_isr = len(state.isr), leader.plog.config.min_insync_replicas
                    table.under_replicated += isr < len(state.replicas)
                    table.under_min_isr += isr < min_isr
                    table.at_min_isr += isr == min_isr
            logs = [(tp, partition.plog) for tp, partition in led + followed]
        if 0 <= logs_max < len(logs):
            return table
        logs.sort(key=itemgetter(0))
        labels = self._labels
        if len(labels) > 2 * len(logs) + 64:  # partitions gone: their label values go
            self._labels = labels = {}
        for start in range(0, len(logs), per_step):
            yield
            chunk = [plog for _tp, plog in logs[start:start + per_step]]
            table.labels += [labels.get(tp) or _label(labels, tp) for tp, _plog in logs[start:start + per_step]]
            table.size_bytes += [plog.size_in_bytes for plog in chunk]
            table.log_end_offset += [plog.log_end_offset for plog in chunk]
            table.log_start_offset += [plog.log_start_offset for plog in chunk]
            table.segments += [len(plog.segments) for plog in chunk]
        return table

    # -- cluster (KRaft) -------------------------------------------------------------
    def cluster(self) -> ClusterView:
        kraft = self._broker.kraft
        image = kraft.image
        partitions = offline = imbalance = 0
        for _topic, _index, reg in image.iter_partitions():
            partitions += 1
            if reg.leader < 0:
                offline += 1
            elif reg.replicas and reg.leader != reg.replicas[0]:
                imbalance += 1
        return ClusterView(
            active_controller_id=kraft.live_controller_id,
            is_active_controller=kraft.controller is not None,
            is_controller=kraft.settings.is_controller,
            brokers=len(image.brokers),
            fenced_brokers=sum(1 for reg in image.brokers.values() if reg.fenced),
            topics=len(image.topics),
            partitions=partitions,
            offline_partitions=offline,
            preferred_replica_imbalance=imbalance,
            metadata_offset=image.offset,
            raft=self._raft(kraft.driver),
        )

    @staticmethod
    def _raft(driver: Any) -> RaftView | None:
        if not driver.running:
            return None
        node = driver.node
        leader = node.leader_and_epoch
        return RaftView(
            state=type(node.role).__name__.lower(),
            leader_id=-1 if leader.leader_id is None else int(leader.leader_id),
            epoch=int(leader.epoch),
            high_watermark=int(node.high_watermark),
            log_end_offset=int(node.log.end_offset),
            voters=len(driver.voters),
        )

    # -- consumer groups -------------------------------------------------------------
    def group_lags(self) -> list[GroupLag]:
        """Lag of every group this node coordinates: high watermark minus committed offset per
        partition (what kafka-exporter and Burrow compute), for partitions with a log here
        (every partition on one node; in a cluster the high watermark a follower knows)."""
        b = self._broker
        groups = b.groups
        listed = {g.group_id: g.state for g in groups.machine.list_groups()}
        out = []
        for group_id in sorted(set(listed) | set(groups.offsets)):
            committed = groups.offsets.get(group_id, {})
            lags: dict[tuple[str, int], tuple[int, int, int]] = {}
            for (topic, partition), meta in committed.items():
                plog = b.logs.get_log(topic, partition)
                if plog is None:
                    continue
                hw = int(plog.high_watermark)
                offset = int(meta.offset)
                lags[(topic, partition)] = (offset, hw, max(hw - offset, 0))
            members = len(groups.machine.describe(group_id).members) if group_id in listed else 0
            state = listed.get(group_id, "Empty")
            out.append(GroupLag(group_id, state, members, lags))
        return out


def _label(labels: dict[TopicPartition, tuple[str, ...]], tp: TopicPartition) -> tuple[str, ...]:
    """A partition's (topic, partition) label values, made once while it is hosted here."""
    value = labels[tp] = (tp.topic, str(tp.partition))
    return value


def _view(plog: Any, leader: bool, replicas: int, isr: int, min_isr: int) -> PartitionView:
    return PartitionView(
        topic=plog.topic, partition=plog.partition, leader=leader, replicas=replicas, isr=isr, min_isr=min_isr,
        log_start_offset=plog.log_start_offset, log_end_offset=plog.log_end_offset,
        high_watermark=plog.high_watermark, size_bytes=plog.size_in_bytes, segments=len(plog.segments))
