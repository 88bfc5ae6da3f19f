"""Where suoi used to answer differently from Apache Kafka, driven with real clients against one
real node (module-scoped): each test names the Kafka behaviour it pins.

- KIP-937: a CreateTime record outside [now - message.timestamp.before.max.ms,
  now + message.timestamp.after.max.ms] is refused with INVALID_TIMESTAMP (Kafka 4's default
  after.max.ms is one hour); LogAppendTime topics are not checked.
- OffsetDelete of a partition the metadata does not have answers UNKNOWN_TOPIC_OR_PARTITION
  (Kafka's handleOffsetDeleteRequest), not NONE.
- A topic named twice in one CreateTopics/DeleteTopics is answered once, INVALID_REQUEST.
- DeleteRecords on a topic whose cleanup.policy lacks ``delete`` is POLICY_VIOLATION.
- Authorized operations asked for on a node without an authorizer are all the supported ones.
- ListGroups' types filter (KIP-848): ``consumer`` alone lists none of suoi's classic groups.
- Deleting a topic drops the committed offsets of its partitions.
- ``is_internal`` is Kafka's fixed set of internal topics, not every name starting "__".
- CreateTopics v5+ answers every effective config of the new topic (KIP-525).
- A client's Produce to an internal topic is INVALID_TOPIC_EXCEPTION.
"""

from __future__ import annotations

import datetime
import time
import uuid

import confluent_kafka
import pytest
from confluent_kafka import ConsumerGroupType, KafkaError, KafkaException, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic, ResourceType
from kafka import KafkaAdminClient
from kafka import TopicPartition as KTopicPartition
from kafka.errors import GroupSubscribedToTopicError, NoError, PolicyViolationError, UnknownTopicOrPartitionError
from kio.schema.create_topics.v7.request import CreatableTopic, CreatableTopicConfig, CreateTopicsRequest
from kio.schema.types import TopicName
from kio.static.primitive import i16, i32, i32Timedelta

from suoi.testing import EmbeddedBroker
from tests.client_cleanup import close_client
from tests.conftest import wait_until
from tests.e2e.helpers import create_topic
from tests.rawclient import RawClient

HOUR_MS = 3_600_000


def _produce_one(bootstrap: str, topic: str, timestamp_ms: int) -> tuple[int | None, int, tuple[int, int]]:
    """Produce one record with ``timestamp_ms``: (error code or None, offset, (timestamp type, timestamp))."""
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "retries": 0})
    outcome: list[tuple[int | None, int, tuple[int, int]]] = []
    try:
        producer.produce(topic, value=b"v", timestamp=timestamp_ms,
                         on_delivery=lambda err, msg: outcome.append(
                             (err.code() if err else None, msg.offset(), msg.timestamp())))
        assert producer.flush(15) == 0
    finally:
        close_client(producer)
    return outcome[0]


def _high_watermark(bootstrap: str, topic: str) -> int:
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "audit-watermarks"})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
    finally:
        close_client(consumer)


def test_create_time_outside_topic_bounds_is_invalid_timestamp(bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic, config={"message.timestamp.before.max.ms": "60000",
                                           "message.timestamp.after.max.ms": "60000"})
    now = int(time.time() * 1000)
    assert _produce_one(bootstrap, topic, now - HOUR_MS)[0] == KafkaError.INVALID_TIMESTAMP
    assert _produce_one(bootstrap, topic, now + HOUR_MS)[0] == KafkaError.INVALID_TIMESTAMP
    error, offset, (ts_type, ts) = _produce_one(bootstrap, topic, now)
    assert (error, offset, ts_type, ts) == (None, 0, confluent_kafka.TIMESTAMP_CREATE_TIME, now)
    assert _high_watermark(bootstrap, topic) == 1  # the refused records were not written


