"""Metadata, topic creation and leadership answers for a node in KRaft mode.

Everything here reads the node's `MetadataImage` (replayed from the metadata quorum), and
sends changes to the active controller: directly when this node is it, else forwarded
over the controller listener. Standalone nodes never come here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import functools
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from kio.schema.create_topics.v7.request import CreatableTopic, CreatableTopicConfig, CreateTopicsRequest
from kio.schema.types import TopicName
from kio.static.primitive import i16, i32, i32Timedelta

from suoi.api import envelope
from suoi.api.authorized_operations import OMITTED_OPERATIONS, unchecked
from suoi.api.metadata_cache import METADATA_KEY, topic_encodings
from suoi.api.registry import CLIENT_LISTENER
from suoi.api.topic_names import INTERNAL_TOPICS, invalid_topic_name, log_refusal_once
from suoi.authorizer import ResourceType
from suoi.controller.messages import (
    AlterConfigOp,
    AlterConfigsResource,
    CreateTopicResult,
    IncrementalAlterConfigsResource,
    NewPartitions,
    NewTopic,
    OpType,
)
from suoi.log.config import LogConfig
from suoi.model import ErrorCode
from suoi.model.errors import NotControllerError
from suoi.protocol.codec import ms, response_class
from suoi.protocol.metadata_partitions import PartitionRow, encode_partitions
from suoi.protocol.splice import element_class, encode_element_spliced
from suoi.services import KRaft

if TYPE_CHECKING:
    from suoi.services import Services

log = logging.getLogger("suoi.api")
#: How long a Metadata request that starts auto-creating a topic waits for it (seconds).
AUTO_CREATE_WAIT_S = 1.0
#: How long a created topic may take to reach this node's image before CreateTopics answers anyway.
VISIBLE_TIMEOUT_S = 10.0


def _kraft(broker: Services) -> KRaft:
    """The node's KRaft services."""
    return broker.kraft


def live_brokers(broker: Services) -> list[dict[str, Any]]:
    """Unfenced brokers with their address on the listener clients use."""
    kraft = _kraft(broker)
    ctl = kraft.settings.controller_listener
    client_listener = CLIENT_LISTENER.get() or (broker.advertised[0].name if broker.advertised else "PLAINTEXT")
    out = []
    for reg in kraft.image.unfenced_brokers():
        listeners = [x for x in reg.listeners if x.name != ctl]
        chosen = next((x for x in listeners if x.name == client_listener), listeners[0] if listeners else None)
        if chosen is not None:
            out.append({"node_id": reg.broker_id, "host": chosen.host, "port": chosen.port, "rack": reg.rack})
    return out


def partition_row(live: frozenset[int] | set[int], reg: Any, index: int) -> PartitionRow:
    """One partition of a Metadata answer; `live` = the unfenced broker ids (computed once per answer)."""
    leader = reg.leader if reg.leader in live else -1
    error = ErrorCode.none if reg.leader >= 0 and leader >= 0 else ErrorCode.leader_not_available
    return PartitionRow(int(error), index, leader, reg.leader_epoch, list(reg.replicas), list(reg.isr),
                        [r for r in reg.replicas if r not in live])


def partition_data(live: frozenset[int] | set[int], reg: Any, index: int) -> dict[str, Any]:
    """`partition_row` as a dict (DescribeTopicPartitions builds its answer from it)."""
    return partition_row(live, reg, index)._asdict()


def encode_topic(topic: Any, live: frozenset[int], version: int, operations: int = OMITTED_OPERATIONS) -> bytes:
    """One existing topic of a Metadata answer at `version`, encoded (`metadata_response` keeps it):
    kio for the topic's own fields, `protocol.metadata_partitions` for its partitions."""
    rows = [partition_row(live, reg, p) for p, reg in sorted(topic.partitions.items())]
    fields = {"error_code": ErrorCode.none, "name": topic.name, "topic_id": topic.topic_id,
              "is_internal": topic.name in INTERNAL_TOPICS, "topic_authorized_operations": operations}
    cls = element_class(response_class(METADATA_KEY, version), "topics")
    return encode_element_spliced(cls, fields, "partitions", encode_partitions(version, rows), len(rows))


