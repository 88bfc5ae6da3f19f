"""Kafka listener: one asyncio Protocol per connection.

Requests on a connection may be pipelined. Each is dispatched as soon as it arrives
(handlers may finish out of order, e.g. a long-poll fetch behind a quick metadata
call) but responses are written strictly in request order, as Kafka clients require.
A connection with too many requests in flight, or whose peer reads too slowly, stops
being read until it drains; a broken frame closes only that connection.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from suoi.api.dispatch import Parts, ProtocolViolation, dispatch
from suoi.protocol.framing import FrameDecoder, FrameError

if TYPE_CHECKING:
    from suoi.broker import Broker

log = logging.getLogger("suoi.net")

MAX_IN_FLIGHT = 64
_NO_RESPONSE = object()


class KafkaConnection(asyncio.Protocol):
    def __init__(self, broker: Broker, max_request_size: int) -> None:
        self._broker = broker
        self._decoder = FrameDecoder(max_request_size)
        self._transport: asyncio.Transport | None = None
        self._peer = "?"
        # Responses in request order: ready parts, _NO_RESPONSE, or a pending Future.
        self._queue: collections.deque[Any] = collections.deque()
        self._reading_paused = False
        self._writing_paused = False
        self._closed = False
        #: Called once when the connection closes (e.g. the controller noting a broker's loss).
        self.close_callbacks: dict[Any, Callable[[], None]] = {}

    # -- asyncio callbacks --------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        peer = transport.get_extra_info("peername")
        self._peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self._broker.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._decoder.buffered and not self._closed:
            log.warning("connection from %s closed in the middle of a request (%d bytes unread)",
                        self._peer, self._decoder.buffered)
        self._closed = True
        self._broker.connections.discard(self)
        callbacks, self.close_callbacks = list(self.close_callbacks.values()), {}
        for callback in callbacks:
            try:
                callback()
            except Exception:
                log.exception("connection close callback failed")
        for item in self._queue:
            if isinstance(item, asyncio.Future):
                item.cancel()
        self._queue.clear()

    @property
    def local_port(self) -> int | None:
        """The port of the listener this connection came in on (which listener it is)."""
        sock = self._transport.get_extra_info("sockname") if self._transport is not None else None
        return int(sock[1]) if sock else None

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._update_reading()

    def data_received(self, data: bytes) -> None:
        try:
            frames = self._decoder.feed(data)
        except FrameError as exc:
            log.warning("closing connection from %s: %s", self._peer, exc)
            self._abort()
            return
        for frame in frames:
            if self._closed:
                return
            self._handle(frame)
        self._update_reading()

    # -- request handling ---------------------------------------------------------
    def _handle(self, frame: bytes) -> None:
        try:
            outcome = dispatch(self._broker, frame, self._peer, self)
        except ProtocolViolation as exc:
            log.warning("closing connection from %s: malformed request: %s", self._peer, exc)
            self._abort()
            return
        except Exception:
            log.exception("closing connection from %s: request handler failed", self._peer)
            self._abort()
            return
        if outcome is None:
            item: Any = _NO_RESPONSE
        elif isinstance(outcome, list):
            item = outcome
        else:
            item = asyncio.ensure_future(outcome)
            item.add_done_callback(self._on_done)
        if not self._queue and item is not _NO_RESPONSE and not isinstance(item, asyncio.Future):
            self._write(item)
            return
        self._queue.append(item)
        self._flush()

    def _on_done(self, fut: asyncio.Future[Parts | None]) -> None:
        if fut.cancelled() or self._closed:
            return
        exc = fut.exception()
        if exc is not None:
            log.error("closing connection from %s: request handler failed", self._peer, exc_info=exc)
            self._abort()
            return
        self._flush()

    def _flush(self) -> None:
        q = self._queue
        while q:
            head = q[0]
            if isinstance(head, asyncio.Future):
                if not head.done():
                    break
                parts = head.result()
                q.popleft()
                if parts is not None:
                    self._write(parts)
            else:
                q.popleft()
                if head is not _NO_RESPONSE:
                    self._write(head)
        self._update_reading()

    def _write(self, parts: Parts) -> None:
        if self._transport is not None and not self._closed:
            if len(parts) == 1:
                self._transport.write(parts[0])
            else:
                self._transport.writelines(parts)

    def _update_reading(self) -> None:
        if self._transport is None or self._closed:
            return
        should_pause = self._writing_paused or len(self._queue) >= MAX_IN_FLIGHT
        if should_pause and not self._reading_paused:
            self._transport.pause_reading()
            self._reading_paused = True
        elif not should_pause and self._reading_paused:
            self._transport.resume_reading()
            self._reading_paused = False

    def _abort(self) -> None:
        self._closed = True
        if self._transport is not None:
            self._transport.abort()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def start_listener(broker: Broker, host: str, port: int, max_request_size: int, *,
                         start_serving: bool = True) -> asyncio.Server:
    """Bind a listener; port 0 picks a free port (see `server.sockets`). With
    ``start_serving=False`` the port is reserved but refuses connections until
    ``server.start_serving()``."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: KafkaConnection(broker, max_request_size), host, port, reuse_address=True, backlog=1024,
        start_serving=start_serving,
    )