def test_default_bounds_refuse_over_an_hour_ahead_only(bootstrap: str, topic: str) -> None:
    """Kafka 4's defaults: message.timestamp.after.max.ms=3600000, before.max.ms unbounded."""
    create_topic(bootstrap, topic)
    now = int(time.time() * 1000)
    assert _produce_one(bootstrap, topic, now + 2 * HOUR_MS)[0] == KafkaError.INVALID_TIMESTAMP
    assert _produce_one(bootstrap, topic, now - 365 * 24 * HOUR_MS)[:2] == (None, 0)
    assert _high_watermark(bootstrap, topic) == 1


def test_log_append_time_topic_ignores_the_bounds(bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic, config={"message.timestamp.type": "LogAppendTime",
                                           "message.timestamp.before.max.ms": "1000"})
    before = int(time.time() * 1000)
    error, offset, (ts_type, ts) = _produce_one(bootstrap, topic, before - HOUR_MS)
    assert (error, offset, ts_type) == (None, 0, confluent_kafka.TIMESTAMP_LOG_APPEND_TIME)
    assert before <= ts <= int(time.time() * 1000)


@pytest.fixture
def kafka_admin(bootstrap: str):  # noqa: ANN201
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    yield admin
    admin.close()


def test_offset_delete_of_unknown_partition_is_unknown_topic_or_partition(
        bootstrap: str, topic: str, kafka_admin: KafkaAdminClient) -> None:
    create_topic(bootstrap, topic, partitions=2)
    group = f"audit-{uuid.uuid4().hex[:8]}"
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, 5), TopicPartition(topic, 1, 7)], asynchronous=False)
    finally:
        close_client(consumer)
    missing_topic = f"no-such-{uuid.uuid4().hex[:8]}"
    answer = kafka_admin.delete_group_offsets(group, [KTopicPartition(topic, 0), KTopicPartition(topic, 2),
                                                      KTopicPartition(missing_topic, 0)])
    assert answer == {KTopicPartition(topic, 0): NoError, KTopicPartition(topic, 2): UnknownTopicOrPartitionError,
                      KTopicPartition(missing_topic, 0): UnknownTopicOrPartitionError}
    committed = kafka_admin.list_group_offsets(group)[group]
    assert {tp.partition: om.offset for tp, om in committed.items()} == {1: 7}


def test_offset_delete_on_a_subscribed_topic_is_refused(
        bootstrap: str, topic: str, kafka_admin: KafkaAdminClient) -> None:
    create_topic(bootstrap, topic)
    group = f"audit-{uuid.uuid4().hex[:8]}"
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                                         "enable.auto.commit": False})
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 15
        while not consumer.assignment() and time.monotonic() < deadline:
            consumer.poll(0.1)
        assert consumer.assignment() == [TopicPartition(topic, 0)]
        consumer.commit(offsets=[TopicPartition(topic, 0, 3)], asynchronous=False)
        answer = kafka_admin.delete_group_offsets(group, [KTopicPartition(topic, 0)])
        assert answer == {KTopicPartition(topic, 0): GroupSubscribedToTopicError}
        committed = kafka_admin.list_group_offsets(group)[group]
        assert {tp.partition: om.offset for tp, om in committed.items()} == {0: 3}
    finally:
        close_client(consumer)


