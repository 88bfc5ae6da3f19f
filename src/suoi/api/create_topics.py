"""CreateTopics (key 19): partitions and topic configs, persisted in the metadata log by the
active controller (`suoi.controller.topics`: names, partition counts, replication factors
against the live brokers, configs, validate_only, at most MAX_PARTITIONS_PER_REQUEST new
partitions per request: more is POLICY_VIOLATION). Answered once this node's metadata lists
the topics (`suoi.api.cluster_metadata.create_topics_response`), each created (or, with
validate_only, creatable) topic with its whole effective configuration and each entry's source
(KIP-525, v5+: Kafka's computeEffectiveTopicConfigs), not only the configs the request named."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from suoi.api.cluster_metadata import TopicConfigView, create_topics_response, vars_of
from suoi.api.describe_configs import topic_config_entries
from suoi.api.registry import RequestContext, api
from suoi.log.config import LogConfig
from suoi.log.errors import InvalidConfigError

if TYPE_CHECKING:
    from suoi.services import Services


@api(19, "CreateTopics", 2, 7)
async def handle_create_topics(ctx: RequestContext, request: Any) -> Any:
    response = await create_topics_response(ctx.services, request)
    if ctx.api_version < 5:
        return response
    requested = {t.name: {c.name: c.value for c in t.configs} for t in request.topics}
    topics = [t if isinstance(t, dict) else vars_of(t) for t in response["topics"]]  # forwarded: kio entities
    for t in topics:
        overrides = requested.get(t["name"])
        if int(t["error_code"]) == 0 and overrides is not None:
            t["configs"] = _effective_configs(ctx.services, overrides) or t["configs"]
    return {**response, "topics": topics}


def _effective_configs(broker: Services, overrides: dict[str, str | None]) -> list[dict[str, Any]] | None:
    """The CreatableTopicConfigs of a topic created with ``overrides`` (None if they do not
    parse here: the controller accepted them, so its own answer is kept)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        view = TopicConfigView(LogConfig.from_topic_configs(broker.log_config, given), given)
    except InvalidConfigError:
        return None
    return [{"name": e["name"], "value": None if e["is_sensitive"] else e["value"], "read_only": e["read_only"],
             "config_source": e["config_source"], "is_sensitive": e["is_sensitive"]}
            for e in topic_config_entries(broker, view, with_synonyms=False)]
