"""The in-process node for users' tests (`suoi.testing.InProcessNode` and the pytest plugin's
fixtures): real clients produce and consume through it, topics made with its helper have a
leader per partition at once, its data survives a restart, and a three-node in-process
cluster replicates."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType
from kafka import KafkaConsumer, KafkaProducer

from suoi.testing import InProcessCluster, InProcessNode
from tests.e2e.helpers import ck_consume, ck_produce, kp_consume


def test_a_fresh_node_per_test_serves_kafka_python(suoi_bootstrap: str) -> None:
    producer = KafkaProducer(bootstrap_servers=suoi_bootstrap)
    try:
        meta = producer.send("greetings", key=b"k", value=b"hello").get(timeout=30)  # auto-created
    finally:
        producer.close()
    consumer = KafkaConsumer("greetings", bootstrap_servers=suoi_bootstrap, group_id="g",
                             auto_offset_reset="earliest", consumer_timeout_ms=20000)
    try:
        first = next(iter(consumer))
    finally:
        consumer.close()
    assert (meta.offset, first.key, first.value) == (0, b"k", b"hello")


def test_the_topic_helper_makes_every_partition_ready(suoi_module_node: InProcessNode) -> None:
    suoi_module_node.create_topic("orders", partitions=3, configs={"cleanup.policy": "compact"})
    delivered = ck_produce(suoi_module_node.bootstrap, "orders",
                           [{"key": f"k{i}".encode(), "value": f"o{i}".encode(), "partition": i % 3}
                            for i in range(6)])
    assert sorted(delivered) == [(p, o) for p in range(3) for o in range(2)]
    got = kp_consume(suoi_module_node.bootstrap, "orders", [0, 1, 2], 6)
    assert sorted((r.partition, r.value) for r in got) == sorted((i % 3, f"o{i}".encode()) for i in range(6))
    admin = AdminClient({"bootstrap.servers": suoi_module_node.bootstrap})
    topic = admin.list_topics("orders", timeout=10).topics["orders"]
    assert {p: m.leader for p, m in topic.partitions.items()} == {0: 1, 1: 1, 2: 1}
    (described,) = admin.describe_configs([ConfigResource(ResourceType.TOPIC, "orders")]).values()
    assert described.result(timeout=10)["cleanup.policy"].value == "compact"


def test_the_topic_helper_reports_kafkas_refusal(suoi_module_node: InProcessNode) -> None:
    suoi_module_node.create_topic("once")
    with pytest.raises(RuntimeError, match="TOPIC_ALREADY_EXISTS"):
        suoi_module_node.create_topic("once")
    with pytest.raises(RuntimeError, match="INVALID_REPLICATION_FACTOR"):
        suoi_module_node.create_topic("three-copies", replication_factor=3)  # one broker


def test_data_survives_a_restart_of_the_node(tmp_path) -> None:  # noqa: ANN001
    with InProcessNode(tmp_path) as node:
        node.create_topic("kept", partitions=2)
        ck_produce(node.bootstrap, "kept", [{"value": b"before", "partition": 1}])
        node.restart()
        assert [(r.partition, r.offset, r.value) for r in ck_consume(node.bootstrap, "kept", [0, 1], 1)] == [
            (1, 0, b"before")]
        assert node.data_dir == tmp_path and (tmp_path / "data" / "meta.properties").exists()
    assert node.broker is None


def test_a_three_node_cluster_replicates(suoi_cluster: InProcessCluster) -> None:
    suoi_cluster.create_topic("replicated", partitions=2, replication_factor=3)
    ck_produce(suoi_cluster.bootstrap, "replicated", [{"value": f"r{i}".encode(), "partition": i % 2}
                                                       for i in range(4)], {"acks": "all"})
    md = AdminClient({"bootstrap.servers": suoi_cluster.nodes[2].bootstrap}).list_topics("replicated", timeout=10)
    assert sorted(md.brokers) == [1, 2, 3]
    assert [sorted(p.replicas) for p in md.topics["replicated"].partitions.values()] == [[1, 2, 3]] * 2
    for node in suoi_cluster.nodes.values():  # each node answers for the whole cluster
        got = ck_consume(node.bootstrap, "replicated", [0, 1], 4)
        assert sorted(r.value for r in got) == [b"r0", b"r1", b"r2", b"r3"]
