"""IncrementalAlterConfigs (key 44): SET / DELETE / APPEND / SUBTRACT single config keys.

APPEND and SUBTRACT apply to configs of Kafka's LIST type only (cleanup.policy, the throttled-replica
lists, ...), starting from the current effective value, as in Kafka.
"""

from __future__ import annotations

import functools
from typing import Any

from suoi.api.alter_configs import ConfigChangeError, alter_resource, duplicate_resources
from suoi.api.cluster_metadata import alter_configs_response
from suoi.api.registry import RequestContext, api
from suoi.configdefs import LIST_CONFIGS
from suoi.model import ErrorCode

SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3


def _apply(ops: list[tuple[str, int, str | None]], current: dict[str, str], effective: dict[str, str]) -> dict[str, str]:
    new = dict(current)
    for name, op, value in ops:
        if op == DELETE:
            new.pop(name, None)
            continue
        if op not in (SET, APPEND, SUBTRACT):
            raise ConfigChangeError(ErrorCode.invalid_request, f"Unknown config operation {op} for {name}")
        if value is None:
            raise ConfigChangeError(ErrorCode.invalid_config, f"Null value not supported for {name}")
        if op == SET:
            new[name] = value
            continue
        if name not in LIST_CONFIGS:
            verb = "append" if op == APPEND else "subtract"
            raise ConfigChangeError(ErrorCode.invalid_config, f"Config value {verb} is not allowed for config key: {name}")
        base = new.get(name, effective.get(name, ""))
        items = [x.strip() for x in base.split(",") if x.strip()]
        change = [x.strip() for x in value.split(",") if x.strip()]
        if op == APPEND:
            items += [x for x in change if x not in items]
        else:
            items = [x for x in items if x not in change]
        new[name] = ",".join(items)
    return new




@api(44, "IncrementalAlterConfigs", 0, 1)
def handle_incremental_alter_configs(ctx: RequestContext, request: Any) -> Any:
    if ctx.services.kraft is not None:  # topic and broker configs live in the metadata log
        return alter_configs_response(ctx.services, request, True)
    dup = duplicate_resources(request.resources)
    responses = []
    for res in request.resources:
        rtype, name = res.resource_type, res.resource_name
        names = [c.name for c in res.configs]
        if (rtype, name) in dup or len(set(names)) != len(names):
            what = "Resource listed" if (rtype, name) in dup else "Config key listed"
            responses.append({"error_code": ErrorCode.invalid_request, "error_message": f"{what} more than once",
                              "resource_type": rtype, "resource_name": name})
            continue
        ops = [(c.name, c.config_operation, c.value) for c in res.configs]
        responses.append(alter_resource(ctx.services, rtype, name, functools.partial(_apply, ops),
                                        request.validate_only))
    return {"throttle_time": 0, "responses": responses}
