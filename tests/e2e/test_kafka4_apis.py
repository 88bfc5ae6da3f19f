"""APIs of Kafka 3.7+/4 that current clients call (issue 11), driven by real clients against a
KRaft node (config/server.properties, as `make run` starts it): DescribeTopicPartitions,
features in ApiVersions + UpdateFeatures, ListConfigResources, client telemetry (KIP-714)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import confluent_kafka
import pytest
from kafka.admin import ConfigResource, KafkaAdminClient, NewTopic
from kio.schema.describe_topic_partitions.v0.request import DescribeTopicPartitionsRequest, TopicRequest
from kio.schema.errors import ErrorCode
from kio.schema.get_telemetry_subscriptions.v0.request import GetTelemetrySubscriptionsRequest
from kio.schema.push_telemetry.v0.request import PushTelemetryRequest
from kio.schema.types import TopicName
from kio.static.primitive import i8, i32

from suoi.testing import EmbeddedBroker
from suoi.testing.embedded import free_port
from tests.conftest import wait_until
from tests.e2e.cli import fails, ok, ok_json, suoi
from tests.e2e.test_single_node_kraft import make_run_properties
from tests.rawclient import RawClient

ALL_TOPIC_OPERATIONS = 3576  # READ..ALTER_CONFIGS: what Kafka answers without an authorizer


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    port = free_port()
    props = make_run_properties(port, free_port())
    with EmbeddedBroker(tmp_path_factory.mktemp("kafka4-apis"), port=port, overrides=props) as broker:
        yield broker


@pytest.fixture(scope="module")
def admin(node: EmbeddedBroker) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(bootstrap_servers=node.bootstrap, request_timeout_ms=20000)
    yield client
    client.close()


def test_describe_topic_partitions_pages_with_a_cursor(admin: KafkaAdminClient) -> None:
    admin.create_topics([NewTopic("dtp-a", 3, 1), NewTopic("dtp-b", 2, 1)])
    pages = []
    cursor = None
    while True:
        page = admin.describe_topic_partitions(["dtp-b", "dtp-a", "dtp-missing", "bad$name"],
                                               response_partition_limit=2, cursor=cursor)
        pages.append([(t["name"], t["error_code"], [p["partition_index"] for p in t["partitions"]])
                      for t in page["topics"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 10
    # topics in name order; a page ends inside a topic or, with the limit used up, at the next one
    assert pages == [
        [("bad$name", 17, []), ("dtp-a", 0, [0, 1])],
        [("dtp-a", 0, [2]), ("dtp-b", 0, [0])],
        [("dtp-b", 0, [1]), ("dtp-missing", 3, [])],
    ]
    whole = admin.describe_topic_partitions(["dtp-a"])
    assert whole["next_cursor"] is None
    (topic,) = whole["topics"]
    assert topic["topic_authorized_operations"] == ALL_TOPIC_OPERATIONS and topic["is_internal"] is False
    assert topic["topic_id"] is not None and str(topic["topic_id"]) != "00000000-0000-0000-0000-000000000000"
    for p in topic["partitions"]:
        assert p["error_code"] == 0 and p["leader_id"] == 1 and p["replica_nodes"] == [1] == p["isr_nodes"]
        assert p["eligible_leader_replicas"] is None and p["last_known_elr"] is None  # empty: no ELR
        assert p["offline_replicas"] == []


def test_describe_topic_partitions_sends_empty_elr_lists(node: EmbeddedBroker, admin: KafkaAdminClient) -> None:
    admin.create_topics([NewTopic("dtp-raw", 1, 1)])
    with RawClient(node.bootstrap) as c:
        r = c.request(DescribeTopicPartitionsRequest(topics=(TopicRequest(name=TopicName("dtp-raw")),)))
    (p,) = r.topics[0].partitions
    assert (p.eligible_leader_replicas, p.last_known_elr) == ((), ())  # Kafka's answer while ELR is off


def test_describe_topic_partitions_lists_every_topic_and_checks_the_cursor(admin: KafkaAdminClient) -> None:
    admin.create_topics([NewTopic("dtp-all", 1, 1)])
    everything = admin.describe_topic_partitions([])
    names = [t["name"] for t in everything["topics"]]
    assert "dtp-all" in names and names == sorted(names)
    tail = admin.describe_topic_partitions([], cursor={"topic_name": "dtp-all", "partition_index": 0})
    assert [t["name"] for t in tail["topics"]] == [n for n in names if n >= "dtp-all"]
    # the cursor's topic must be one of the asked topics
    wrong = admin.describe_topic_partitions(["dtp-all"], cursor={"topic_name": "dtp-zzz", "partition_index": 0})
    assert [(t["name"], t["error_code"]) for t in wrong["topics"]] == [("dtp-all", 42)]


# -- finalized features (KIP-584): ApiVersions + UpdateFeatures ------------------------------------


def test_features_are_described_in_api_versions(admin: KafkaAdminClient) -> None:
    features = admin.describe_features()
    assert features["metadata.version"]["supported"] == (7, 25)
    assert features["metadata.version"]["finalized"] == (25, 25)  # bootstrapped in the metadata log
    assert features["metadata.version"]["finalized_epoch"] >= 0
    assert features["transaction.version"] == {"supported": (0, 1)}  # level 0: not finalized
    assert features["group.version"] == {"supported": (0, 0)}  # no KIP-848 consumer protocol
    assert features["kraft.version"] == {"supported": (0, 0)}  # static voters only


def test_update_features_validates_and_applies(admin: KafkaAdminClient) -> None:
    # validate_only changes nothing
    assert admin.update_features({"transaction.version": 1}, validate_only=True) == {"transaction.version": "OK"}
    before = admin.describe_features()
    assert "finalized" not in before["transaction.version"]
    assert admin.update_features({"transaction.version": 1}) == {"transaction.version": "OK"}
    described = admin.describe_features()  # the node's kept ApiVersions answer follows the change
    assert described["transaction.version"]["finalized"] == (1, 1)
    assert described["metadata.version"]["finalized_epoch"] > before["metadata.version"]["finalized_epoch"]
    refusals = [
        ({"transaction.version": 2}, "only supports versions 0-1"),  # KIP-890 part 2 is not implemented
        ({"group.version": 1}, "does not support this feature"),
        ({"no.such.feature": 1}, "does not support this feature"),
        ({"transaction.version": 0}, "without setting the upgrade type"),  # a downgrade asked as upgrade
        ({"metadata.version": ("SAFE_DOWNGRADE", 22)}, "might delete metadata information"),  # 23 changed it
        ({"metadata.version": ("UNSAFE_DOWNGRADE", 22)}, "Unsafe metadata downgrade is not supported"),
        ({"metadata.version": ("SAFE_DOWNGRADE", 6)}, "only supports versions 7-25"),
    ]
    for update, reason in refusals:
        with pytest.raises(Exception) as err:
            admin.update_features(update)
        assert type(err.value).__name__ == "InvalidUpdateVersionError", (update, err.value)
        assert reason in str(err.value), (update, str(err.value))
    # all or nothing: one bad update refuses the good one beside it
    with pytest.raises(Exception, match="only supports versions 0-1"):
        admin.update_features({"metadata.version": ("SAFE_DOWNGRADE", 24), "transaction.version": 5})
    assert admin.describe_features()["metadata.version"]["finalized"] == (25, 25)
    assert admin.update_features({"transaction.version": ("SAFE_DOWNGRADE", 0)}) == {"transaction.version": "OK"}
    assert "finalized" not in admin.describe_features()["transaction.version"]
    with pytest.raises(Exception, match="Can't downgrade to a newer version"):
        admin.update_features({"transaction.version": ("SAFE_DOWNGRADE", 1)})


def test_features_cli_and_levels_survive_a_restart(node: EmbeddedBroker) -> None:
    b = ("features", "--bootstrap-server", node.bootstrap)
    assert ok(*b, "upgrade", "--feature", "transaction.version=1", "--dry-run") == \
        "transaction.version can be upgraded to 1.\n"
    assert ok(*b, "upgrade", "--feature", "transaction.version", "--version", "1") == \
        "transaction.version was upgraded to 1.\n"
    err = fails(*b, "downgrade", "--metadata", "4.0-IV0")
    assert err == "suoi features: error: 1 out of 1 operation(s) failed."
    node.restart()
    lines = wait_until(lambda: _describe_lines(node), timeout=30, message="features describe after restart")
    assert lines == [
        "Feature: group.version\tSupportedMinVersion: 0\tSupportedMaxVersion: 0\tFinalizedVersionLevel: 0",
        "Feature: kraft.version\tSupportedMinVersion: 0\tSupportedMaxVersion: 0\tFinalizedVersionLevel: 0",
        "Feature: metadata.version\tSupportedMinVersion: 3.3-IV3\tSupportedMaxVersion: 4.0-IV3\t"
        "FinalizedVersionLevel: 4.0-IV3",
        "Feature: transaction.version\tSupportedMinVersion: 0\tSupportedMaxVersion: 1\tFinalizedVersionLevel: 1",
    ]
    described = ok_json(*b, "describe")
    assert {f["feature"]: f["finalized"] for f in described["features"]}["transaction.version"] == 1
    assert ok(*b, "downgrade", "--feature", "transaction.version=0") == "transaction.version was downgraded to 0.\n"


def _describe_lines(node: EmbeddedBroker) -> list[str] | None:
    proc = suoi("features", "--bootstrap-server", node.bootstrap, "describe")
    if proc.returncode != 0:
        return None
    lines = proc.stdout.splitlines()
    assert all(line.rsplit("\t", 1)[1].startswith("Epoch: ") for line in lines), lines
    return [line.rsplit("\t", 1)[0] for line in lines]


# -- client metrics subscriptions (KIP-714), ListConfigResources (KIP-1142) -------------------------


def _subscribe(admin: KafkaAdminClient, name: str, configs: dict[str, Any]) -> str:
    """IncrementalAlterConfigs on a CLIENT_METRICS resource; the error's text ('' when none)."""
    result = admin.alter_configs([ConfigResource("CLIENT_METRICS", name, configs=configs)], incremental=True,
                                 raise_on_unknown=False)
    (error,) = [e for by_name in result.values() for e in by_name.values()]
    return "" if error in (None, "OK") or type(error).__name__ == "NoError" else str(error)


