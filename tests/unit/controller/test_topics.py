"""CreateTopics, DeleteTopics, CreatePartitions and config changes: validation and records."""

from __future__ import annotations

import pytest

from suoi.controller import (
    AlterConfigOp,
    AlterConfigsResource,
    ConfigResourceType,
    IncrementalAlterConfigsResource,
    NewPartitions,
    NewTopic,
    OpType,
)
from suoi.controller.records import Config, Partition, RemoveTopic, Topic
from suoi.controller.topics import EXCESSIVE_BATCH_MESSAGE, MAX_PARTITIONS_PER_REQUEST
from suoi.model import ErrorCode

from .helpers import Harness

TOPIC = ConfigResourceType.TOPIC
BROKER = ConfigResourceType.BROKER


def test_create_topic_records_and_result() -> None:
    h = Harness(3)
    r = h.ctl.create_topics([NewTopic(name="orders", num_partitions=3, replication_factor=2,
                                      configs={"retention.ms": "1000"})])
    res = r.response[0]
    assert res.error == ErrorCode.none and res.num_partitions == 3 and res.replication_factor == 2
    assert res.configs == {"retention.ms": "1000"} and res.topic_id is not None
    kinds = [type(x) for x in r.records]
    assert kinds == [Topic, Config, Partition, Partition, Partition]
    assert r.offset == h.ctl.last_offset and len(h.log) - 1 == r.offset  # one batch = one entry
    assert h.image.topic_configs("orders") == {"retention.ms": "1000"}
    h.check_replay()


def test_defaults_come_from_the_controller_config() -> None:
    h = Harness(3, num_partitions=4, default_replication_factor=3)
    res = h.ctl.create_topics([NewTopic(name="d")]).response[0]
    assert (res.num_partitions, res.replication_factor) == (4, 3)


@pytest.mark.parametrize(("topic", "code", "message"), [
    (NewTopic(name=""), ErrorCode.invalid_topic_exception, "Topic name is illegal, it can't be empty"),
    (NewTopic(name=".."), ErrorCode.invalid_topic_exception, 'Topic name cannot be "." or ".."'),
    (NewTopic(name="a" * 250), ErrorCode.invalid_topic_exception, "can't be longer than 249 characters"),
    (NewTopic(name="bad name"), ErrorCode.invalid_topic_exception, "contains a character other than ASCII alphanumerics"),
    (NewTopic(name="exists"), ErrorCode.topic_already_exists, "Topic 'exists' already exists."),
    (NewTopic(name="my.topic"), ErrorCode.invalid_topic_exception, "Topic 'my.topic' collides with existing topic: my_topic"),
    (NewTopic(name="p", num_partitions=0), ErrorCode.invalid_partitions, "Number of partitions was set to an invalid"),
    (NewTopic(name="p", num_partitions=-5), ErrorCode.invalid_partitions, "invalid non-positive value"),
    (NewTopic(name="p", replication_factor=0), ErrorCode.invalid_replication_factor, "must be larger than 0"),
    (NewTopic(name="p", replication_factor=4), ErrorCode.invalid_replication_factor,
     "Unable to replicate the partition 4 time(s): The target replication factor of 4 cannot be reached because only 3 "
     "broker(s) are registered."),
    (NewTopic(name="p", configs={"retention.ms": "soon"}), ErrorCode.invalid_config, "retention.ms"),
    (NewTopic(name="p", configs={"no.such.config": "1"}), ErrorCode.invalid_config, "Unknown topic config name: no.such.config"),
    (NewTopic(name="p", configs={"retention.ms": None}), ErrorCode.invalid_config, "Null value"),
    (NewTopic(name="p", num_partitions=2, assignments={0: [0]}), ErrorCode.invalid_request, "numPartitions was not set to -1"),
    (NewTopic(name="p", replication_factor=1, assignments={0: [0]}), ErrorCode.invalid_request, "replication factor was not"),
    (NewTopic(name="p", assignments={0: []}), ErrorCode.invalid_replica_assignment, "empty replica list"),
    (NewTopic(name="p", assignments={0: [9]}), ErrorCode.invalid_replica_assignment, "broker 9, but no such broker"),
    (NewTopic(name="p", assignments={0: [1, 1]}), ErrorCode.invalid_replica_assignment, "the broker 1 more than once"),
    (NewTopic(name="p", assignments={0: [1, 2], 1: [0]}), ErrorCode.invalid_replica_assignment, "inconsistent with previous"),
    (NewTopic(name="p", assignments={0: [1], 2: [0]}), ErrorCode.invalid_replica_assignment, "consecutive 0-based"),
])
def test_create_topic_validation(topic: NewTopic, code: ErrorCode, message: str) -> None:
    h = Harness(3)
    assert h.create("exists").error == ErrorCode.none
    assert h.create("my_topic").error == ErrorCode.none
    before = len(h.log)
    r = h.ctl.create_topics([topic])
    res = r.response[0]
    assert res.error == code and message in (res.message or ""), res
    assert r.records == () and len(h.log) == before


