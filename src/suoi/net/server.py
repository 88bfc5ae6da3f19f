"""Kafka listener: one asyncio Protocol per connection.

Requests on a connection may be pipelined. Each is dispatched as soon as it arrives
(handlers may finish out of order, e.g. a long-poll fetch behind a quick metadata
call) but responses are written strictly in request order, as Kafka clients require.
A connection with too many requests in flight, or whose peer reads too slowly, stops
being read until it drains; a broken frame closes only that connection.

In-order answers mean a request that waits (a WriteTxnMarkers or acks=all Produce waiting for
the ISR, a long-poll Fetch) holds every answer behind it. That is why brokers talk to each
other over one connection per purpose (`suoi.client.Lane`): a follower Fetch must never sit
behind a request that waits for replication, or the two wait for each other until a timeout.
A Fetch or OffsetsForLeaderEpoch answer held back that way for `HOL_WARN_S` or more is logged
(at most every `HOL_LOG_INTERVAL_S` per connection) with the API that held it.

Security (`suoi.security.ListenerSecurity` of the listener): TLS is asyncio's (the protocol
sees plaintext bytes once the handshake is done); the connection's ``principal`` is
``User:ANONYMOUS``, the mapped DN of a TLS client certificate, or the SASL user once
SaslAuthenticate succeeded. On a SASL listener nothing but ApiVersions, SaslHandshake and
SaslAuthenticate is served before authentication: anything else closes the connection.
"""

from __future__ import annotations

import asyncio
import asyncio.protocols  # noqa: F401  mypyc: the module of KafkaConnection's base, named by the compiled class
import collections
import functools
import logging
import time
import types
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from suoi.api.dispatch import Parts, ProtocolViolation, dispatch
from suoi.api.listener_roles import ListenerRole
from suoi.api.registry import REGISTRY
from suoi.interpreted import interpreted
from suoi.net.admission import HOL_LOG_INTERVAL_S, ConnectionAdmission
from suoi.net.file_send import FileSender, materialize
from suoi.pending import Pending
from suoi.protocol.file_records import FileRegion
from suoi.protocol.framing import BufferedFrameReader, FrameError
from suoi.security.listeners import ListenerSecurity
from suoi.security.principal import ANONYMOUS

if TYPE_CHECKING:
    from suoi.services import Services

log = logging.getLogger("suoi.net")

MAX_IN_FLIGHT = 64
_NO_RESPONSE = object()
#: A replication-path answer (Fetch, OffsetsForLeaderEpoch) ready but held this long behind an
#: earlier, unfinished answer on its connection is logged: head-of-line blocking.
HOL_WARN_S = 1.0
_FETCH_KEYS = frozenset({1, 23})  # Fetch, OffsetsForLeaderEpoch
#: A connection that has handled requests for this long in one go stops reading and lets the loop
#: serve the others before it goes on (`_handle_frames`). Without it a connection with a backlog
#: (a producer the node fell behind) held the loop for seconds: libuv reads up to 32 x 256 KB per
#: readable event, ~30,000 one-record Produce requests, and every other client (the consumer's
#: Fetch, the admin endpoint) waited that long.
YIELD_AFTER_S = 0.002
_PLAINTEXT = ListenerSecurity("PLAINTEXT", "PLAINTEXT")


class _Entry:
    """One answer in the connection's order book: ready parts, _NO_RESPONSE, a Future, or a
    `Pending` (a parked Fetch) that `_on_answer` replaces with its parts."""

    __slots__ = ("api_key", "close_after", "item", "ready_at")

    def __init__(self, item: Any, api_key: int, ready_at: float | None, close_after: bool = False) -> None:
        self.item = item
        self.api_key = api_key
        #: close the connection once this answer is written (failed authentication)
        self.close_after = close_after
        #: loop time the answer became ready while an earlier one was still pending
        self.ready_at = ready_at


