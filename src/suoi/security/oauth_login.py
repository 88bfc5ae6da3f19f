"""OAUTHBEARER tokens for suoi's own nodes from an identity provider (KIP-768's
OAuthBearerLoginCallbackHandler): the OAuth 2 client-credentials grant.

A node whose inter-broker or controller listener takes OAUTHBEARER, with
``sasl.login.callback.handler.class`` naming Kafka's login callback handler and
``sasl.oauthbearer.token.endpoint.url`` set, POSTs ``grant_type=client_credentials`` (and
``scope``) to that URL with HTTP basic authentication (the JAAS options ``clientId`` and
``clientSecret``, form-urlencoded first, as RFC 6749 section 2.3.1 asks) and sends the
``access_token`` it gets back. A ``file:`` URL names a file holding the token (as Kafka allows).

The token is fetched when the node starts (a refusal stops the start, in one line naming the
endpoint, the client id and the provider's error code -- never the secret or a token), then
refreshed before it expires, at the time Kafka's refreshing login picks
(``sasl.login.refresh.window.factor`` + random ``.window.jitter`` of the token's lifetime, kept
``.buffer.seconds`` before expiry and ``.min.period.seconds`` after the fetch unless the token is
too short-lived for both). A refresh runs as a task on the event loop that fetched the token (a
timer), or of a connection authenticating after the refresh time: a connection authenticating
while the current token is still valid never waits for the provider. Each fetch
is bounded: ``sasl.login.connect.timeout.ms`` / ``.read.timeout.ms`` per attempt, and retries
(transport errors, HTTP 5xx/429) with exponential backoff from ``sasl.login.retry.backoff.ms``
within ``sasl.login.retry.backoff.max.ms`` in total; other 4xx answers are not retried.

The token is checked as Kafka's login-side validator does before it is used: a JWT with ``exp``
in the future and a string subject claim (``sasl.oauthbearer.sub.claim.name``, the node's
principal); the scope claim (``sasl.oauthbearer.scope.claim.name``) a string or list if present.
Nothing is verified cryptographically here: the brokers do that (`suoi.security.jwks`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote_plus, urlencode, urlparse

from suoi.security.oauthbearer import TokenError, check_times, decode_jwt, principal_of, scope_of

__all__ = ["LOGIN_HANDLERS", "LoginSettings", "OAuthLogin", "OAuthLoginError", "login_settings", "oauth_login", "refresh_at_ms"]

log = logging.getLogger("suoi.security")

#: KIP-768's login callback handler, under its current and its deprecated (pre-3.4 "secured") package.
LOGIN_HANDLERS = frozenset({"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler",
                            "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerLoginCallbackHandler"})
#: Bounds of a connect / read when sasl.login.connect/read.timeout.ms are unset (Kafka then has none).
DEFAULT_TIMEOUT_MS = 10_000


class OAuthLoginError(RuntimeError):
    """No token could be had; the message names the endpoint and why, never a secret or token."""


@dataclass(frozen=True, slots=True)
class LoginSettings:
    url: str
    client_id: str
    client_secret: str = field(repr=False)
    scope: str | None = None
    connect_timeout_ms: int = DEFAULT_TIMEOUT_MS
    read_timeout_ms: int = DEFAULT_TIMEOUT_MS
    retry_backoff_ms: int = 100
    retry_backoff_max_ms: int = 10_000
    window_factor: float = 0.8
    window_jitter: float = 0.05
    min_period_s: int = 60
    buffer_s: int = 300
    sub_claim: str = "sub"
    scope_claim: str = "scope"

    @property
    def endpoint(self) -> str:
        """The URL without user info or query, fit for a log line."""
        parsed = urlparse(self.url)
        host = parsed.hostname or ""
        port = f":{parsed.port}" if parsed.port else ""
        return f"{parsed.scheme}://{host}{port}{parsed.path}"

    def check(self) -> None:
        """Kafka's ranges for the refresh settings; ValueError names the key."""
        for key, value, low, high in (("sasl.login.refresh.window.factor", self.window_factor, 0.5, 1.0),
                                      ("sasl.login.refresh.window.jitter", self.window_jitter, 0.0, 0.25),
                                      ("sasl.login.refresh.min.period.seconds", self.min_period_s, 0, 900),
                                      ("sasl.login.refresh.buffer.seconds", self.buffer_s, 0, 3600)):
            if not low <= value <= high:
                raise ValueError(f"{key}={value}: must be between {low} and {high}")
        for key, value in (("sasl.login.connect.timeout.ms", self.connect_timeout_ms),
                           ("sasl.login.read.timeout.ms", self.read_timeout_ms),
                           ("sasl.login.retry.backoff.ms", self.retry_backoff_ms),
                           ("sasl.login.retry.backoff.max.ms", self.retry_backoff_max_ms)):
            if value < (0 if "backoff" in key else 1):
                raise ValueError(f"{key}={value}: out of range")
        if urlparse(self.url).scheme not in ("http", "https", "file"):
            raise ValueError("sasl.oauthbearer.token.endpoint.url: expected an http(s):// or file: URL")
        if urlparse(self.url).scheme != "file" and (not self.client_id or not self.client_secret):
            raise ValueError("the OAUTHBEARER JAAS config needs clientId and clientSecret for the token endpoint")


