"""The fault-injecting proxy against plain sockets: an echo server behind it, clients in front."""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
from collections.abc import Iterator

import pytest

from tests.conftest import wait_until
from tests.faults.proxy import FaultProxy, Route, kafka_client_id

#: How long a test waits to conclude that nothing arrives (a blackholed link).
QUIET_S = 0.3


class EchoServer(socketserver.ThreadingTCPServer):
    """Echoes every byte back; remembers what each connection sent."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _EchoHandler)
        self.received: list[bytearray] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def target(self) -> tuple[str, int]:
        host, port = self.server_address[:2]
        return str(host), int(port)

    def total(self) -> bytes:
        with self.lock:
            return b"".join(bytes(r) for r in self.received)

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(5)


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: EchoServer = self.server  # type: ignore[assignment]
        got = bytearray()
        with server.lock:
            server.received.append(got)
        self.request.settimeout(20)
        try:
            while data := self.request.recv(65536):
                with server.lock:
                    got += data
                self.request.sendall(data)
        except OSError:
            pass


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    with FaultProxy() as p:
        yield p


def connect(route: Route, timeout: float = 5.0) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", route.port), timeout=timeout)
    s.settimeout(timeout)
    return s


def recv_exactly(s: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise ConnectionError(f"closed after {len(out)} of {n} bytes")
        out += chunk
    return bytes(out)


def nothing_arrives(s: socket.socket) -> bool:
    s.settimeout(QUIET_S)
    try:
        data = s.recv(1)
    except TimeoutError:
        return True
    finally:
        s.settimeout(5.0)
    raise AssertionError(f"expected silence, got {data!r}")


def is_reset(s: socket.socket) -> bool:
    """The proxy closed this connection: a RST (or, if it raced, an EOF)."""
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def new_connection_is_reset(route: Route, first: bytes = b"") -> bool:
    """A new connection is reset by the proxy (possibly before connect() even returns)."""
    try:
        s = connect(route)
    except ConnectionResetError:
        return True
    with s:
        try:
            s.sendall(first)
        except (ConnectionResetError, BrokenPipeError):
            return True
        return is_reset(s)


def test_pass_forwards_both_ways_and_counts(proxy: FaultProxy, echo: EchoServer) -> None:
    route = proxy.add(echo.target, name="echo")
    assert route.address == f"127.0.0.1:{route.port}" and route.mode == "pass"
    payload = bytes(range(256)) * 4096  # 1 MiB, both ways at once
    with connect(route) as s:
        sender = threading.Thread(target=s.sendall, args=(payload,))
        sender.start()
        assert recv_exactly(s, len(payload)) == payload
        sender.join(10)
        stats = route.stats()
        assert (stats.accepted, stats.active, stats.refused, stats.resets) == (1, 1, 0, 0)
        assert stats.bytes_up == stats.bytes_down == len(payload)
    wait_until(lambda: route.stats().active == 0, timeout=5, message="the closed connection gone from the proxy")
    assert echo.total() == payload


def test_client_close_is_forwarded(proxy: FaultProxy, echo: EchoServer) -> None:
    route = proxy.add(echo.target)
    s = connect(route)
    s.sendall(b"bye")
    assert recv_exactly(s, 3) == b"bye"
    s.shutdown(socket.SHUT_WR)
    assert s.recv(1) == b""  # the echo server saw our EOF, closed, and its close came back
    s.close()


def test_partition_holds_bytes_keeps_connections_and_heal_delivers_them_in_order(
        proxy: FaultProxy, echo: EchoServer) -> None:
    route = proxy.add(echo.target)
    with connect(route) as s:
        s.sendall(b"before")
        assert recv_exactly(s, 6) == b"before"
        route.partition()
        assert route.mode == "drop"
        s.sendall(b"during-1")
        s.sendall(b"during-2")
        assert nothing_arrives(s)
        assert echo.total() == b"before"  # nothing reached the target either
        # a new connection is accepted, but the target does not see it while partitioned
        with connect(route) as late:
            late.sendall(b"late")
            assert nothing_arrives(late)
            assert len(echo.received) == 1
            route.heal()
            assert recv_exactly(late, 4) == b"late"
        assert recv_exactly(s, 16) == b"during-1during-2"
        s.sendall(b"after")
        assert recv_exactly(s, 5) == b"after"
    stats = route.stats()
    assert stats.accepted == 2 and stats.resets == 0 and stats.refused == 0


def test_one_direction_drop(proxy: FaultProxy, echo: EchoServer) -> None:
    route = proxy.add(echo.target)
    with connect(route) as s:
        s.sendall(b"hi")  # established through the proxy (a one-way drop stops new handshakes)
        assert recv_exactly(s, 2) == b"hi"
        route.drop("down")  # requests reach the target, answers do not come back
        s.sendall(b"ping")
        wait_until(lambda: echo.total() == b"hiping", timeout=5, message="the target to receive the request")
        assert nothing_arrives(s)
        route.heal()
        assert recv_exactly(s, 4) == b"ping"

        route.drop("up")  # requests are held, nothing reaches the target
        s.sendall(b"pong")
        assert nothing_arrives(s)
        assert echo.total() == b"hiping"
        route.pass_()
        assert recv_exactly(s, 4) == b"pong"
        assert echo.total() == b"hipingpong"


def test_reset_closes_open_connections_and_refuses_new_ones(proxy: FaultProxy, echo: EchoServer) -> None:
    route = proxy.add(echo.target)
    open_conns = [connect(route) for _ in range(3)]
    try:
        for s in open_conns:
            s.sendall(b"x")
            assert recv_exactly(s, 1) == b"x"
        route.reset()  # in effect when it returns
        assert route.stats().active == 0
        for s in open_conns:
            assert is_reset(s)
        assert new_connection_is_reset(route)
        stats = route.stats()
        assert stats.resets == 3 and stats.refused == 1 and stats.accepted == 4
        route.heal()
        with connect(route) as s:
            s.sendall(b"again")
            assert recv_exactly(s, 5) == b"again"
    finally:
        for s in open_conns:
            s.close()


def test_reset_while_partitioned(proxy: FaultProxy, echo: EchoServer) -> None:
    """Connections held by a partition are reset too (none is left dangling)."""
    route = proxy.add(echo.target)
    with connect(route) as s:
        route.partition()
        s.sendall(b"held")
        route.reset()
        assert is_reset(s)
    assert route.stats().active == 0


def test_unreachable_target_closes_the_client(proxy: FaultProxy) -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        dead_port = placeholder.getsockname()[1]  # bound, not listening: connections are refused
        route = proxy.add(("127.0.0.1", dead_port))
        assert new_connection_is_reset(route)
        wait_until(lambda: route.stats().refused == 1, timeout=5, message="the refused connection counted")


def kafka_header(client_id: str | None, correlation_id: int = 1) -> bytes:
    """A Kafka request frame (ApiVersions v0 header only; the echo server does not care)."""
    cid = b"\xff\xff" if client_id is None else struct.pack(">h", len(client_id)) + client_id.encode()
    body = struct.pack(">hhi", 18, 0, correlation_id) + cid
    return struct.pack(">i", len(body)) + body


def test_kafka_client_id() -> None:
    frame = kafka_header("suoi-node-2")
    assert kafka_client_id(frame) == "suoi-node-2"
    assert kafka_client_id(frame + b"more") == "suoi-node-2"
    assert all(kafka_client_id(frame[:n]) is None for n in range(len(frame)))
    assert kafka_client_id(kafka_header(None)) == ""


def test_block_one_source_only(proxy: FaultProxy, echo: EchoServer) -> None:
    route = proxy.add(echo.target, source_of=kafka_client_id)
    with connect(route) as a, connect(route) as b:
        fa, fb = kafka_header("node-a"), kafka_header("node-b")
        a.sendall(fa)
        b.sendall(fb)
        assert recv_exactly(a, len(fa)) == fa and recv_exactly(b, len(fb)) == fb
        assert route.stats().sources == ("node-a", "node-b")

        route.block_source("node-a")
        assert route.blocked_sources() == {"node-a": "drop"}
        a.sendall(b"1")
        b.sendall(b"2")
        assert recv_exactly(b, 1) == b"2"
        assert nothing_arrives(a)
        # a new connection from the blocked source is held from its first request on
        with connect(route) as a2:
            a2.sendall(kafka_header("node-a", 2))
            assert nothing_arrives(a2)
            route.unblock_source("node-a")
            assert recv_exactly(a, 1) == b"1"
            assert recv_exactly(a2, len(fa)) == kafka_header("node-a", 2)

        route.block_source("node-b", "reset")
        assert is_reset(b)
        a.sendall(b"3")
        assert recv_exactly(a, 1) == b"3"
        assert new_connection_is_reset(route, fb)
        route.heal()
        assert route.blocked_sources() == {}
        with connect(route) as b3:
            b3.sendall(fb)
            assert recv_exactly(b3, len(fb)) == fb


def test_block_source_needs_a_classifier(proxy: FaultProxy, echo: EchoServer) -> None:
    route = proxy.add(echo.target)
    with pytest.raises(ValueError, match="no source classifier"):
        route.block_source("x")
    with pytest.raises(ValueError, match="mode must be"):
        route.set_mode("sideways")  # type: ignore[arg-type]


def test_proxy_wide_partition_and_close(echo: EchoServer) -> None:
    proxy = FaultProxy().start()
    routes = [proxy.add(echo.target, name=f"r{i}") for i in range(3)]
    conns = [connect(r) for r in routes]
    try:
        proxy.partition()
        assert [r.mode for r in routes] == ["drop"] * 3
        for s in conns:
            s.sendall(b"z")
            assert nothing_arrives(s)
        proxy.heal(routes[:1])
        assert recv_exactly(conns[0], 1) == b"z"
        assert nothing_arrives(conns[1])
        proxy.close()
        for s in conns[1:]:
            assert is_reset(s)
        for r in routes:  # nothing listens any more
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", r.port), timeout=2).close()
        proxy.close()  # idempotent
        with pytest.raises(RuntimeError, match="not running"):
            routes[0].stats()
    finally:
        for s in conns:
            s.close()
        proxy.close()
