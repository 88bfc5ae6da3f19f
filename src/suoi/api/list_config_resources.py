"""ListConfigResources (key 74; Kafka 3.7 called v0 ListClientMetricsResources, KIP-1000/1142).

v0 lists the CLIENT_METRICS resources (telemetry subscriptions); v1 takes resource types (none
= every type this node has), in Kafka's order: topics (2), client metrics (16), broker loggers (8:
this node's own id only, as Kafka: a broker's loggers are described by that broker,
`broker_loggers`) and brokers (4). Group configs (32) do not exist in suoi: asking for them, or for any
type it does not know, is UNSUPPORTED_VERSION, as Kafka answers unsupported types.
"""

from __future__ import annotations

from typing import Any

from suoi.api.broker_loggers import BROKER_LOGGER
from suoi.api.cluster_metadata import live_brokers
from suoi.api.registry import RequestContext, api
from suoi.api.telemetry import subscriptions
from suoi.controller.image import ConfigResourceType
from suoi.model import ErrorCode

TOPIC, BROKER, CLIENT_METRICS = ConfigResourceType.TOPIC, ConfigResourceType.BROKER, ConfigResourceType.CLIENT_METRICS
SUPPORTED = (TOPIC, CLIENT_METRICS, BROKER_LOGGER, BROKER)  # the order Kafka lists them in


def _names(ctx: RequestContext, rtype: int) -> list[str]:
    broker = ctx.services
    if rtype == CLIENT_METRICS:
        return [s.name for s in subscriptions(broker)]
    if rtype == TOPIC:
        return sorted(broker.kraft.image.topics_by_name)
    if rtype == BROKER_LOGGER:
        return [str(broker.node_id)]
    ids = [b["node_id"] for b in live_brokers(broker)]
    return [str(i) for i in sorted(ids)]


@api(74, "ListConfigResources", 0, 1)
def handle_list_config_resources(ctx: RequestContext, request: Any) -> dict[str, Any]:
    asked = set(getattr(request, "resource_types", ()) or ()) if ctx.api_version >= 1 else {CLIENT_METRICS}
    if not asked <= set(SUPPORTED):
        return {"throttle_time": 0, "error_code": ErrorCode.unsupported_version, "config_resources": []}
    wanted = [t for t in SUPPORTED if t in asked] if asked else list(SUPPORTED)
    return {"throttle_time": 0, "error_code": ErrorCode.none, "config_resources": [
        {"resource_name": name, "resource_type": rtype} for rtype in wanted for name in _names(ctx, rtype)]}
