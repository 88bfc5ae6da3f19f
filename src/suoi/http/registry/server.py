"""Run the registry: its HTTP listener plus its service (replay, election), inside a node or standalone.

``SchemaRegistryServer(bootstrap, listen_url)``: ``start()`` serves the port at once (calls wait
for the replay, up to 30 s, then answer 50001) and connects to the cluster in the background;
``close()`` leaves the group and stops. A node's own registry goes through ``node.NodeRegistry``.
"""

from __future__ import annotations

import logging
import socket

from aiohttp import web

from suoi.http.registry.app import build_app
from suoi.http.registry.node import parse_listener
from suoi.http.registry.service import RegistryService

__all__ = ["SchemaRegistryServer", "parse_listener"]

log = logging.getLogger("suoi.http.registry")


class SchemaRegistryServer:
    def __init__(self, bootstrap: str, listen: str, *, advertised: str | None = None,
                 topic: str = "_schemas", group: str = "schema-registry", sock: socket.socket | None = None) -> None:
        self.host, self.port = parse_listener(listen)
        self._sock = sock  # already bound and listening (a node binds it during its own start)
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
        site: web.BaseSite = (web.SockSite(self._runner, self._sock) if self._sock is not None
                              else web.TCPSite(self._runner, self.host, self.port))
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

