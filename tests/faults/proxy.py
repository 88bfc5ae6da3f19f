"""A TCP proxy that injects network faults, driven from the test thread.

One `FaultProxy` runs an asyncio loop in a background thread and serves any number of
`Route`s; each route listens on its own 127.0.0.1 port and forwards to one target:

    with FaultProxy() as proxy:
        route = proxy.add(("127.0.0.1", broker_port), name="to-broker-2")
        ...connect clients to route.address...
        route.partition()          # blackhole: nothing flows, connections stay open, peers time out
        route.heal()               # bytes held during the partition are delivered, in order
        route.reset()              # RST every connection, and each new one at once
        route.drop("up")           # one direction only ("up" = client -> target, "down" = back)
        route.stats()              # bytes and connections, for assertions

Modes, per route:

* ``pass``: bytes flow both ways.
* ``drop``: the proxy stops reading in the dropped direction(s), so what the sender writes
  stays unacknowledged in socket buffers, as behind a real blackhole (TCP would keep
  retransmitting). Connections stay open; new connections are accepted (the kernel completes
  the handshake on the listening socket) but the target is not connected until the link lets a
  handshake through. On `heal()` everything held is delivered in order, so Kafka's framing is
  never torn; peers that gave up meanwhile have closed their side, and that close is delivered
  as well.
* ``reset``: every open connection is closed with a RST (both sides), and every new connection
  is accepted and reset at once. Set before `reset()` returns.

A route may also classify each connection by its first bytes (`source_of`, e.g. the client id
of the first Kafka request) and apply a mode only to connections from one source
(`block_source`), so one listening port can cut node A's connections while node B's pass.

Every control call runs on the proxy's loop and returns once it is in effect; every wait is
bounded (`CONTROL_TIMEOUT_S`, `CONNECT_TIMEOUT_S`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

HOST = "127.0.0.1"
#: A control call (mode change, stats) must be applied within this many seconds.
CONTROL_TIMEOUT_S = 10.0
#: Connecting to a route's target gives up after this long (the client connection is then reset).
CONNECT_TIMEOUT_S = 5.0
#: Read size per forwarding step.
CHUNK = 64 * 1024
#: Connections a route keeps open at once; more are reset at accept.
MAX_CONNECTIONS = 512
#: Bytes a classifier may look at before the connection counts as having no source.
CLASSIFY_LIMIT = 4096

Mode = Literal["pass", "drop", "reset"]
Direction = Literal["up", "down", "both"]
#: Given the first bytes a client sent, its source label; None while more bytes are needed.
SourceOf = Callable[[bytes], "str | None"]

_BOTH = frozenset({"up", "down"})


@dataclass(frozen=True)
class Rule:
    mode: Mode = "pass"
    #: The directions a "drop" holds ("up" = client -> target, "down" = target -> client).
    directions: frozenset[str] = _BOTH

    def holds(self, direction: str) -> bool:
        """True if bytes in `direction` ("up", "down", or "connect" for a new handshake) wait."""
        if self.mode != "drop":
            return False
        return bool(self.directions) if direction == "connect" else direction in self.directions


PASS = Rule()


@dataclass(frozen=True)
class RouteStats:
    accepted: int  # connections accepted on the listening port
    active: int  # connections open now
    refused: int  # connections reset at accept (reset mode, target unreachable, too many)
    resets: int  # established connections reset by the proxy
    bytes_up: int  # client -> target bytes forwarded
    bytes_down: int  # target -> client bytes forwarded
    sources: tuple[str, ...]  # the distinct sources seen (with a classifier)


def kafka_client_id(head: bytes) -> str | None:
    """The client id in the header of the Kafka request at the start of `head` ("" when the
    header has none), or None while `head` is too short. Every request header version starts
    with size, api key, api version, correlation id and a nullable int16-length client id."""
    if len(head) < 14:
        return None
    (length,) = struct.unpack_from(">h", head, 12)
    if length < 0:
        return ""
    if len(head) < 14 + length:
        return None
    return head[14:14 + length].decode("utf-8", errors="replace")


class _Reset(Exception):
    """The connection's rule became "reset"."""


class _Conn:
    def __init__(self, route: Route, client: asyncio.StreamWriter) -> None:
        self.route = route
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.source: str | None = None
        self.task: asyncio.Task[None] | None = None

    def abort(self) -> None:
        """Close both sides at once with a RST."""
        for writer in (self.client, self.upstream):
            if writer is None or writer.transport.is_closing():
                continue
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()

    async def closed(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer.wait_closed(), 2.0)


