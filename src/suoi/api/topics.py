"""Topic lookups shared by handlers: by name or id, with optional auto-creation."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from suoi.log.errors import LogError
from suoi.log.manager import TopicInfo
from suoi.model import ErrorCode

if TYPE_CHECKING:
    from suoi.broker import Broker

log = logging.getLogger("suoi.api")
ZERO_UUID = uuid.UUID(int=0)


def resolve_or_create(broker: Broker, name: str | None, topic_id: uuid.UUID | None,
                      allow_create: bool) -> tuple[TopicInfo | None, ErrorCode]:
    """Find a topic by name (or id when the name is null); maybe auto-create it."""
    logs = broker.logs
    if not name:
        if topic_id is None or topic_id == ZERO_UUID:
            return None, ErrorCode.invalid_request
        info = logs.topic_by_id(topic_id)
        return (info, ErrorCode.none) if info else (None, ErrorCode.unknown_topic_id)
    info = logs.topics().get(name)
    if info is not None:
        return info, ErrorCode.none
    if not (allow_create and broker.auto_create_enabled()):
        return None, ErrorCode.unknown_topic_or_partition
    try:
        return broker.create_topic(name), ErrorCode.none
    except LogError as exc:
        log.warning("auto-creating topic %r failed: %s", name, exc)
        return None, ErrorCode(exc.error_code)


def partition_leader_data(broker: Broker, partition: int) -> dict[str, Any]:
    """Leadership of one partition; on a single node this broker leads everything."""
    node = broker.node_id
    return {
        "error_code": ErrorCode.none,
        "partition_index": partition,
        "leader_id": node,
        "leader_epoch": 0,
        "replica_nodes": [node],
        "isr_nodes": [node],
        "offline_replicas": [],
    }
