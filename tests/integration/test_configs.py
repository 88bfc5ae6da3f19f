"""Config and partition admin APIs on a real broker, at the protocol level: DescribeConfigs
(sources, synonyms, flags), AlterConfigs / IncrementalAlterConfigs (validation, validate_only,
topic and broker resources, persistence, effect on the live log), CreatePartitions and
DescribeLogDirs."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from kio.schema.alter_configs.v2.request import AlterableConfig, AlterConfigsRequest, AlterConfigsResource
from kio.schema.create_partitions.v3.request import CreatePartitionsAssignment, CreatePartitionsRequest, CreatePartitionsTopic
from kio.schema.describe_configs.v1.request import DescribeConfigsRequest as DescribeConfigsRequestV1
from kio.schema.describe_configs.v1.request import DescribeConfigsResource as DescribeConfigsResourceV1
from kio.schema.describe_configs.v4.request import DescribeConfigsRequest, DescribeConfigsResource
from kio.schema.describe_log_dirs.v1.request import DescribeLogDirsRequest as DescribeLogDirsRequestV1
from kio.schema.describe_log_dirs.v4.request import DescribableLogDirTopic, DescribeLogDirsRequest
from kio.schema.errors import ErrorCode
from kio.schema.incremental_alter_configs.v1.request import AlterableConfig as IncConfig
from kio.schema.incremental_alter_configs.v1.request import AlterConfigsResource as IncResource
from kio.schema.incremental_alter_configs.v1.request import IncrementalAlterConfigsRequest

from suoi.protocol.records import build_batch
from suoi.testing import EmbeddedBroker
from tests.integration.support import create_topic, module_broker, ms, partition_dir, produce, unique
from tests.rawclient import RawClient

pytestmark = pytest.mark.timeout(60)
TOPIC, BROKER = 2, 4
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    yield from module_broker(tmp_path_factory, {"log.segment.bytes": "100000", "log.retention.check.interval.ms": "200"})


def describe(bootstrap: str, rtype: int, name: str, keys: tuple[str, ...] | None = None) -> dict:
    with RawClient(bootstrap) as c:
        resp = c.request(DescribeConfigsRequest(
            resources=(DescribeConfigsResource(resource_type=rtype, resource_name=name, configuration_keys=keys),),
            include_synonyms=True, include_documentation=True))
    (result,) = resp.results
    return {"error": result.error_code, "message": result.error_message,
            "configs": {c.name: c for c in result.configs}}


def alter(bootstrap: str, rtype: int, name: str, configs: dict[str, str | None], validate_only: bool = False):  # noqa: ANN201
    with RawClient(bootstrap) as c:
        resp = c.request(AlterConfigsRequest(resources=(AlterConfigsResource(
            resource_type=rtype, resource_name=name,
            configs=tuple(AlterableConfig(name=k, value=v) for k, v in configs.items())),), validate_only=validate_only))
    return resp.responses[0]


def incremental(bootstrap: str, rtype: int, name: str, ops: list[tuple[str, int, str | None]],
                validate_only: bool = False):  # noqa: ANN201
    with RawClient(bootstrap) as c:
        resp = c.request(IncrementalAlterConfigsRequest(resources=(IncResource(
            resource_type=rtype, resource_name=name,
            configs=tuple(IncConfig(name=k, config_operation=op, value=v) for k, op, v in ops)),),
            validate_only=validate_only))
    return resp.responses[0]


def synonyms(entry) -> list[tuple[str, str | None, int]]:  # noqa: ANN001
    return [(s.name, s.value, s.source) for s in entry.synonyms]


def test_describe_topic_sources_synonyms_and_flags(broker: EmbeddedBroker) -> None:
    topic = unique("dc")
    create_topic(broker.bootstrap, topic, configs={"retention.ms": "60000"})
    d = describe(broker.bootstrap, TOPIC, topic)
    assert d["error"] == ErrorCode.none
    c = d["configs"]
    assert (c["retention.ms"].value, c["retention.ms"].config_source) == ("60000", 1)
    # Kafka lists only the override: log.retention.hours is not log.retention.ms (ConfigHelper)
    assert synonyms(c["retention.ms"]) == [("retention.ms", "60000", 1)]
    assert (c["segment.bytes"].value, c["segment.bytes"].config_source) == ("100000", 4)
    assert synonyms(c["segment.bytes"]) == [("log.segment.bytes", "100000", 4), ("log.segment.bytes", "1073741824", 5)]
    assert (c["max.message.bytes"].value, c["max.message.bytes"].config_source) == ("1048588", 5)
    for entry in c.values():
        assert entry.read_only is False and entry.is_sensitive is False
    assert c["retention.ms"].documentation.endswith("Used by suoi.")
    assert c["preallocate"].documentation.endswith("Accepted and reported, but ignored by suoi.")
    assert c["cleanup.policy"].config_type == 7 and c["retention.ms"].config_type == 5

    only = describe(broker.bootstrap, TOPIC, topic, keys=("retention.ms",))
    assert list(only["configs"]) == ["retention.ms"]
    missing = describe(broker.bootstrap, TOPIC, unique("missing"))
    assert missing["error"] == ErrorCode.unknown_topic_or_partition and "does not exist" in missing["message"]

    # v1 (what librdkafka sends) works too
    with RawClient(broker.bootstrap) as cl:
        v1 = cl.request(DescribeConfigsRequestV1(resources=(DescribeConfigsResourceV1(
            resource_type=TOPIC, resource_name=topic, configuration_keys=None),), include_synonyms=False))
    assert {x.name: x.value for x in v1.results[0].configs}["retention.ms"] == "60000"


def test_describe_broker(broker: EmbeddedBroker) -> None:
    d = describe(broker.bootstrap, BROKER, "1")
    assert d["error"] == ErrorCode.none
    c = d["configs"]
    assert (c["log.segment.bytes"].value, c["log.segment.bytes"].config_source) == ("100000", 4)
    assert c["log.segment.bytes"].read_only is False and c["num.partitions"].read_only is True
    assert (c["num.partitions"].value, c["num.partitions"].config_source) == ("1", 5)
    assert c["log.retention.ms"].value is None
    assert synonyms(c["log.retention.ms"]) == []  # as Kafka: hours is a lower-precedence synonym
    assert synonyms(c["log.retention.hours"]) == [("log.retention.hours", "168", 5)]
    assert describe(broker.bootstrap, BROKER, "7")["error"] == ErrorCode.invalid_request


def test_alter_configs_validation_and_validate_only(broker: EmbeddedBroker) -> None:
    topic = unique("ac")
    create_topic(broker.bootstrap, topic, configs={"retention.ms": "60000"})
    r = alter(broker.bootstrap, TOPIC, topic, {"no.such.config": "1"})
    assert r.error_code == ErrorCode.invalid_config and "no.such.config" in r.error_message
    r = alter(broker.bootstrap, TOPIC, topic, {"retention.ms": "soon"})
    assert r.error_code == ErrorCode.invalid_config and "retention.ms" in r.error_message
    r = alter(broker.bootstrap, TOPIC, topic, {"cleanup.policy": "shred"})
    assert r.error_code == ErrorCode.invalid_config
    assert alter(broker.bootstrap, TOPIC, unique("nope"), {"retention.ms": "1"}).error_code == \
        ErrorCode.unknown_topic_or_partition
    assert alter(broker.bootstrap, TOPIC, topic, {"segment.ms": "1000"}, validate_only=True).error_code == ErrorCode.none
    assert describe(broker.bootstrap, TOPIC, topic)["configs"]["segment.ms"].config_source == 5  # unchanged
    # AlterConfigs replaces the whole set: retention.ms goes back to the default
    assert alter(broker.bootstrap, TOPIC, topic, {"segment.ms": "1000"}).error_code == ErrorCode.none
    c = describe(broker.bootstrap, TOPIC, topic)["configs"]
    assert (c["segment.ms"].value, c["segment.ms"].config_source) == ("1000", 1)
    assert (c["retention.ms"].value, c["retention.ms"].config_source) == ("604800000", 5)


def test_incremental_ops(broker: EmbeddedBroker) -> None:
    topic = unique("iac")
    create_topic(broker.bootstrap, topic)
    assert incremental(broker.bootstrap, TOPIC, topic, [("cleanup.policy", APPEND, "compact")]).error_code == ErrorCode.none
    assert describe(broker.bootstrap, TOPIC, topic)["configs"]["cleanup.policy"].value == "delete,compact"
    assert incremental(broker.bootstrap, TOPIC, topic, [("cleanup.policy", SUBTRACT, "delete")]).error_code == ErrorCode.none
    assert describe(broker.bootstrap, TOPIC, topic)["configs"]["cleanup.policy"].value == "compact"
    r = incremental(broker.bootstrap, TOPIC, topic, [("retention.ms", APPEND, "5")])
    assert r.error_code == ErrorCode.invalid_config and "APPEND" in r.error_message  # the controller's text
    r = incremental(broker.bootstrap, TOPIC, topic, [("retention.ms", SET, "1"), ("retention.ms", DELETE, None)])
    assert r.error_code == ErrorCode.invalid_request
    assert incremental(broker.bootstrap, TOPIC, topic, [("retention.ms", SET, "5000")], validate_only=True).error_code == \
        ErrorCode.none
    assert "retention.ms" not in {n for n, e in describe(broker.bootstrap, TOPIC, topic)["configs"].items()
                                  if e.config_source == 1}
    incremental(broker.bootstrap, TOPIC, topic, [("cleanup.policy", DELETE, None), ("retention.ms", SET, "5000")])
    c = describe(broker.bootstrap, TOPIC, topic)["configs"]
    assert (c["cleanup.policy"].value, c["cleanup.policy"].config_source) == ("delete", 5)
    assert (c["retention.ms"].value, c["retention.ms"].config_source) == ("5000", 1)


def test_max_message_bytes_applies_at_once(broker: EmbeddedBroker) -> None:
    topic = unique("mmb")
    create_topic(broker.bootstrap, topic)
    batch = build_batch([(None, b"x" * 3000)])
    assert produce(broker.bootstrap, topic, 0, batch).error_code == ErrorCode.none
    assert incremental(broker.bootstrap, TOPIC, topic, [("max.message.bytes", SET, "2000")]).error_code == ErrorCode.none
    assert produce(broker.bootstrap, topic, 0, batch).error_code == ErrorCode.message_too_large
    incremental(broker.bootstrap, TOPIC, topic, [("max.message.bytes", DELETE, None)])
    assert produce(broker.bootstrap, topic, 0, batch).error_code == ErrorCode.none


def test_dynamic_broker_configs_apply_persist_and_validate(make_broker) -> None:  # noqa: ANN001
    b = make_broker({"log.retention.check.interval.ms": "200"})
    topic = unique("dyn")
    create_topic(b.bootstrap, topic)
    r = incremental(b.bootstrap, BROKER, "1", [("num.partitions", SET, "3")])
    assert r.error_code == ErrorCode.invalid_config and "num.partitions" in r.error_message
    r = incremental(b.bootstrap, BROKER, "1", [("no.such.key", SET, "3")])
    assert r.error_code == ErrorCode.invalid_config
    assert incremental(b.bootstrap, BROKER, "1", [("log.cleanup.policy", SET, "shred")]).error_code == ErrorCode.invalid_config
    assert incremental(b.bootstrap, BROKER, "1", [("message.max.bytes", SET, "2000")]).error_code == ErrorCode.none
    assert incremental(b.bootstrap, BROKER, "", [("log.retention.ms", SET, "3600000")]).error_code == ErrorCode.none

    def check() -> None:
        c = describe(b.bootstrap, BROKER, "1")["configs"]
        assert (c["message.max.bytes"].value, c["message.max.bytes"].config_source) == ("2000", 2)
        assert (c["log.retention.ms"].value, c["log.retention.ms"].config_source) == ("3600000", 3)
        assert describe(b.bootstrap, BROKER, "")["configs"].keys() == {"log.retention.ms"}
        t = describe(b.bootstrap, TOPIC, topic)["configs"]
        assert (t["max.message.bytes"].value, t["max.message.bytes"].config_source) == ("2000", 2)
        assert (t["retention.ms"].value, t["retention.ms"].config_source) == ("3600000", 3)
        # the live log follows the new broker default at once
        assert produce(b.bootstrap, topic, 0, build_batch([(None, b"x" * 3000)])).error_code == ErrorCode.message_too_large

    check()
    b.restart()
    check()
    assert (b.log_dirs[0] / "dynamic-broker-configs.json").exists()
    assert incremental(b.bootstrap, BROKER, "1", [("message.max.bytes", DELETE, None)]).error_code == ErrorCode.none
    assert produce(b.bootstrap, topic, 0, build_batch([(None, b"x" * 3000)])).error_code == ErrorCode.none


def test_create_partitions(broker: EmbeddedBroker) -> None:
    topic = unique("cp")
    create_topic(broker.bootstrap, topic, partitions=2)

    def request(count: int, validate_only: bool = False, assignments=None):  # noqa: ANN001, ANN202
        with RawClient(broker.bootstrap) as c:
            return c.request(CreatePartitionsRequest(topics=(CreatePartitionsTopic(
                name=topic, count=count, assignments=assignments),), timeout=ms(5000),
                validate_only=validate_only)).results[0]

    assert request(4, validate_only=True).error_code == ErrorCode.none
    assert request(2).error_code == ErrorCode.invalid_partitions  # unchanged by validate_only
    assert request(1).error_code == ErrorCode.invalid_partitions
    bad = (CreatePartitionsAssignment(broker_ids=(7,)),)
    assert request(3, assignments=bad).error_code == ErrorCode.invalid_replica_assignment
    assert request(3, assignments=(CreatePartitionsAssignment(broker_ids=(1,)),)).error_code == ErrorCode.none
    assert request(5).error_code == ErrorCode.none
    assert partition_dir(broker, topic, 4).is_dir()
    assert produce(broker.bootstrap, topic, 4, build_batch([(None, b"new")])).error_code == ErrorCode.none
    with RawClient(broker.bootstrap) as c:
        r = c.request(CreatePartitionsRequest(topics=(CreatePartitionsTopic(name=unique("nope"), count=3, assignments=None),),
                                              timeout=ms(5000), validate_only=False))
    assert r.results[0].error_code == ErrorCode.unknown_topic_or_partition


def test_describe_log_dirs(broker: EmbeddedBroker) -> None:
    topic = unique("ld")
    create_topic(broker.bootstrap, topic, partitions=2)
    # A current timestamp: this module's broker checks retention every 200 ms, and a record
    # stamped 1970 is past retention.ms at once (its segment would be rolled and deleted).
    produce(broker.bootstrap, topic, 1, build_batch([(None, b"y" * 500)], timestamp_ms=int(time.time() * 1000)))
    with RawClient(broker.bootstrap) as c:
        resp = c.request(DescribeLogDirsRequest(topics=(DescribableLogDirTopic(topic=topic, partitions=(0, 1, 9)),)))
        everything = c.request(DescribeLogDirsRequestV1(topics=None))
    assert resp.error_code == ErrorCode.none
    (d,) = resp.results
    assert d.error_code == ErrorCode.none and d.log_dir == str(broker.log_dirs[0].resolve())
    assert d.total_bytes > 0 and 0 < d.usable_bytes <= d.total_bytes
    (t,) = d.topics
    sizes = {p.partition_index: p.partition_size for p in t.partitions}
    on_disk = sum(f.stat().st_size for f in partition_dir(broker, topic, 1).glob("*.log"))
    assert sizes == {0: 0, 1: on_disk} and on_disk > 500
    assert all(p.offset_lag == 0 and not p.is_future_key for p in t.partitions)
    assert topic in {x.name for x in everything.results[0].topics}