def test_client_metrics_subscriptions_are_validated_and_listed(admin: KafkaAdminClient) -> None:
    admin.create_topics([NewTopic("lcr-topic", 1, 1)])
    bad = [({"interval.ms": "50"}, "interval must be between 100 and 3600000"),
           ({"match": "client_name=x"}, "Illegal client matching pattern: client_name=x"),
           ({"colour": "red"}, "Unknown client metric configuration: colour")]
    for configs, reason in bad:
        assert reason in _subscribe(admin, "bad-sub", configs)
    assert _subscribe(admin, "lcr-sub", {"metrics": "org.apache.kafka.producer.", "interval.ms": "60000"}) == ""
    listed = admin.list_config_resources()
    assert listed["client_metrics"] == ["lcr-sub"]
    assert listed["broker"] == ["1"] and "lcr-topic" in listed["topic"]
    assert admin.list_config_resources(["CLIENT_METRICS"]) == {"client_metrics": ["lcr-sub"]}
    described = admin.describe_configs([ConfigResource("CLIENT_METRICS", "lcr-sub")])
    (configs,) = [c for by_name in described.values() for c in by_name.values()]
    assert {k: v["value"] for k, v in configs.items()} == {"interval.ms": "60000",
                                                           "metrics": "org.apache.kafka.producer."}
    assert admin.list_config_resources(["BROKER_LOGGER"]) == {"broker_logger": ["1"]}  # this node's own
    with pytest.raises(Exception, match="UnsupportedVersion"):
        admin.list_config_resources(["GROUP"])  # suoi has no group configs
    # deleting every config removes the subscription
    assert _subscribe(admin, "lcr-sub", {"metrics": ("DELETE", None), "interval.ms": ("DELETE", None)}) == ""
    assert "client_metrics" not in admin.list_config_resources()


