"""AlterConfigs (key 33): replace a topic's overrides or a broker's dynamic configs.

Decided by the active controller (`suoi.controller.configs`: every name and value checked,
INVALID_CONFIG with a message naming the key; validate_only changes nothing) and kept in the
metadata log; every node applies them from its image (topic overrides to the live logs,
broker configs through `suoi.dynamic_config`).
"""

from __future__ import annotations

from typing import Any

from suoi.api.cluster_metadata import alter_configs_response
from suoi.api.registry import RequestContext, api


@api(33, "AlterConfigs", 0, 2)
def handle_alter_configs(ctx: RequestContext, request: Any) -> Any:
    return alter_configs_response(ctx.services, request, False)