def metadata_response(broker: Services, request: Any, version: int, *, encoded: bool = True) -> dict[str, Any]:
    """The answer as a dict whose "topics" holds each existing topic's kio encoding (bytes, from
    the node's `TopicEncodings`) and a dict per unknown topic: answered as a `SplicedResponse`.
    ``encoded=False``: every topic as a dict (the authorizer filters and annotates them per
    principal, so a shared encoding cannot be used)."""
    kraft = _kraft(broker)
    image = kraft.image
    requested = request.topics
    if requested is None or (version == 0 and not requested):
        wanted: list[tuple[str | None, Any]] = [(t.name, None) for t in sorted(image.topics_by_name.values(),
                                                                                key=lambda t: t.name)]
    else:
        wanted = [(t.name, getattr(t, "topic_id", None)) for t in requested]
    allow_create = getattr(request, "allow_auto_topic_creation", True) and broker.auto_create_enabled()
    live = frozenset(b.broker_id for b in image.unfenced_brokers())
    encodings = topic_encodings(kraft)
    exists = image.topics.__contains__
    topic_ops = unchecked(getattr(request, "include_topic_authorized_operations", False), ResourceType.TOPIC)
    topics: list[dict[str, Any] | bytes] = []
    for name, topic_id in wanted:
        topic = image.topic(name) if name else image.topics.get(topic_id) if topic_id else None
        if topic is None:
            error = ErrorCode.unknown_topic_id if not name else ErrorCode.unknown_topic_or_partition
            if name and invalid_topic_name(name):
                error = ErrorCode.invalid_topic_exception
            elif name and name in kraft.auto_create_rejections:
                # the controller refused the last attempt: say why once, the next request retries
                error = ErrorCode(kraft.auto_create_rejections.pop(name))
            elif name and allow_create:
                request_topic_creation(broker, name)
                error = ErrorCode.leader_not_available  # Kafka's answer while it creates the topic
            topics.append({"error_code": error, "name": name, "topic_id": topic_id, "is_internal": False,
                           "partitions": [], "topic_authorized_operations": topic_ops})
            continue
        if not encoded:
            topics.append({
                "error_code": ErrorCode.none, "name": topic.name, "topic_id": topic.topic_id,
                "is_internal": topic.name in INTERNAL_TOPICS,
                "partitions": [partition_data(live, reg, p) for p, reg in sorted(topic.partitions.items())],
                "topic_authorized_operations": topic_ops,
            })
            continue
        topics.append(encodings.encoded(topic, version, live, topic_ops,
                                        functools.partial(encode_topic, topic, live, version, topic_ops), exists))
    return {"throttle_time": 0, "brokers": live_brokers(broker), "cluster_id": broker.cluster_id,
            "controller_id": client_controller_id(broker), "topics": topics,
            "cluster_authorized_operations": unchecked(
                getattr(request, "include_cluster_authorized_operations", False), ResourceType.CLUSTER),
            "error_code": ErrorCode.none}


def after_auto_creation(broker: Services, request: Any, version: int,
                        answer: dict[str, Any]) -> dict[str, Any] | Awaitable[dict[str, Any]]:
    """``answer``, or -- when it started auto-creating topics -- the answer once they exist (up to
    AUTO_CREATE_WAIT_S). Kafka answers LEADER_NOT_AVAILABLE at once and lets the client ask
    again; but a creation commits within milliseconds, and clients or tools that treat that first
    answer as an error (console producers, a first send) then fail for nothing."""
    kraft = _kraft(broker)
    pending = [t["name"] for t in answer["topics"] if isinstance(t, dict)  # bytes: an existing topic
               and t["error_code"] == ErrorCode.leader_not_available and t["name"] in kraft.creating_topics]
    if not pending:
        return answer

    def settled(applied: Any) -> bool:
        # each topic applied here, or refused (never created) -- not merely published and still being applied
        return all(applied.topic(n) is not None or (n not in kraft.creating_topics and kraft.image.topic(n) is None)
                   for n in pending)

    async def answer_later() -> dict[str, Any]:
        await kraft.wait_image(settled, AUTO_CREATE_WAIT_S, applied=True)
        return metadata_response(broker, request, version)

    return answer_later()