def test_no_subscription_means_no_metrics(node: EmbeddedBroker) -> None:
    with RawClient(node.bootstrap) as c:
        got = c.request(GetTelemetrySubscriptionsRequest(client_instance_id=None))
    assert got.error_code == ErrorCode.none and got.client_instance_id is not None
    assert got.requested_metrics == () and got.push_interval.total_seconds() == 300
    assert got.accepted_compression_types == (4, 3, 1, 2) and got.telemetry_max_bytes == 1024 * 1024


def test_librdkafka_pushes_metrics_to_a_subscription(node: EmbeddedBroker, admin: KafkaAdminClient) -> None:
    assert _subscribe(admin, "rdkafka-sub", {"metrics": "org.apache.kafka.", "interval.ms": "100",
                                             "match": "client_id=telemetry-.*,client_software_name=confluent-kafka-python"}) == ""
    producer = confluent_kafka.Producer({"bootstrap.servers": node.bootstrap, "client.id": "telemetry-producer",
                                         "enable.metrics.push": True})
    try:
        producer.produce("telemetry-topic", b"x")
        producer.flush(10)
        line = wait_until(lambda: re.search(r"first telemetry push from client instance (\S+) "
                                            r"\(client_id 'telemetry-producer', subscriptions rdkafka-sub\): (\d+) bytes",
                                            node.logs()), timeout=20, message="a telemetry push from librdkafka")
        assert int(line.group(2)) > 0
    finally:
        producer.flush(5)
        del producer  # destroyed: its terminating push goes out now
    # another client is not matched: it is told to push nothing
    with RawClient(node.bootstrap) as c:
        other = c.request(GetTelemetrySubscriptionsRequest(client_instance_id=None))
    assert other.requested_metrics == ()
    assert _subscribe(admin, "rdkafka-sub", {"metrics": ("DELETE", None), "interval.ms": ("DELETE", None),
                                             "match": ("DELETE", None)}) == ""


