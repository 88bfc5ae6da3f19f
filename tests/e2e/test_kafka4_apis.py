"""APIs of Kafka 3.7+/4 that current clients call (issue 11), driven by real clients against a
KRaft node (config/server.properties, as `make run` starts it): DescribeTopicPartitions,
features in ApiVersions + UpdateFeatures, ListConfigResources, client telemetry (KIP-714)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from kio.schema.describe_topic_partitions.v0.request import DescribeTopicPartitionsRequest, TopicRequest
from kio.schema.types import TopicName

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
    assert "finalized" not in admin.describe_features()["transaction.version"]
    assert admin.update_features({"transaction.version": 1}) == {"transaction.version": "OK"}
    described = admin.describe_features()
    assert described["transaction.version"]["finalized"] == (1, 1)
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