def refresh_at_ms(now_ms: int, expires_ms: int, s: LoginSettings, rand: float | None = None) -> int:
    """When to refresh a token fetched at ``now_ms`` (Kafka's ExpiringCredentialRefreshingLogin):
    at factor + jitter of its lifetime, moved earlier to keep the buffer before expiry and later to
    keep the minimum period; a token living shorter than both together ignores them."""
    lifetime = max(0, expires_ms - now_ms)
    proposed = now_ms + int(lifetime * (s.window_factor + s.window_jitter * (random.random() if rand is None else rand)))
    if (s.min_period_s + s.buffer_s) * 1000 > lifetime:
        return min(proposed, expires_ms)
    return max(min(proposed, expires_ms - s.buffer_s * 1000), now_ms + s.min_period_s * 1000)


@dataclass(frozen=True, slots=True)
class _Token:
    value: str = field(repr=False)
    principal: str
    expires_ms: int
    refresh_ms: int


class OAuthLogin:
    """One identity (settings) of a node; shared by its connections, and safe to use from the
    event loops of several in-process nodes (the token is replaced as a whole)."""

    def __init__(self, settings: LoginSettings) -> None:
        self.settings = settings
        self._token: _Token | None = None
        self._fetches: dict[int, asyncio.Task[_Token]] = {}  # id(loop) -> the fetch running there

    def __repr__(self) -> str:
        return f"OAuthLogin({self.settings.endpoint}, clientId={self.settings.client_id})"

    @property
    def principal(self) -> str | None:
        """The subject of the current token (None before the first fetch)."""
        return None if self._token is None else self._token.principal

    async def token(self) -> str:
        """A valid token: the current one (a refresh started in the background once its refresh
        time came), else a fresh one; raises OAuthLoginError."""
        now_ms = int(time.time() * 1000)
        current = self._token
        if current is not None and now_ms < current.expires_ms:
            if now_ms >= current.refresh_ms:
                self._fetch(background=True)
            return current.value
        return (await self._fetch()).value

    def _fetch(self, background: bool = False) -> asyncio.Task[_Token]:
        loop = asyncio.get_running_loop()
        task = self._fetches.get(id(loop))
        if task is None or task.done() or task.get_loop() is not loop:
            task = loop.create_task(self._fetch_new(), name="oauthbearer-token")
            self._fetches[id(loop)] = task
            task.add_done_callback(lambda t: self._done(id(loop), t, background))
        return task

    def _done(self, key: int, task: asyncio.Task[_Token], background: bool) -> None:
        if self._fetches.get(key) is task:
            del self._fetches[key]
        if background and not task.cancelled() and task.exception() is not None:
            log.warning("%s; keeping the current token until it expires", task.exception())
            current = self._token  # try again later (one line per attempt), while the token is good
            if current is not None:
                again_s = max(1.0, self.settings.retry_backoff_max_ms / 1000)
                asyncio.get_running_loop().call_later(again_s, self._refresh_due, current)

    def _refresh_due(self, token: _Token) -> None:
        """The refresh time of ``token`` came (a timer of the loop that fetched it): refresh,
        unless another loop did already -- the node's connections never wait for it."""
        if self._token is token and time.time() * 1000 < token.expires_ms:
            self._fetch(background=True)

    async def _fetch_new(self) -> _Token:
        s = self.settings
        value = await self._retrying()
        try:
            _, claims, _, _ = decode_jwt(value)
            expires_ms = check_times(claims, 0.0)
            principal = principal_of(claims, s.sub_claim)
            scope_of(claims, s.scope_claim)
        except TokenError as exc:
            raise OAuthLoginError(f"the token from OAUTHBEARER token endpoint {s.endpoint} is not usable: {exc}") from None
        now_ms = int(time.time() * 1000)
        token = _Token(value, principal, expires_ms, refresh_at_ms(now_ms, expires_ms, s))
        if self._token is None or self._token.principal != principal:
            log.info("OAUTHBEARER token for %s from %s (clientId %s)", principal, s.endpoint, s.client_id)
        self._token = token
        asyncio.get_running_loop().call_later(max(0, token.refresh_ms - now_ms) / 1000, self._refresh_due, token)
        return token

    async def _retrying(self) -> str:
        """Kafka's Retry: attempts with doubling backoff until retry.backoff.max.ms have passed."""
        s = self.settings
        deadline = time.monotonic() + s.retry_backoff_max_ms / 1000
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._request()
            except _Retryable as exc:
                wait = min(s.retry_backoff_ms / 1000 * 2 ** (attempt - 1), deadline - time.monotonic())
                if wait <= 0:
                    raise OAuthLoginError(f"{exc} (after {attempt} attempt(s))") from None
            await asyncio.sleep(wait)  # backoff between attempts, bounded by the deadline

    async def _request(self) -> str:
        s = self.settings
        parsed = urlparse(s.url)
        if parsed.scheme == "file":
            try:
                return (await asyncio.to_thread(Path(parsed.path).read_text)).strip()
            except OSError as exc:
                raise OAuthLoginError(f"OAUTHBEARER token file {parsed.path}: {exc.strerror or exc}") from None
        import aiohttp

        credentials = f"{quote_plus(s.client_id)}:{quote_plus(s.client_secret)}"
        headers = {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode(),
                   "Accept": "application/json", "Cache-Control": "no-cache",
                   "Content-Type": "application/x-www-form-urlencoded"}
        form = {"grant_type": "client_credentials", **({"scope": s.scope} if s.scope else {})}
        timeout = aiohttp.ClientTimeout(sock_connect=s.connect_timeout_ms / 1000, sock_read=s.read_timeout_ms / 1000,
                                        total=(s.connect_timeout_ms + s.read_timeout_ms) / 1000)
        where = f"no OAUTHBEARER token from {s.endpoint} (clientId {s.client_id})"
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session, \
                    session.post(s.url, data=urlencode(form), headers=headers, allow_redirects=False) as response:
                body = await response.content.read(1 << 20)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _Retryable(f"{where}: {type(exc).__name__}") from None
        if status != 200:
            why = f"{where}: HTTP {status}{_error_of(body, s.client_secret)}"
            if status >= 500 or status == 429:
                raise _Retryable(why)
            raise OAuthLoginError(why)
        try:
            document = json.loads(body)
            value = document.get("access_token") if isinstance(document, dict) else None
        except ValueError:
            value = None
        if not isinstance(value, str) or not value:
            raise OAuthLoginError(f"{where}: the answer has no access_token")
        return value


