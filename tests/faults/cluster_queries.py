"""The queries and waits of `ReplicatedCluster` (tests/faults/cluster.py), a mixin of it: each
asks one node directly over its CLIENT (or CONTROLLER) listener, since each node's metadata image
converges on its own; the `wait_*` helpers poll them with deadlines and add the cluster's `dump()`
to a failure."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from tests.conftest import wait_until as base_wait_until

if TYPE_CHECKING:
    from tests.faults.cluster import Node

T = TypeVar("T")
HOST = "127.0.0.1"
#: Bound of one query (Metadata, DescribeQuorum) to one node.
QUERY_TIMEOUT_S = 2.0


def wait_until(condition: Callable[[], T | None], timeout: float, message: str, interval: float = 0.05,
               on_timeout: Callable[[], str] | None = None) -> T:
    """tests.conftest.wait_until, with `on_timeout()` (e.g. a cluster dump) added to its failure."""
    try:
        return base_wait_until(condition, timeout=timeout, interval=interval, message=message)  # type: ignore[arg-type,return-value]
    except AssertionError as exc:
        if on_timeout is None:
            raise
        raise type(exc)(f"{exc}\n{on_timeout()}") from None  # NodePortTaken stays one (a retry)


@dataclass(frozen=True)
class PartitionState:
    """One partition as one node's Metadata describes it."""

    leader: int  # -1: none (or not live)
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    offline: tuple[int, ...]
    error: int = 0


