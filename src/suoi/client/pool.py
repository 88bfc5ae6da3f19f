"""NodeClient: connections to other nodes by node id, opened lazily, reopened with backoff.

``pool.register(node_id, host, port)`` names a node; ``await pool.request(node_id, entity)``
sends on that node's connection, connecting first if needed. Concurrent callers share one
connection attempt. After a failed attempt (or a dropped connection) the node is in backoff:
requests fail at once with :class:`NodeNotReadyError` (a ``ConnectionError``) until
``retry_after``, with exponential, jittered backoff from ``reconnect_backoff_ms`` up to
``reconnect_backoff_max_ms`` (Kafka's ``reconnect.backoff*.ms``). Failing fast instead of
waiting keeps callers with their own timers (the Raft driver) in charge of retries.

A node may have several *lanes* (independent connections, one per purpose, as Kafka gives its
replica fetchers, transaction marker channel, forwarding and controller channels each their own
NetworkClient). Responses on one connection come in request order, so a request the peer holds
(a WriteTxnMarkers waiting for its ISR, a forwarded CreateTopics waiting for the quorum, a
long-poll Fetch) delays every answer behind it; if the request that would release it is one of
those (the follower Fetch that advances the high watermark), the two wait for each other until
a timeout. Traffic of different purposes therefore never shares a lane: see ``Lane``.

A request that times out closes its connection (as Kafka's NetworkClient does): we cannot tell
a slow peer from a dead one, and a half-open socket would otherwise swallow every later request.
The next request reconnects. Not thread-safe; one event loop.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

from suoi.client.connection import DEFAULT_MAX_RESPONSE_BYTES, KafkaClientConnection
from suoi.security.client import PLAINTEXT, ClientSecurity

__all__ = ["Lane", "NodeClient", "NodeNotReadyError", "UnknownNodeError"]

log = logging.getLogger("suoi.client")


class Lane:
    """Lane names: one connection per purpose between two nodes (see the module docstring)."""

    DEFAULT = "default"
    #: Follower Fetch and OffsetsForLeaderEpoch (Kafka's ReplicaFetcherThread); never held by
    #: anything that waits for replication, so the high watermark always advances.
    REPLICA_FETCH = "replica-fetch"
    #: WriteTxnMarkers (Kafka's TransactionMarkerChannelManager): each answer waits for the ISR.
    TXN_MARKERS = "txn-markers"
    #: Requests forwarded to the active controller (CreateTopics, ...): wait for the quorum.
    FORWARDING = "forwarding"
    #: BrokerRegistration/BrokerHeartbeat (BrokerLifecycleManager): the controller fences a
    #: broker whose heartbeat connection closes, so nothing slow may share it.
    LIFECYCLE = "broker-lifecycle"
    #: AlterPartition (AlterPartitionManager): ISR changes, which the high watermark may need.
    ALTER_PARTITION = "alter-partition"
    #: AllocateProducerIds (the producer id manager's channel).
    PRODUCER_IDS = "producer-ids"


class UnknownNodeError(LookupError):
    """``request`` for a node id that was never registered."""


class NodeNotReadyError(ConnectionError):
    """The node's last connection attempt failed; no new attempt before ``retry_after``."""

    def __init__(self, node_id: int, retry_after: float, cause: str) -> None:
        super().__init__(f"node {node_id} not ready ({cause}); retrying in {max(0.0, retry_after - time.monotonic()):.3f}s")
        self.node_id = node_id
        self.retry_after = retry_after


@dataclass(slots=True)
class _Lane:
    conn: KafkaClientConnection | None = None
    connecting: asyncio.Future[KafkaClientConnection] | None = None
    failures: int = 0
    retry_after: float = 0.0
    last_error: str = ""


@dataclass(slots=True)
class _Node:
    host: str
    port: int
    lanes: dict[str, _Lane] = field(default_factory=dict)


