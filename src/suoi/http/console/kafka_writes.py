"""The console's writes, each one Kafka request (the page asks for confirmation first):
CreateTopics, CreatePartitions, DeleteTopics (any broker forwards them to the controller),
Produce of one record to the partition leader (a v2 batch built by `suoi.protocol.records`),
and offset resets: a plan (dry run) from ListOffsets, then OffsetCommit to the group
coordinator as an admin commit (generation -1, no member), which a group coordinator accepts
only while the group has no members - Kafka's kafka-consumer-groups.sh --reset-offsets rule.

Every function returns a result dict or raises `KafkaWriteError` with Kafka's error name.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

from suoi.http.console.kafka_reads import EARLIEST, LATEST, ClusterClient, error_name, failed

__all__ = ["KafkaWriteError", "check", "add_partitions", "alter_topic_config", "commit_offsets", "create_topic", "delete_topic",
           "produce_one", "reset_plan"]

TIMEOUT = datetime.timedelta(seconds=15)


class KafkaWriteError(Exception):
    """The cluster refused a write (the message names Kafka's error code)."""


def check(code: Any, message: str | None, what: str) -> None:
    if failed(code):
        raise KafkaWriteError(f"{what}: {error_name(code)}" + (f" ({message})" if message else ""))


async def create_topic(client: ClusterClient, name: str, partitions: int, replication_factor: int) -> dict[str, Any]:
    from kio.schema.create_topics.v7.request import CreatableTopic, CreateTopicsRequest
    from kio.schema.types import TopicName
    from kio.static.primitive import i16, i32, i32Timedelta

    request = CreateTopicsRequest(topics=(CreatableTopic(
        name=TopicName(name), num_partitions=i32(partitions), replication_factor=i16(replication_factor),
        assignments=(), configs=()),), timeout=i32Timedelta.parse(TIMEOUT), validate_only=False)
    [result] = (await client.any(request)).topics
    check(result.error_code, result.error_message, f"create topic {name}")
    return {"topic": name, "partitions": int(result.num_partitions), "replication_factor": int(result.replication_factor)}


async def add_partitions(client: ClusterClient, name: str, count: int) -> dict[str, Any]:
    from kio.schema.create_partitions.v3.request import CreatePartitionsRequest, CreatePartitionsTopic
    from kio.schema.types import TopicName
    from kio.static.primitive import i32, i32Timedelta

    request = CreatePartitionsRequest(topics=(CreatePartitionsTopic(name=TopicName(name), count=i32(count),
                                                                    assignments=None),),
                                      timeout=i32Timedelta.parse(TIMEOUT), validate_only=False)
    [result] = (await client.any(request)).results
    check(result.error_code, result.error_message, f"add partitions to {name}")
    return {"topic": name, "partitions": count}


async def delete_topic(client: ClusterClient, name: str) -> dict[str, Any]:
    from kio.schema.delete_topics.v6.request import DeleteTopicsRequest, DeleteTopicState
    from kio.schema.types import TopicName
    from kio.static.primitive import i32Timedelta

    request = DeleteTopicsRequest(topics=(DeleteTopicState(name=TopicName(name), topic_id=None),),
                                  timeout=i32Timedelta.parse(TIMEOUT))
    [result] = (await client.any(request)).responses
    check(result.error_code, result.error_message, f"delete topic {name}")
    return {"topic": name, "deleted": True}


async def alter_topic_config(client: ClusterClient, name: str, key: str, value: str | None) -> dict[str, Any]:
    """Set one topic config (IncrementalAlterConfigs SET), or remove the override (DELETE) when
    `value` is None, so the broker default applies again."""
    from kio.schema.incremental_alter_configs.v1.request import (
        AlterableConfig,
        AlterConfigsResource,
        IncrementalAlterConfigsRequest,
    )
    from kio.static.primitive import i8

    from suoi.http.console.kafka_reads import TOPIC_RESOURCE

    request = IncrementalAlterConfigsRequest(resources=(AlterConfigsResource(
        resource_type=i8(TOPIC_RESOURCE), resource_name=name, configs=(AlterableConfig(
            name=key, config_operation=i8(0 if value is not None else 1), value=value),)),), validate_only=False)
    [result] = (await client.any(request)).responses
    check(result.error_code, result.error_message, f"set {key} on {name}")
    return {"topic": name, "name": key, "value": value}


async def produce_one(client: ClusterClient, leader: int, topic: str, partition: int, key: bytes | None,
                      value: bytes | None, headers: list[tuple[str, bytes | None]]) -> dict[str, Any]:
    """One record with acks=all; its offset."""
    from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData
    from kio.schema.types import TopicName
    from kio.static.primitive import Records, i16, i32, i32Timedelta

    from suoi.protocol.record_codec import SimpleRecord, build_batch

    batch = build_batch([SimpleRecord(key, value, headers=tuple(headers))], timestamp_ms=int(time.time() * 1000))
    request = ProduceRequest(transactional_id=None, acks=i16(-1), timeout=i32Timedelta.parse(TIMEOUT), topic_data=(
        TopicProduceData(name=TopicName(topic), partition_data=(PartitionProduceData(index=i32(partition),
                                                                                     records=Records.parse(batch)),)),))
    [part] = (await client.to(leader, request)).responses[0].partition_responses
    check(part.error_code, part.error_message, f"produce to {topic}-{partition}")
    return {"topic": topic, "partition": partition, "offset": int(part.base_offset)}


async def reset_plan(client: ClusterClient, group: dict[str, Any], topic: dict[str, Any], to: str,
                     offset: int | None) -> list[dict[str, Any]]:
    """Each partition's current committed offset and the one `to` (earliest, latest, or an
    offset clamped to log start … high watermark, as Kafka's tool clamps it) would commit."""
    current = {o["partition"]: o["committed"] for o in group["offsets"] if o["topic"] == topic["name"]}
    by_leader: dict[int, list[tuple[str, int]]] = {}
    for p in topic["partitions"]:
        if p["leader"] >= 0:
            by_leader.setdefault(p["leader"], []).append((topic["name"], p["partition"]))
    if to == "offset":
        if offset is None:
            raise KafkaWriteError("reset to an offset needs the offset")
        target = {(topic["name"], p["partition"]): min(max(offset, p["log_start"] or 0), p["high_watermark"] or 0)
                  for p in topic["partitions"]}
    else:
        target = {}
        for leader, parts in by_leader.items():
            target.update(await client.list_offsets(leader, parts, EARLIEST if to == "earliest" else LATEST))
    return [{"topic": topic["name"], "partition": p["partition"], "current": current.get(p["partition"]),
             "new": target.get((topic["name"], p["partition"]))} for p in topic["partitions"]]


async def commit_offsets(client: ClusterClient, coordinator: int, group: str, plan: list[dict[str, Any]]) -> None:
    from kio.schema.offset_commit.v8.request import OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic
    from kio.schema.types import GroupId, TopicName
    from kio.static.primitive import i32, i64

    topics: dict[str, list[dict[str, Any]]] = {}
    for row in plan:
        if row["new"] is not None:
            topics.setdefault(row["topic"], []).append(row)
    request = OffsetCommitRequest(group_id=GroupId(group), generation_id_or_member_epoch=i32(-1), member_id="",
                                  group_instance_id=None, topics=tuple(OffsetCommitRequestTopic(
                                      name=TopicName(t), partitions=tuple(OffsetCommitRequestPartition(
                                          partition_index=i32(r["partition"]), committed_offset=i64(r["new"]),
                                          committed_leader_epoch=i32(-1), committed_metadata="") for r in rows))
                                      for t, rows in topics.items()))
    response = await client.to(coordinator, request)
    for t in response.topics:
        for p in t.partitions:
            check(p.error_code, None, f"commit {t.name}-{p.partition_index} for group {group}")