class Route:
    """One listening port forwarding to one target. Control it from any thread."""

    def __init__(self, proxy: FaultProxy, target: tuple[str, int], name: str,
                 source_of: SourceOf | None) -> None:
        self.proxy = proxy
        self.target = target
        self.name = name
        self.source_of = source_of
        self.port = 0
        self._server: asyncio.Server | None = None
        self._rule = PASS
        self._source_rules: dict[str, Rule] = {}
        self._conns: set[_Conn] = set()
        self._changed = asyncio.Event()
        self._accepted = self._refused = self._resets = self._up = self._down = 0
        self._sources: set[str] = set()

    def __repr__(self) -> str:
        return f"Route({self.name} {self.address} -> {self.target[0]}:{self.target[1]} {self._rule.mode})"

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    # -- control (any thread) ---------------------------------------------------------
    @property
    def mode(self) -> Mode:
        return self._rule.mode

    def set_mode(self, mode: Mode, direction: Direction = "both") -> None:
        self.proxy._call(self._apply, None, _rule(mode, direction))

    def pass_(self) -> None:
        self.set_mode("pass")

    def drop(self, direction: Direction = "both") -> None:
        self.set_mode("drop", direction)

    def reset(self) -> None:
        self.set_mode("reset")

    def partition(self) -> None:
        """Blackhole the route both ways (connections kept open, nothing flows)."""
        self.set_mode("drop")

    def heal(self) -> None:
        """Back to "pass", for every source too."""
        self.proxy._call(self._heal)

    def block_source(self, source: str, mode: Mode = "drop", direction: Direction = "both") -> None:
        """Apply `mode` to the connections whose classifier label is `source` (needs `source_of`)."""
        if self.source_of is None:
            raise ValueError(f"route {self.name} has no source classifier")
        self.proxy._call(self._apply, source, _rule(mode, direction))

    def unblock_source(self, source: str) -> None:
        self.proxy._call(self._apply, source, PASS)

    def blocked_sources(self) -> dict[str, Mode]:
        return self.proxy._call(lambda: {s: r.mode for s, r in self._source_rules.items()})

    def stats(self) -> RouteStats:
        return self.proxy._call(self._stats)

    # -- on the loop ------------------------------------------------------------------
    def _rule_for(self, conn: _Conn) -> Rule:
        if self._rule.mode != "pass" or conn.source is None:
            return self._rule
        return self._source_rules.get(conn.source, PASS)

    async def _apply(self, source: str | None, rule: Rule) -> None:
        if source is None:
            self._rule = rule
        elif rule == PASS:
            self._source_rules.pop(source, None)
        else:
            self._source_rules[source] = rule
        await self._changed_now()

    async def _heal(self) -> None:
        self._rule = PASS
        self._source_rules.clear()
        await self._changed_now()

    async def _changed_now(self) -> None:
        """Wake every waiting pump; reset (and wait for) the connections the rules now reset."""
        old, self._changed = self._changed, asyncio.Event()
        old.set()
        doomed = [c for c in self._conns if self._rule_for(c).mode == "reset"]
        for conn in doomed:
            self._resets += 1
            conn.abort()
            if conn.task is not None:
                conn.task.cancel()
        tasks = [c.task for c in doomed if c.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=CONTROL_TIMEOUT_S / 2)

    def _stats(self) -> RouteStats:
        return RouteStats(self._accepted, len(self._conns), self._refused, self._resets, self._up, self._down,
                          tuple(sorted(self._sources)))

    async def _wait_allowed(self, conn: _Conn, direction: str) -> None:
        """Until `direction` may flow for `conn`; raises _Reset if the connection is to be reset."""
        while True:
            rule = self._rule_for(conn)
            if rule.mode == "reset":
                raise _Reset
            if not rule.holds(direction):
                return
            await self._changed.wait()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Conn(self, writer)
        conn.task = asyncio.current_task()
        self._accepted += 1
        if len(self._conns) >= MAX_CONNECTIONS or self._rule.mode == "reset":
            self._refused += 1
            conn.abort()
            return
        self._conns.add(conn)
        graceful = False
        try:
            head = b""
            if self.source_of is not None:
                head = await self._classify(conn, reader)
            await self._wait_allowed(conn, "connect")
            try:
                up_reader, upstream = await asyncio.wait_for(
                    asyncio.open_connection(*self.target, limit=CHUNK), CONNECT_TIMEOUT_S)
            except (OSError, TimeoutError):
                self._refused += 1  # as if the target refused the handshake
                return
            conn.upstream = upstream
            if head:
                upstream.write(head)
                self._up += len(head)
            pumps = [asyncio.create_task(self._pump(conn, reader, upstream, "up")),
                     asyncio.create_task(self._pump(conn, up_reader, writer, "down"))]
            try:
                await asyncio.gather(*pumps)
                graceful = True  # both sides closed their half
            finally:
                for p in pumps:
                    p.cancel()
                await asyncio.wait(pumps, timeout=2.0)
        except _Reset:
            if conn.upstream is None:
                self._refused += 1
        except (asyncio.CancelledError, OSError, ConnectionError):
            pass
        finally:
            self._conns.discard(conn)
            if graceful:
                for w in (conn.client, conn.upstream):
                    if w is not None:
                        w.close()
            else:
                conn.abort()
            await conn.closed()

    async def _classify(self, conn: _Conn, reader: asyncio.StreamReader) -> bytes:
        assert self.source_of is not None
        head = b""
        while True:
            chunk = await reader.read(CHUNK)
            head += chunk
            label = self.source_of(head)
            if label is None and (not chunk or len(head) >= CLASSIFY_LIMIT):
                label = ""
            if label is not None:
                conn.source = label
                if label:
                    self._sources.add(label)
                return head  # after an early close the pump reads the EOF again

    async def _pump(self, conn: _Conn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    direction: str) -> None:
        while True:
            failed = False
            try:
                data = await reader.read(CHUNK)
            except (OSError, ConnectionError):
                data, failed = b"", True
            await self._wait_allowed(conn, direction)  # held bytes (or a close) wait here
            if failed:
                conn.abort()  # the peer reset: pass the reset on
                return
            if not data:
                if writer.can_write_eof() and not writer.transport.is_closing():
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                return
            writer.write(data)
            if direction == "up":
                self._up += len(data)
            else:
                self._down += len(data)
            await writer.drain()

    async def _start(self, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, HOST, port, limit=CHUNK)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._conns):
            conn.abort()
            if conn.task is not None:
                conn.task.cancel()
        tasks = [c.task for c in self._conns if c.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)