def test_duplicate_names_in_one_request_are_refused_once_each() -> None:
    """One answer per name, as Kafka's ControllerApis: the response is a collection keyed by name
    (librdkafka fails the whole request, "protocol parse failure", on a name answered twice)."""
    h = Harness(1)
    r = h.ctl.create_topics([NewTopic(name="x"), NewTopic(name="x"), NewTopic(name="y")])
    assert [(x.name, x.error) for x in r.response] == [("x", ErrorCode.invalid_request), ("y", ErrorCode.none)]
    d = h.ctl.delete_topics(["y", "y"], [])
    assert [(x.name, x.error) for x in d.response] == [("y", ErrorCode.invalid_request)]
    p = h.ctl.create_partitions([NewPartitions(name="y", count=2), NewPartitions(name="y", count=3)])
    assert [(x.name, x.error) for x in p.response] == [("y", ErrorCode.invalid_request)]


def test_later_topics_in_a_request_see_earlier_ones() -> None:
    h = Harness(1)
    r = h.ctl.create_topics([NewTopic(name="a.b"), NewTopic(name="a_b")])
    assert [x.error for x in r.response] == [ErrorCode.none, ErrorCode.invalid_topic_exception]


def test_manual_assignment_isr_skips_fenced_brokers() -> None:
    h = Harness(3)
    h.heartbeat(1, want_fence=True)
    res = h.create("m", -1, -1, assignments={0: [1, 2], 1: [2, 0]})
    assert res.error == ErrorCode.none and res.replication_factor == 2
    p0, p1 = h.part("m", 0), h.part("m", 1)
    assert (p0.replicas, p0.isr, p0.leader) == ((1, 2), (2,), 2)
    assert (p1.replicas, p1.isr, p1.leader) == ((2, 0), (2, 0), 2)
    res = h.create("n", -1, -1, assignments={0: [1]})
    assert res.error == ErrorCode.invalid_replica_assignment and "fenced or in controlled shutdown" in (res.message or "")


def test_validate_only_writes_nothing() -> None:
    h = Harness(2)
    before = len(h.log)
    r = h.ctl.create_topics([NewTopic(name="v", num_partitions=3, replication_factor=2)], validate_only=True)
    assert r.response[0].error == ErrorCode.none and r.response[0].topic_id is None and r.records == ()
    assert h.image.topic("v") is None and len(h.log) == before


def test_refusal_waits_for_what_it_saw() -> None:
    h = Harness(1)
    created = h.ctl.create_topics([NewTopic(name="x")])
    again = h.ctl.create_topics([NewTopic(name="x")])
    assert again.response[0].error == ErrorCode.topic_already_exists and again.offset == created.offset


def test_delete_topics_by_name_and_id() -> None:
    h = Harness(2)
    a = h.create("a", 2, 2, configs={"retention.ms": "5"})
    h.create("b")
    r = h.ctl.delete_topics(["a", "nope"], [h.image.topic("b").topic_id, a.topic_id])  # type: ignore[union-attr,list-item]
    errs = [(x.name, x.error) for x in r.response]
    assert errs[0] == ("a", ErrorCode.none) and errs[1] == ("nope", ErrorCode.unknown_topic_or_partition)
    assert errs[2] == ("b", ErrorCode.none) and r.response[3].error == ErrorCode.unknown_topic_id  # already deleted above
    assert [type(x) for x in r.records] == [RemoveTopic, RemoveTopic]
    assert h.image.topics == {} and h.image.topic_configs("a") == {}
    dup = h.ctl.delete_topics(["z", "z"])
    assert [(x.name, x.error) for x in dup.response] == [("z", ErrorCode.invalid_request)]  # once per name
    h.check_replay()


def test_delete_disabled() -> None:
    h = Harness(1, delete_topic_enable=False)
    h.create("a")
    assert h.ctl.delete_topics(["a"]).response[0].error == ErrorCode.topic_deletion_disabled


