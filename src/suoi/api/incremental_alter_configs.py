"""IncrementalAlterConfigs (key 44): SET / DELETE / APPEND / SUBTRACT single config keys.

APPEND and SUBTRACT apply to configs of Kafka's LIST type only (cleanup.policy, the throttled-replica
lists, ...), starting from the current effective value, as in Kafka. Decided by the active
controller and kept in the metadata log, as AlterConfigs (`suoi.api.alter_configs`, which also
checks a listener's new keystore first).
"""

from __future__ import annotations

from typing import Any

from suoi.api.alter_configs import keystores_checked
from suoi.api.registry import RequestContext, api


@api(44, "IncrementalAlterConfigs", 0, 1)
def handle_incremental_alter_configs(ctx: RequestContext, request: Any) -> Any:
    return keystores_checked(ctx, request, True)
