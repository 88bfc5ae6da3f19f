"""Kafka 4 compatibility answers real clients rely on (issue 11): invalid topic names through
auto-creation, ListOffsets MAX_TIMESTAMP, an empty cleanup.policy, Kafka's whole config table
and DescribeConfigs synonyms. One KRaft node (combined mode) serves the module; its
`default.replication.factor=2` makes auto-creation fail on purpose (tests create their topics
with replication factor 1)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import confluent_kafka
import pytest
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    OffsetSpec,
)
from kio.schema.errors import ErrorCode

from suoi.protocol.compression import GZIP, NONE
from suoi.protocol.record_batch import iter_batches
from suoi.protocol.records import build_batch
from suoi.testing import EmbeddedBroker
from suoi.testing.embedded import free_port
from tests.conftest import wait_until
from tests.integration.support import fetch_req, metadata_req, produce_req
from tests.integration.test_configs import describe as raw_describe
from tests.rawclient import RawClient

BAD_NAME = "...$#!"


def kraft_node_properties(port: int, controller_port: int, **extra: str) -> dict[str, str]:
    return {"process.roles": "broker,controller", "node.id": "1",
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}", "controller.listener.names": "CONTROLLER",
            "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
            "offsets.topic.replication.factor": "1", "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1", **extra}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    port, cport = free_port(), free_port()
    props = kraft_node_properties(port, cport, **{"default.replication.factor": "2",
                                                  "log.retention.check.interval.ms": "200"})
    with EmbeddedBroker(tmp_path_factory.mktemp("kraft"), port=port, overrides=props) as broker:
        yield broker


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A node without process.roles: a single KRaft node, its own quorum, no CONTROLLER listener."""
    with EmbeddedBroker(tmp_path_factory.mktemp("single")) as broker:
        yield broker


def _produce_error(bootstrap: str, topic: str) -> tuple[confluent_kafka.KafkaError | None, float]:
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 20000})
    errors: list[confluent_kafka.KafkaError | None] = []
    started = time.monotonic()
    producer.produce(topic, b"x", on_delivery=lambda err, _msg: errors.append(err))
    producer.flush(30)
    return (errors[0] if errors else None), time.monotonic() - started


# -- bug 2: invalid topic names -----------------------------------------------------------

@pytest.mark.parametrize("mode", ["kraft", "single"])
def test_invalid_topic_name_is_refused_not_retried(mode: str, request: pytest.FixtureRequest) -> None:
    broker: EmbeddedBroker = request.getfixturevalue("node" if mode == "kraft" else "single")
    error, took = _produce_error(broker.bootstrap, BAD_NAME)
    assert error is not None and error.code() == confluent_kafka.KafkaError.TOPIC_EXCEPTION, error
    assert took < 10, f"the producer retried for {took:.1f}s"
    for allow_create in (True, False):
        with RawClient(broker.bootstrap) as client:
            for name in (BAD_NAME, ".", "x" * 250):
                topic = client.request(metadata_req(name, allow_create=allow_create)).topics[0]
                assert topic.error_code == ErrorCode.invalid_topic_exception, (name, allow_create)
    with RawClient(broker.bootstrap) as client:  # a Produce straight to the name, no Metadata first
        answer = client.request(produce_req(BAD_NAME, 0, build_batch([(None, b"x")])))
        assert answer.responses[0].partition_responses[0].error_code == ErrorCode.invalid_topic_exception
    logged = [line for line in broker.logs().splitlines() if BAD_NAME in line]
    assert len(logged) == 1 and "WARNING" in logged[0], logged  # once, however often clients ask


def test_controller_refusal_of_an_auto_creation_is_answered_and_logged(node: EmbeddedBroker) -> None:
    """default.replication.factor=2 on one broker: the controller refuses the creation; the
    next Metadata says why (INVALID_REPLICATION_FACTOR) instead of LEADER_NOT_AVAILABLE."""
    name = "auto-created-with-rf-2"
    with RawClient(node.bootstrap) as client:
        def refusal() -> int:
            code = client.request(metadata_req(name)).topics[0].error_code
            return code if code != ErrorCode.leader_not_available else 0
        assert wait_until(refusal, 10, 0.05, "the controller's refusal") == ErrorCode.invalid_replication_factor
    logged = [line for line in node.logs().splitlines() if name in line]
    assert len(logged) == 1 and "invalid_replication_factor" in logged[0].lower(), logged


def _admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def _create(bootstrap: str, name: str, config: dict[str, str] | None = None) -> None:
    admin = _admin(bootstrap)
    admin.create_topics([NewTopic(name, 1, 1, config=config or {})], operation_timeout=10)[name].result(timeout=15)


# -- bug 3: ListOffsets MAX_TIMESTAMP ---------------------------------------------------

