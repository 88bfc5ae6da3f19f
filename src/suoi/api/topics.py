"""Topic lookups shared by handlers: by name or id, with optional auto-creation.

A name Kafka would never create (`Topic.validate`: 1-249 chars of ``[a-zA-Z0-9._-]``, not
``.`` or ``..``) is answered INVALID_TOPIC_EXCEPTION before any creation is attempted, with
or without auto-creation, as Kafka's Metadata handler does; the refusal is logged once per
name (clients retry their Metadata requests many times a second; `topic_names`).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from suoi.api.topic_names import invalid_topic_name
from suoi.log.topic_info import TopicInfo
from suoi.model import ErrorCode
from suoi.partition.directory import NoPartitions, PartitionDirectory

if TYPE_CHECKING:
    from suoi.services import Services

ZERO_UUID = uuid.UUID(int=0)


def resolve_or_create(broker: Services, name: str | None, topic_id: uuid.UUID | None,
                      allow_create: bool) -> tuple[TopicInfo | None, ErrorCode]:
    """Find a topic in the metadata image by name (or id when the name is null); maybe ask the
    controller to auto-create it. The returned info is the local one, which may host none of
    the partitions (then NOT_LEADER_OR_FOLLOWER)."""
    image = broker.kraft.image
    topic = image.topics_by_name.get(name) if name else image.topics.get(topic_id) if topic_id else None
    if topic is None:
        if name and invalid_topic_name(name):
            return None, ErrorCode.invalid_topic_exception
        if name and allow_create and broker.auto_create_enabled():
            from suoi.api.cluster_metadata import request_topic_creation

            request_topic_creation(broker, name)
        if not name and (topic_id is None or topic_id == ZERO_UUID):
            return None, ErrorCode.invalid_request
        return None, ErrorCode.unknown_topic_or_partition if name else ErrorCode.unknown_topic_id
    local = broker.logs.topic(topic.name)  # (not `topics()`: a copy of every topic, for every Produce)
    return local, ErrorCode.none if local is not None else ErrorCode.not_leader_or_follower


def leader_log(broker: Services, topic: str | None, partition: int) -> tuple[Any, ErrorCode]:
    """The local log of a partition this node leads, or the error a client must see.

    The metadata image decides: a partition led elsewhere is NOT_LEADER_OR_FOLLOWER, so the
    client refreshes its metadata and goes to the leader.
    """
    plog = broker.logs.get_log(topic, partition) if topic else None
    if plog is None and topic and broker.logs.is_offline(topic, partition):
        return None, ErrorCode.kafka_storage_error  # its log dir failed (KIP-858)
    reg = broker.kraft.image.partition(topic, partition) if topic else None
    if reg is None:
        return None, ErrorCode.unknown_topic_or_partition
    if reg.leader != broker.node_id or plog is None:
        failed = reg.leader == broker.node_id and (topic, partition) in broker.logs.failed
        return None, ErrorCode.kafka_storage_error if failed else ErrorCode.not_leader_or_follower
    return plog, ErrorCode.none


def partitions_of(broker: Services) -> PartitionDirectory:
    """Where Produce and Fetch find their partitions: the node's replica manager (none on a
    controller-only node)."""
    replicas = broker.kraft.replicas
    return replicas if replicas is not None else NoPartitions(broker.logs, broker.notifier)