def test_push_errors(node: EmbeddedBroker, admin: KafkaAdminClient) -> None:
    # 500 ms: the push right after a refused one must land within the interval, also on a loaded machine
    assert _subscribe(admin, "raw-sub", {"metrics": "*", "interval.ms": "500", "match": "client_id=raw-pusher"}) == ""
    try:
        with RawClient(node.bootstrap) as c:
            sub = _as(c, "raw-pusher", GetTelemetrySubscriptionsRequest(client_instance_id=None))
            assert sub.requested_metrics == ("*",) and sub.push_interval.total_seconds() == 0.5

            def push(data: bytes, *, subscription: int = sub.subscription_id, terminating: bool = False,
                     compression: int = 0) -> ErrorCode:
                return _as(c, "raw-pusher", PushTelemetryRequest(
                    client_instance_id=sub.client_instance_id, subscription_id=i32(subscription),
                    terminating=terminating, compression_type=i8(compression), metrics=data)).error_code

            metrics_data = b"\x0a\x02\x0a\x00"  # MetricsData{resource_metrics: [ResourceMetrics{resource: {}}]}
            assert push(metrics_data, subscription=sub.subscription_id + 1) == ErrorCode.unknown_subscription_id
            assert push(b"\x0a\x7f\x01") == ErrorCode.invalid_record  # a length past the end
            assert push(metrics_data) == ErrorCode.throttling_quota_exceeded  # within the push interval
            wait_until(lambda: push(metrics_data, compression=1) == ErrorCode.invalid_record, timeout=5,
                       message="not gzip: INVALID_RECORD once the interval has passed")
            wait_until(lambda: push(b"\x0a\x00" * 600_000) == ErrorCode.telemetry_too_large, timeout=5,
                       message="TELEMETRY_TOO_LARGE")
            wait_until(lambda: push(metrics_data, terminating=True) == ErrorCode.none, timeout=5,
                       message="a terminating push")
            assert push(metrics_data, terminating=True) == ErrorCode.invalid_request  # nothing after terminating
        logs = node.logs()
        assert f"first telemetry push from client instance {sub.client_instance_id}" in logs
        assert logs.count("telemetry push from client raw-pusher (") >= 3  # one line per refusal, no traceback
        assert "Traceback" not in logs
    finally:
        _subscribe(admin, "raw-sub", {"metrics": ("DELETE", None), "interval.ms": ("DELETE", None),
                                      "match": ("DELETE", None)})


def _as(c: RawClient, client_id: str, request: Any) -> Any:
    """A request with this client id (the raw client's own is 'raw-test')."""
    c.send_bytes(c.encode(request, client_id=client_id))
    return c.decode(request, c.recv_frame())[1]
