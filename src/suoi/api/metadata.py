"""Metadata (key 3): brokers, and each topic's partitions with leader and replicas.

Unknown topics are auto-created when the client allows it and
auto.create.topics.enable is set, so a tutorial's first `send()` to a new topic works.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from typing import Any

from suoi.api.cluster_metadata import after_auto_creation, metadata_response
from suoi.api.registry import RequestContext, api
from suoi.api.topics import partition_leader_data, resolve_or_create
from suoi.model import ErrorCode
from suoi.protocol.splice import SplicedResponse

OMITTED_OPERATIONS = -2147483648


@api(3, "Metadata", 0, 13)
def handle_metadata(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.services
    if broker.kraft is not None:
        # KRaft: answered at once, or once the topics it starts auto-creating exist
        answer = metadata_response(broker, request, ctx.api_version)
        return spliced(after_auto_creation(broker, request, ctx.api_version, answer))
    host, port = broker.endpoint
    requested = request.topics
    if requested is None or (ctx.api_version == 0 and not requested):
        wanted: list[tuple[str | None, Any]] = [(name, None) for name in sorted(broker.logs.topics())]
    else:
        wanted = [(t.name, getattr(t, "topic_id", None)) for t in requested]
    allow_create = getattr(request, "allow_auto_topic_creation", True)
    topics = []
    for name, topic_id in wanted:
        info, error = resolve_or_create(broker, name, topic_id, allow_create)
        if info is None:
            topics.append({"error_code": error, "name": name, "topic_id": topic_id,
                           "is_internal": False, "partitions": [],
                           "topic_authorized_operations": OMITTED_OPERATIONS})
            continue
        topics.append({
            "error_code": ErrorCode.none,
            "name": info.name,
            "topic_id": info.topic_id,
            "is_internal": info.name.startswith("__"),
            "partitions": [partition_leader_data(broker, p) for p in range(info.partitions)],
            "topic_authorized_operations": OMITTED_OPERATIONS,
        })
    return {
        "throttle_time": 0,
        "brokers": [{"node_id": broker.node_id, "host": host, "port": port, "rack": None}],
        "cluster_id": broker.cluster_id,
        "controller_id": broker.node_id,
        "topics": topics,
        "cluster_authorized_operations": OMITTED_OPERATIONS,
        "error_code": ErrorCode.none,
    }


def spliced(answer: dict[str, Any] | Awaitable[dict[str, Any]]) -> SplicedResponse | Awaitable[SplicedResponse]:
    """The KRaft answer, whose "topics" holds encoded topics (`metadata_cache`), for dispatch."""
    if not inspect.isawaitable(answer):
        return SplicedResponse(answer, "topics")

    async def later() -> SplicedResponse:
        return SplicedResponse(await answer, "topics")

    return later()
