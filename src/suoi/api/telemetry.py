"""GetTelemetrySubscriptions (key 71) and PushTelemetry (key 72): client metrics, KIP-714.

librdkafka (>= 2.5, `enable.metrics.push`, on by default) and the Java client ask every broker
they use for a subscription once connected. The subscriptions are the CLIENT_METRICS config
resources of the metadata image (none by default: clients then push nothing); the state of
each client instance and its last pushed metrics live in `broker.client_telemetry`
(`suoi.client_telemetry`). A client is matched on its client id, the software name and
version it sent in ApiVersions (remembered per connection here) and its address and port.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from typing import TYPE_CHECKING, Any

from suoi.api.registry import RequestContext, api
from suoi.client_telemetry import ACCEPTED_COMPRESSION_TYPES, TelemetryError
from suoi.controller.client_metrics import Subscription
from suoi.controller.image import ConfigResourceType
from suoi.model import ErrorCode

if TYPE_CHECKING:
    from suoi.services import Services

log = logging.getLogger("suoi.api")

#: connection -> (client_software_name, client_software_version) from its ApiVersions v3+.
_SOFTWARE: weakref.WeakKeyDictionary[Any, tuple[str, str]] = weakref.WeakKeyDictionary()


def remember_client_software(ctx: RequestContext, request: Any) -> None:
    """ApiVersions v3+ names the client software; `match` may select on it."""
    name = getattr(request, "client_software_name", None)
    if ctx.connection is not None and name:
        with contextlib.suppress(TypeError):  # a connection object that takes no weak references (tests)
            _SOFTWARE[ctx.connection] = (str(name), str(getattr(request, "client_software_version", "") or ""))


def subscriptions(broker: Services) -> list[Subscription]:
    """The CLIENT_METRICS resources of the metadata image."""
    return [Subscription.parse(name, values) for (rtype, name), values in sorted(broker.kraft.image.configs.items())
            if rtype == ConfigResourceType.CLIENT_METRICS]


#: DescribeConfigs' config_source of a client-metrics subscription's configs, and their types
#: (LIST 7, INT 3).
CLIENT_METRICS_CONFIG_SOURCE = 7
_CONFIG_TYPES = {"metrics": 7, "match": 7, "interval.ms": 3}


def client_metrics_configs(broker: Services, name: str) -> list[dict[str, Any]]:
    """DescribeConfigs of a CLIENT_METRICS resource: the configs set on it (Kafka lists only
    those; an unknown subscription has none)."""
    values = broker.kraft.image.configs.get((ConfigResourceType.CLIENT_METRICS, name), {})
    return [{"name": k, "value": v, "read_only": False, "config_source": CLIENT_METRICS_CONFIG_SOURCE,
             "is_sensitive": False, "config_type": _CONFIG_TYPES.get(k, 0), "documentation": None, "synonyms": []}
            for k, v in sorted(values.items())]


def _attributes(ctx: RequestContext) -> dict[str, str]:
    host, _, port = ctx.client_host.rpartition(":")
    software = _SOFTWARE.get(ctx.connection, ("", "")) if ctx.connection is not None else ("", "")
    return {"client_id": ctx.client_id or "", "client_software_name": software[0],
            "client_software_version": software[1], "client_source_address": host.strip("[]"),
            "client_source_port": port}


@api(71, "GetTelemetrySubscriptions", 0, 0)
def handle_get_telemetry_subscriptions(ctx: RequestContext, request: Any) -> dict[str, Any]:
    broker = ctx.services
    store = broker.client_telemetry
    instance = store.get_subscriptions(request.client_instance_id, _attributes(ctx), subscriptions(broker),
                                       broker.now_ms())
    return {"throttle_time": 0, "error_code": ErrorCode.none, "client_instance_id": instance.client_instance_id,
            "subscription_id": instance.subscription_id, "accepted_compression_types": list(ACCEPTED_COMPRESSION_TYPES),
            "push_interval": instance.push_interval_ms, "telemetry_max_bytes": store.max_bytes,
            "delta_temporality": True, "requested_metrics": list(instance.metrics)}


@api(72, "PushTelemetry", 0, 0)
def handle_push_telemetry(ctx: RequestContext, request: Any) -> dict[str, Any]:
    broker = ctx.services
    try:
        instance = broker.client_telemetry.push(request.client_instance_id, int(request.subscription_id),
                                     bool(request.terminating), int(request.compression_type),
                                     bytes(request.metrics), broker.now_ms())
    except TelemetryError as exc:
        if exc.code != ErrorCode.throttling_quota_exceeded:
            log.warning("telemetry push from client %s (%s) refused: %s: %s", ctx.client_id, ctx.client_host,
                        exc.code.name, exc)
        return {"throttle_time": 0, "error_code": exc.code}
    if instance.pushes == 1 and instance.last_metrics:  # once per client instance, and only when subscribed
        log.info("first telemetry push from client instance %s (client_id %r, subscriptions %s): %d bytes",
                 instance.client_instance_id, ctx.client_id, ",".join(instance.subscriptions),
                 len(instance.last_metrics))
    return {"throttle_time": 0, "error_code": ErrorCode.none}
