"""Metadata, topic creation and leadership answers for a node in KRaft mode.

Everything here reads the node's `MetadataImage` (replayed from the metadata quorum), and
sends changes to the active controller: directly when this node is it, else forwarded
over the controller listener. Standalone nodes never come here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
from typing import TYPE_CHECKING, Any

from kio.schema.create_topics.v7.request import CreatableTopic, CreatableTopicConfig, CreateTopicsRequest
from kio.schema.types import TopicName
from kio.static.primitive import i16, i32, i32Timedelta

from suoi.cluster.kraft import KRaftServices, NotControllerError
from suoi.controller.messages import (
    AlterConfigOp,
    AlterConfigsResource,
    CreateTopicResult,
    IncrementalAlterConfigsResource,
    NewPartitions,
    NewTopic,
    OpType,
)
from suoi.model import ErrorCode

if TYPE_CHECKING:
    from suoi.broker import Broker

log = logging.getLogger("suoi.api")
OMITTED_OPERATIONS = -2147483648


def _kraft(broker: Broker) -> KRaftServices:
    """The node's KRaft services (callers only come here in KRaft mode)."""
    assert broker.kraft is not None, "not in KRaft mode"
    return broker.kraft


def live_brokers(broker: Broker) -> list[dict[str, Any]]:
    """Unfenced brokers with their address on the listener clients use."""
    kraft = _kraft(broker)
    ctl = kraft.settings.controller_listener
    client_listener = broker.advertised[0].name if broker.advertised else "PLAINTEXT"
    out = []
    for reg in kraft.image.unfenced_brokers():
        listeners = [x for x in reg.listeners if x.name != ctl]
        chosen = next((x for x in listeners if x.name == client_listener), listeners[0] if listeners else None)
        if chosen is not None:
            out.append({"node_id": reg.broker_id, "host": chosen.host, "port": chosen.port, "rack": reg.rack})
    return out


def partition_data(live: set[int], reg: Any, index: int) -> dict[str, Any]:
    """One partition of a Metadata answer; `live` = the unfenced broker ids (computed once per answer)."""
    offline = [r for r in reg.replicas if r not in live]
    error = ErrorCode.none if reg.leader >= 0 and reg.leader in live else ErrorCode.leader_not_available
    return {"error_code": error, "partition_index": index, "leader_id": reg.leader if reg.leader in live else -1,
            "leader_epoch": reg.leader_epoch, "replica_nodes": list(reg.replicas), "isr_nodes": list(reg.isr),
            "offline_replicas": offline}


def metadata_response(broker: Broker, request: Any, version: int) -> dict[str, Any]:
    kraft = _kraft(broker)
    image = kraft.image
    requested = request.topics
    if requested is None or (version == 0 and not requested):
        wanted: list[tuple[str | None, Any]] = [(t.name, None) for t in sorted(image.topics_by_name.values(),
                                                                                key=lambda t: t.name)]
    else:
        wanted = [(t.name, getattr(t, "topic_id", None)) for t in requested]
    allow_create = getattr(request, "allow_auto_topic_creation", True) and broker.auto_create_enabled()
    live = {b.broker_id for b in image.unfenced_brokers()}
    topics = []
    for name, topic_id in wanted:
        topic = image.topic(name) if name else image.topics.get(topic_id) if topic_id else None
        if topic is None:
            error = ErrorCode.unknown_topic_id if not name else ErrorCode.unknown_topic_or_partition
            if name and allow_create:
                request_topic_creation(broker, name)
                error = ErrorCode.leader_not_available  # Kafka's answer while it creates the topic
            topics.append({"error_code": error, "name": name, "topic_id": topic_id, "is_internal": False,
                           "partitions": [], "topic_authorized_operations": OMITTED_OPERATIONS})
            continue
        topics.append({
            "error_code": ErrorCode.none, "name": topic.name, "topic_id": topic.topic_id,
            "is_internal": topic.name.startswith("__"),
            "partitions": [partition_data(live, reg, p) for p, reg in sorted(topic.partitions.items())],
            "topic_authorized_operations": OMITTED_OPERATIONS,
        })
    return {"throttle_time": 0, "brokers": live_brokers(broker), "cluster_id": broker.cluster_id,
            "controller_id": client_controller_id(broker), "topics": topics,
            "cluster_authorized_operations": OMITTED_OPERATIONS, "error_code": ErrorCode.none}


def client_controller_id(broker: Broker) -> int:
    """The controller id clients are told about: the active controller when it is also a live
    broker, else this broker. Admin clients send CreateTopics & co. to the node named here, and a
    controller-only node is not in the brokers list they can reach; a broker forwards such
    requests to the real controller (KIP-590; Kafka answers with a random live broker)."""
    kraft = _kraft(broker)
    leader = kraft.controller_id
    live = {b.broker_id for b in kraft.image.unfenced_brokers()}
    if leader in live:
        return leader
    # -1 until this broker is itself listed: clients then ask again (librdkafka waits for ever on a
    # controller id that is missing from the brokers list).
    return broker.node_id if broker.node_id in live else -1


