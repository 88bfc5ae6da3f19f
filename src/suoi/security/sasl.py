"""SASL mechanisms suoi serves: PLAIN (RFC 4616), SCRAM-SHA-256/512 and OAUTHBEARER
(``suoi.security.oauthbearer``); it speaks PLAIN, SCRAM and OAUTHBEARER (unsecured tokens, Kafka's
default login callback, or tokens from an identity provider: ``suoi.security.oauth_login``) to other nodes. Sans-IO.

``SaslServerSession`` is one connection's authentication exchange on the broker side: the
SaslHandshake chose its mechanism, each SaslAuthenticate feeds ``step`` one token and sends
back the answer; ``step`` raises ``SaslAuthenticationError`` (a message safe to send and log:
never a password or proof) when the client fails. ``SaslClientCredentials`` is what a node
sends when it connects to other nodes (``username``/``password`` of its JAAS config).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from suoi.security.oauthbearer import (
    OAuthBearerServer,
    TokenError,
    Validator,
    client_initial_response,
    unsecured_login_token,
)
from suoi.security.scram import MECHANISMS as SCRAM_MECHANISMS
from suoi.security.scram import ScramClient, ScramCredential, ScramError, ScramServer

if TYPE_CHECKING:
    from suoi.security.oauth_login import OAuthLogin

__all__ = ["SUPPORTED_MECHANISMS", "SaslAuthenticationError", "SaslClientCredentials", "SaslServerSession"]

SUPPORTED_MECHANISMS = ("PLAIN", *SCRAM_MECHANISMS, "OAUTHBEARER")
#: What suoi's own client can send to other nodes (OAUTHBEARER: unsecured tokens it mints, or an identity provider's).
CLIENT_MECHANISMS = ("PLAIN", *SCRAM_MECHANISMS, "OAUTHBEARER")

INVALID_TOKEN_MESSAGE = '{"status":"invalid_token"}'
ScramLookup = Callable[[str, str], ScramCredential | None]  # (user, mechanism) -> credential


class SaslAuthenticationError(Exception):
    """The client failed to authenticate (Kafka's SASL_AUTHENTICATION_FAILED). The message goes to
    the client; ``detail`` (if set) is why, for the node's log only (OAUTHBEARER answers only
    Kafka's JSON status)."""

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail


class SaslServerSession:
    def __init__(self, mechanism: str, *, plain_users: Mapping[str, str], scram_lookup: ScramLookup,
                 oauth_validator: Validator | None = None) -> None:
        self.mechanism = mechanism
        self._users = plain_users
        self._scram = (ScramServer(mechanism, lambda user: scram_lookup(user, mechanism))
                       if mechanism in SCRAM_MECHANISMS else None)
        self._oauth = (OAuthBearerServer(oauth_validator)
                       if mechanism == "OAUTHBEARER" and oauth_validator is not None else None)
        self.username: str | None = None
        #: The credential's expiry (ms since the epoch; an OAUTHBEARER token's exp), or None.
        self.expires_at_ms: int | None = None
        self.done = False

    @property
    def principal(self) -> str:
        return f"User:{self.username}"

    def step(self, token: bytes) -> bytes:
        if self.done:
            raise SaslAuthenticationError("already authenticated")
        if self._oauth is not None:
            return self._oauthbearer(self._oauth, token)
        if self._scram is None:
            return self._plain(token)
        try:
            answer = self._scram.step(token)
        except ScramError as exc:
            raise SaslAuthenticationError(
                f"Authentication failed during authentication due to invalid credentials with SASL mechanism "
                f"{self.mechanism} ({exc})") from None
        if self._scram.done:
            self.username, self.done = self._scram.username, True
        return answer

    def _oauthbearer(self, oauth: OAuthBearerServer, response: bytes) -> bytes:
        try:
            answer = oauth.step(response)
        except TokenError as exc:
            raise SaslAuthenticationError(INVALID_TOKEN_MESSAGE, detail=str(exc)) from None
        if oauth.token is not None:
            self.username, self.expires_at_ms, self.done = oauth.token.principal, oauth.token.expires_at_ms, True
        return answer

    def _plain(self, token: bytes) -> bytes:
        parts = token.split(b"\0")
        if len(parts) != 3 or not parts[1] or not parts[2]:
            raise SaslAuthenticationError("Invalid SASL/PLAIN response: expected 3 tokens, with username and password")
        try:
            authzid, user, password = (p.decode("utf-8") for p in parts)
        except UnicodeDecodeError:
            raise SaslAuthenticationError("Invalid SASL/PLAIN response: not UTF-8") from None
        if authzid and authzid != user:
            raise SaslAuthenticationError("Authentication failed: Client requested an authorization id that is "
                                          "different from username")
        expected = self._users.get(user)
        # compare even for unknown users, so timing does not tell which users exist
        if not hmac.compare_digest((expected if expected is not None else "\0").encode(), password.encode()):
            raise SaslAuthenticationError("Authentication failed: Invalid username or password")
        self.username, self.done = user, True
        return b""


@dataclass(frozen=True, slots=True)
class SaslClientCredentials:
    """How suoi's own client authenticates: mechanism, user and password (never printed)."""

    mechanism: str
    username: str
    password: str
    #: OAUTHBEARER: the JAAS options of the unsecured login callback (claims, lifetime)
    login_options: tuple[tuple[str, str], ...] = ()
    #: OAUTHBEARER: tokens from an identity provider (KIP-768), instead of unsecured ones
    login: OAuthLogin | None = field(default=None, compare=False)

    def __repr__(self) -> str:
        return f"SaslClientCredentials({self.mechanism}, {self.username})"

    @property
    def principal(self) -> str:
        """The name the peers know this node by: the token's subject for a provider's tokens."""
        return (self.login.principal if self.login is not None else None) or self.username

    def exchange(self) -> SaslClientExchange:
        return SaslClientExchange(self)


class SaslClientExchange:
    """``first()``, then ``step(server token)`` until it returns None (done)."""

    def __init__(self, creds: SaslClientCredentials) -> None:
        self._creds = creds
        self._scram = (ScramClient(creds.mechanism, creds.username, creds.password)
                       if creds.mechanism in SCRAM_MECHANISMS else None)

    async def start(self) -> bytes:
        """The first token; with an identity provider's tokens, the current one (fetched if
        none is valid: bounded in time, raises OAuthLoginError)."""
        if self._creds.login is not None:
            return client_initial_response(await self._creds.login.token())
        return self.first()

    def first(self) -> bytes:
        if self._creds.mechanism == "OAUTHBEARER":  # a fresh token per authentication (and re-authentication)
            return client_initial_response(unsecured_login_token(dict(self._creds.login_options)))
        if self._scram is None:
            return b"\0" + self._creds.username.encode() + b"\0" + self._creds.password.encode()
        return self._scram.first()

    def step(self, token: bytes) -> bytes | None:
        if self._creds.mechanism == "OAUTHBEARER":  # an error challenge is acknowledged; the server then fails
            return b"\x01" if token else None
        if self._scram is None:
            return None
        try:
            return self._scram.step(token)
        except ScramError as exc:
            raise SaslAuthenticationError(str(exc)) from None
