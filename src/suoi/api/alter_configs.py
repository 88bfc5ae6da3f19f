"""AlterConfigs (key 33): replace a topic's overrides or a broker's dynamic configs.

Decided by the active controller (`suoi.controller.configs`: every name and value checked,
INVALID_CONFIG with a message naming the key; validate_only changes nothing) and kept in the
metadata log; every node applies them from its image (topic overrides to the live logs,
broker configs through `suoi.dynamic_config`).

A listener's keystore or truststore (``listener.name.<l>.ssl.keystore.location``...) changed on
this node's own broker resource is checked here first, as Kafka's broker does before it forwards
the request: the listener's complete TLS context is built with the new settings, and a resource
whose keystore cannot load is answered INVALID_CONFIG (naming keys, never values) and not sent on.
"""

from __future__ import annotations

from typing import Any

from suoi.api.authorization import Split
from suoi.api.cluster_metadata import alter_configs_response
from suoi.api.enforcement import split_call
from suoi.api.registry import RequestContext, api
from suoi.configdefs import dynamic_ssl_key
from suoi.model import ErrorCode
from suoi.security.dynamic import check_update
from suoi.security.tls import TlsConfigError

BROKER = 4
SET, DELETE = 0, 1


@api(33, "AlterConfigs", 0, 2)
def handle_alter_configs(ctx: RequestContext, request: Any) -> Any:
    return keystores_checked(ctx, request, False)


def keystores_checked(ctx: RequestContext, request: Any, incremental: bool) -> Any:
    """`alter_configs_response`, after refusing resources whose new keystore cannot load."""
    denied: dict[int, int] = {}
    message = None
    for i, resource in enumerate(request.resources):
        changes = _keystore_changes(ctx, resource, incremental)
        if not changes:
            continue
        try:
            check_update(ctx.services.config.values, changes)
        except TlsConfigError as exc:
            denied[i], message = ErrorCode.invalid_config, f"Invalid dynamic TLS configuration: {exc}"

    def handler(c: RequestContext, body: Any) -> Any:
        return alter_configs_response(c.services, body, incremental)

    if not denied:
        return handler(ctx, request)
    return split_call(ctx, request, handler, Split(denied), message)


def _keystore_changes(ctx: RequestContext, resource: Any, incremental: bool) -> dict[str, str | None]:
    if resource.resource_type != BROKER or resource.resource_name != str(ctx.services.node_id):
        return {}
    if incremental:
        return {c.name: c.value if c.config_operation == SET else None for c in resource.configs
                if dynamic_ssl_key(c.name) is not None and c.config_operation in (SET, DELETE)}
    given = {c.name: c.value for c in resource.configs if dynamic_ssl_key(c.name) is not None}
    removed = {k: None for k in ctx.services.dynamic_configs.layer(cluster_default=False)
               if dynamic_ssl_key(k) is not None and k not in given}  # AlterConfigs replaces the whole set
    return {**given, **removed}