@interpreted  # mypyc: its bases are interpreted classes with a __dict__; connections take weak references
class KafkaConnection(ConnectionAdmission, asyncio.BufferedProtocol):
    def __init__(self, broker: Services, max_request_size: int, role: ListenerRole = ListenerRole.CLIENT,
                 security: ListenerSecurity = _PLAINTEXT) -> None:
        self._broker = broker
        #: CONTROLLER: a listener in controller.listener.names, serving only the controller's APIs
        self.role = role
        #: The listener's security: protocol, TLS, SASL mechanisms and users.
        self.security = security
        #: Who is on the other end (Kafka's KafkaPrincipal as text), for authorization.
        self.principal = ANONYMOUS
        #: SASL listeners: False until SaslAuthenticate succeeded.
        self.authenticated = not security.sasl
        #: The SASL exchange in progress (suoi.security.sasl.SaslServerSession), set by SaslHandshake.
        self.sasl_session: Any = None
        #: time.monotonic() at which the SASL session ends (connections.max.reauth.ms), or None.
        self.session_expires_at: float | None = None
        #: The mechanism the connection authenticated with (a re-authentication must use it).
        self.sasl_mechanism: str | None = None
        self._close_requested = False
        #: the socket reads into its buffers (a BufferedProtocol): a Produce larger than its 64 KiB
        #: scratch buffer is received straight into a buffer of its own, no `bytes` per read and no
        #: join of the pieces; its records are decoded as views of it (`codec.request_decoder`)
        self._reader = BufferedFrameReader(max_request_size)
        #: frames read but not handled yet: the connection yielded the loop (YIELD_AFTER_S); not read meanwhile
        self._unhandled: collections.deque[bytes | memoryview] | None = None
        self._transport: asyncio.Transport | None = None
        #: answers ready while several frames of one read are handled, written at once after them
        #: (one writev for the lot instead of a send per answer); None: written as they come
        self._batch: list[Any] | None = None
        #: writes answers holding file regions (sendfile), created by the first one
        self._file_sender: FileSender | None = None
        self._peer = "?"
        # Responses in request order.
        self._queue: collections.deque[_Entry] = collections.deque()
        self._hol_logged_at = -HOL_LOG_INTERVAL_S
        self._reading_paused = False
        self._writing_paused = False
        self._throttled_until = 0.0  # loop time: muted by a client quota until then (KIP-219)
        #: frames received while a connection creation rate holds the connection (None: not held)
        self._held: list[bytes | memoryview] | None = None
        self._limited: tuple[Any, str, str, bool] | None = None  # counted: (limits, ip, listener, counted)
        self._closed = False
        #: time.monotonic() of the last bytes received (connections.max.idle.ms, `idle_for`)
        self.last_active = time.monotonic()
        #: Called once when the connection closes (e.g. the controller noting a broker's loss).
        self.close_callbacks: dict[Any, Callable[[], None]] = {}

    # -- asyncio callbacks --------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        peer = transport.get_extra_info("peername")
        self._peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        if not self._admitted(peer[0] if peer else "?"):
            return
        if self.security.ssl_context is not None and not self._tls_principal(transport):
            return
        self._broker.connections.add(self)

    def close_after_answer(self) -> None:
        """Close the connection once the answer to the request being handled is written
        (failed SASL authentication, as Kafka does)."""
        self._close_requested = True


    def connection_lost(self, exc: Exception | None) -> None:
        if self._reader.buffered and not self._closed:
            log.warning("connection from %s closed in the middle of a request (%d bytes unread)",
                        self._peer, self._reader.buffered)
        self._closed = True
        self._stop_file_sender()
        self._broker.connections.discard(self)
        if self._limited is not None:
            limits, ip, listener, counted = self._limited
            self._limited = None
            limits.release(ip, listener, counted)
        callbacks, self.close_callbacks = list(self.close_callbacks.values()), {}
        for callback in callbacks:
            try:
                callback()
            except Exception:
                log.exception("connection close callback failed")
        for entry in self._queue:
            if isinstance(entry.item, asyncio.Future | Pending):  # a parked Fetch unparks, drops its timer
                entry.item.cancel()
        self._queue.clear()

    def idle_for(self, now: float) -> float:
        """Seconds since the client last sent anything, 0 while an answer is still owed to it (a
        parked long-poll Fetch or acks=all Produce is not idleness)."""
        return 0.0 if self._queue else now - self.last_active  # (an answer being written is not owed)

    def close_idle(self, idle_s: float) -> None:
        """connections.max.idle.ms: Kafka's Selector closes a connection idle that long; so does
        a client that connected and never finished its SASL handshake."""
        log.info("closing connection from %s: idle for %.1f s (connections.max.idle.ms)", self._peer, idle_s)
        self.close()

    @property
    def sending_from_files(self) -> bool:
        """An answer with file regions is being sent (the socket was full): later ones wait."""
        sender = self._file_sender
        return sender is not None and sender.busy

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

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._reader.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        self.last_active = time.monotonic()
        try:
            frames = self._reader.buffer_updated(nbytes)
        except FrameError as exc:
            log.warning("closing connection from %s: %s", self._peer, exc)
            self._abort()
            return
        if not frames:
            return
        if self._held is not None:  # accepted over a connection creation rate: not handled yet
            self._held.extend(frames)
            return
        self._received(frames)

    def _received(self, frames: list[bytes | memoryview]) -> None:
        if self._unhandled is not None:  # bytes a TLS transport had decrypted before reading paused
            self._unhandled.extend(frames)
            return
        if len(frames) == 1:  # the usual read: one request, nothing left to yield to (no slice)
            if not self._closed:
                self._handle(frames[0])
                if self._reading_paused or len(self._queue) >= MAX_IN_FLIGHT:  # (see `_update_reading`)
                    self._update_reading()
        else:
            self._handle_frames(frames)

    def _handle_frames(self, frames: Iterable[bytes | memoryview]) -> None:
        """Handle frames in order; after YIELD_AFTER_S, keep the rest, stop reading, and go on
        in a later loop iteration (the connections and timers that are ready run first)."""
        deadline = time.perf_counter() + YIELD_AFTER_S
        it = iter(frames)
        self._batch = []
        try:
            for frame in it:
                if self._closed:
                    return
                self._handle(frame)
                if time.perf_counter() > deadline:
                    rest = collections.deque(it)
                    if rest:
                        self._unhandled = rest
                        asyncio.get_running_loop().call_soon(self._handle_unhandled)
                    break
        finally:
            self._write_batch()
        self._update_reading()

    def _write_batch(self) -> None:
        """Write the answers batched while a read's frames were handled, in one go."""
        batch, self._batch = self._batch, None
        if batch and self._transport is not None and not self._closed:
            self._transport.writelines(batch)

    def _handle_unhandled(self) -> None:
        rest, self._unhandled = self._unhandled, None
        if rest is not None and not self._closed:
            self._handle_frames(rest)

    # -- request handling ---------------------------------------------------------
    def _handle(self, frame: bytes | memoryview) -> None:
        if self._close_requested:
            return  # an answer that closes the connection is pending (failed authentication): read no more
        if (not self.authenticated or self.session_expires_at is not None) and not self._may_send(frame):
            return
        try:
            outcome = dispatch(self._broker, frame, self._peer, self, self.role)
        except ProtocolViolation as exc:
            log.warning("closing connection from %s: %s: %s", self._peer, exc.reason, exc)
            self._abort()
            return
        except Exception:
            log.exception("closing connection from %s: request handler failed", self._peer)
            self._abort()
            return
        if outcome.__class__ is list and not self._queue:  # the usual answer: ready, nothing before it
            self._write(outcome)  # type: ignore[arg-type]
            if self._close_requested:
                self.close()
            return
        waits = False
        if outcome is None:
            item: Any = _NO_RESPONSE
        elif isinstance(outcome, list):
            item = outcome
        elif isinstance(outcome, Pending):  # a parked Fetch: answered from a callback (`_on_answer`)
            item, waits = outcome, True
        elif type(outcome) is types.CoroutineType:  # a handler that waits in a coroutine (acks=all)
            item, waits = asyncio.get_running_loop().create_task(outcome), True
        else:
            item, waits = asyncio.ensure_future(outcome), True
        if not self._queue and item is not _NO_RESPONSE and not waits:
            self._write(item)
            if self._close_requested:
                self.close()
            return
        api_key = int.from_bytes(frame[:2], "big", signed=True) if len(frame) >= 2 else -1
        held = self._queue and not waits
        entry = _Entry(item, api_key, asyncio.get_running_loop().time() if held else None, self._close_requested)
        self._queue.append(entry)
        if waits:
            if isinstance(item, Pending):
                item.sink(functools.partial(self._on_answer, entry))
            else:
                item.add_done_callback(functools.partial(self._on_done, entry))
        self._flush()

    def _on_answer(self, entry: _Entry, parts: Parts | None, exc: BaseException | None) -> None:
        """A `Pending` answer came (in the callback that produced it: no loop hop): into its
        place in the order book, written now if every earlier answer is."""
        if self._closed:
            return
        if exc is not None:
            log.error("closing connection from %s: request handler failed", self._peer, exc_info=exc)
            self._abort()
            return
        entry.item = parts if parts is not None else _NO_RESPONSE
        if self._queue and self._queue[0] is not entry:
            entry.ready_at = asyncio.get_running_loop().time()
        self._flush()

    def _on_done(self, entry: _Entry, fut: asyncio.Future[Parts | None]) -> None:
        if fut.cancelled() or self._closed:
            return
        exc = fut.exception()
        if exc is not None:
            log.error("closing connection from %s: request handler failed", self._peer, exc_info=exc)
            self._abort()
            return
        if self._queue and self._queue[0] is not entry:
            entry.ready_at = asyncio.get_running_loop().time()
        self._flush()

    def _flush(self) -> None:
        q = self._queue
        released_by = -1  # the api key of the last answer that was the one being waited for
        while q:
            entry = q[0]
            head = entry.item
            if isinstance(head, asyncio.Future):
                if not head.done():
                    break
                parts = head.result()
                q.popleft()
                if parts is not None:
                    self._write(parts)
            elif isinstance(head, Pending):  # not answered yet (`_on_answer` replaces it with the parts)
                break
            else:
                q.popleft()
                if head is not _NO_RESPONSE:
                    self._write(head)
            if entry.close_after:
                self.close()
                return
            if entry.ready_at is None:
                released_by = entry.api_key
            elif entry.api_key in _FETCH_KEYS:
                self._note_held(entry, released_by)
        if self._reading_paused or len(q) >= MAX_IN_FLIGHT:  # (see `_update_reading`)
            self._update_reading()

    def _note_held(self, entry: _Entry, held_by: int) -> None:
        now = asyncio.get_running_loop().time()
        assert entry.ready_at is not None
        held = now - entry.ready_at
        if held >= HOL_WARN_S and now - self._hol_logged_at >= HOL_LOG_INTERVAL_S:
            self._hol_logged_at = now
            log.warning("connection from %s: a %s answer was held %.1f s behind an earlier %s answer (answers go "
                        "in request order: a request that waits holds every answer behind it)", self._peer,
                        _api_name(entry.api_key), held, _api_name(held_by))

    def _write(self, parts: Parts) -> None:
        transport = self._transport
        if transport is None or self._closed:
            return
        sender = self._file_sender
        if sender is not None and sender.busy:
            sender.send(parts)  # behind an answer still being sent from a file
        elif len(parts) == 1:  # (a region never comes alone: a header precedes it)
            if self._batch is not None:
                self._batch.append(parts[0])
            else:
                transport.write(parts[0])  # type: ignore[arg-type]
        elif FileRegion in map(type, parts):
            self._write_batch()  # what was batched goes first
            self._write_regions(parts)
        elif self._batch is not None:
            self._batch.extend(parts)
        else:
            transport.writelines(parts)  # type: ignore[arg-type]

    def _write_regions(self, parts: Parts) -> None:
        """An answer with file regions (a Fetch's records): ``sendfile`` on plain TCP
        (`file_send.FileSender`), read into bytes on TLS or without a socket."""
        assert self._transport is not None
        sender = self._file_sender
        if sender is None:
            sock = self._transport.get_extra_info("socket")
            if self.security.ssl_context is not None or sock is None:
                try:
                    self._transport.writelines(materialize(parts))
                except (EOFError, OSError) as exc:
                    self._send_failed(str(exc))
                return
            sender = self._file_sender = FileSender(self._transport, sock.fileno(), self._send_failed,
                                                    self._update_reading)
        sender.send(parts)
        self._update_reading()

    def _send_failed(self, reason: str) -> None:
        log.warning("closing connection from %s: %s", self._peer, reason)
        self._abort()

    def _update_reading(self) -> None:
        """Pause or resume reading to match the pause reasons. Whatever sets a reason other than
        the queue's length (write pause, throttle, unhandled frames, a busy file sender) calls
        this itself, so after a request is queued or answered only a paused connection or a full
        queue can need it: the usual request and answer skip the call."""
        if self._transport is None or self._closed:
            return
        sender = self._file_sender
        should_pause = (self._writing_paused or len(self._queue) >= MAX_IN_FLIGHT
                        or self._throttled_until > 0 or self._unhandled is not None
                        or (sender is not None and sender.busy))
        if should_pause and not self._reading_paused:
            self._transport.pause_reading()
            self._reading_paused = True
        elif not should_pause and self._reading_paused:
            self._transport.resume_reading()
            self._reading_paused = False

    def throttle(self, delay_ms: int) -> None:
        """A client quota was exceeded (suoi.api.quotas): read nothing more for ``delay_ms``
        (KIP-219: the response is already on its way, carrying the throttle time)."""
        loop = asyncio.get_running_loop()
        self._throttled_until = max(self._throttled_until, loop.time() + delay_ms / 1000)
        self._update_reading()
        loop.call_at(self._throttled_until, self._unthrottle)

    def _release_held(self) -> None:
        """The connection's creation-rate delay is over: handle what it sent meanwhile."""
        held, self._held = self._held, None
        if held and not self._closed:
            self._received(held)

    def _unthrottle(self) -> None:
        # timers may fire up to the clock's resolution early: the latest mute's own timer ends it
        if asyncio.get_running_loop().time() >= self._throttled_until - 0.005:
            self._throttled_until = 0.0
        self._update_reading()

    def _abort(self) -> None:
        self._closed = True
        self._stop_file_sender()
        if self._transport is not None:
            self._transport.abort()

    def close(self) -> None:
        self._write_batch()  # answers before the close are owed (a failed authentication's)
        self._closed = True
        self._stop_file_sender()
        if self._transport is not None:
            self._transport.close()

    def _stop_file_sender(self) -> None:
        """Drop what a `FileSender` still holds (its duplicate descriptor would keep the socket open)."""
        sender, self._file_sender = self._file_sender, None
        if sender is not None:
            sender.close()


def _api_name(api_key: int) -> str:
    spec = REGISTRY.get(api_key)
    return spec.name if spec is not None else f"api key {api_key}"


async def start_listener(broker: Services, host: str | None, port: int, max_request_size: int, *,
                         start_serving: bool = True, role: ListenerRole = ListenerRole.CLIENT,
                         security: ListenerSecurity = _PLAINTEXT) -> asyncio.Server:
    """Bind a listener; port 0 picks a free port (see `server.sockets`). With
    ``start_serving=False`` the port is reserved but refuses connections until
    ``server.start_serving()``. ``security``: TLS context and SASL of an SSL/SASL listener."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: KafkaConnection(broker, max_request_size, role, security), host, port, reuse_address=True,
        backlog=1024,
        start_serving=start_serving, ssl=security.ssl_context,
        ssl_handshake_timeout=10.0 if security.ssl_context is not None else None,
    )
