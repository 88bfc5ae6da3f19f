"""Who may open a connection, and what it may send before it has authenticated: the
`ConnectionAdmission` part of `server.KafkaConnection`.

Connection limits (`suoi.quota.connections`: max.connections(.per.ip), connection creation
rates, KIP-612), the principal of an mTLS client (ssl.principal.mapping.rules) and the SASL gate
(only ApiVersions, SaslHandshake and SaslAuthenticate before authentication, or once a session
expired, KIP-368). Kept apart from `server.py` (bytes, framing, answers in request order)
because these decide whether a connection is served at all, and change for security reasons,
not for speed. A mixin: the methods run on the connection, unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from suoi.api.listener_roles import ListenerRole
from suoi.security.principal import PrincipalMappingError, certificate_dn

if TYPE_CHECKING:
    from suoi.security.listeners import ListenerSecurity
    from suoi.services import Services

__all__ = ["HOL_LOG_INTERVAL_S", "ConnectionAdmission"]

log = logging.getLogger("suoi.net")

#: At most one line per this many seconds: per IP for refused connections, per connection for
#: head-of-line blocking (`server.HOL_WARN_S`).
HOL_LOG_INTERVAL_S = 60.0
#: What a client may send on a SASL listener before it has authenticated.
_PRE_AUTH_KEYS = frozenset({18, 17, 36})  # ApiVersions, SaslHandshake, SaslAuthenticate
_REFUSALS_LOGGED: dict[str, float] = {}  # ip -> loop time a refused connection from it was last logged


class ConnectionAdmission:
    """Admission of a `server.KafkaConnection` (which holds the state below and the methods
    declared for the type checker): limits when it opens, the TLS principal, the SASL gate."""

    _broker: Services
    security: ListenerSecurity
    role: ListenerRole
    principal: str
    authenticated: bool
    session_expires_at: float | None
    _peer: str
    _held: list[bytes | memoryview] | None
    _limited: tuple[Any, str, str, bool] | None

    if TYPE_CHECKING:
        def _abort(self) -> None: ...

        def throttle(self, delay_ms: int) -> None: ...

        def _release_held(self) -> None: ...

    def _tls_principal(self, transport: asyncio.BaseTransport) -> bool:
        """Name an mTLS client by its certificate (ssl.principal.mapping.rules); False if refused."""
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der:
            return True
        mapper = self.security.principal_mapper
        try:
            dn = certificate_dn(der)
            self.principal = mapper.principal(dn) if mapper is not None else f"User:{dn}"
        except (PrincipalMappingError, ValueError) as exc:
            log.warning("closing TLS connection from %s: %s", self._peer, exc)
            self._abort()
            return False
        return True

    def _may_send(self, frame: bytes | memoryview) -> bool:
        """Before authentication, and once a SASL session expired (connections.max.reauth.ms,
        KIP-368: the client did not re-authenticate in time), only the SASL requests are served;
        anything else closes the connection."""
        api_key = int.from_bytes(frame[:2], "big", signed=True)
        if api_key in _PRE_AUTH_KEYS:
            return True
        if not self.authenticated:
            log.warning("closing connection from %s on SASL listener %s: api key %s before authentication",
                        self._peer, self.security.name, api_key)
        elif time.monotonic() < (self.session_expires_at or 0.0):
            return True
        else:
            log.info("closing connection from %s on SASL listener %s: its session (%s) expired without "
                     "re-authentication (connections.max.reauth.ms)", self._peer, self.security.name, self.principal)
        self._abort()
        return False

    def _admitted(self, ip: str) -> bool:
        """Connection limits (`suoi.quota.connections`): a connection over a count is closed at
        once, one over its IP's connection_creation_rate after the throttle time, one over a
        listener's or the broker's creation rate is served after it; refusals logged once a minute."""
        limits = getattr(self._broker, "connection_limits", None)
        if limits is None:
            return True
        config = self._broker.config
        listener = self.security.name
        counted = self.role is not ListenerRole.CONTROLLER
        admission = limits.admit(ip, listener, self._broker.now_ms(), counted=counted,
                                 broker_rate=listener != config.inter_broker_listener_name)
        refused = admission.reason
        if refused is None:
            self._limited = (limits, ip, listener, counted)
            if admission.delay_ms:  # over a creation rate: what the client sends waits until then
                self._held = []
                self.throttle(admission.delay_ms)
                asyncio.get_running_loop().call_later(admission.delay_ms / 1000, self._release_held)
            return True
        now = asyncio.get_running_loop().time()
        if now - _REFUSALS_LOGGED.get(ip, -HOL_LOG_INTERVAL_S) >= HOL_LOG_INTERVAL_S:
            if len(_REFUSALS_LOGGED) > 10_000:
                _REFUSALS_LOGGED.clear()
            _REFUSALS_LOGGED[ip] = now
            log.warning("closing connection from %s: %s", self._peer, refused)
        if admission.delay_ms:  # KIP-612: a throttled IP's connection is closed after the throttle time
            self._held = []  # and nothing it sends is read
            self.throttle(admission.delay_ms)
            asyncio.get_running_loop().call_later(admission.delay_ms / 1000, self._abort)
        else:
            self._abort()
        return False