class NodeClient:
    def __init__(
        self,
        *,
        client_id: str = "suoi-internal",
        connect_timeout: float = 5.0,
        reconnect_backoff_ms: int = 50,
        reconnect_backoff_max_ms: int = 1000,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        rng: random.Random | None = None,
        security: ClientSecurity = PLAINTEXT,
    ) -> None:
        self.client_id = client_id
        #: TLS/SASL towards the listener the nodes are registered at (one listener per pool)
        self.security = security
        self.connect_timeout = connect_timeout
        self.backoff_ms = reconnect_backoff_ms
        self.backoff_max_ms = reconnect_backoff_max_ms
        self.max_response_bytes = max_response_bytes
        self._rng = rng or random.Random()
        self._nodes: dict[int, _Node] = {}
        self._closed = False
        self._background: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ nodes
    def register(self, node_id: int, host: str, port: int) -> None:
        """Add a node, or move it to a new address (its open connections are closed)."""
        old = self._nodes.get(node_id)
        if old is not None and (old.host, old.port) == (host, port):
            return
        self._nodes[node_id] = _Node(host, port)
        if old is not None:
            self._drop(old)

    def unregister(self, node_id: int) -> None:
        old = self._nodes.pop(node_id, None)
        if old is not None:
            self._drop(old)

    def address(self, node_id: int) -> tuple[str, int]:
        node = self._node(node_id)
        return node.host, node.port

    @property
    def node_ids(self) -> list[int]:
        return sorted(self._nodes)

    def is_ready(self, node_id: int, lane: str = Lane.DEFAULT) -> bool:
        """True if a request would go out on an open connection right now."""
        node = self._nodes.get(node_id)
        ln = node.lanes.get(lane) if node else None
        return bool(ln and ln.conn and not ln.conn.closed)

    # ------------------------------------------------------------------ requests
    async def request(self, node_id: int, entity: Any, *, timeout: float | None = 30.0,
                      lane: str = Lane.DEFAULT, views: bool = False) -> Any:
        """Send ``entity`` to ``node_id`` and return the decoded response (``views``: see
        `KafkaClientConnection.request`).

        Raises ``UnknownNodeError``, ``NodeNotReadyError`` (in backoff), ``ConnectionError``
        (connect failed or the connection dropped) or ``asyncio.TimeoutError``. ``timeout``
        covers connecting and the request.
        """
        conn = self._open_connection(node_id, lane)
        if conn is not None:  # the usual case (a follower's fetches): no connect step to await or time
            remaining = timeout
        else:
            loop = asyncio.get_running_loop()
            deadline = None if timeout is None else loop.time() + timeout
            conn = await self._connection(node_id, lane, timeout)
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
        try:
            return await conn.request(entity, timeout=remaining, views=views)
        except TimeoutError:
            self._spawn(conn.close())
            raise
        except ConnectionError:
            self._note_failure(node_id, lane, conn, "connection lost")
            raise

    def _open_connection(self, node_id: int, lane: str) -> KafkaClientConnection | None:
        """The lane's open connection if it can take a request now (else `_connection` decides)."""
        node = self._nodes.get(node_id)
        ln = node.lanes.get(lane) if node is not None else None
        conn = ln.conn if ln is not None else None
        if conn is None or conn.closed or self._closed or conn.replace_after is not None:
            return None
        return conn

    async def _connection(self, node_id: int, lane: str, timeout: float | None) -> KafkaClientConnection:
        if self._closed:
            raise ConnectionError("NodeClient is closed")
        node = self._node(node_id)
        ln = node.lanes.setdefault(lane, _Lane())
        if ln.conn is not None and not ln.conn.closed:
            conn = ln.conn
            if conn.replace_after is None or conn.in_flight or time.monotonic() < conn.replace_after:
                return conn
            ln.conn = None  # its SASL session ends soon (KIP-368): a new connection, a new session
            self._spawn(conn.close())
        if ln.connecting is None:
            now = time.monotonic()
            if now < ln.retry_after:
                raise NodeNotReadyError(node_id, ln.retry_after, ln.last_error)
            ln.connecting = asyncio.ensure_future(self._connect(node_id, node, ln))
            ln.connecting.add_done_callback(_retrieve)
        attempt = ln.connecting
        connect_timeout = self.connect_timeout if timeout is None else min(timeout, self.connect_timeout)
        try:
            # shield: one caller's timeout must not cancel the attempt the others share
            return await asyncio.wait_for(asyncio.shield(attempt), connect_timeout)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if attempt.cancelled() and not (task is not None and task.cancelling()):
                raise ConnectionError(f"node {node_id}: connection attempt abandoned (pool closed)") from None
            raise

    async def _connect(self, node_id: int, node: _Node, ln: _Lane) -> KafkaClientConnection:
        try:
            conn = await KafkaClientConnection.connect(
                node.host, node.port, client_id=self.client_id, timeout=self.connect_timeout,
                max_response_bytes=self.max_response_bytes, security=self.security,
            )
        except (TimeoutError, ConnectionError, OSError) as exc:
            ln.failures += 1
            ln.last_error = str(exc) or type(exc).__name__
            ln.retry_after = time.monotonic() + self._backoff(ln.failures)
            raise ConnectionError(f"node {node_id} at {node.host}:{node.port}: {ln.last_error}") from exc
        finally:
            ln.connecting = None
        if self._closed or self._nodes.get(node_id) is not node:
            await conn.close()  # closed or re-registered while we were connecting
            raise ConnectionError(f"node {node_id}: connection no longer wanted")
        ln.conn = conn
        ln.failures = 0
        return conn

    def _note_failure(self, node_id: int, lane: str, conn: KafkaClientConnection, reason: str) -> None:
        node = self._nodes.get(node_id)
        ln = node.lanes.get(lane) if node else None
        if ln is not None and ln.conn is conn:
            ln.conn = None
            ln.failures += 1
            ln.last_error = reason
            # the first reconnect after a drop is immediate; repeated failures back off
            ln.retry_after = time.monotonic() + (self._backoff(ln.failures - 1) if ln.failures > 1 else 0.0)

    def _backoff(self, failures: int) -> float:
        ms = min(self.backoff_max_ms, self.backoff_ms * (2 ** min(20, max(0, failures - 1))))
        return ms * self._rng.uniform(0.8, 1.2) / 1000

    # ------------------------------------------------------------------ shutdown
    def _drop(self, node: _Node) -> None:
        for ln in node.lanes.values():
            if ln.conn is not None:
                self._spawn(ln.conn.close())
            if ln.connecting is not None:
                ln.connecting.cancel()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        """Close every connection; in-flight requests fail with ``ConnectionError``."""
        self._closed = True
        conns = []
        for node in self._nodes.values():
            for ln in node.lanes.values():
                if ln.connecting is not None:
                    ln.connecting.cancel()
                if ln.conn is not None:
                    conns.append(ln.conn)
                    ln.conn = None
        for conn in conns:
            await conn.close()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    def _node(self, node_id: int) -> _Node:
        try:
            return self._nodes[node_id]
        except KeyError:
            raise UnknownNodeError(f"unknown node id {node_id}") from None


def _retrieve(fut: asyncio.Future[Any]) -> None:
    """Mark a shared attempt's outcome as seen even if every waiter gave up on it."""
    if not fut.cancelled():
        fut.exception()
