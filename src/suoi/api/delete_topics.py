"""DeleteTopics (key 20): by name (v1-v5) or by name or id (v6+)."""

from __future__ import annotations

from typing import Any

from suoi.api.cluster_metadata import delete_topics_response
from suoi.api.registry import RequestContext, api


@api(20, "DeleteTopics", 1, 6)
def handle_delete_topics(ctx: RequestContext, request: Any) -> Any:
    return delete_topics_response(ctx.services, request, ctx.api_version)
