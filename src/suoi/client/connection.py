"""One pipelined Kafka connection to another node.

``KafkaClientConnection`` sends kio request entities and resolves each caller's future with
the decoded kio response. Requests are written as soon as they are made (no wait for earlier
responses); Kafka answers in request order, and we match by correlation id.

Lifecycle: ``connect()`` -> any number of concurrent ``request()`` -> ``close()``. When the
connection drops (peer closed, reset, a frame we cannot parse) every in-flight request fails
with ``ConnectionError`` and later ``request()`` calls fail at once; a connection is never
reopened -- make a new one (``NodeClient`` does that). A request whose caller timed out or was
cancelled stays in the order book as *abandoned*, so its late response is read and dropped
without disturbing the ones behind it. Everything runs on one event loop; not thread-safe.

Security (``suoi.security.ClientSecurity``): TLS through asyncio (``ssl=``, the peer's host name
checked when ``ssl.endpoint.identification.algorithm=https``), then, on SASL listeners,
SaslHandshake and SaslAuthenticate before ``connect()`` returns; a refusal raises
``AuthenticationFailedError`` (a ``ConnectionError``), so pools back off as for any failed connect.
A SASL session with a lifetime (KIP-368) is not re-authenticated in band: ``replace_after`` tells
a pool to open a new connection instead, once the old one has nothing in flight.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import ssl
import time
from typing import Any

from suoi.protocol.codec import (
    DecodeError,
    decode_response,
    decode_response_views,
    encode_request,
    response_class,
    response_correlation_id,
)
from suoi.protocol.framing import BufferedFrameReader, FrameError
from suoi.security.client import PLAINTEXT, ClientSecurity
from suoi.security.oauth_login import OAuthLoginError
from suoi.security.sasl import SaslAuthenticationError, SaslClientCredentials

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "AuthenticationFailedError", "KafkaClientConnection"]

log = logging.getLogger("suoi.client")

DEFAULT_MAX_RESPONSE_BYTES = 512 * 1024 * 1024


class AuthenticationFailedError(ConnectionError):
    """The peer refused our SASL credentials (or TLS failed): no point retrying at once."""


def _time_out(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


class _Pending:
    __slots__ = ("future", "response_cls", "views")

    def __init__(self, future: asyncio.Future[Any], response_cls: type, views: bool = False) -> None:
        self.future = future
        self.response_cls = response_cls
        self.views = views  # answered as `codec.decode_response_views`' (response, record views)


class _Protocol(asyncio.BufferedProtocol):
    """Bytes in and out; everything else is in KafkaClientConnection. Reads go into the frame
    reader's buffers (a large answer, such as a follower's Fetch, straight into its own)."""

    def __init__(self, owner: KafkaClientConnection) -> None:
        self._owner = owner
        self._paused = False
        self._resume: asyncio.Future[None] | None = None

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._owner._reader.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        self._owner._received(nbytes)

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner._lost(exc)
        if self._resume is not None and not self._resume.done():
            self._resume.set_result(None)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._resume is not None and not self._resume.done():
            self._resume.set_result(None)

    async def drain(self) -> None:
        if self._paused:
            if self._resume is None or self._resume.done():
                self._resume = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._resume)


class KafkaClientConnection:
    def __init__(self, host: str, port: int, client_id: str | None, max_response_bytes: int) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self._reader = BufferedFrameReader(max_response_bytes)
        self._transport: asyncio.Transport | None = None
        self._protocol: _Protocol | None = None
        self._pending: collections.OrderedDict[int, _Pending] = collections.OrderedDict()
        self._next_correlation = 1
        self._closed = False
        self._close_reason: str = "connection closed"
        self._closed_event = asyncio.Event()
        #: monotonic time after which a pool replaces this connection rather than use it: 80 % of the
        #: SASL session lifetime the peer announced (connections.max.reauth.ms, KIP-368); None: never.
        self.replace_after: float | None = None

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        client_id: str | None = "suoi-internal",
        timeout: float = 5.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        security: ClientSecurity = PLAINTEXT,
    ) -> KafkaClientConnection:
        """Open a TCP (or TLS) connection and authenticate (SASL); raises ``ConnectionError``
        (refused, unreachable, TLS or authentication failed) or ``asyncio.TimeoutError`` (no answer
        within ``timeout`` seconds)."""
        self = cls(host, port, client_id, max_response_bytes)
        loop = asyncio.get_running_loop()
        ctx = security.ssl_context
        try:
            transport, protocol = await asyncio.wait_for(
                loop.create_connection(lambda: _Protocol(self), host, port, ssl=ctx,
                                       server_hostname=host if ctx is not None else None), timeout
            )
        except (TimeoutError, ConnectionError):
            raise
        except ssl.SSLError as exc:
            raise AuthenticationFailedError(f"TLS handshake with {host}:{port} failed: {exc.reason or exc}") from exc
        except OSError as exc:  # e.g. EHOSTUNREACH, name resolution
            raise ConnectionError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from exc
        self._transport = transport  # type: ignore[assignment]
        self._protocol = protocol
        if security.sasl is not None:
            try:
                await asyncio.wait_for(self._authenticate(security.sasl), timeout)
            except BaseException:
                await self.close()
                raise
        return self

    async def _authenticate(self, creds: SaslClientCredentials) -> None:
        """SaslHandshake v1 + SaslAuthenticate v2 rounds until the mechanism is done."""
        from kio.schema.sasl_authenticate.v2 import SaslAuthenticateRequest
        from kio.schema.sasl_handshake.v1 import SaslHandshakeRequest

        handshake = await self.request(SaslHandshakeRequest(mechanism=creds.mechanism))
        if handshake.error_code != 0:
            raise AuthenticationFailedError(
                f"{self.host}:{self.port} does not accept SASL mechanism {creds.mechanism} "
                f"(enabled: {', '.join(handshake.mechanisms) or 'none'})")
        exchange = creds.exchange()
        try:
            token: bytes | None = await exchange.start()
        except OAuthLoginError as exc:  # no token from the identity provider: this peer is not to blame
            raise AuthenticationFailedError(str(exc)) from None
        while token is not None:
            answer = await self.request(SaslAuthenticateRequest(auth_bytes=token))
            if answer.error_code != 0:
                raise AuthenticationFailedError(f"{self.host}:{self.port}: SASL {creds.mechanism} authentication "
                                                f"as {creds.username} failed: {answer.error_message}")
            try:
                token = exchange.step(answer.auth_bytes)
            except SaslAuthenticationError as exc:
                raise AuthenticationFailedError(f"{self.host}:{self.port}: {exc}") from None
            lifetime = answer.session_lifetime.total_seconds()
            self.replace_after = time.monotonic() + 0.8 * lifetime if lifetime > 0 else None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    async def close(self) -> None:
        """Close the socket; in-flight requests fail with ``ConnectionError``."""
        if self._transport is not None and not self._closed:
            self._close_reason = "connection closed by us"
            self._transport.close()
            self._fail_all(ConnectionError(f"{self}: {self._close_reason}"))
        self._closed = True
        self._closed_event.set()

    async def wait_closed(self) -> None:
        await self._closed_event.wait()

    def __repr__(self) -> str:
        return f"KafkaClientConnection({self.host}:{self.port}{', closed' if self._closed else ''})"

    # ------------------------------------------------------------------ requests
    async def request(self, entity: Any, *, timeout: float | None = 30.0, views: bool = False) -> Any:
        """Send ``entity`` (a kio request of one version) and return the decoded response; with
        ``views``, ``(response, records views)`` (`codec.decode_response_views`: the records are
        views of the received answer, its fields empty - a follower's Fetch, appended as received).

        Raises ``ConnectionError`` if the connection is or becomes closed before the answer,
        ``asyncio.TimeoutError`` after ``timeout`` seconds (the connection stays usable).
        """
        if self._closed or self._transport is None or self._transport.is_closing():
            raise ConnectionError(f"{self}: {self._close_reason}")
        cls = type(entity)
        response_cls = response_class(cls.__api_key__, cls.__version__)
        correlation_id = self._next_correlation
        self._next_correlation = (self._next_correlation + 1) & 0x7FFFFFFF
        frame = encode_request(correlation_id, self.client_id, entity)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = _Pending(future, response_cls, views)
        self._transport.write(frame)
        # A plain timer, not asyncio.wait_for (a second future and callbacks per request): on
        # timeout the future gets TimeoutError, and its late answer is read and dropped.
        timer = None if timeout is None else asyncio.get_running_loop().call_later(timeout, _time_out, future)
        try:
            protocol = self._protocol
            assert protocol is not None
            if protocol._paused:  # the transport's buffer is full: wait for it to drain first
                await protocol.drain()
            return await future
        finally:
            if timer is not None:
                timer.cancel()
            if not future.done():
                future.cancel()  # abandoned: the late response is read and dropped

    # ------------------------------------------------------------------ from the protocol
    def _received(self, nbytes: int) -> None:
        try:
            frames = self._reader.buffer_updated(nbytes)
        except FrameError as exc:
            self._broken(f"bad response framing: {exc}")
            return
        for frame in frames:
            try:
                correlation_id = response_correlation_id(frame)
            except DecodeError as exc:
                self._broken(str(exc))
                return
            pending = self._pending.pop(correlation_id, None)
            if pending is None:
                self._broken(f"response with unknown correlation id {correlation_id}")
                return
            if pending.future.done():
                continue  # caller gave up (timeout or cancellation)
            try:
                response = (decode_response_views(frame, pending.response_cls) if pending.views
                            else decode_response(frame, pending.response_cls))
            except DecodeError as exc:
                pending.future.set_exception(ConnectionError(f"{self}: {exc}"))
                self._broken(str(exc))
                return
            pending.future.set_result(response)

    def _broken(self, reason: str) -> None:
        log.warning("%s: closing: %s", self, reason)
        self._close_reason = reason
        if self._transport is not None:
            self._transport.abort()

    def _lost(self, exc: Exception | None) -> None:
        if not self._closed:
            if exc is not None and self._close_reason == "connection closed":
                self._close_reason = f"connection lost: {exc}"
            elif self._close_reason == "connection closed":
                self._close_reason = "connection closed by peer"
        self._closed = True
        self._fail_all(ConnectionError(f"{self.host}:{self.port}: {self._close_reason}"))
        self._closed_event.set()

    def _fail_all(self, error: ConnectionError) -> None:
        pending, self._pending = self._pending, collections.OrderedDict()
        for p in pending.values():
            if not p.future.done():
                p.future.set_exception(error)