def test_create_partitions() -> None:
    h = Harness(3)
    h.create("t", 2, 2)
    r = h.ctl.create_partitions([NewPartitions(name="t", count=5)])
    assert r.response[0].error == ErrorCode.none and h.image.topic("t").num_partitions == 5  # type: ignore[union-attr]
    leaders = [h.part("t", p).leader for p in range(5)]
    assert sorted(leaders.count(b) for b in range(3)) == [1, 2, 2]
    assert all(len(h.part("t", p).replicas) == 2 for p in range(5))
    r = h.ctl.create_partitions([NewPartitions(name="t", count=6, assignments=[[2, 0]])])
    assert r.response[0].error == ErrorCode.none and h.part("t", 5).replicas == (2, 0)
    h.check_replay()


@pytest.mark.parametrize(("req", "code", "message"), [
    (NewPartitions(name="nope", count=3), ErrorCode.unknown_topic_or_partition, "does not exist"),
    (NewPartitions(name="t", count=2), ErrorCode.invalid_partitions, "Topic already has 2 partition(s)."),
    (NewPartitions(name="t", count=1), ErrorCode.invalid_partitions, "The topic t currently has 2 partition(s); 1 would not be"),
    (NewPartitions(name="t", count=4, assignments=[[0, 1]]), ErrorCode.invalid_replica_assignment,
     "Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified."),
    (NewPartitions(name="t", count=3, assignments=[[0]]), ErrorCode.invalid_replica_assignment, "inconsistent with previous"),
    (NewPartitions(name="t", count=3, assignments=[[0, 7]]), ErrorCode.invalid_replica_assignment, "no such broker"),
])
def test_create_partitions_validation(req: NewPartitions, code: ErrorCode, message: str) -> None:
    h = Harness(2)
    h.create("t", 2, 2)
    r = h.ctl.create_partitions([req])
    assert r.response[0].error == code and message in (r.response[0].message or ""), r.response
    assert r.records == ()
    assert h.ctl.create_partitions([req, req]).response[0].error == ErrorCode.invalid_request


@pytest.mark.parametrize("count", [2**31 - 1, 200_000, MAX_PARTITIONS_PER_REQUEST + 1])
def test_excessive_creations_are_refused_whole_before_placement(count: int) -> None:
    h = Harness(1)
    h.create("t", 1, 1)
    before = len(h.log)
    r = h.ctl.create_topics([NewTopic(name="small", num_partitions=1, replication_factor=1),
                             NewTopic(name="huge", num_partitions=count, replication_factor=1)])
    assert [(x.name, x.error, x.message) for x in r.response] == [
        ("small", ErrorCode.policy_violation, EXCESSIVE_BATCH_MESSAGE),
        ("huge", ErrorCode.policy_violation, EXCESSIVE_BATCH_MESSAGE)]
    r = h.ctl.create_partitions([NewPartitions(name="t", count=max(count, MAX_PARTITIONS_PER_REQUEST + 2))])
    assert [(x.error, x.message) for x in r.response] == [(ErrorCode.policy_violation, EXCESSIVE_BATCH_MESSAGE)]
    assert len(h.log) == before and h.image.topic("small") is None


def test_the_limit_counts_partitions_of_the_whole_request() -> None:
    h = Harness(1)
    half = MAX_PARTITIONS_PER_REQUEST // 2
    r = h.ctl.create_topics([NewTopic(name=n, num_partitions=half, replication_factor=1) for n in ("a", "b")])
    assert [x.error for x in r.response] == [ErrorCode.none, ErrorCode.none]
    # an existing topic asked again adds nothing, so it does not count
    r = h.ctl.create_topics([NewTopic(name="a", num_partitions=half, replication_factor=1),
                             NewTopic(name="c", num_partitions=half + 1, replication_factor=1)])
    assert [x.error for x in r.response] == [ErrorCode.topic_already_exists, ErrorCode.none]
    r = h.ctl.create_topics([NewTopic(name=n, num_partitions=half + 1, replication_factor=1) for n in ("d", "e")])
    assert [x.error for x in r.response] == [ErrorCode.policy_violation, ErrorCode.policy_violation]


def test_create_partitions_validate_only() -> None:
    h = Harness(2)
    h.create("t", 1, 1)
    r = h.ctl.create_partitions([NewPartitions(name="t", count=3)], validate_only=True)
    assert r.response[0].error == ErrorCode.none and r.records == () and h.image.topic("t").num_partitions == 1  # type: ignore[union-attr]


