"""The registry a node runs when ``schema.registry.listeners`` is set (like Redpanda's built-in one).

Light on purpose (sockets only): the node binds the HTTP port during its start, so a port in use
refuses the start in one line, but the app itself (aiohttp, confluent-kafka, the formats: ~0.2-0.4 s
of imports) loads in the background once the node serves clients (``first_unfenced`` for a KRaft
broker): the node's own start-up is not held up by it. The registry is then a Kafka client of the
node's first client listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import socket
from typing import Any
from urllib.parse import urlsplit

from suoi.http.sockets import listen_socket

__all__ = ["NodeRegistry", "parse_listener"]

log = logging.getLogger("suoi.http.registry")


def parse_listener(url: str) -> tuple[str, int]:
    """``http://HOST:PORT`` (or ``HOST:PORT``) -> (host, port). Only http: TLS is refused loudly."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme != "http":
        raise ValueError(f"schema registry listener {url!r}: only http:// is supported")
    if parts.hostname is None or parts.port is None:
        raise ValueError(f"schema registry listener {url!r}: expected http://HOST:PORT")
    return parts.hostname, parts.port


class NodeRegistry:
    """``bind()`` in the node's start -> ``start(ready)`` -> ``close()`` in the node's stop."""

    def __init__(self, sock: socket.socket, url: str, bootstrap: str) -> None:
        self.sock = sock
        self.url = url
        self.bootstrap = bootstrap
        self.server: Any = None  # SchemaRegistryServer, once loaded
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def bind(cls, listeners: object, advertised: list[Any], controller_names: set[str]) -> NodeRegistry:
        urls = [u.strip() for u in str(listeners).split(",") if u.strip()]
        try:
            if len(urls) != 1:
                raise ValueError(f"schema.registry.listeners={listeners}: exactly one http://HOST:PORT is supported")
            host, port = parse_listener(urls[0])
        except ValueError as exc:
            raise RuntimeError(str(exc)) from None
        client = next((a for a in advertised if a.name not in controller_names), None)
        if client is None:
            raise RuntimeError("schema.registry.listeners is set but this node has no client listener "
                               "(a controller-only node): run the registry on a broker")
        try:
            sock = listen_socket(host, port)
        except OSError as exc:
            raise RuntimeError(f"schema registry: cannot listen on {urls[0]}: {exc.strerror or exc}") from None
        bound = f"http://{host if sock.family == socket.AF_INET else f'[{host}]'}:{sock.getsockname()[1]}"
        return cls(sock, bound, f"{client.host or '127.0.0.1'}:{client.port}")

    def start(self, ready: asyncio.Event | None) -> None:
        self._task = asyncio.create_task(self._run(ready), name="schema-registry")

    async def _run(self, ready: asyncio.Event | None) -> None:
        if ready is not None:
            await ready.wait()
        module = await asyncio.to_thread(importlib.import_module, "suoi.http.registry.server")
        self.server = module.SchemaRegistryServer(self.bootstrap, self.url, sock=self.sock)
        await self.server.start()

    def registered_ids(self, subject: str) -> frozenset[int] | None:
        """`suoi.partition.schema_validation.SchemaIds`: the live ids of ``subject`` in this node's
        replayed store, read in-process (never HTTP); None until the first replay is done."""
        service = self.server.service if self.server is not None else None
        if service is None or not service.ready.is_set():
            return None
        return service.store.live_ids(subject)  # type: ignore[no-any-return]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.server is not None:
            await self.server.close()
        self.sock.close()