@dataclasses.dataclass(frozen=True, slots=True)
class TopicConfigView:
    """A topic's configs as DescribeConfigs reads them: `config` (effective) and `configs`
    (the topic's overrides), the shape of the log manager's TopicInfo."""

    config: LogConfig
    configs: dict[str, str]


def topic_config_view(broker: Services, topic: str) -> Any:
    """`topic`'s configs (None if it does not exist), from the metadata image, so every broker
    answers, not only those holding a replica of the topic."""
    if broker.kraft.image.topic(topic) is None:
        return None
    overrides = dict(broker.kraft.image.topic_configs(topic))
    return TopicConfigView(LogConfig.from_topic_configs(broker.log_config, overrides), overrides)


def client_controller_id(broker: Services) -> int:
    """The controller id clients are told about: the active controller when it is also a live
    broker and reachable, else this broker. Admin clients send CreateTopics & co. to the node
    named here, and a controller-only node is not in the brokers list they can reach; a broker
    forwards such requests to the real controller (KIP-590; Kafka answers with a random live
    broker). While an election runs, or the leader just died, this broker forwards: it waits for
    the new controller, where librdkafka would wait for a dead one until its request timeout."""
    kraft = _kraft(broker)
    leader = kraft.live_controller_id
    live = {b.broker_id for b in kraft.image.unfenced_brokers()}
    if leader in live:
        return leader
    # -1 until this broker is itself listed: clients then ask again (librdkafka waits for ever on a
    # controller id that is missing from the brokers list).
    return broker.node_id if broker.node_id in live else -1


def request_topic_creation(broker: Services, name: str, partitions: int = -1,
                           configs: dict[str, str] | None = None, replication_factor: int = -1) -> None:
    """Auto-create a topic through the controller in the background (once at a time).

    The controller's refusal (e.g. a replication factor above the live brokers) is logged once
    per topic and reason and answered to the next Metadata request for the topic, instead of
    LEADER_NOT_AVAILABLE until the client gives up."""
    kraft = _kraft(broker)
    creating = kraft.creating_topics
    if name in creating:
        return
    creating.add(name)

    async def create() -> None:
        try:
            results = await create_topics(broker, [NewTopic(name=name, num_partitions=partitions,
                                                            replication_factor=replication_factor,
                                                            configs=configs or {})])
        except Exception as exc:
            log.warning("auto-creating topic %r failed: %s", name, exc)
            return
        finally:
            creating.discard(name)
        for result in results:
            if int(result.error) not in (ErrorCode.none, ErrorCode.topic_already_exists):
                if len(kraft.auto_create_rejections) >= 1024:  # names never asked for again
                    kraft.auto_create_rejections.clear()
                kraft.auto_create_rejections[name] = int(result.error)
                log_refusal_once(name, f"auto-creation refused by the controller: "
                                       f"{ErrorCode(int(result.error)).name}: {result.message}")

    asyncio.get_running_loop().create_task(create())