class _Retryable(Exception):
    """A failed attempt worth another one (transport error, 5xx, 429)."""


def _error_of(body: bytes, secret: str) -> str:
    """`` (error: description)`` of an RFC 6749 error answer, short, never echoing the secret."""
    try:
        document = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(document, dict) or not isinstance(document.get("error"), str):
        return ""
    text = document["error"][:64]
    if isinstance(document.get("error_description"), str):
        text += ": " + document["error_description"][:160]
    if secret:
        text = text.replace(secret, "[hidden]")
    return f" ({text})"


_LOGINS: dict[LoginSettings, OAuthLogin] = {}


def oauth_login(settings: LoginSettings) -> OAuthLogin:
    """The node's one login for these settings: its connections (quorum, replica fetchers,
    forwarding) share the token and its refreshes."""
    login = _LOGINS.get(settings)
    if login is None:
        if len(_LOGINS) >= 64:  # settings of nodes long gone (tests); a node re-fetches if needed
            _LOGINS.pop(next(iter(_LOGINS)))
        login = _LOGINS.setdefault(settings, OAuthLogin(settings))
    return login


def login_settings(url: str, options: Mapping[str, str], get: Mapping[str, str | None]) -> LoginSettings:
    """LoginSettings from the JAAS options (clientId, clientSecret, scope) and the sasl.login.* /
    sasl.oauthbearer.* settings in ``get``; ValueError names the key at fault."""

    def number(key: str, default: float, kind: type = int) -> float:
        raw = get.get(key)
        try:
            return default if raw is None else kind(raw)
        except ValueError:
            raise ValueError(f"{key}: not a number") from None

    settings = LoginSettings(
        url, options.get("clientId", ""), options.get("clientSecret", ""), options.get("scope") or None,
        int(number("sasl.login.connect.timeout.ms", DEFAULT_TIMEOUT_MS)),
        int(number("sasl.login.read.timeout.ms", DEFAULT_TIMEOUT_MS)),
        int(number("sasl.login.retry.backoff.ms", 100)), int(number("sasl.login.retry.backoff.max.ms", 10_000)),
        number("sasl.login.refresh.window.factor", 0.8, float), number("sasl.login.refresh.window.jitter", 0.05, float),
        int(number("sasl.login.refresh.min.period.seconds", 60)), int(number("sasl.login.refresh.buffer.seconds", 300)),
        get.get("sasl.oauthbearer.sub.claim.name") or "sub", get.get("sasl.oauthbearer.scope.claim.name") or "scope")
    settings.check()
    return settings
