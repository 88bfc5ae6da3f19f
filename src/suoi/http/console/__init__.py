"""The web console (issue 17): the seed's pictures drawn live from any Kafka-compatible cluster.

`Console` (app.py) is the aiohttp app; `suoi console` (cli/console.py) runs it standalone, and a
node runs it beside its listeners when `console.listeners=http://HOST:PORT` is set
(`start_for_node`), reading the node's own cluster through its inter-broker listener with the
node's own client security (TLS, SASL), over the Kafka protocol like any other client.
"""

from __future__ import annotations

import logging
from typing import Any

from suoi.http.console.app import Console, parse_listener

__all__ = ["Console", "parse_listener", "start_for_node"]

log = logging.getLogger("suoi.console")


async def start_for_node(config: Any, advertised: list[Any], controller_names: set[str],
                         security: Any = None) -> Console | None:
    """Start the console a node's `console.listeners` asks for (None when unset). It reads the
    cluster through the inter-broker listener with `security`, the node's own client security
    towards it (TLS, SASL: `suoi.security.listeners.inter_broker_security`), as a peer would."""
    setting = str(config.get("console.listeners") or "").strip()
    if not setting:
        return None
    client = next((a for a in advertised if a.name == config.inter_broker_listener_name), None)
    if client is None or security is None:
        security = None
        client = next((a for a in advertised if a.name not in controller_names), None)
    if client is None:
        raise RuntimeError("console.listeners needs a client listener (a node with the broker role) to read the cluster through")
    registry = str(config.get("schema.registry.listeners") or "").strip() or None  # the node's own decodes values
    console = Console([(client.host or "127.0.0.1", client.port)], schema_registry=registry, security=security)
    host, port = await console.start(*parse_listener(setting))
    log.info("web console on http://%s:%d/", host, port)
    return console