async def create_topics(broker: Services, topics: list[NewTopic], validate_only: bool = False) -> list[Any]:
    """CreateTopics on the active controller (here, or forwarded as a CreateTopics request);
    returns once this node's image lists the topics created (an auto-creation's Metadata answer
    waits for that)."""
    kraft = _kraft(broker)
    if kraft.controller is not None:
        return list(await kraft.run_on_controller(lambda c: c.create_topics(topics, validate_only=validate_only)))
    request = CreateTopicsRequest(topics=tuple(CreatableTopic(
        name=TopicName(t.name), num_partitions=i32(t.num_partitions), replication_factor=i16(t.replication_factor),
        assignments=(), configs=tuple(CreatableTopicConfig(name=k, value=v) for k, v in t.configs.items()))
        for t in topics), timeout=i32Timedelta.parse(datetime.timedelta(seconds=30)), validate_only=validate_only)
    response = await kraft.call_controller(request)
    created = {r.name: r.topic_id for r in response.topics if int(r.error_code) == 0}
    if created and not validate_only:
        await _until_listed(broker, created, int(VISIBLE_TIMEOUT_S * 1000))
    return [CreateTopicResult(r.name, r.error_code, r.error_message, r.topic_id, r.num_partitions,
                              r.replication_factor) for r in response.topics]


async def forward(broker: Services, request: Any) -> dict[str, Any]:
    """Send a metadata-changing request to the active controller as is; answer with its reply."""
    try:
        response = await envelope.call(_kraft(broker), request)
    except NotControllerError as exc:
        raise RuntimeError(f"no active controller: {exc}") from exc
    return vars_of(response)


def vars_of(entity: Any) -> dict[str, Any]:
    """The fields of a kio entity (top level only) as a dict."""
    return {f.name: getattr(entity, f.name) for f in dataclasses.fields(entity)}


async def create_topics_response(broker: Services, request: Any) -> dict[str, Any]:
    """CreateTopics in KRaft mode: decided by the active controller. Answered only once this
    node's Metadata lists the new topics, as Kafka's broker does: a client that creates a topic
    and then describes it through the same node must find it."""
    response = await _create_topics(broker, request)
    results = [t if isinstance(t, dict) else vars_of(t) for t in response["topics"]]  # forwarded: kio entities
    for t in results:  # one line per refused topic (an existing one is routine: --if-not-exists)
        if int(t["error_code"]):
            code = ErrorCode(int(t["error_code"]))
            log.log(logging.INFO if code == ErrorCode.topic_already_exists else logging.WARNING,
                    "CreateTopics %r refused (%s): %s", t["name"], code.name, t.get("error_message"))
    if not request.validate_only:
        created = {t["name"]: t.get("topic_id") for t in results if int(t["error_code"]) == 0}
        if created:
            await _until_listed(broker, created, ms(request.timeout))
    return response


async def _until_listed(broker: Services, created: dict[str, Any], timeout_ms: int) -> None:
    def listed(image: Any) -> bool:
        return all((t := image.topic(name)) is not None and topic_id in (None, t.topic_id)
                   for name, topic_id in created.items())

    timeout = min(max(timeout_ms, 0) / 1000, VISIBLE_TIMEOUT_S)
    if not await _kraft(broker).wait_image(listed, timeout):
        log.warning("CreateTopics: %s committed but not yet in node %d's metadata after %.1fs; answering anyway",
                    sorted(created), broker.node_id, timeout)


async def _create_topics(broker: Services, request: Any) -> dict[str, Any]:
    kraft = _kraft(broker)
    if envelope.forwards(kraft):
        try:
            return vars_of(await envelope.call(kraft, request))
        except NotControllerError as exc:  # no controller answered in time (an election that lasts)
            return _create_topics_failed(request, ErrorCode.request_timed_out, str(exc))
    topics = [NewTopic(
        name=t.name, num_partitions=t.num_partitions, replication_factor=t.replication_factor,
        assignments={a.partition_index: list(a.broker_ids) for a in t.assignments} or None,
        configs={c.name: c.value for c in t.configs}) for t in request.topics]
    try:
        results = (await kraft.run_on_controller(lambda c: c.create_topics(topics, validate_only=request.validate_only))
                   if topics else [])
    except NotControllerError as exc:  # lost the role meanwhile: the client asks the new controller
        return _create_topics_failed(request, ErrorCode.not_controller, str(exc))
    return {"throttle_time": 0, "topics": [{
        "name": r.name, "topic_id": r.topic_id, "error_code": int(r.error), "error_message": r.message,
        "num_partitions": r.num_partitions, "replication_factor": r.replication_factor,
        "configs": [{"name": k, "value": v, "read_only": False, "config_source": 1, "is_sensitive": False}
                    for k, v in sorted(r.configs.items())] if not r.error else None,
    } for r in results]}


