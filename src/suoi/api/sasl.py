"""SaslHandshake (17) and SaslAuthenticate (36): authenticating a connection on a SASL listener.

The handshake picks a mechanism the listener enables (``sasl.enabled.mechanisms``); each
SaslAuthenticate carries one token of the mechanism's exchange (``suoi.security.sasl``).
Success records the principal (``User:<name>``) on the connection and lets it send any request;
a failure is answered SASL_AUTHENTICATION_FAILED after ``connection.failed.authentication.delay.ms``,
logged in one line (no secrets), and the connection is closed after the answer, as Kafka does.
With ``connections.max.reauth.ms`` (KIP-368) the answer carries the session lifetime; the client
re-authenticates on the same connection (SaslHandshake with the same mechanism, then
SaslAuthenticate as the same principal) before it ends, or the connection is closed at its next
request. An OAUTHBEARER token's expiry also ends the session (the lifetime is the shorter of the
two, as Kafka's SaslServerAuthenticator computes it). SCRAM credentials come from the metadata image
(UserScramCredential records); PLAIN users from the listener's JAAS config. Only SaslHandshake v1 is
served (v0 is followed by raw, unframed tokens, which no client we know still sends); 0-1 is
advertised as Kafka does, since librdkafka before 2.1 requires v0 in the range before it uses v1.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from suoi.api.registry import RequestContext, api
from suoi.model import ErrorCode
from suoi.security.sasl import SaslAuthenticationError, SaslServerSession
from suoi.security.scram import MECHANISMS, ScramCredential

if TYPE_CHECKING:
    from suoi.services import Services

log = logging.getLogger("suoi.api")


def scram_credential(broker: Services, user: str, mechanism: str) -> ScramCredential | None:
    """The user's SCRAM credential for ``mechanism`` from the metadata image."""
    record = broker.kraft.image.scram_credential(user, MECHANISMS[mechanism])
    if record is None:
        return None
    return ScramCredential(record.salt, record.stored_key, record.server_key, record.iterations)


@api(17, "SaslHandshake", 1, 1, advertised_min=0)  # librdkafka < 2.1 needs v0 in the range
def handle_sasl_handshake(ctx: RequestContext, request: Any) -> dict[str, Any]:
    conn = ctx.connection
    security = getattr(conn, "security", None)
    mechanism = str(request.mechanism).upper()
    # KIP-368: an authenticated connection may start again (re-authenticate) with its mechanism
    reauth = (security is not None and (security.reauth_ms > 0 or getattr(conn, "session_expires_at", None) is not None)
              and getattr(conn, "sasl_mechanism", None) == mechanism)
    if security is None or not security.sasl or (conn.authenticated and not reauth) or conn.sasl_session is not None:
        log.warning("SaslHandshake from %s %s; closing", ctx.client_host,
                    "on a listener without SASL" if security is None or not security.sasl else
                    "after a handshake" if not conn.authenticated else "on an authenticated connection")
        if conn is not None:
            conn.close_after_answer()
        return {"error_code": ErrorCode.illegal_sasl_state, "mechanisms": list(getattr(security, "sasl_mechanisms", ()))}
    if mechanism not in security.sasl_mechanisms:
        log.warning("client %s asked for SASL mechanism %.40r on listener %s (enabled: %s); closing", ctx.client_host,
                    request.mechanism, security.name, ", ".join(security.sasl_mechanisms))
        conn.close_after_answer()
        return {"error_code": ErrorCode.unsupported_sasl_mechanism, "mechanisms": list(security.sasl_mechanisms)}
    broker = ctx.services
    conn.sasl_session = SaslServerSession(
        mechanism, plain_users=security.plain_users,
        scram_lookup=lambda user, mech: scram_credential(broker, user, mech), oauth_validator=security.oauth_validator)
    return {"error_code": ErrorCode.none, "mechanisms": list(security.sasl_mechanisms)}


@api(36, "SaslAuthenticate", 0, 2)
def handle_sasl_authenticate(ctx: RequestContext, request: Any) -> dict[str, Any] | Awaitable[dict[str, Any]]:
    conn = ctx.connection
    session: SaslServerSession | None = getattr(conn, "sasl_session", None)
    if session is None:
        log.warning("SaslAuthenticate from %s without a SaslHandshake before it; closing", ctx.client_host)
        if conn is not None:
            conn.close_after_answer()
        return _answer(ErrorCode.illegal_sasl_state, "SaslAuthenticate must follow a SaslHandshake")
    try:
        token = session.step(bytes(request.auth_bytes))
    except SaslAuthenticationError as exc:
        log.warning("SASL %s authentication failed for a client from %s on listener %s: %s; closing",
                    session.mechanism, ctx.client_host, conn.security.name, exc.detail or exc)
        conn.close_after_answer()
        answer = _answer(ErrorCode.sasl_authentication_failed, str(exc))
        delay_ms = conn.security.failed_authentication_delay_ms
        return _later(answer, delay_ms / 1000) if delay_ms > 0 else answer
    lifetime_ms = 0
    if session.done:
        conn.sasl_session = None
        if conn.authenticated and session.principal != conn.principal:  # KIP-368 re-authentication
            log.warning("client %s re-authenticated as %s on a connection of %s; closing", ctx.client_host,
                        session.principal, conn.principal)
            conn.close_after_answer()
            return _answer(ErrorCode.sasl_authentication_failed, "Cannot change principals during re-authentication")
        conn.principal = session.principal
        conn.sasl_mechanism = session.mechanism
        lifetime_ms = _session_lifetime_ms(conn.security.reauth_ms, session.expires_at_ms)
        conn.session_expires_at = time.monotonic() + lifetime_ms / 1000 if lifetime_ms else None
        log.debug("client %s %sauthenticated as %s (%s)", ctx.client_host, "re-" if conn.authenticated else "",
                  session.principal, session.mechanism)
        conn.authenticated = True
    return _answer(ErrorCode.none, None, token, lifetime_ms)


def _session_lifetime_ms(reauth_ms: int, expires_at_ms: int | None) -> int:
    """Kafka's rule: the credential's remaining life (an OAUTHBEARER token's exp) capped by
    connections.max.reauth.ms; 0 (forever) only when neither is set."""
    if expires_at_ms is None:
        return reauth_ms
    remaining = max(1, expires_at_ms - int(time.time() * 1000))
    return min(remaining, reauth_ms) if reauth_ms > 0 else remaining


async def _later(answer: dict[str, Any], delay_s: float) -> dict[str, Any]:
    """connection.failed.authentication.delay.ms: the failure is answered (and the connection
    closed) only after the delay, as Kafka does, to slow down password guessing."""
    await asyncio.sleep(delay_s)
    return answer


def _answer(code: ErrorCode, message: str | None, token: bytes = b"", lifetime_ms: int = 0) -> dict[str, Any]:
    return {"error_code": code, "error_message": message, "auth_bytes": token, "session_lifetime": lifetime_ms}
