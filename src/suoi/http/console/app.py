"""The console's aiohttp app: a one-page UI (static/, plain HTML/CSS/JS with SVG, nothing
fetched at run time) and its JSON API.

    GET /                         the page (views are #/cluster, #/map, #/topics/NAME, #/groups/ID, ...)
    GET /api/snapshot             the cluster's state (snapshot.py), at most `interval` old
    GET /api/live                 WebSocket: the snapshot, then every change of it (what the page uses:
                                  browsers cap HTTP/1.1 connections per host at 6, and every tab holds
                                  an event stream open; WebSockets do not count against that cap)
    GET /api/events               the same as Server-Sent Events (for curl and scripts)
    GET /api/topics/NAME/configs  DescribeConfigs of a topic (404 for an unknown topic)
    GET /api/topics/NAME/partitions/P/messages?offset=|timestamp=&limit=   the message browser
    GET /api/transactions         ongoing transactions and each partition's producers (transactions.py)
    GET /api/acls                 ACL bindings, or {"enabled": false} without an authorizer (acls.py)
    GET /api/users                SCRAM users (mechanisms, iterations) and client quotas
    GET /api/stats                polls done, requests sent, pages listening (the console's own cost)
    POST /api/topics {name, partitions, replication_factor}          create a topic
    POST /api/topics/NAME/partitions {count}                           add partitions
    POST /api/topics/NAME/configs {name, value}                        set a config (value null: default)
    DELETE /api/topics/NAME                                            delete a topic
    POST /api/topics/NAME/partitions/P/messages {key, value, headers}  produce one record
    POST /api/groups/ID/reset-offsets {topic, to, offset, execute}     plan (dry run) or commit
    POST /api/acls {principal, host, operation, permission, resource_type, resource_name, pattern_type}
    POST /api/acls/delete {the same fields}                            delete exactly that binding

Writes take JSON bodies only (`Content-Type: application/json`): a page of another origin
cannot send one without a CORS preflight, which this app never grants.

`Console` owns the cluster client and the shared poller; `suoi console` runs it standalone and
a node runs it on its own loop when `console.listeners` is set (`start_for_node`).
"""

from __future__ import annotations

import asyncio
import html
import logging
from importlib import resources
from typing import Any

from aiohttp import web

from suoi.http.console import kafka_writes as writes
from suoi.http.console.acls import AccessView, binding_from, create_acl, delete_acl
from suoi.http.console.byte_rates import ByteRates
from suoi.http.console.kafka_reads import ClusterClient, KafkaReadError
from suoi.http.console.messages import browse
from suoi.http.console.schemas import SchemaDecoder
from suoi.http.console.snapshot import Poller
from suoi.http.console.transactions import TransactionsView

__all__ = ["Console", "parse_listener"]

log = logging.getLogger("suoi.console")

STATIC = resources.files("suoi.http.console") / "static"
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}
HEARTBEAT_S = 15.0
NOT_FOUND_PAGE = ("<!doctype html><title>Not found · suoi console</title><body style='font-family:sans-serif'>"
                  "<h1>404 — nothing here</h1><p>{what}</p><p><a href='/'>Back to the cluster</a></p>")