def test_max_timestamp_is_the_first_record_carrying_it(node: EmbeddedBroker) -> None:
    topic = "max-timestamp"
    _create(node.bootstrap, topic)
    base = int(time.time() * 1000)
    producer = confluent_kafka.Producer({"bootstrap.servers": node.bootstrap, "linger.ms": 1000,
                                         "compression.type": "lz4"})
    for delta in (100, 400, 200, 400):  # one batch; the max first at offset 1, again at 3
        producer.produce(topic, b"v", partition=0, timestamp=base + delta)
    assert producer.flush(20) == 0
    query = {confluent_kafka.TopicPartition(topic, 0): OffsetSpec.max_timestamp()}
    admin = _admin(node.bootstrap)
    answer = admin.list_offsets(query)[confluent_kafka.TopicPartition(topic, 0)].result(15)
    assert (answer.offset, answer.timestamp) == (1, base + 400)


# -- bug 4: an empty cleanup.policy --------------------------------------------------------

def _incremental(bootstrap: str, resource: ConfigResource) -> None:
    admin = _admin(bootstrap)
    admin.incremental_alter_configs([resource])[resource].result(15)


def _describe(bootstrap: str, rtype: confluent_kafka.admin.ResourceType, name: str) -> dict[str, ConfigEntry]:
    admin = _admin(bootstrap)
    resource = ConfigResource(rtype, name)
    return admin.describe_configs([resource], request_timeout=15)[resource].result(15)


def _low_watermark(bootstrap: str, topic: str) -> int:
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks"})
    try:
        return consumer.get_watermark_offsets(confluent_kafka.TopicPartition(topic, 0), timeout=10)[0]
    finally:
        consumer.close()


def test_cleanup_policy_may_be_empty_and_then_nothing_is_deleted(node: EmbeddedBroker) -> None:
    kept, control = "no-cleanup-policy", "delete-policy-control"
    for name in (kept, control):
        _create(node.bootstrap, name, {"cleanup.policy": "delete", "retention.ms": "300"})
    topic = confluent_kafka.admin.ResourceType.TOPIC
    _incremental(node.bootstrap, ConfigResource(topic, kept, incremental_configs=[
        ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SUBTRACT)]))
    entry = _describe(node.bootstrap, topic, kept)["cleanup.policy"]
    assert (entry.value, entry.source) == ("", confluent_kafka.admin.ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    producer = confluent_kafka.Producer({"bootstrap.servers": node.bootstrap})
    for name in (kept, control):
        for _ in range(3):
            producer.produce(name, b"v", partition=0)
    assert producer.flush(20) == 0
    # the control topic's records expire (retention passes run every 200 ms); the other keeps them
    wait_until(lambda: _low_watermark(node.bootstrap, control) == 3, 15, 0.2, "retention of the control topic")
    assert _low_watermark(node.bootstrap, kept) == 0


# -- bug 5: every Kafka 4 config is known; Kafka's wording; secrets and security refused ---

BROKER = confluent_kafka.admin.ResourceType.BROKER


def _incremental_error(bootstrap: str, resource: ConfigResource) -> confluent_kafka.KafkaError:
    with pytest.raises(confluent_kafka.KafkaException) as raised:
        _incremental(bootstrap, resource)
    return raised.value.args[0]


def _set(name: str, value: str) -> ConfigEntry:
    return ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)


