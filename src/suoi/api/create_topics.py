"""CreateTopics (key 19): partitions and topic configs, persisted in the metadata log by the
active controller (`suoi.controller.topics`: names, partition counts, replication factors
against the live brokers, configs, validate_only, at most MAX_PARTITIONS_PER_REQUEST new
partitions per request: more is POLICY_VIOLATION). Answered once this node's metadata lists
the topics (`suoi.api.cluster_metadata.create_topics_response`)."""

from __future__ import annotations

from typing import Any

from suoi.api.cluster_metadata import create_topics_response
from suoi.api.registry import RequestContext, api


@api(19, "CreateTopics", 2, 7)
def handle_create_topics(ctx: RequestContext, request: Any) -> Any:
    return create_topics_response(ctx.services, request)