def test_alter_configs_replaces_all_overrides() -> None:
    h = Harness(1)
    h.create("t", configs={"retention.ms": "5", "segment.ms": "100"})
    r = h.ctl.alter_configs([AlterConfigsResource(resource_type=TOPIC, resource_name="t",
                                                  configs={"retention.ms": "6", "cleanup.policy": "compact"})])
    assert r.response[0].error == ErrorCode.none
    assert h.image.topic_configs("t") == {"retention.ms": "6", "cleanup.policy": "compact"}
    assert Config(resource_type=TOPIC, resource_name="t", name="segment.ms", value=None) in r.records
    bad = h.ctl.alter_configs([
        AlterConfigsResource(resource_type=TOPIC, resource_name="t", configs={"retention.ms": "x"}),
        AlterConfigsResource(resource_type=TOPIC, resource_name="nope", configs={}),
        AlterConfigsResource(resource_type=99, resource_name="x", configs={}),
        AlterConfigsResource(resource_type=BROKER, resource_name="abc", configs={}),
    ]).response
    assert [x.error for x in bad] == [ErrorCode.invalid_config, ErrorCode.unknown_topic_or_partition, ErrorCode.invalid_request,
                                      ErrorCode.invalid_request]
    h.check_replay()


def test_broker_configs_with_a_validator() -> None:
    def validator(name: str, values) -> None:  # type: ignore[no-untyped-def]
        if "log.retention.ms" in values and int(values["log.retention.ms"]) < 0:
            raise ValueError("log.retention.ms must be >= 0")

    h = Harness(1, broker_config_validator=validator)
    ok = h.ctl.alter_configs([AlterConfigsResource(resource_type=BROKER, resource_name="", configs={"log.retention.ms": "5"})])
    assert ok.response[0].error == ErrorCode.none and h.image.broker_configs(None) == {"log.retention.ms": "5"}
    bad = h.ctl.incremental_alter_configs([IncrementalAlterConfigsResource(
        resource_type=BROKER, resource_name="0", ops=[AlterConfigOp("log.retention.ms", OpType.SET, "-5")])])
    assert bad.response[0].error == ErrorCode.invalid_config and bad.response[0].message == "log.retention.ms must be >= 0"


def test_incremental_alter_configs() -> None:
    h = Harness(1)
    h.create("t", configs={"retention.ms": "5"})

    def inc(*ops: AlterConfigOp, validate_only: bool = False):  # type: ignore[no-untyped-def]
        return h.ctl.incremental_alter_configs(
            [IncrementalAlterConfigsResource(resource_type=TOPIC, resource_name="t", ops=list(ops))],
            validate_only=validate_only).response[0]

    assert inc(AlterConfigOp("segment.ms", OpType.SET, "7"), AlterConfigOp("retention.ms", OpType.DELETE)).error == ErrorCode.none
    assert h.image.topic_configs("t") == {"segment.ms": "7"}
    assert inc(AlterConfigOp("cleanup.policy", OpType.APPEND, "compact")).error == ErrorCode.none
    assert h.image.topic_configs("t")["cleanup.policy"] == "delete,compact"  # appended to the default
    assert inc(AlterConfigOp("cleanup.policy", OpType.SUBTRACT, "delete")).error == ErrorCode.none
    assert h.image.topic_configs("t")["cleanup.policy"] == "compact"
    r = inc(AlterConfigOp("retention.ms", OpType.APPEND, "1"))
    assert r.error == ErrorCode.invalid_config and r.message == "Can't APPEND to key retention.ms because its type is not LIST."
    assert inc(AlterConfigOp("cleanup.policy", OpType.SUBTRACT, "compact")).error == ErrorCode.none  # empty: legal
    assert h.image.topic_configs("t")["cleanup.policy"] == ""
    assert inc(AlterConfigOp("a", OpType.SET, "1"), AlterConfigOp("a", OpType.DELETE)).error == ErrorCode.invalid_request
    assert inc(AlterConfigOp("retention.ms", OpType.SET, None)).error == ErrorCode.invalid_request
    assert inc(AlterConfigOp("retention.ms", OpType.SET, "9"), validate_only=True).error == ErrorCode.none
    assert "retention.ms" not in h.image.topic_configs("t")
    h.check_replay()
