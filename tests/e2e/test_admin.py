"""Topic administration with confluent-kafka's AdminClient against a real broker."""

from __future__ import annotations

import confluent_kafka
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from tests.conftest import wait_until
from tests.e2e.helpers import ck_consume, ck_produce


def _admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def _create_error(admin: AdminClient, topic: NewTopic) -> KafkaError:
    fut = admin.create_topics([topic], operation_timeout=10)[topic.topic]
    try:
        fut.result(timeout=15)
    except KafkaException as e:
        return e.args[0]
    raise AssertionError(f"creating {topic.topic} succeeded")


def test_create_list_describe_delete(bootstrap: str, topic: str) -> None:
    admin = _admin(bootstrap)
    fs = admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1,
                                       config={"retention.ms": "3600000", "cleanup.policy": "delete",
                                               "max.message.bytes": "200000"})], operation_timeout=10)
    assert fs[topic].result(timeout=15) is None

    md = admin.list_topics(timeout=10)
    assert topic in md.topics
    t = md.topics[topic]
    assert t.error is None
    assert sorted(t.partitions) == [0, 1, 2, 3]
    broker_ids = set(md.brokers)
    assert len(broker_ids) == 1
    for p in t.partitions.values():
        assert p.leader in broker_ids and p.replicas == [p.leader] and p.isrs == [p.leader]
    # describe one topic only
    one = admin.list_topics(topic=topic, timeout=10)
    assert list(one.topics) == [topic] and len(one.topics[topic].partitions) == 4

    # the topic is usable at once, on every partition
    ck_produce(bootstrap, topic, [{"value": b"p%d" % p, "partition": p} for p in range(4)])
    got = ck_consume(bootstrap, topic, [0, 1, 2, 3], 4)
    assert sorted((r.partition, r.offset, r.value) for r in got) == [(p, 0, b"p%d" % p) for p in range(4)]

    assert admin.delete_topics([topic], operation_timeout=10)[topic].result(timeout=15) is None
    wait_until(lambda: topic not in admin.list_topics(timeout=10).topics, timeout=10,
               message="deleted topic gone from metadata")


def test_topic_config_max_message_bytes_enforced(bootstrap: str, topic: str) -> None:
    """A config given at creation is in force: a record over max.message.bytes is refused."""
    admin = _admin(bootstrap)
    admin.create_topics([NewTopic(topic, 1, 1, config={"max.message.bytes": "2000"})],
                        operation_timeout=10)[topic].result(timeout=15)
    p = confluent_kafka.Producer({"bootstrap.servers": bootstrap})
    errors: list[KafkaError] = []
    p.produce(topic, value=b"small", on_delivery=lambda err, msg: errors.append(err))
    assert p.flush(15) == 0  # its own batch: the limit applies to the whole batch
    p.produce(topic, value=b"x" * 10_000, on_delivery=lambda err, msg: errors.append(err))
    assert p.flush(15) == 0
    assert errors[0] is None
    assert errors[1] is not None and errors[1].code() == KafkaError.MSG_SIZE_TOO_LARGE


def test_create_existing_topic(bootstrap: str, topic: str) -> None:
    admin = _admin(bootstrap)
    admin.create_topics([NewTopic(topic, 2, 1)], operation_timeout=10)[topic].result(timeout=15)
    err = _create_error(admin, NewTopic(topic, 2, 1))
    assert err.code() == KafkaError.TOPIC_ALREADY_EXISTS
    # the original is untouched
    assert len(admin.list_topics(topic=topic, timeout=10).topics[topic].partitions) == 2


def test_create_invalid_name(bootstrap: str) -> None:
    admin = _admin(bootstrap)
    for bad in ["bad name with spaces", "a/b", "..", "x" * 250]:
        err = _create_error(admin, NewTopic(bad, 1, 1))
        assert err.code() == KafkaError.TOPIC_EXCEPTION, (bad, err)  # INVALID_TOPIC_EXCEPTION (17)
    assert not any(t in admin.list_topics(timeout=10).topics for t in ["a/b", ".."])


def test_create_replication_factor_too_large(bootstrap: str, topic: str) -> None:
    admin = _admin(bootstrap)
    err = _create_error(admin, NewTopic(topic, 1, 3))
    assert err.code() == KafkaError.INVALID_REPLICATION_FACTOR
    assert topic not in admin.list_topics(timeout=10).topics


def test_create_invalid_partitions(bootstrap: str, topic: str) -> None:
    admin = _admin(bootstrap)
    err = _create_error(admin, NewTopic(topic, 0, 1))
    assert err.code() == KafkaError.INVALID_PARTITIONS


def test_validate_only_creates_nothing(bootstrap: str, topic: str) -> None:
    admin = _admin(bootstrap)
    assert admin.create_topics([NewTopic(topic, 3, 1)], validate_only=True,
                               operation_timeout=10)[topic].result(timeout=15) is None
    assert topic not in admin.list_topics(timeout=10).topics


def test_delete_unknown_topic(bootstrap: str, topic: str) -> None:
    admin = _admin(bootstrap)
    fut = admin.delete_topics([topic], operation_timeout=10)[topic]
    try:
        fut.result(timeout=15)
    except KafkaException as e:
        assert e.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    else:
        raise AssertionError("deleting an unknown topic succeeded")