def test_every_kafka_config_is_accepted_described_and_validated_with_kafkas_wording(node: EmbeddedBroker) -> None:
    # a cluster-wide Kafka config suoi does not use: accepted, kept, described as ignored
    _incremental(node.bootstrap, ConfigResource(BROKER, "1", incremental_configs=[_set("background.threads", "4")]))
    admin = _admin(node.bootstrap)
    resource = ConfigResource(BROKER, "1")
    described = admin.describe_configs([resource], request_timeout=15)[resource].result(15)
    entry = described["background.threads"]
    assert (entry.value, entry.source) == ("4", confluent_kafka.admin.ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    assert len(described) >= 290 and "group.share.max.size" in described and "log.local.retention.ms" in described
    # secrets are never echoed (Kafka: null value, isSensitive)
    assert described["ssl.keystore.password"].is_sensitive and described["ssl.keystore.password"].value is None
    # a read-only one, a bad value and a truly unknown name: Kafka's answers and wording
    for config, words in (
        (_set("queued.max.requests", "9"), "Cannot update these configs dynamically: Set(queued.max.requests)"),
        (_set("num.replica.fetchers", "x"), "Invalid value x for configuration num.replica.fetchers: "
                                            "Not a number of type INT"),
        (_set("log.retention.ms", "abc"), "Invalid value abc for configuration log.retention.ms: "
                                          "Not a number of type LONG"),
        (_set("no.such.config", "1"), "Unknown broker config name: no.such.config"),
    ):
        error = _incremental_error(node.bootstrap, ConfigResource(BROKER, "1", incremental_configs=[config]))
        assert error.code() == confluent_kafka.KafkaError.INVALID_CONFIG and words in error.str(), error
    topic = "kafka-wording"
    _create(node.bootstrap, topic)
    error = _incremental_error(node.bootstrap, ConfigResource(
        confluent_kafka.admin.ResourceType.TOPIC, topic, incremental_configs=[_set("retention.ms", "abc")]))
    assert "Invalid value abc for configuration retention.ms: Not a number of type LONG" in error.str(), error


def test_security_configs_are_refused_not_silently_accepted(node: EmbeddedBroker) -> None:
    # what suoi does not implement, and (as Kafka) a keystore changed at run time only per listener
    for name, value, why in (
            ("sasl.kerberos.min.time.before.relogin", "120000", "suoi does not implement"),
            ("ssl.keystore.password", "s3cr3t", "can be updated dynamically only per listener"),
            ("sasl.jaas.config", "org.example.Login required password=\"hunter2\";", "suoi does not implement")):
        error = _incremental_error(node.bootstrap, ConfigResource(BROKER, "1", incremental_configs=[_set(name, value)]))
        assert error.code() == confluent_kafka.KafkaError.INVALID_CONFIG, error
        assert why in error.str(), error
    described = _describe(node.bootstrap, BROKER, "1")
    assert described["sasl.kerberos.min.time.before.relogin"].source == \
        confluent_kafka.admin.ConfigSource.DEFAULT_CONFIG.value
    assert "s3cr3t" not in node.logs() and "hunter2" not in node.logs()


def test_cli_describes_all_broker_configs(node: EmbeddedBroker) -> None:
    done = subprocess.run([sys.executable, "-m", "suoi", "configs", "--describe", "--broker", "1", "--all",
                           "--bootstrap-server", node.bootstrap], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "All configs for broker 1 are:" and len(lines) > 290
    assert any(line.startswith("  ssl.keystore.password=null sensitive=true") for line in lines), lines[:5]


# -- bug 11: Kafka's synonyms; the broker-level compression.type -------------------------

def _synonyms(entry: ConfigEntry) -> list[tuple[str, str | None, int]]:
    return [(s.name, s.value, s.source) for s in entry.synonyms.values()]


def _stored_codecs(bootstrap: str, topic: str) -> list[int]:
    with RawClient(bootstrap) as client:
        records = client.request(fetch_req(topic, 0, 0)).responses[0].partitions[0].records or b""
    return [header.compression for _pos, header in iter_batches(records)]


def test_synonyms_follow_kafka_and_broker_compression_type_is_honoured(node: EmbeddedBroker) -> None:
    plain, own = "synonyms-plain", "synonyms-own-codec"
    _create(node.bootstrap, plain)
    _create(node.bootstrap, own, {"compression.type": "producer"})
    topic = confluent_kafka.admin.ResourceType.TOPIC
    default, dynamic = (confluent_kafka.admin.ConfigSource.DEFAULT_CONFIG.value,
                        confluent_kafka.admin.ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    configs = _describe(node.bootstrap, topic, plain)
    assert (configs["retention.ms"].source, _synonyms(configs["retention.ms"])) == (default, [])
    assert _synonyms(configs["compression.type"]) == [("compression.type", "producer", default)]
    this_broker = ConfigResource(BROKER, "1", incremental_configs=[_set("compression.type", "gzip"),
                                                              _set("log.retention.ms", "86400000")])
    _incremental(node.bootstrap, this_broker)
    try:
        def described() -> dict[str, ConfigEntry] | None:
            c = _describe(node.bootstrap, topic, plain)
            return c if c["compression.type"].value == "gzip" else None
        configs = wait_until(described, 10, 0.05, "the broker's dynamic configs to apply")
        assert configs["compression.type"].source == dynamic
        # confluent-kafka keys synonyms by name: the raw answer shows both places the name has a value
        raw = raw_describe(node.bootstrap, 2, plain, keys=("compression.type",))["configs"]["compression.type"]
        assert [(s.name, s.value, s.source) for s in raw.synonyms] == [("compression.type", "gzip", dynamic),
                                                                        ("compression.type", "producer", default)]
        assert _synonyms(configs["retention.ms"]) == [("log.retention.ms", "86400000", dynamic),
                                                      ("log.retention.hours", "168", default)]
        producer = confluent_kafka.Producer({"bootstrap.servers": node.bootstrap, "compression.type": "none"})
        for name in (plain, own):
            producer.produce(name, b"v" * 200, partition=0)
        assert producer.flush(20) == 0
        assert _stored_codecs(node.bootstrap, plain) == [GZIP]  # recompressed: the topic has no own setting
        assert _stored_codecs(node.bootstrap, own) == [NONE]  # the topic's own compression.type wins
        consumer = confluent_kafka.Consumer({"bootstrap.servers": node.bootstrap, "group.id": "codec-check"})
        try:
            consumer.assign([confluent_kafka.TopicPartition(plain, 0, 0)])
            message = wait_until(lambda: consumer.poll(0.5), 15, 0, "the recompressed record")
            assert message.error() is None and message.value() == b"v" * 200
        finally:
            consumer.close()
    finally:
        _incremental(node.bootstrap, ConfigResource(BROKER, "1", incremental_configs=[
            ConfigEntry("compression.type", None, incremental_operation=AlterConfigOpType.DELETE),
            ConfigEntry("log.retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)]))