def _create_topics_failed(request: Any, error: ErrorCode, message: str) -> dict[str, Any]:
    """Every topic of the request fails with one (retriable) error; nothing was decided."""
    log.info("CreateTopics %s: %s (%s)", [t.name for t in request.topics], error.name, message)
    return {"throttle_time": 0, "topics": [{
        "name": t.name, "topic_id": None, "error_code": error, "error_message": message, "num_partitions": -1,
        "replication_factor": -1, "configs": None} for t in request.topics]}


async def delete_topics_response(broker: Services, request: Any, version: int) -> dict[str, Any]:
    kraft = _kraft(broker)
    if envelope.forwards(kraft):
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


async def create_partitions_response(broker: Services, request: Any) -> dict[str, Any]:
    kraft = _kraft(broker)
    if envelope.forwards(kraft):
        return await forward(broker, request)
    wanted = [NewPartitions(name=t.name, count=t.count,
                            assignments=[list(a.broker_ids) for a in t.assignments] if t.assignments else None)
              for t in request.topics]
    results = await kraft.run_on_controller(lambda c: c.create_partitions(wanted, validate_only=request.validate_only))
    return {"throttle_time": 0, "results": [{"name": r.name, "error_code": int(r.error), "error_message": r.message}
                                            for r in results]}


async def alter_configs_response(broker: Services, request: Any, incremental: bool) -> dict[str, Any]:
    """Topic and broker configs live in the metadata log: the controller validates and records
    them, every broker applies its own and the cluster default (`KRaftServices._reconcile`)."""
    kraft = _kraft(broker)
    if envelope.forwards(kraft):
        return await forward(broker, request)
    # IncrementalAlterConfigs: a resource with an operation Kafka does not define gets
    # INVALID_REQUEST on its own (the others are applied), as Kafka answers it.
    bad = [r for r in request.resources if incremental and any(c.config_operation not in _OP_TYPES for c in r.configs)]
    good = [r for r in request.resources if not any(r is b for b in bad)]
    if incremental:
        resources: list[Any] = [IncrementalAlterConfigsResource(
            resource_type=r.resource_type, resource_name=r.resource_name,
            ops=[AlterConfigOp(c.name, OpType(c.config_operation), c.value) for c in r.configs])
            for r in good]
        results = await kraft.run_on_controller(
            lambda c: c.incremental_alter_configs(resources, validate_only=request.validate_only)) if good else []
    else:
        resources = [AlterConfigsResource(resource_type=r.resource_type, resource_name=r.resource_name,
                                          configs={c.name: c.value for c in r.configs}) for r in good]
        results = await kraft.run_on_controller(lambda c: c.alter_configs(resources, validate_only=request.validate_only))
    answers = iter(results)
    responses = []
    for r in request.resources:
        if any(r is b for b in bad):
            ops = sorted({c.config_operation for c in r.configs if c.config_operation not in _OP_TYPES})
            responses.append({"error_code": ErrorCode.invalid_request, "resource_type": r.resource_type,
                              "resource_name": r.resource_name,
                              "error_message": f"Unknown config operation {', '.join(map(str, ops))}"})
        else:
            a = next(answers)
            responses.append({"error_code": int(a.error), "error_message": a.message,
                              "resource_type": a.resource_type, "resource_name": a.resource_name})
    return {"throttle_time": 0, "responses": responses}


_OP_TYPES = frozenset(int(op) for op in OpType)
