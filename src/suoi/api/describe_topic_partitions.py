"""DescribeTopicPartitions (key 75, KIP-966): Metadata's topic answer, paginated.

Admin clients of Kafka 3.8+ (and kafka-python's `describe_topic_partitions`) use it instead of
Metadata to describe topics with many partitions: the answer holds at most
`response_partition_limit` partitions, topics in name order, and a `next_cursor` (topic,
partition index) where the next page starts. Kafka's rules (DescribeTopicPartitionsRequestHandler
and KRaftMetadataCache.describeTopicResponse):

- no topics asked = every topic; topics before the cursor's topic are skipped, and the cursor's
  topic must be among the asked ones (else INVALID_REQUEST), its partition index >= 0;
- a page ends inside a topic (cursor = that topic, the next partition) or, when the limit is
  used up exactly, at the start of the next topic (cursor = it, partition 0);
- an unknown asked topic is UNKNOWN_TOPIC_OR_PARTITION (INVALID_TOPIC_EXCEPTION if its name is
  illegal); when listing every topic none can be unknown;
- eligible leader replicas: suoi has no ELR (KIP-966's election part), so both lists are empty,
  as Kafka sends them while ELR is disabled;
- topic_authorized_operations: there is no authorizer, so every topic operation is allowed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from typing import Any

from suoi.api.cluster_metadata import partition_data
from suoi.api.registry import RequestContext, api
from suoi.api.topic_names import INTERNAL_TOPICS
from suoi.log.errors import InvalidTopicError
from suoi.log.manager import validate_topic_name
from suoi.model import ErrorCode

#: AclOperation codes a topic supports (READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7, DESCRIBE 8,
#: DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11) as the bit field Kafka sends without an authorizer.
TOPIC_OPERATIONS = sum(1 << op for op in (3, 4, 5, 6, 7, 8, 10, 11))
#: Kafka's max.request.partition.size.limit default: the most partitions one answer holds.
MAX_PARTITIONS_PER_ANSWER = 2000
ZERO_UUID = uuid.UUID(int=0)

#: A topic as this API needs it: (id, partition count, partition index -> partition answer).
TopicView = tuple[uuid.UUID, int, Callable[[int], dict[str, Any]]]


def _topic_views(ctx: RequestContext) -> tuple[Collection[str], Callable[[str], TopicView | None]]:
    """Every topic's name, and the view of one topic by name (built only for the topics a
    page answers: a cluster may hold thousands of topics, a request usually asks for one)."""
    image = ctx.services.kraft.image
    live = {b.broker_id for b in image.unfenced_brokers()}  # once per answer
    by_name = image.topics_by_name

    def view(name: str) -> TopicView | None:
        topic = by_name.get(name)
        if topic is None:
            return None
        return (topic.topic_id, topic.num_partitions,
                lambda p: _with_elr(partition_data(live, topic.partitions[p], p)))

    return by_name.keys(), view


def _with_elr(partition: dict[str, Any]) -> dict[str, Any]:
    return partition | {"eligible_leader_replicas": [], "last_known_elr": []}


def _unknown(name: str) -> dict[str, Any]:
    try:
        validate_topic_name(name)
        error = ErrorCode.unknown_topic_or_partition
    except InvalidTopicError:
        error = ErrorCode.invalid_topic_exception
    return {"error_code": error, "name": name, "topic_id": ZERO_UUID, "is_internal": name in INTERNAL_TOPICS,
            "partitions": [], "topic_authorized_operations": TOPIC_OPERATIONS}


@api(75, "DescribeTopicPartitions", 0, 0)
def handle_describe_topic_partitions(ctx: RequestContext, request: Any) -> dict[str, Any]:
    all_names, view_of = _topic_views(ctx)
    cursor = request.cursor
    cursor_topic = cursor.topic_name if cursor is not None else ""
    list_all = not request.topics
    asked = sorted(all_names) if list_all else sorted({t.name for t in request.topics})
    names = [n for n in asked if n >= cursor_topic]
    if cursor is not None and (cursor.partition_index < 0 or (not list_all and cursor_topic not in names)):
        return {"throttle_time": 0, "next_cursor": None, "topics": [
            {"error_code": ErrorCode.invalid_request, "name": n, "topic_id": ZERO_UUID, "partitions": []}
            for n in asked]}
    remaining = max(min(MAX_PARTITIONS_PER_ANSWER, int(request.response_partition_limit)), 1)
    topics: list[dict[str, Any]] = []
    next_cursor = None
    for name in names:
        if remaining == 0:
            next_cursor = {"topic_name": name, "partition_index": 0}
            break
        view = view_of(name)
        if view is None:
            topics.append(_unknown(name))
            continue
        topic_id, count, describe = view
        start = cursor.partition_index if cursor is not None and name == cursor_topic else 0
        end = min(count, start + remaining)
        topics.append({"error_code": ErrorCode.none, "name": name, "topic_id": topic_id,
                       "is_internal": name in INTERNAL_TOPICS,
                       "partitions": [describe(p) for p in range(start, end)],
                       "topic_authorized_operations": TOPIC_OPERATIONS})
        if end < count:
            next_cursor = {"topic_name": name, "partition_index": end}
            break
        remaining -= max(end - start, 0)
    return {"throttle_time": 0, "topics": topics, "next_cursor": next_cursor}
