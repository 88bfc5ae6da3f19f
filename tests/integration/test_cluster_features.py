"""Kafka 4 APIs on a 3-node KRaft cluster whose nodes have two log dirs each: an UpdateFeatures
sent to any node reaches the active controller, and every node then reports the same finalized
levels and epoch (they live in the metadata log); DescribeTopicPartitions answers the replicated
topic's replicas and ISR the same way from every node; and when the log dir holding a leader's
replica fails under the running node (KIP-858), the controller moves the leadership and the ISR
away from it while producers and consumers carry on (kafka-python and confluent-kafka)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from tests.conftest import wait_until
from tests.e2e.helpers import ck_consume, ck_produce
from tests.integration.kraft_cluster import KRaftCluster
from tests.integration.support import metadata_req
from tests.rawclient import RawClient


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KRaftCluster]:
    c = KRaftCluster(tmp_path_factory.mktemp("features"), 3)
    for node in c.nodes.values():
        node.log_dirs = [node.data_dir / "data", node.data_dir / "disk-b"]
    try:
        c.start()
        yield c
    finally:
        c.stop()


def _admin(cluster: KRaftCluster, node: int) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=cluster.nodes[node].bootstrap, request_timeout_ms=20000)


def test_feature_levels_are_the_same_on_every_node(cluster: KRaftCluster) -> None:
    admins = {i: _admin(cluster, i) for i in cluster.nodes}
    try:
        assert admins[2].update_features({"transaction.version": 1}) == {"transaction.version": "OK"}

        def agreed() -> set[tuple[tuple[int, int] | None, int | None]] | None:
            seen = set()
            for admin in admins.values():
                tv = admin.describe_features()["transaction.version"]
                seen.add((tv.get("finalized"), tv.get("finalized_epoch")))
            return seen if len(seen) == 1 and next(iter(seen))[0] == (1, 1) else None

        (only,) = wait_until(agreed, timeout=15, message="transaction.version 1 on every node")
        assert only[1] is not None and only[1] > 0
        for admin in admins.values():  # bootstrapped once by the first active controller
            assert admin.describe_features()["metadata.version"]["finalized"] == (25, 25)

        admins[1].create_topics([NewTopic("replicated-dtp", 2, 3)])
        views = wait_until(lambda: (lambda v: v if all(v) and len({str(x) for x in v}) == 1 else None)(
            [_partitions(a) for a in admins.values()]), timeout=15, message="the same partitions on every node")
        for p in views[0]:
            assert sorted(p["replica_nodes"]) == [1, 2, 3] == sorted(p["isr_nodes"]) and p["leader_id"] in (1, 2, 3)
    finally:
        for admin in admins.values():
            admin.close()


def _partitions(admin: KafkaAdminClient) -> list[dict] | None:
    (topic,) = admin.describe_topic_partitions(["replicated-dtp"])["topics"]
    parts = topic["partitions"]
    if topic["error_code"] != 0 or len(parts) != 2 or any(len(p["isr_nodes"]) != 3 for p in parts):
        return None
    return sorted(parts, key=lambda p: p["partition_index"])


def test_a_failed_log_dir_moves_leadership_away(cluster: KRaftCluster) -> None:
    topic = "replicated-dtp"  # created above: 2 partitions on all 3 nodes, one in each log dir of a node
    leaders = cluster.wait_leaders(topic, 2)
    victim = None
    for p, (leader, _) in sorted(leaders.items()):
        node = cluster.nodes[leader]
        if (node.log_dirs[1] / f"{topic}-{p}").is_dir():
            victim = (p, leader, node)
            break
    assert victim is not None, leaders
    partition, leader, node = victim
    ck_produce(node.bootstrap, topic, [{"value": b"before", "partition": partition}], conf={"acks": "all"})
    shutil.rmtree(node.log_dirs[1])  # the leader's disk goes away under it

    def moved() -> tuple[int, list[int]] | None:
        others = [i for i in cluster.nodes if i != leader]
        with RawClient(cluster.nodes[others[0]].bootstrap) as c:
            t = c.request(metadata_req(topic, allow_create=False)).topics[0]
        p = next(x for x in t.partitions if x.partition_index == partition)
        isr = sorted(int(b) for b in p.isr_nodes)
        return (int(p.leader_id), isr) if int(p.leader_id) in others and leader not in isr else None

    new_leader, isr = wait_until(moved, timeout=20, message="leadership and ISR moved off the failed replica")
    assert isr == sorted(i for i in cluster.nodes if i != leader)
    ck_produce(cluster.bootstrap, topic, [{"value": b"after", "partition": partition}], conf={"acks": "all"})
    got = ck_consume(cluster.nodes[new_leader].bootstrap, topic, [partition], 2, timeout=20)
    assert [r.value for r in got][-2:] == [b"before", b"after"]
    assert node.proc is not None and node.proc.poll() is None  # the node keeps running
    assert "reported 1 lost replicas to the controller" in node.logs()
