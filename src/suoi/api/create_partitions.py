"""CreatePartitions (key 37): grow a topic's partition count (never shrink it), through the
active controller (`suoi.controller.topics` checks the request: validate_only, manual
assignments, at most MAX_PARTITIONS_PER_REQUEST new partitions per request)."""

from __future__ import annotations

from typing import Any

from suoi.api.cluster_metadata import create_partitions_response
from suoi.api.registry import RequestContext, api


@api(37, "CreatePartitions", 0, 3)
def handle_create_partitions(ctx: RequestContext, request: Any) -> Any:
    return create_partitions_response(ctx.services, request)