class ClusterQueries:
    """Queries and waits over `nodes`; `ReplicatedCluster` provides the layout and the health."""

    nodes: dict[int, Node]

    if TYPE_CHECKING:
        @property
        def ids(self) -> list[int]: ...
        def bootstrap_of(self, ids: Iterable[int]) -> str: ...
        def healthy(self) -> list[int]: ...
        def dump(self, lines: int = 40) -> str: ...
        def _check_alive(self) -> None: ...

    # -- queries (one node, directly) --------------------------------------------------
    def _metadata(self, node: int, topics: list[str] | None) -> Any:
        from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
        from kio.schema.types import TopicName

        from suoi.client import request_sync

        request = MetadataRequest(
            topics=() if topics is None else tuple(MetadataRequestTopic(topic_id=None, name=TopicName(t)) for t in topics),
            allow_auto_topic_creation=False, include_topic_authorized_operations=False)
        return request_sync(HOST, self.nodes[node].client_port, request, client_id="suoi-faults",
                            timeout=QUERY_TIMEOUT_S)

    def brokers_seen_by(self, node: int) -> set[int] | None:
        """The broker ids `node`'s Metadata lists (live, unfenced), None if it does not answer."""
        try:
            return {int(b.node_id) for b in self._metadata(node, None).brokers}
        except Exception:
            return None

    def describe(self, topic: str, via: int | None = None) -> dict[int, PartitionState]:
        """partition -> state, as node `via` (default: the first healthy node) sees it; {} if that
        node does not know the topic or does not answer."""
        via = self._via(via)
        try:
            topics = self._metadata(via, [topic]).topics
        except Exception:
            return {}
        if not topics or int(topics[0].error_code) != 0:
            return {}
        return {int(p.partition_index): PartitionState(
            int(p.leader_id), int(p.leader_epoch), tuple(int(r) for r in p.replica_nodes),
            tuple(int(r) for r in p.isr_nodes), tuple(int(r) for r in p.offline_replicas), int(p.error_code))
            for p in topics[0].partitions}

    def leader_of(self, topic: str, partition: int = 0, via: int | None = None) -> int:
        state = self.describe(topic, via).get(partition)
        return state.leader if state is not None else -1

    def quorum(self, node: int) -> tuple[int, int] | None:
        """(leader id, epoch) of the metadata quorum as `node` sees it (over its CONTROLLER
        listener, directly), None if it does not answer."""
        from suoi.cli.cluster_status import describe_quorum

        try:
            resp = describe_quorum(self.nodes[node].controller_address, QUERY_TIMEOUT_S)
        except Exception:
            return None
        part = next((p for t in resp.topics for p in t.partitions), None)
        if part is None or int(part.leader_id) < 0:
            return None
        return int(part.leader_id), int(part.leader_epoch)

    def controller_id(self) -> int | None:
        """The active controller: the leader with the highest epoch any running node reports."""
        views = [q for i in self.ids if self.nodes[i].running and not self.nodes[i].paused
                 and (q := self.quorum(i)) is not None]
        return max(views, key=lambda q: q[1])[0] if views else None

    def _via(self, via: int | None) -> int:
        if via is not None:
            return via
        healthy = self.healthy()
        return healthy[0] if healthy else self.ids[0]

    # -- admin ------------------------------------------------------------------------
    def admin(self, nodes: Iterable[int] | None = None) -> Any:
        from confluent_kafka.admin import AdminClient

        from suoi.cli.common import quiet_logger

        ids = list(nodes) if nodes is not None else self.healthy() or self.ids
        return AdminClient({"bootstrap.servers": self.bootstrap_of(ids), "logger": quiet_logger()})

    def create_topic(self, name: str, partitions: int = 1, replication_factor: int | None = None, *,
                     config: dict[str, str] | None = None, assignment: list[list[int]] | None = None,
                     timeout: float = 20.0) -> dict[int, PartitionState]:
        """Create a topic (replication factor: every node, unless given) and wait until every
        healthy node knows a leader for each partition; returns the partitions' states."""
        from confluent_kafka.admin import NewTopic

        if assignment is not None:
            new = NewTopic(name, num_partitions=len(assignment), replica_assignment=assignment, config=config or {})
            partitions = len(assignment)
        else:
            rf = len(self.nodes) if replication_factor is None else replication_factor
            new = NewTopic(name, num_partitions=partitions, replication_factor=rf, config=config or {})
        admin = self.admin()
        admin.create_topics([new], operation_timeout=timeout)[name].result(timeout=timeout + 5)
        return self.wait_leaders(name, partitions, timeout=timeout)

    # -- waiting ----------------------------------------------------------------------
    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until every healthy node answers and its Metadata lists every healthy node; fails
        fast, with the node's log, if a started node exits."""
        def ready() -> bool:
            self._check_alive()
            healthy = set(self.healthy())
            return all((seen := self.brokers_seen_by(i)) is not None and healthy <= seen for i in healthy)

        wait_until(ready, timeout, f"nodes {self.healthy()} to list each other in Metadata", interval=0.1,
                   on_timeout=self.dump)

    def wait_fenced(self, node: int, timeout: float = 15.0, *, seen_by: Iterable[int] | None = None) -> None:
        """Until the Metadata of every node in `seen_by` (default: the healthy others) no longer
        lists `node` (the controller fenced it, or it shut down)."""
        askers = [i for i in (seen_by if seen_by is not None else self.healthy()) if i != node]
        wait_until(lambda: all((s := self.brokers_seen_by(i)) is not None and node not in s for i in askers),
                   timeout, f"node {node} to leave the Metadata of {askers}", interval=0.1, on_timeout=self.dump)

    def wait_listed(self, node: int, timeout: float = 15.0, *, seen_by: Iterable[int] | None = None) -> None:
        """Until the Metadata of every node in `seen_by` (default: the healthy ones) lists `node`."""
        askers = list(seen_by if seen_by is not None else self.healthy())
        wait_until(lambda: all((s := self.brokers_seen_by(i)) is not None and node in s for i in askers),
                   timeout, f"node {node} in the Metadata of {askers}", interval=0.1, on_timeout=self.dump)

    def wait_leaders(self, topic: str, partitions: int, timeout: float = 15.0, *,
                     seen_by: Iterable[int] | None = None) -> dict[int, PartitionState]:
        """Until every node in `seen_by` (default: the healthy ones) names a live leader for each
        of the `partitions`, and they agree; returns the states (as the first of them sees them)."""
        askers = list(seen_by if seen_by is not None else self.healthy())

        def led() -> dict[int, PartitionState] | None:
            views = [self.describe(topic, i) for i in askers]
            leaders = [{p: s.leader for p, s in v.items()} for v in views]
            if any(len(v) != partitions or min(v.values(), default=-1) < 0 for v in leaders):
                return None
            return views[0] if all(v == leaders[0] for v in leaders) else None

        return wait_until(led, timeout, f"leaders of {partitions} partition(s) of {topic} on {askers}",
                          interval=0.1, on_timeout=self.dump)

    def wait_leader(self, topic: str, partition: int = 0, *, not_in: Iterable[int] = (), timeout: float = 15.0,
                    via: int | None = None) -> int:
        """Until node `via` names a live leader of the partition that is not in `not_in`."""
        excluded = set(not_in)
        return wait_until(lambda: (lead := self.leader_of(topic, partition, via)) >= 0 and lead not in excluded and lead,
                          timeout, f"a leader of {topic}-{partition} outside {sorted(excluded)}",
                          interval=0.1, on_timeout=self.dump) or 0

    def wait_isr(self, topic: str, partition: int, isr: Iterable[int], timeout: float = 15.0,
                 via: int | None = None) -> PartitionState:
        """Until node `via` reports exactly `isr` as the partition's in-sync replicas."""
        want = set(isr)

        def matches() -> PartitionState | None:
            state = self.describe(topic, via).get(partition)
            return state if state is not None and set(state.isr) == want else None

        return wait_until(matches, timeout, f"ISR {sorted(want)} for {topic}-{partition}", interval=0.1,
                          on_timeout=self.dump)

    def wait_controller(self, *, not_in: Iterable[int] = (), timeout: float = 15.0) -> int:
        excluded = set(not_in)
        return wait_until(lambda: (c := self.controller_id()) is not None and c not in excluded and c,
                          timeout, f"an active controller outside {sorted(excluded)}", interval=0.1,
                          on_timeout=self.dump) or 0