def _rule(mode: Mode, direction: Direction) -> Rule:
    if mode not in ("pass", "drop", "reset"):
        raise ValueError(f"mode must be pass, drop or reset, not {mode!r}")
    if direction not in ("up", "down", "both"):
        raise ValueError(f"direction must be up, down or both, not {direction!r}")
    if mode != "drop":
        return PASS if mode == "pass" else Rule("reset")
    return Rule("drop", _BOTH if direction == "both" else frozenset({direction}))


class FaultProxy:
    """The background thread and loop that serve the routes (see the module docstring)."""

    def __init__(self, name: str = "fault-proxy") -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.routes: list[Route] = []

    def start(self) -> FaultProxy:
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        if not ready.wait(CONTROL_TIMEOUT_S):
            raise RuntimeError("the proxy loop did not start")
        self._loop = loop
        return self

    def add(self, target: tuple[str, int] | str, *, name: str | None = None, port: int = 0,
            source_of: SourceOf | None = None) -> Route:
        """A new route listening on 127.0.0.1:`port` (0: a free one) forwarding to `target`."""
        if isinstance(target, str):
            host, _, p = target.rpartition(":")
            target = (host, int(p))
        self.start()
        route = self._call(lambda: Route(self, target, name or f"route-{len(self.routes) + 1}", source_of))
        self._call(route._start, port)
        self.routes.append(route)
        return route

    def partition(self, routes: Iterable[Route] | None = None) -> None:
        for r in self.routes if routes is None else routes:
            r.partition()

    def heal(self, routes: Iterable[Route] | None = None) -> None:
        for r in self.routes if routes is None else routes:
            r.heal()

    def close(self) -> None:
        """Reset every connection, stop listening, stop the thread (bounded)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        for route in self.routes:
            with contextlib.suppress(Exception):
                self._call(route._close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(CONTROL_TIMEOUT_S)
        self._loop = self._thread = None

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` on the loop (awaited if a coroutine) and return its result."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the proxy is not running")

        async def call() -> Any:
            result = fn(*args)
            return await result if asyncio.iscoroutine(result) else result

        return asyncio.run_coroutine_threadsafe(call(), loop).result(CONTROL_TIMEOUT_S)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
