"""IncrementalAlterConfigs (key 44): SET / DELETE / APPEND / SUBTRACT single config keys.

APPEND and SUBTRACT apply to configs of Kafka's LIST type only (cleanup.policy, the throttled-replica
lists, ...), starting from the current effective value, as in Kafka. Decided by the active
controller and kept in the metadata log, as AlterConfigs (`suoi.api.alter_configs`, which also
checks a listener's new keystore first).

BROKER_LOGGER resources (KIP-412 log levels) are this broker's own and never reach the
controller: they are answered here (`suoi.api.broker_loggers`), as Kafka's broker preprocesses
them before it forwards the rest.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

from suoi.api import broker_loggers
from suoi.api.alter_configs import keystores_checked
from suoi.api.registry import RequestContext, api


@api(44, "IncrementalAlterConfigs", 0, 1)
def handle_incremental_alter_configs(ctx: RequestContext, request: Any) -> Any:
    if not any(r.resource_type == broker_loggers.BROKER_LOGGER for r in request.resources):
        return keystores_checked(ctx, request, True)
    return _with_loggers(ctx, request)


async def _with_loggers(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Answer the BROKER_LOGGER resources here and the others as usual, in the request's order."""
    node_id = ctx.services.node_id
    mine = [(i, r) for i, r in enumerate(request.resources) if r.resource_type == broker_loggers.BROKER_LOGGER]
    names = [r.resource_name for _i, r in mine]
    local = {i: broker_loggers.twice(r) if names.count(r.resource_name) > 1
             else broker_loggers.alter_resource(r, node_id, bool(request.validate_only)) for i, r in mine}
    rest = [r for i, r in enumerate(request.resources) if i not in local]
    others: list[Any] = []
    throttle: Any = 0
    if rest:
        answer = keystores_checked(ctx, dataclasses.replace(request, resources=tuple(rest)), True)
        if inspect.isawaitable(answer):
            answer = await answer
        others, throttle = list(answer["responses"]), answer.get("throttle_time", 0)  # a timedelta when forwarded
    remote = iter(others)
    return {"throttle_time": throttle,
            "responses": [local[i] if i in local else next(remote) for i in range(len(request.resources))]}