def test_duplicate_names_in_create_and_delete_topics_are_invalid_request(bootstrap: str, topic: str) -> None:
    """Kafka answers a name given twice once, INVALID_REQUEST (its responses are keyed by name:
    librdkafka refused suoi's two answers as a protocol parse failure), and creates/deletes nothing."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, 1, 1), NewTopic(topic, 1, 1)], operation_timeout=10)
    with pytest.raises(KafkaException) as refused:
        futures[topic].result(15)
    assert refused.value.args[0].code() == KafkaError.INVALID_REQUEST
    assert topic not in admin.list_topics(timeout=10).topics
    create_topic(bootstrap, topic)
    with pytest.raises(KafkaException) as refused:
        admin.delete_topics([topic, topic], operation_timeout=10)[topic].result(15)
    assert refused.value.args[0].code() == KafkaError.INVALID_REQUEST
    assert topic in admin.list_topics(timeout=10).topics


def test_delete_records_on_a_compact_only_topic_is_policy_violation(
        bootstrap: str, topic: str, kafka_admin: KafkaAdminClient) -> None:
    """Kafka's deleteRecordsOnLeader refuses a log whose cleanup.policy lacks ``delete``; with
    ``compact,delete`` it deletes."""
    create_topic(bootstrap, topic, partitions=2, config={"cleanup.policy": "compact"})
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap})
    try:
        for i in range(4):
            producer.produce(topic, key=b"k%d" % i, value=b"v", partition=0)
        assert producer.flush(15) == 0
    finally:
        close_client(producer)
    with pytest.raises(PolicyViolationError):
        kafka_admin.delete_records({KTopicPartition(topic, 0): 2})
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "audit-watermarks"})
    try:
        assert consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 4)
    finally:
        close_client(consumer)
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.APPEND)])
    admin = AdminClient({"bootstrap.servers": bootstrap})  # held: a freed handle fails its futures
    next(iter(admin.incremental_alter_configs([resource]).values())).result(15)

    def deleted() -> int | None:
        try:
            return kafka_admin.delete_records({KTopicPartition(topic, 0): 2})[KTopicPartition(topic, 0)]["low_watermark"]
        except PolicyViolationError:
            return None  # the config change is not applied on the node yet

    assert wait_until(deleted, timeout=10, message="DeleteRecords once cleanup.policy=compact,delete") == 2


def test_authorized_operations_without_an_authorizer_are_all_supported(bootstrap: str, topic: str) -> None:
    """Kafka's AuthHelper.authorizedOperations with no authorizer: every operation the resource
    type supports, when the request asks (suoi answered "omitted", which clients show as None)."""
    create_topic(bootstrap, topic)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    cluster = admin.describe_cluster(include_authorized_operations=True).result(15)
    assert {op.name for op in cluster.authorized_operations} == {
        "CREATE", "ALTER", "DESCRIBE", "CLUSTER_ACTION", "DESCRIBE_CONFIGS", "ALTER_CONFIGS", "IDEMPOTENT_WRITE"}
    described = admin.describe_topics(TopicCollection([topic]), include_authorized_operations=True)[topic].result(15)
    assert {op.name for op in described.authorized_operations} == {
        "READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE", "DESCRIBE_CONFIGS", "ALTER_CONFIGS"}
    assert admin.describe_cluster().result(15).authorized_operations is None  # not asked: omitted


def test_list_groups_by_type_and_group_operations(bootstrap: str, topic: str) -> None:
    """Every suoi group is a classic one: a ListGroups types filter of ``consumer`` (KIP-848)
    alone matches none of them; DescribeGroups names the group operations when asked."""
    create_topic(bootstrap, topic)
    group = f"audit-{uuid.uuid4().hex[:8]}"
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)  # an Empty classic group

        def listed(types: set[ConsumerGroupType]) -> list[str]:
            found = admin.list_consumer_groups(types=types).result(15).valid
            return [g.group_id for g in found if g.group_id == group]

        assert listed({ConsumerGroupType.CLASSIC}) == [group]
        assert listed({ConsumerGroupType.CONSUMER}) == []
        assert listed({ConsumerGroupType.CLASSIC, ConsumerGroupType.CONSUMER}) == [group]
        description = admin.describe_consumer_groups([group], include_authorized_operations=True)[group].result(15)
        assert {op.name for op in description.authorized_operations} == {"READ", "DESCRIBE", "DELETE"}
    finally:
        close_client(consumer)


def test_deleting_a_topic_drops_its_committed_offsets(bootstrap: str, topic: str) -> None:
    """Kafka's coordinator drops a deleted topic's offsets (onPartitionsDeleted): a topic
    recreated under the same name starts without them (suoi kept them, so a new consumer began
    at an offset of the old log, skipping the new records below it); other topics' stay."""
    other = f"{topic}-kept"
    create_topic(bootstrap, topic)
    create_topic(bootstrap, other)
    group = f"audit-{uuid.uuid4().hex[:8]}"
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, 5), TopicPartition(other, 0, 3)], asynchronous=False)
        admin.delete_topics([topic], operation_timeout=10)[topic].result(15)
        create_topic(bootstrap, topic)

        def committed() -> list[tuple[str, int]]:
            found = consumer.committed([TopicPartition(topic, 0), TopicPartition(other, 0)], timeout=10)
            return [(tp.topic, tp.offset) for tp in found]

        wait_until(lambda: committed()[0][1] == confluent_kafka.OFFSET_INVALID, timeout=10,
                   message="the deleted topic's committed offset dropped")
        assert committed() == [(topic, confluent_kafka.OFFSET_INVALID), (other, 3)]
    finally:
        close_client(consumer)


