"""AlterConfigs (key 33): replace a topic's overrides or a broker's dynamic configs.

Shared with IncrementalAlterConfigs through `alter_resource`: compute the new set from the
current one, validate every name and value (INVALID_CONFIG with a message naming the key),
then, unless validate_only, persist and apply it at once (live logs read their config on
every append and retention pass). Topic overrides are persisted with the topic; broker
configs in `dynamic-broker-configs.json` (see `suoi.dynamic_config`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from suoi.api.cluster_metadata import alter_configs_response
from suoi.api.describe_configs import BROKER, TOPIC, broker_resource
from suoi.api.registry import RequestContext, api
from suoi.dynamic_config import DynamicConfigError, validate
from suoi.log.config import LogConfig
from suoi.log.errors import LogError
from suoi.model import ErrorCode

if TYPE_CHECKING:
    from suoi.services import Services

log = logging.getLogger("suoi.api")

#: compute(current overrides, effective values) -> new overrides; raises ConfigChangeError.
Compute = Callable[[dict[str, str], dict[str, str]], dict[str, str]]


class ConfigChangeError(Exception):
    def __init__(self, error: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error = error


def _response(rtype: int, name: str, error: ErrorCode = ErrorCode.none, message: str | None = None) -> dict[str, Any]:
    return {"error_code": error, "error_message": message, "resource_type": rtype, "resource_name": name}


def alter_resource(broker: Services, rtype: int, name: str, compute: Compute, validate_only: bool) -> dict[str, Any]:
    try:
        if rtype == TOPIC:
            _alter_topic(broker, name, compute, validate_only)
        elif rtype == BROKER:
            _alter_broker(broker, name, compute, validate_only)
        else:
            raise ConfigChangeError(ErrorCode.invalid_request,
                                    f"Unsupported resource type {rtype} (suoi alters topics (2) and brokers (4))")
    except ConfigChangeError as exc:
        log.warning("config change of resource %d %r refused (%s): %s", rtype, name, exc.error.name, exc)
        return _response(rtype, name, exc.error, str(exc))
    return _response(rtype, name)


def _alter_topic(broker: Services, name: str, compute: Compute, validate_only: bool) -> None:
    info = broker.logs.topics().get(name)
    if info is None:
        raise ConfigChangeError(ErrorCode.unknown_topic_or_partition, f"Topic '{name}' does not exist.")
    new = compute(dict(info.configs), info.config.to_topic_configs())
    try:
        LogConfig.from_topic_configs(broker.log_config, new)
        if validate_only:
            return
        broker.logs.alter_topic_configs(name, new)
    except LogError as exc:
        raise ConfigChangeError(ErrorCode(exc.error_code), str(exc)) from None
    log.info("topic %s configs are now %s", name, new or "{} (broker defaults)")


def _alter_broker(broker: Services, name: str, compute: Compute, validate_only: bool) -> None:
    cluster_default = broker_resource(broker, name)
    if cluster_default is None:
        raise ConfigChangeError(ErrorCode.invalid_request,
                                f"Unexpected broker id {name!r}: this is broker {broker.node_id}")
    effective = {k: str(v).lower() if isinstance(v, bool) else str(v)
                 for k, v in broker.config.values.items()}
    new = compute(broker.dynamic_configs.layer(cluster_default=cluster_default), effective)
    try:
        for key, value in new.items():
            validate(key, value, cluster_default=cluster_default)
    except DynamicConfigError as exc:
        raise ConfigChangeError(ErrorCode.invalid_config, str(exc)) from None
    if validate_only:
        return
    broker.dynamic_configs.replace(new, cluster_default=cluster_default)
    broker.reconfigure()
    log.info("dynamic %s configs are now %s", "cluster-default broker" if cluster_default else f"broker {name}", new)


def duplicate_resources(resources: Any) -> set[tuple[int, str]]:
    seen: set[tuple[int, str]] = set()
    dup: set[tuple[int, str]] = set()
    for r in resources:
        key = (r.resource_type, r.resource_name)
        (dup if key in seen else seen).add(key)
    return dup


def _replace_with(wanted: dict[str, str]) -> Compute:
    def compute(_current: dict[str, str], _effective: dict[str, str]) -> dict[str, str]:
        return dict(wanted)

    return compute


@api(33, "AlterConfigs", 0, 2)
def handle_alter_configs(ctx: RequestContext, request: Any) -> Any:
    if ctx.services.kraft is not None:  # topic and broker configs live in the metadata log
        return alter_configs_response(ctx.services, request, False)
    dup = duplicate_resources(request.resources)
    responses = []
    for res in request.resources:
        if (res.resource_type, res.resource_name) in dup:
            responses.append(_response(res.resource_type, res.resource_name, ErrorCode.invalid_request,
                                       "Resource listed more than once in one request"))
            continue
        wanted: dict[str, str] = {c.name: c.value for c in res.configs if c.value is not None}
        responses.append(alter_resource(ctx.services, res.resource_type, res.resource_name,
                                        _replace_with(wanted), request.validate_only))
    return {"throttle_time": 0, "responses": responses}
