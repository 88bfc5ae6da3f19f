"""A 3-node KRaft cluster of real broker processes (combined mode: each node is a broker and a
Raft voter) and raw-protocol helpers for leader election and partition reassignment tests
(tests/integration/test_reassignment_api.py, tests/e2e/test_cli_reassign.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.alter_partition_reassignments.v0.request import (
    AlterPartitionReassignmentsRequest,
    ReassignablePartition,
    ReassignableTopic,
)
from kio.schema.elect_leaders.v2.request import ElectLeadersRequest, TopicPartitions
from kio.schema.errors import ErrorCode
from kio.schema.list_partition_reassignments.v0.request import (
    ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsTopics,
)
from kio.schema.types import BrokerId, TopicName
from kio.static.primitive import i8, i32

from tests.conftest import wait_until
from tests.integration.kraft_cluster import KRaftCluster
from tests.integration.support import metadata_req
from tests.rawclient import RawClient

CLUSTER_ID = "c3VvaS1yZWFzc2lnbm1lbnQ"
PREFERRED, UNCLEAN = 0, 1


class Cluster(KRaftCluster):
    """Nodes 1..3, each a broker and a Raft voter (a KRaftCluster: a port taken before the first
    start costs a retry on fresh ports)."""

    def __init__(self, directory: Path, overrides: dict[str, str] | None = None) -> None:
        super().__init__(directory, 3, {"cluster.id": CLUSTER_ID, **(overrides or {})})

    def request(self, node: int, request: Any) -> Any:
        with RawClient(self.nodes[node].bootstrap, timeout=30) as c:
            return c.request(request)

    def live(self, node: int) -> list[int]:
        return sorted(int(b.node_id) for b in self.request(node, metadata_req(allow_create=False)).brokers)

    def wait_live(self, expected: list[int], timeout: float = 60.0) -> None:
        wait_until(lambda: all(self.live(i) == expected for i in expected), timeout=timeout,
                   message=f"brokers {expected} live in every running node's Metadata")

    def partition(self, node: int, topic: str, p: int = 0) -> tuple[list[int], list[int], int] | None:
        """(replicas, isr, leader) in node's Metadata answer."""
        t = self.request(node, metadata_req(topic, allow_create=False)).topics[0]
        part = next((x for x in t.partitions if x.partition_index == p), None)
        if t.error_code != ErrorCode.none or part is None:
            return None
        return [int(b) for b in part.replica_nodes], [int(b) for b in part.isr_nodes], int(part.leader_id)

    def wait_partition(self, topic: str, want: tuple[list[int], list[int] | None, int], p: int = 0,
                       nodes: tuple[int, ...] = (1, 2, 3), timeout: float = 30.0) -> None:
        """Until every node reports ``want`` (replicas, isr or None for any, leader)."""
        def agreed() -> bool:
            for i in nodes:
                got = self.partition(i, topic, p)
                if got is None or got[0] != want[0] or got[2] != want[2] or want[1] not in (None, got[1]):
                    return False
            return True

        wait_until(agreed, timeout=timeout, message=f"{topic}-{p} at {want} on nodes {nodes}")


@contextmanager
def running(directory: Path, overrides: dict[str, str] | None = None) -> Iterator[Cluster]:
    c = Cluster(directory, overrides)
    try:
        c.start()
        c.wait_live([1, 2, 3])
        yield c
    finally:
        c.stop()


@contextmanager
def node_down(c: Cluster, node: int) -> Iterator[None]:
    """``node`` stopped (controlled shutdown, then fenced) for the block; running again after."""
    c.nodes[node].stop()
    try:
        c.wait_live(sorted(set(c.nodes) - {node}))
        yield
    finally:
        c.nodes[node].start()
        c.wait_live(sorted(c.nodes))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create(c: Cluster, assignment: list[list[int]]) -> str:
    name = unique("t")
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=len(assignment), replica_assignment=assignment)],
                        operation_timeout=15)[name].result(timeout=20)
    for p, replicas in enumerate(assignment):
        c.wait_partition(name, (replicas, None, replicas[0]), p)
    return name


def elect(c: Cluster, node: int, election_type: int, partitions: list[tuple[str, int]] | None) -> Any:
    by_topic: dict[str, list[int]] = {}
    for t, p in partitions or []:
        by_topic.setdefault(t, []).append(p)
    return c.request(node, ElectLeadersRequest(election_type=i8(election_type), topic_partitions=None if partitions is None
                                               else tuple(TopicPartitions(topic=TopicName(t), partitions=tuple(map(i32, ps)))
                                                          for t, ps in by_topic.items())))


def election_codes(response: Any) -> dict[tuple[str, int], ErrorCode]:
    return {(str(r.topic), int(p.partition_id)): p.error_code
            for r in response.replica_election_results for p in r.partition_result}


def reassign(c: Cluster, node: int, entries: list[tuple[str, int, list[int] | None]]
             ) -> list[tuple[str, int, ErrorCode, str | None]]:
    by_topic: dict[str, list[tuple[int, list[int] | None]]] = {}
    for t, p, rs in entries:
        by_topic.setdefault(t, []).append((p, rs))
    response = c.request(node, AlterPartitionReassignmentsRequest(topics=tuple(ReassignableTopic(
        name=TopicName(t), partitions=tuple(ReassignablePartition(
            partition_index=i32(p), replicas=None if rs is None else tuple(map(BrokerId, rs))) for p, rs in ps))
        for t, ps in by_topic.items())))
    assert response.error_code == ErrorCode.none, response
    return [(str(t.name), int(p.partition_index), p.error_code, p.error_message)
            for t in response.responses for p in t.partitions]


def listed(c: Cluster, node: int, partitions: list[tuple[str, int]] | None = None) -> dict[tuple[str, int], Any]:
    topics = None
    if partitions is not None:
        topics = tuple(ListPartitionReassignmentsTopics(name=TopicName(t), partition_indexes=(i32(p),))
                       for t, p in partitions)
    response = c.request(node, ListPartitionReassignmentsRequest(topics=topics))
    assert response.error_code == ErrorCode.none, response
    return {(str(t.name), int(p.partition_index)): ([int(b) for b in p.replicas], [int(b) for b in p.adding_replicas],
                                                     [int(b) for b in p.removing_replicas])
            for t in response.topics for p in t.partitions}