def request_topic_creation(broker: Broker, name: str, partitions: int = -1,
                           configs: dict[str, str] | None = None, replication_factor: int = -1) -> None:
    """Auto-create a topic through the controller in the background (once at a time)."""
    creating = _kraft(broker).creating_topics
    if name in creating:
        return
    creating.add(name)

    async def create() -> None:
        try:
            await create_topics(broker, [NewTopic(name=name, num_partitions=partitions,
                                                  replication_factor=replication_factor, configs=configs or {})])
        except Exception as exc:
            log.warning("auto-creating topic %r failed: %s", name, exc)
        finally:
            creating.discard(name)

    asyncio.get_running_loop().create_task(create())


async def create_topics(broker: Broker, topics: list[NewTopic], validate_only: bool = False) -> list[Any]:
    """CreateTopics on the active controller (here, or forwarded as a CreateTopics request)."""
    kraft = _kraft(broker)
    if kraft.controller is not None:
        return list(await kraft.run_on_controller(lambda c: c.create_topics(topics, validate_only=validate_only)))
    request = CreateTopicsRequest(topics=tuple(CreatableTopic(
        name=TopicName(t.name), num_partitions=i32(t.num_partitions), replication_factor=i16(t.replication_factor),
        assignments=(), configs=tuple(CreatableTopicConfig(name=k, value=v) for k, v in t.configs.items()))
        for t in topics), timeout=i32Timedelta.parse(datetime.timedelta(seconds=30)), validate_only=validate_only)
    response = await kraft.call_controller(request)
    return [CreateTopicResult(r.name, r.error_code, r.error_message, r.topic_id, r.num_partitions,
                              r.replication_factor) for r in response.topics]


async def forward(broker: Broker, request: Any) -> dict[str, Any]:
    """Send a metadata-changing request to the active controller as is; answer with its reply."""
    try:
        response = await _kraft(broker).call_controller(request)
    except NotControllerError as exc:
        raise RuntimeError(f"no active controller: {exc}") from exc
    return {f.name: getattr(response, f.name) for f in dataclasses.fields(response)}


async def create_topics_response(broker: Broker, request: Any) -> dict[str, Any]:
    """CreateTopics in KRaft mode: decided by the active controller."""
    kraft = _kraft(broker)
    if kraft.controller is None:
        return await forward(broker, request)
    topics = [NewTopic(
        name=t.name, num_partitions=t.num_partitions, replication_factor=t.replication_factor,
        assignments={a.partition_index: list(a.broker_ids) for a in t.assignments} or None,
        configs={c.name: c.value for c in t.configs}) for t in request.topics]
    results = (await kraft.run_on_controller(lambda c: c.create_topics(topics, validate_only=request.validate_only))
               if topics else [])
    return {"throttle_time": 0, "topics": [{
        "name": r.name, "topic_id": r.topic_id, "error_code": int(r.error), "error_message": r.message,
        "num_partitions": r.num_partitions, "replication_factor": r.replication_factor,
        "configs": [{"name": k, "value": v, "read_only": False, "config_source": 1, "is_sensitive": False}
                    for k, v in sorted(r.configs.items())] if not r.error else None,
    } for r in results]}


async def delete_topics_response(broker: Broker, request: Any, version: int) -> dict[str, Any]:
    kraft = _kraft(broker)
    if kraft.controller is None:
        return await forward(broker, request)
    if version < 6:
        names, ids = list(request.topic_names), []
    else:
        names = [t.name for t in request.topics if t.name]
        ids = [t.topic_id for t in request.topics if not t.name and t.topic_id]
    results = await kraft.run_on_controller(lambda c: c.delete_topics(names, ids))
    return {"throttle_time": 0, "responses": [
        {"name": r.name, "topic_id": r.topic_id, "error_code": int(r.error), "error_message": r.message}
        for r in results]}


async def create_partitions_response(broker: Broker, request: Any) -> dict[str, Any]:
    kraft = _kraft(broker)
    if kraft.controller is None:
        return await forward(broker, request)
    wanted = [NewPartitions(name=t.name, count=t.count,
                            assignments=[list(a.broker_ids) for a in t.assignments] if t.assignments else None)
              for t in request.topics]
    results = await kraft.run_on_controller(lambda c: c.create_partitions(wanted, validate_only=request.validate_only))
    return {"throttle_time": 0, "results": [{"name": r.name, "error_code": int(r.error), "error_message": r.message}
                                            for r in results]}


async def alter_configs_response(broker: Broker, request: Any, incremental: bool) -> dict[str, Any]:
    """Topic and broker configs live in the metadata log: the controller validates and records
    them, every broker applies its own and the cluster default (`KRaftServices._reconcile`)."""
    kraft = _kraft(broker)
    if kraft.controller is None:
        return await forward(broker, request)
    if incremental:
        resources: list[Any] = [IncrementalAlterConfigsResource(
            resource_type=r.resource_type, resource_name=r.resource_name,
            ops=[AlterConfigOp(c.name, OpType(c.config_operation), c.value) for c in r.configs])
            for r in request.resources]
        results = await kraft.run_on_controller(
            lambda c: c.incremental_alter_configs(resources, validate_only=request.validate_only))
    else:
        resources = [AlterConfigsResource(resource_type=r.resource_type, resource_name=r.resource_name,
                                          configs={c.name: c.value for c in r.configs}) for r in request.resources]
        results = await kraft.run_on_controller(lambda c: c.alter_configs(resources, validate_only=request.validate_only))
    return {"throttle_time": 0, "responses": [
        {"error_code": int(r.error), "error_message": r.message, "resource_type": r.resource_type,
         "resource_name": r.resource_name} for r in results]}