def test_only_kafkas_internal_topics_are_flagged_internal(bootstrap: str, topic: str) -> None:
    """Kafka's Topic.isInternal is a fixed set (__consumer_offsets, __transaction_state, ...): a
    user topic named "__..." is an ordinary one (``--exclude-internal`` must still list it)."""
    mine = f"__{topic}"[:249]
    create_topic(bootstrap, mine)
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": f"audit-{topic}"})
    try:
        consumer.commit(offsets=[TopicPartition(mine, 0, 1)], asynchronous=False)  # __consumer_offsets exists
    finally:
        close_client(consumer)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [mine, "__consumer_offsets"]
    described = admin.describe_topics(TopicCollection(names))
    assert {name: described[name].result(15).is_internal for name in names} == {
        mine: False, "__consumer_offsets": True}


@pytest.mark.parametrize("validate_only", [False, True])
def test_create_topics_answers_the_whole_effective_config(broker: EmbeddedBroker, topic: str,
                                                          validate_only: bool) -> None:
    """KIP-525 (CreateTopics v5+): each created (or, validate_only, creatable) topic comes back
    with every config and its source, as Kafka's computeEffectiveTopicConfigs, not only the
    overrides the request named."""
    request = CreateTopicsRequest(topics=(CreatableTopic(
        name=TopicName(topic), num_partitions=i32(2), replication_factor=i16(1), assignments=(),
        configs=(CreatableTopicConfig(name="retention.ms", value="60000"),)),),
        timeout=i32Timedelta.parse(datetime.timedelta(seconds=15)), validate_only=validate_only)
    with RawClient(broker.bootstrap) as client:
        answer = client.request(request).topics[0]
    assert (answer.error_code, answer.num_partitions, answer.replication_factor) == (0, 2, 1)
    configs = {c.name: (c.value, c.config_source, c.read_only, c.is_sensitive) for c in answer.configs}
    assert configs["retention.ms"] == ("60000", 1, False, False)  # DYNAMIC_TOPIC_CONFIG: the request's
    assert configs["cleanup.policy"] == ("delete", 5, False, False)  # DEFAULT_CONFIG
    assert configs["message.timestamp.after.max.ms"] == ("3600000", 5, False, False)
    assert len(configs) > 30  # every topic config Kafka defines


def test_clients_cannot_produce_to_internal_topics(bootstrap: str, topic: str) -> None:
    """Kafka's appendRecords refuses a client's records for __consumer_offsets (INVALID_TOPIC_EXCEPTION:
    only the coordinators write there); suoi stored them, next to the group coordinator's own."""
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": f"audit-{topic}"})
    create_topic(bootstrap, topic)
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)  # __consumer_offsets exists
    finally:
        close_client(consumer)
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "retries": 0})
    outcome: list[int | None] = []
    try:
        producer.produce("__consumer_offsets", key=b"not-a-group-record", value=b"x", partition=0,
                         on_delivery=lambda err, _msg: outcome.append(err.code() if err else None))
        assert producer.flush(15) == 0
    finally:
        close_client(producer)
    assert outcome == [KafkaError.TOPIC_EXCEPTION]  # librdkafka's name for INVALID_TOPIC_EXCEPTION (17)
