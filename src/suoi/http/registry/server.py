"""Run the registry: its HTTP listener plus its service (replay, election), inside a node or standalone.

``SchemaRegistryServer(bootstrap, listen_url)``: ``start()`` binds the port at once (calls wait
for the replay, up to 30 s, then answer 50001) and connects to the cluster in the background, so a
node starting its own registry is never held up by it; ``close()`` leaves the group and stops.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from suoi.http.registry.app import build_app
from suoi.http.registry.service import RegistryService

__all__ = ["SchemaRegistryServer", "parse_listener", "start_on_node"]

log = logging.getLogger("suoi.http.registry")


def parse_listener(url: str) -> tuple[str, int]:
    """``http://HOST:PORT`` (or ``HOST:PORT``) -> (host, port). Only http: TLS is refused loudly."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme != "http":
        raise ValueError(f"schema registry listener {url!r}: only http:// is supported")
    if parts.hostname is None or parts.port is None:
        raise ValueError(f"schema registry listener {url!r}: expected http://HOST:PORT")
    return parts.hostname, parts.port


class SchemaRegistryServer:
    def __init__(self, bootstrap: str, listen: str, *, advertised: str | None = None,
                 topic: str = "_schemas", group: str = "schema-registry") -> None:
        self.host, self.port = parse_listener(listen)
        self._advertised = advertised
        self.bootstrap = bootstrap
        self.topic = topic
        self.group = group
        self.service: RegistryService | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return self._advertised or f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self.service = RegistryService(self.bootstrap, "", topic=self.topic, group=self.group)
        self._runner = web.AppRunner(build_app(self.service), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # port 0: the bound one
        self.service.election.my_url = self.url  # where the others forward writes when we are the primary
        await self.service.start()
        log.info("schema registry listening on %s (cluster %s, topic %s)", self.url, self.bootstrap, self.topic)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self.service is not None:
            await self.service.close()


async def start_on_node(listeners: object, advertised: list[Any], controller_names: set[str]) -> SchemaRegistryServer | None:
    """The node's own registry when ``schema.registry.listeners`` is set (like Redpanda's built-in one):
    a client of the node's first client listener. One listener; anything else refuses the start."""
    if not listeners:
        return None
    urls = [u.strip() for u in str(listeners).split(",") if u.strip()]
    try:
        if len(urls) != 1:
            raise ValueError(f"schema.registry.listeners={listeners}: exactly one http://HOST:PORT is supported")
        parse_listener(urls[0])
    except ValueError as exc:
        raise RuntimeError(str(exc)) from None
    client = next((a for a in advertised if a.name not in controller_names), None)
    if client is None:
        raise RuntimeError("schema.registry.listeners is set but this node has no client listener "
                           "(a controller-only node): run the registry on a broker")
    server = SchemaRegistryServer(f"{client.host or '127.0.0.1'}:{client.port}", urls[0])
    await server.start()
    return server
