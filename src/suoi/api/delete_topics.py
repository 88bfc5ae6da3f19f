"""DeleteTopics (key 20): by name (v1-v5) or by name or id (v6+)."""

from __future__ import annotations

import logging
from typing import Any

from suoi.api.cluster_metadata import delete_topics_response
from suoi.api.registry import RequestContext, api
from suoi.model import ErrorCode

log = logging.getLogger("suoi.api")


@api(20, "DeleteTopics", 1, 6)
def handle_delete_topics(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.services
    if broker.kraft is not None:
        return delete_topics_response(broker, request, ctx.api_version)
    logs = broker.logs
    if hasattr(request, "topic_names"):
        wanted = [(name, None) for name in request.topic_names]
    else:
        wanted = [(t.name, t.topic_id) for t in request.topics]
    results = []
    for name, topic_id in wanted:
        info = logs.topics().get(name) if name else logs.topic_by_id(topic_id) if topic_id else None
        if info is None:
            error = ErrorCode.unknown_topic_id if not name else ErrorCode.unknown_topic_or_partition
            results.append({"name": name, "topic_id": topic_id, "error_code": error, "error_message": None})
            continue
        if not broker.config.get_bool("delete.topic.enable"):
            results.append({"name": info.name, "topic_id": info.topic_id,
                            "error_code": ErrorCode.topic_deletion_disabled, "error_message": None})
            continue
        logs.delete_topic(info.name)
        log.info("deleted topic %s", info.name)
        results.append({"name": info.name, "topic_id": info.topic_id, "error_code": ErrorCode.none,
                        "error_message": None})
    return {"throttle_time": 0, "responses": results}
