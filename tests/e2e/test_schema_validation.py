"""Broker-side schema id validation (issue 16): a topic with `confluent.value.schema.validation`
(or Redpanda's `redpanda.*.schema.id.validation`) accepts only records whose key/value starts with
magic byte 0 and a schema id registered under the topic's subject; everything else is refused with
INVALID_RECORD, which the producer sees. A real KRaft node running its own registry, driven by
confluent-kafka's producer, admin client and AvroSerializer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from suoi.testing import EmbeddedBroker
from suoi.testing.embedded import free_port
from tests.conftest import wait_until
from tests.e2e.helpers import ck_consume
from tests.e2e.test_schema_registry import ORDER_V1, rest
from tests.e2e.test_single_node_kraft import make_run_properties

VALIDATED = "orders-validated"
KEYS_VALIDATED = "orders-keys-validated"
PLAIN = "orders-plain"
OTHER_SCHEMA = {"type": "record", "name": "Refund", "namespace": "shop", "fields": [{"name": "amount", "type": "long"}]}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, EmbeddedBroker]]:
    """A node with its registry, and the three topics (bootstrap, registry URL, the node)."""
    port, cport, rport = free_port(), free_port(), free_port()
    props = make_run_properties(port, cport)
    props["schema.registry.listeners"] = f"http://127.0.0.1:{rport}"
    with EmbeddedBroker(tmp_path_factory.mktemp("validation"), port=port, overrides=props) as broker:
        url = f"http://127.0.0.1:{rport}"
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        futures = admin.create_topics([
            NewTopic(VALIDATED, 1, 1, config={"confluent.value.schema.validation": "true"}),
            NewTopic(KEYS_VALIDATED, 1, 1, config={"redpanda.key.schema.id.validation": "true"}),
            NewTopic(PLAIN, 1, 1)])
        for future in futures.values():
            future.result(20)
        wait_until(lambda: rest(url, "GET", "/subjects")[0] == 200, 30, 0.1, "the node's registry")
        yield broker.bootstrap, url, broker


def produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes | None]]) -> list[KafkaError | None]:
    """Each record's delivery error (None: delivered); one record per request (linger 0)."""
    errors: list[KafkaError | None] = []
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "message.timeout.ms": 15000})
    for key, value in records:
        producer.produce(topic, key=key, value=value, on_delivery=lambda err, _msg: errors.append(err))
        producer.flush(20)  # one batch per record: each is judged alone
    assert len(errors) == len(records)
    return errors


def codes(errors: list[KafkaError | None]) -> list[int | None]:
    return [None if e is None else e.code() for e in errors]


def test_value_validation_accepts_serializer_records_and_rejects_the_rest(node: tuple[str, str, EmbeddedBroker]) -> None:
    bootstrap, url, broker = node
    client = SchemaRegistryClient({"url": url})
    serializer = AvroSerializer(client, json.dumps(ORDER_V1))
    good = serializer({"id": 7, "item": "tea"}, SerializationContext(VALIDATED, MessageField.VALUE))
    # an id registered under another subject only
    other_id = client.register_schema("refunds-value", Schema(json.dumps(OTHER_SCHEMA), "AVRO"))
    order_id = int.from_bytes(good[1:5], "big")
    assert other_id != order_id
    foreign = b"\x00" + other_id.to_bytes(4, "big") + good[5:]
    unknown = b"\x00" + (other_id + 1000).to_bytes(4, "big") + good[5:]
    errors = produce(bootstrap, VALIDATED, [(None, good), (None, b"plain text"), (None, foreign), (None, unknown),
                                            (b"any key", good), (None, None)])
    assert codes(errors) == [None, KafkaError.INVALID_RECORD, KafkaError.INVALID_RECORD,
                             KafkaError.INVALID_RECORD, None, None]
    # librdkafka does not show the broker's error_message: the node's one warning line per refusal says why
    lines = [line for line in broker.log_path.read_text().splitlines() if f"produce to {VALIDATED}" in line]
    assert len(lines) == 3, lines
    assert "value does not start with magic byte 0 and a 4-byte schema id" in lines[0]
    assert f"value has schema id {other_id}, not registered under subject {VALIDATED}-value" in lines[1]
    assert f"schema id {other_id + 1000}, not registered" in lines[2]
    records = ck_consume(bootstrap, VALIDATED, [0], 3, timeout=20)
    assert [r.value for r in records] == [good, good, None]  # nothing of the refused ones was written


def test_key_validation_by_redpandas_name(node: tuple[str, str, EmbeddedBroker]) -> None:
    bootstrap, url, _broker = node
    client = SchemaRegistryClient({"url": url})
    key_id = client.register_schema(f"{KEYS_VALIDATED}-key", Schema('"string"', "AVRO"))
    key = b"\x00" + key_id.to_bytes(4, "big") + b"\x02k"
    errors = produce(bootstrap, KEYS_VALIDATED, [(key, b"any value"), (b"k", b"any value"), (None, b"v")])
    assert codes(errors) == [None, KafkaError.INVALID_RECORD, None]


def test_topic_without_validation_accepts_anything(node: tuple[str, str, EmbeddedBroker]) -> None:
    bootstrap, _url, _broker = node
    assert codes(produce(bootstrap, PLAIN, [(b"k", b"plain text"), (None, b"\x00\xff\xff\xff\xff")])) == [None, None]


def test_configs_are_described_and_unbuilt_strategies_refused(node: tuple[str, str, EmbeddedBroker]) -> None:
    bootstrap, _url, _broker = node
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(ResourceType.TOPIC, VALIDATED)
    described: dict[str, Any] = admin.describe_configs([resource])[resource].result(20)
    assert described["confluent.value.schema.validation"].value == "true"
    assert described["confluent.key.schema.validation"].value == "false"
    assert described["confluent.value.subject.name.strategy"].value.endswith("TopicNameStrategy")
    entry = ConfigEntry("confluent.value.subject.name.strategy", "io.confluent.kafka.serializers.subject."
                        "RecordNameStrategy", incremental_operation=AlterConfigOpType.SET)
    change = ConfigResource(ResourceType.TOPIC, VALIDATED, incremental_configs=[entry])
    with pytest.raises(KafkaException) as refused:
        admin.incremental_alter_configs([change])[change].result(20)
    assert refused.value.args[0].code() == KafkaError.INVALID_CONFIG
    assert "RecordNameStrategy is not implemented" in refused.value.args[0].str()


def test_alter_configs_turns_validation_on_for_a_live_topic(node: tuple[str, str, EmbeddedBroker]) -> None:
    bootstrap, _url, _broker = node
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = "orders-altered"
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(20)
    assert codes(produce(bootstrap, topic, [(None, b"plain text")])) == [None]
    entry = ConfigEntry("redpanda.value.schema.id.validation", "true", incremental_operation=AlterConfigOpType.SET)
    change = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
    admin.incremental_alter_configs([change])[change].result(20)
    # the leader applies the change once its metadata image has it (milliseconds)
    wait_until(lambda: codes(produce(bootstrap, topic, [(None, b"plain text")])) == [KafkaError.INVALID_RECORD],
               10, 0.05, "validation on after AlterConfigs")
