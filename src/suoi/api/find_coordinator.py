"""FindCoordinator (key 10): this broker coordinates every group and every
transactional id. v4+ batches keys; earlier versions ask for one."""

from __future__ import annotations

from typing import Any

from suoi.api.cluster_metadata import AUTO_CREATE_WAIT_S, live_brokers, request_topic_creation
from suoi.api.registry import RequestContext, api
from suoi.coordinator.group_coordinator import MAX_GROUP_ID_LENGTH
from suoi.coordinator.records import OFFSETS_TOPIC
from suoi.coordinator.txn import TRANSACTION_STATE_TOPIC, txn_partition_for
from suoi.model import ErrorCode

GROUP_KEY_TYPE = 0
TRANSACTION_KEY_TYPE = 1


def _in_cluster(ctx: RequestContext, key: str, key_type: int) -> dict[str, Any]:
    """The coordinator is the leader of the key's internal-topic partition; the topic is
    created through the controller on first use (COORDINATOR_NOT_AVAILABLE meanwhile)."""
    broker = ctx.services
    coordinator: Any
    cfg = broker.config
    configs: dict[str, str]
    if key_type == GROUP_KEY_TYPE:
        coordinator, topic = broker.groups, OFFSETS_TOPIC
        partitions, segment_bytes = coordinator.config.offsets_partitions, coordinator.config.offsets_segment_bytes
        partition = coordinator.partition_for(key)
        replication_factor = cfg.get_int("offsets.topic.replication.factor")
        configs = {}
    else:
        coordinator, topic = broker.transactions, TRANSACTION_STATE_TOPIC
        partitions, segment_bytes = coordinator.config.state_partitions, coordinator.config.state_segment_bytes
        partition = txn_partition_for(key, partitions)
        replication_factor = cfg.get_int("transaction.state.log.replication.factor")
        configs = {"min.insync.replicas": str(cfg.get_int("transaction.state.log.min.isr"))}
    unavailable = {"key": key, "node_id": -1, "host": "", "port": -1,
                   "error_code": ErrorCode.coordinator_not_available, "error_message": None}
    image = broker.kraft.image
    if image.topic(topic) is None:
        # Kafka's rule: with fewer brokers than the replication factor the topic is not created
        # (the controller refuses, logged) and the coordinator stays unavailable.
        request_topic_creation(broker, topic, partitions, {"cleanup.policy": "compact", **configs,
                                                           "segment.bytes": str(segment_bytes)},
                               replication_factor=replication_factor)
        return unavailable
    reg = image.partition(topic, partition)
    address = next((b for b in live_brokers(broker) if reg is not None and b["node_id"] == reg.leader), None)
    if address is None:
        return unavailable
    if reg is not None and reg.leader == broker.node_id and coordinator.partition_error(partition) \
            == ErrorCode.not_coordinator:
        # this node leads the partition in its image but its coordinator has not taken it over yet (the
        # change is being applied): naming this node now would get the client's next request
        # NOT_COORDINATOR, which some clients (kafkajs' TxnOffsetCommit) do not retry
        return unavailable
    return {"key": key, "node_id": address["node_id"], "host": address["host"], "port": address["port"],
            "error_code": ErrorCode.none, "error_message": None}


def _coordinator(ctx: RequestContext, key: str, key_type: int) -> dict[str, Any]:
    if key_type not in (GROUP_KEY_TYPE, TRANSACTION_KEY_TYPE):
        error, message = ErrorCode.invalid_request, f"unknown key type {key_type}"
    elif not key or (key_type == GROUP_KEY_TYPE and len(key) > MAX_GROUP_ID_LENGTH):
        error, message = (ErrorCode.invalid_group_id if key_type == GROUP_KEY_TYPE else ErrorCode.invalid_request), None
    else:
        return _in_cluster(ctx, key, key_type)
    return {"key": key, "node_id": -1, "host": "", "port": -1, "error_code": error, "error_message": message}


def _internal_topic(request: Any) -> str:
    return OFFSETS_TOPIC if getattr(request, "key_type", GROUP_KEY_TYPE) == GROUP_KEY_TYPE else TRANSACTION_STATE_TOPIC


async def _after_creation(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """The first ask for an internal topic starts its creation: answered once the topic has
    leaders in the image this node's partitions were brought to, or the controller refused it (at
    most AUTO_CREATE_WAIT_S), as
    Metadata waits for an auto-created topic, so a client's first FindCoordinator names the
    coordinator instead of sending the client into its retry backoff (librdkafka's is ~1 s)."""
    kraft, topic = ctx.services.kraft, _internal_topic(request)

    def settled(applied: Any) -> bool:
        if (t := applied.topic(topic)) is not None:
            return all(r.leader >= 0 for r in t.partitions.values())
        # refused (never created), not merely published and still being applied here
        return topic not in kraft.creating_topics and kraft.image.topic(topic) is None

    await kraft.wait_image(settled, AUTO_CREATE_WAIT_S, applied=True)
    return _answer(ctx, request)


@api(10, "FindCoordinator", 0, 6)
def handle_find_coordinator(ctx: RequestContext, request: Any) -> Any:
    answer = _answer(ctx, request)
    if _internal_topic(request) in ctx.services.kraft.creating_topics:
        return _after_creation(ctx, request)
    return answer


def _answer(ctx: RequestContext, request: Any) -> dict[str, Any]:
    key_type = getattr(request, "key_type", GROUP_KEY_TYPE)
    if ctx.api_version >= 4:
        return {"throttle_time": 0,
                "coordinators": [_coordinator(ctx, key, key_type) for key in request.coordinator_keys]}
    one = _coordinator(ctx, request.key, key_type)
    return {"throttle_time": 0, **{k: v for k, v in one.items() if k != "key"}}
