"""Finalized features and DescribeTopicPartitions on a 3-node KRaft cluster: an UpdateFeatures
sent to any node reaches the active controller, and every node then reports the same finalized
levels and epoch (they live in the metadata log); DescribeTopicPartitions answers the replicated
topic's replicas and ISR the same way from every node (kafka-python's admin client per node)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from tests.conftest import wait_until
from tests.integration.kraft_cluster import KRaftCluster, kraft_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KRaftCluster]:
    with kraft_cluster(tmp_path_factory.mktemp("features"), 3) as c:
        yield c


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