def parse_listener(text: str) -> tuple[str, int]:
    """`http://HOST:PORT` or `HOST:PORT` as (host, port); only http (the console serves no TLS)."""
    scheme, sep, rest = text.strip().partition("://")
    if not sep:
        scheme, rest = "http", text.strip()
    host, colon, port = rest.rstrip("/").rpartition(":")
    if scheme.lower() != "http" or not colon or not port.isdigit():
        raise ValueError(f"console listener must be http://HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


class Console:
    def __init__(self, bootstrap: list[tuple[str, int]], *, interval: float = 1.0, timeout: float = 5.0,
                 read_only: bool = False, schema_registry: str | None = None, security: Any = None) -> None:
        self.read_only = read_only  # writes answer 403 and the page shows no forms
        self.decoder = SchemaDecoder(schema_registry) if schema_registry else None
        self.client = ClusterClient(bootstrap, timeout=timeout, security=security)
        self.byte_rates = ByteRates(self.client)
        self.poller = Poller(self.client, interval, self.byte_rates)
        self.transactions = TransactionsView(self.client, interval)
        self.access = AccessView(self.client, interval)
        self._runner: web.AppRunner | None = None
        self._streams: set[web.StreamResponse] = set()  # open live connections (SSE and WebSocket)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_not_found])
        app.router.add_get("/", self._index)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/api/snapshot", self._snapshot)
        app.router.add_get("/api/events", self._events)
        app.router.add_get("/api/live", self._live)
        app.router.add_get("/api/stats", self._stats)
        app.router.add_get("/api/transactions", self._transactions)
        app.router.add_get("/api/acls", self._acls)
        app.router.add_get("/api/users", self._users)
        app.router.add_post("/api/acls", self._create_acl)
        app.router.add_post("/api/acls/delete", self._delete_acl)
        app.router.add_get("/api/topics/{topic}/configs", self._configs)
        app.router.add_get("/api/topics/{topic}/partitions/{partition}/messages", self._messages)
        app.router.add_post("/api/topics", self._create_topic)
        app.router.add_post("/api/topics/{topic}/partitions", self._add_partitions)
        app.router.add_post("/api/topics/{topic}/configs", self._alter_config)
        app.router.add_delete("/api/topics/{topic}", self._delete_topic)
        app.router.add_post("/api/topics/{topic}/partitions/{partition}/messages", self._produce)
        app.router.add_post("/api/groups/{group}/reset-offsets", self._reset_offsets)
        return app

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Serve on host:port (0 = any free port); the bound address."""
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()  # type: ignore[union-attr]
        return bound[0], bound[1]

    async def stop(self) -> None:
        await self.poller.close()
        for stream in list(self._streams):  # live handlers would hold the shutdown otherwise
            if not isinstance(stream, web.WebSocketResponse):
                stream.force_close()
        await asyncio.gather(*(ws.close() for ws in self._streams if isinstance(ws, web.WebSocketResponse)),
                             return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        await self.client.close()
        await self.byte_rates.close()
        if self.decoder is not None:
            await self.decoder.close()

    # ------------------------------------------------------------------ handlers
    async def _index(self, request: web.Request) -> web.Response:
        page = (STATIC / "index.html").read_text()
        if self.read_only:
            page = page.replace("<body>", '<body data-read-only="true">', 1)
        return web.Response(text=page, content_type="text/html")

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        suffix = name[name.rfind("."):] if "." in name else ""
        if "/" in name or name.startswith(".") or suffix not in STATIC_TYPES or not (STATIC / name).is_file():
            raise web.HTTPNotFound(text=f"no file {name}")
        return web.Response(text=(STATIC / name).read_text(), content_type=STATIC_TYPES[suffix],
                            headers={"Cache-Control": "no-cache"})

    async def _snapshot(self, request: web.Request) -> web.Response:
        await self.poller.snapshot()
        return web.Response(text=self.poller.latest_text, content_type="application/json")

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response({"read_only": self.read_only, "polls": self.poller.polls, "requests": self.client.requests,
                                  "last_poll_ms": round(self.poller.last_poll_ms, 1),
                                  "listeners": len(self._streams), "interval_s": self.poller.interval})

    async def _transactions(self, request: web.Request) -> web.Response:
        return await self._on_demand(self.transactions.read(await self.poller.snapshot()))

    async def _acls(self, request: web.Request) -> web.Response:
        return await self._on_demand(self.access.acls.get())

    async def _users(self, request: web.Request) -> web.Response:
        return await self._on_demand(self.access.users.get())

    @staticmethod
    async def _on_demand(read: Any) -> web.Response:
        try:
            return web.json_response(await read)
        except (KafkaReadError, OSError) as exc:
            return web.json_response({"error": str(exc)}, status=502)

    async def _create_acl(self, request: web.Request) -> web.Response:
        return await self._write(request, lambda b: self._acl_change(create_acl, b))

    async def _delete_acl(self, request: web.Request) -> web.Response:
        return await self._write(request, lambda b: self._acl_change(delete_acl, b))

    async def _acl_change(self, change: Any, body: dict[str, Any]) -> Any:
        result = await change(self.client, binding_from(body))
        self.access.acls.forget()  # the page reads them again at once
        return result

    async def _live(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and origin.split("://", 1)[-1] != request.host:
            # WebSockets skip CORS: without this, any site open in the browser could read the cluster
            return web.json_response({"error": "cross-origin WebSocket refused"}, status=403)
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, timeout=0.5)  # timeout: of the close handshake at stop
        await ws.prepare(request)
        queue = self.poller.subscribe()
        self._streams.add(ws)
        closed = asyncio.ensure_future(ws.receive())  # the page sends nothing: any message is its close
        try:
            await self.poller.snapshot()
            await ws.send_str(self.poller.latest_text)
            while not ws.closed:
                update = asyncio.ensure_future(queue.get())
                await asyncio.wait({update, closed}, return_when=asyncio.FIRST_COMPLETED)
                if not update.done():
                    update.cancel()
                    break
                await ws.send_str(update.result())
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            closed.cancel()
            self.poller.unsubscribe(queue)
            self._streams.discard(ws)
        return ws

    async def _events(self, request: web.Request) -> web.StreamResponse:
        stream = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await stream.prepare(request)
        queue = self.poller.subscribe()
        self._streams.add(stream)
        try:
            await self.poller.snapshot()
            await stream.write(f"data: {self.poller.latest_text}\n\n".encode())
            while True:
                try:
                    text = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                except TimeoutError:
                    await stream.write(b": keep-alive\n\n")
                    continue
                await stream.write(f"data: {text}\n\n".encode())
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.poller.unsubscribe(queue)
            self._streams.discard(stream)
        return stream

    def _topic(self, name: str) -> dict[str, Any]:
        topic = next((t for t in (self.poller.latest or {}).get("topics", []) if t["name"] == name), None)
        if topic is None:
            raise web.HTTPNotFound(text=f'{{"error": "unknown topic {name}"}}', content_type="application/json")
        return topic

    async def _configs(self, request: web.Request) -> web.Response:
        await self.poller.snapshot()
        name = request.match_info["topic"]
        self._topic(name)
        try:
            return web.json_response({"topic": name, "configs": await self.client.topic_configs(name)})
        except (KafkaReadError, OSError) as exc:
            return web.json_response({"error": str(exc)}, status=502)

    async def _messages(self, request: web.Request) -> web.Response:
        await self.poller.snapshot()
        topic = self._topic(request.match_info["topic"])
        q = request.query
        try:
            index = int(request.match_info["partition"])
            offset = int(q["offset"]) if q.get("offset") else None
            timestamp = int(q["timestamp"]) if q.get("timestamp") else None
            limit = int(q.get("limit") or 50)
        except ValueError:
            return web.json_response({"error": "partition, offset, timestamp and limit are integers"}, status=400)
        part = next((p for p in topic["partitions"] if p["partition"] == index), None)
        if part is None:
            return web.json_response({"error": f"{topic['name']} has no partition {index}"}, status=404)
        if part["leader"] < 0:
            return web.json_response({"error": f"{topic['name']}-{index} has no leader"}, status=503)
        try:
            result = await browse(self.client, part["leader"], topic["name"], index, offset=offset,
                                  timestamp=timestamp, limit=limit, decoder=self.decoder)
        except (KafkaReadError, OSError) as exc:
            return web.json_response({"error": str(exc)}, status=502)
        return web.json_response({"topic": topic["name"], "partition": index, **result})

    # ------------------------------------------------------------------ writes
    async def _write(self, request: web.Request, action: Any) -> web.Response:
        """Run `action(body)`; Kafka's refusal is a 400 naming the error, an unreachable cluster a 502.
        A fresh poll follows, so every page sees the change at once."""
        if self.read_only:
            return web.json_response({"error": "this console is read-only (--read-only)"}, status=403)
        if request.method == "POST" and request.content_type != "application/json":
            return web.json_response({"error": "send JSON (Content-Type: application/json)"}, status=415)
        try:
            body = await request.json() if request.method == "POST" else {}
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            result = await action(body)
        except (ValueError, TypeError, KeyError) as exc:
            return web.json_response({"error": f"bad request: {exc}"}, status=400)
        except writes.KafkaWriteError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        except (KafkaReadError, OSError) as exc:
            return web.json_response({"error": str(exc)}, status=502)
        log.info("console: %s %s", request.method, request.path)
        await self.poller.poll()
        return web.json_response(result)

    async def _create_topic(self, request: web.Request) -> web.Response:
        async def act(b: dict[str, Any]) -> Any:
            name = str(b["name"]).strip()
            if not name:
                raise ValueError("a topic needs a name")
            return await writes.create_topic(self.client, name, int(b.get("partitions", 1)),
                                             int(b.get("replication_factor", -1)))
        return await self._write(request, act)

    async def _add_partitions(self, request: web.Request) -> web.Response:
        await self.poller.snapshot()
        name = self._topic(request.match_info["topic"])["name"]
        return await self._write(request, lambda b: writes.add_partitions(self.client, name, int(b["count"])))

    async def _alter_config(self, request: web.Request) -> web.Response:
        await self.poller.snapshot()
        name = self._topic(request.match_info["topic"])["name"]

        async def act(b: dict[str, Any]) -> Any:
            value = b.get("value")
            return await writes.alter_topic_config(self.client, name, str(b["name"]).strip(),
                                                   None if value in (None, "") else str(value))
        return await self._write(request, act)

    async def _delete_topic(self, request: web.Request) -> web.Response:
        await self.poller.snapshot()
        name = self._topic(request.match_info["topic"])["name"]
        return await self._write(request, lambda b: writes.delete_topic(self.client, name))

    async def _produce(self, request: web.Request) -> web.Response:
        await self.poller.snapshot()
        topic = self._topic(request.match_info["topic"])

        async def act(b: dict[str, Any]) -> Any:
            index = int(request.match_info["partition"])
            part = next((p for p in topic["partitions"] if p["partition"] == index), None)
            if part is None or part["leader"] < 0:
                raise writes.KafkaWriteError(f"{topic['name']}-{index} has no leader")
            text = lambda v: None if v is None else str(v).encode()  # noqa: E731
            headers = [(str(k), text(v)) for k, v in b.get("headers") or []]
            return await writes.produce_one(self.client, part["leader"], topic["name"], index, text(b.get("key")),
                                            text(b.get("value")), headers)
        return await self._write(request, act)

    async def _reset_offsets(self, request: web.Request) -> web.Response:
        snap = await self.poller.snapshot()
        gid = request.match_info["group"]
        group = next((g for g in snap["groups"] if g["id"] == gid), None)
        if group is None:
            raise web.HTTPNotFound(text=f'{{"error": "unknown group {gid}"}}', content_type="application/json")

        async def act(b: dict[str, Any]) -> Any:
            topic = self._topic(str(b["topic"]))
            to = str(b.get("to", "earliest"))
            if to not in ("earliest", "latest", "offset"):
                raise ValueError("to is earliest, latest or offset")
            offset = int(b["offset"]) if b.get("offset") not in (None, "") else None
            plan = await writes.reset_plan(self.client, group, topic, to, offset)
            if b.get("execute"):
                if group["members"]:
                    raise writes.KafkaWriteError(f"group {gid} has {len(group['members'])} active members: "
                                                 "stop its consumers first (as kafka-consumer-groups.sh asks)")
                await writes.commit_offsets(self.client, group["coordinator"], gid, plan)
            return {"group": gid, "executed": bool(b.get("execute")), "plan": plan}
        return await self._write(request, act)


@web.middleware
async def _not_found(request: web.Request, handler: Any) -> web.StreamResponse:
    """A friendly page (HTML) or JSON error for anything unknown, instead of aiohttp's bare text."""
    try:
        return await handler(request)
    except web.HTTPNotFound as exc:
        if request.path.startswith("/api/"):
            text = exc.text if exc.content_type == "application/json" else '{"error": "not found"}'
            return web.Response(status=404, text=text, content_type="application/json")
        return web.Response(status=404, content_type="text/html",
                            text=NOT_FOUND_PAGE.format(what=f"The console has no page at {html.escape(request.path)}."))
