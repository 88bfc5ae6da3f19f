"""SASL/OAUTHBEARER on the broker side (RFC 7628, KIP-255, KIP-768), sans-IO.

The client's initial response is ``n,[a=<authzid>],\\x01auth=Bearer <JWT>\\x01[key=value\\x01]*\\x01``.
The JWT is checked by one of Kafka's two validators, chosen per listener as Kafka does:

* ``UnsecuredValidator`` (Kafka's OAuthBearerUnsecuredValidatorCallbackHandler, the default):
  unsigned ``alg: none`` tokens for development, options from the listener's OAUTHBEARER JAAS
  config (``unsecuredValidatorPrincipalClaimName``, ``...ScopeClaimName``, ``...RequiredScope``,
  ``...AllowableClockSkewMs``).
* ``JwksValidator`` (Kafka's OAuthBearerValidatorCallbackHandler): signed tokens (RS*/ES*) checked
  against the keys of ``sasl.oauthbearer.jwks.endpoint.url`` (``suoi.security.jwks``), with
  expected audience/issuer, subject and scope claim names and clock skew.

Either returns an ``OAuthToken`` (principal name, expiry) or raises ``TokenError`` whose message
says why without quoting the token. A failure is answered as Kafka's OAuthBearerSaslServer does:
the ``{"status":"invalid_token"}`` challenge, then, when the client acknowledges it with ``\\x01``,
SASL_AUTHENTICATION_FAILED. Extensions are parsed and checked for syntax, then ignored (neither of
Kafka's validators accepts any).

Client side, for a node authenticating to its peers with OAUTHBEARER: `unsecured_login_token`
(Kafka's default unsecured login callback) mints the token, `client_initial_response` frames it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["INVALID_TOKEN", "JWKS_HANDLERS", "UNSECURED_HANDLER", "UNSECURED_LOGIN_HANDLER", "OAuthToken", "TokenError",
           "UnsecuredValidator", "client_initial_response", "decode_jwt", "parse_client_response",
           "unsecured_login_token"]

#: What Kafka's OAuthBearerSaslServer sends back for a token it refuses (RFC 7628 section 3.2.2).
INVALID_TOKEN = b'{"status":"invalid_token"}'
UNSECURED_HANDLER = "org.apache.kafka.common.security.oauthbearer.OAuthBearerUnsecuredValidatorCallbackHandler"
#: The JWKS validator's class, under its current and its deprecated (pre-3.4 "secured") package.
JWKS_HANDLERS = frozenset({"org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
                           "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerValidatorCallbackHandler"})

_GS2 = re.compile(r"^n,(?:a=(?P<authzid>[^,]*))?,(?P<kvs>\x01.*)$", re.S)
_EXTENSION_KEY = re.compile(r"^[A-Za-z]+$")
_EXTENSION_VALUE = re.compile(r"^[\x21-\x7E \t\r\n]+$")
_BEARER = re.compile(r"^Bearer +(?P<token>[A-Za-z0-9\-._~+/]+=*)$")


class TokenError(Exception):
    """The token (or the initial response carrying it) is refused; the message never quotes it."""


@dataclass(frozen=True, slots=True)
class OAuthToken:
    principal: str
    #: The token's ``exp`` in milliseconds since the epoch: the SASL session ends then (KIP-368).
    expires_at_ms: int
    scope: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"OAuthToken({self.principal}, expires_at_ms={self.expires_at_ms})"


Validator = Callable[[str], OAuthToken]


def parse_client_response(response: bytes) -> tuple[str, str | None, dict[str, str]]:
    """(JWT, authzid or None, extensions) of an RFC 7628 client initial response."""
    try:
        text = response.decode("utf-8")
    except UnicodeDecodeError:
        raise TokenError("the OAUTHBEARER initial response is not UTF-8") from None
    m = _GS2.match(text)
    if m is None or not m.group("kvs").endswith("\x01\x01"):
        raise TokenError("malformed OAUTHBEARER initial response (expected n,[a=authzid],^Aauth=Bearer <token>^A^A)")
    pairs: dict[str, str] = {}
    for kv in m.group("kvs")[1:-2].split("\x01"):
        key, sep, value = kv.partition("=")
        if not sep or key in pairs:
            raise TokenError("malformed OAUTHBEARER initial response (bad or repeated key=value)")
        pairs[key] = value
    bearer = _BEARER.match(pairs.pop("auth", ""))
    if bearer is None:
        raise TokenError("the OAUTHBEARER initial response has no 'auth=Bearer <token>'")
    for key, value in pairs.items():
        if not _EXTENSION_KEY.match(key) or not _EXTENSION_VALUE.match(value):
            raise TokenError(f"invalid SASL extension {key[:40]!r}")
    return bearer.group("token"), m.group("authzid") or None, pairs


def _b64(part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("the token is not a JWT (bad base64url)") from None


def decode_jwt(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """(header, claims, signing input, signature) of a compact JWS; nothing is verified here."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("the token is not a JWT (expected header.payload.signature)")
    try:
        header, claims = json.loads(_b64(parts[0])), json.loads(_b64(parts[1]))
    except (ValueError, UnicodeDecodeError):
        raise TokenError("the token is not a JWT (header or payload is not JSON)") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenError("the token is not a JWT (header or payload is not a JSON object)")
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), _b64(parts[2])


def _number(claims: Mapping[str, Any], name: str, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise TokenError(f"the token has no '{name}' claim")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenError(f"the token's '{name}' claim is not a number")
    return float(value)


def check_times(claims: Mapping[str, Any], skew_s: float, now_s: float | None = None) -> int:
    """exp (required) not past and iat/nbf (optional) not in the future, within the skew; exp in ms."""
    now = time.time() if now_s is None else now_s
    exp = _number(claims, "exp", True)
    assert exp is not None
    if exp + skew_s <= now:
        raise TokenError("the token has expired")
    for name in ("iat", "nbf"):
        at = _number(claims, name, False)
        if at is not None and at - skew_s > now:
            raise TokenError(f"the token's '{name}' is in the future")
    return int(exp * 1000)


def principal_of(claims: Mapping[str, Any], claim: str) -> str:
    value = claims.get(claim)
    if not isinstance(value, str) or not value.strip():
        raise TokenError(f"the token has no string '{claim}' claim (the principal)")
    return value


def scope_of(claims: Mapping[str, Any], claim: str) -> tuple[str, ...]:
    """A scope claim is a space-separated string or a list of strings (Kafka accepts both)."""
    value = claims.get(claim)
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise TokenError(f"the token's '{claim}' claim is not a string or a list of strings")


@dataclass(frozen=True, slots=True)
class UnsecuredValidator:
    """Kafka's unsecured validator: ``alg`` must be ``none`` (and the signature empty)."""

    principal_claim: str = "sub"
    scope_claim: str = "scope"
    required_scope: tuple[str, ...] = ()
    clock_skew_s: float = 0.0

    @classmethod
    def from_jaas(cls, options: Mapping[str, str]) -> UnsecuredValidator:
        try:
            skew_ms = int(options.get("unsecuredValidatorAllowableClockSkewMs") or 0)
        except ValueError:
            raise ValueError("unsecuredValidatorAllowableClockSkewMs: not a number") from None
        if skew_ms < 0:
            raise ValueError("unsecuredValidatorAllowableClockSkewMs: must not be negative")
        return cls(options.get("unsecuredValidatorPrincipalClaimName") or "sub",
                   options.get("unsecuredValidatorScopeClaimName") or "scope",
                   tuple((options.get("unsecuredValidatorRequiredScope") or "").replace(",", " ").split()),
                   skew_ms / 1000)

    def __call__(self, token: str, now_s: float | None = None) -> OAuthToken:
        header, claims, _, signature = decode_jwt(token)
        if header.get("alg") != "none" or signature:
            raise TokenError("the unsecured validator accepts only unsigned tokens (alg 'none')")
        expires = check_times(claims, self.clock_skew_s, now_s)
        scope = scope_of(claims, self.scope_claim)
        missing = [s for s in self.required_scope if s not in scope]
        if missing:
            raise TokenError(f"the token lacks the required scope {' '.join(missing)}")
        return OAuthToken(principal_of(claims, self.principal_claim), expires, scope)


class OAuthBearerServer:
    """One OAUTHBEARER exchange: a good token ends it at once; a bad one gets the invalid_token
    challenge, and the client's ``\\x01`` after it ends it with a failure (``reason`` says why)."""

    def __init__(self, validator: Validator) -> None:
        self._validate = validator
        self.token: OAuthToken | None = None
        self.reason: str | None = None

    def step(self, response: bytes) -> bytes:
        """The answer to send; raises TokenError once the client acknowledged a refusal."""
        if self.reason is not None:
            raise TokenError(self.reason)
        try:
            jwt, authzid, _extensions = parse_client_response(response)
            token = self._validate(jwt)
            if authzid is not None and authzid != token.principal:
                raise TokenError("the authorization id differs from the token's principal")
        except TokenError as exc:
            self.reason = str(exc)
            return INVALID_TOKEN
        self.token = token
        return b""


#: Kafka's default login callback (sasl.login.callback.handler.class unset): unsecured tokens.
UNSECURED_LOGIN_HANDLER = "org.apache.kafka.common.security.oauthbearer.OAuthBearerUnsecuredLoginCallbackHandler"
_LOGIN_CLAIM = re.compile(r"^unsecuredLogin(?P<kind>String|Number|List)Claim_(?P<name>.+)$")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsecured_login_token(options: Mapping[str, str], now_s: float | None = None) -> str:
    """Kafka's OAuthBearerUnsecuredLoginCallbackHandler: an unsigned (``alg: none``) JWT whose
    claims come from the JAAS options ``unsecuredLoginStringClaim_<name>``,
    ``unsecuredLoginNumberClaim_<name>`` and ``unsecuredLoginListClaim_<name>`` (the value's
    first character separates the items), with ``iat``/``exp`` from now and
    ``unsecuredLoginLifetimeSeconds`` (default 3600). The principal claim
    (``unsecuredLoginPrincipalClaimName``, default ``sub``) must be set. ValueError names the
    option at fault, never a value."""
    now = time.time() if now_s is None else now_s
    try:
        lifetime = int(options.get("unsecuredLoginLifetimeSeconds") or 3600)
    except ValueError:
        raise ValueError("unsecuredLoginLifetimeSeconds: not a number") from None
    now_ms = int(now * 1000)  # whole milliseconds, never rounded up: iat must not be in the validator's future
    claims: dict[str, Any] = {"iat": now_ms / 1000, "exp": (now_ms + lifetime * 1000) / 1000}
    for key, value in options.items():
        if key.startswith("unsecuredLoginExtension_"):
            raise ValueError(f"{key}: SASL extensions are not sent by suoi's nodes")
        m = _LOGIN_CLAIM.match(key)
        if m is None:
            continue
        name, kind = m["name"], m["kind"]
        if name in ("iat", "exp"):
            raise ValueError(f"{key}: the {name} claim is set from unsecuredLoginLifetimeSeconds")
        if kind == "String":
            claims[name] = value
        elif kind == "Number":
            try:
                claims[name] = float(value) if "." in value else int(value)
            except ValueError:
                raise ValueError(f"{key}: not a number") from None
        else:
            claims[name] = [item for item in value[1:].split(value[:1])] if value else []
    principal = options.get("unsecuredLoginPrincipalClaimName") or "sub"
    if not isinstance(claims.get(principal), str) or not claims[principal].strip():
        raise ValueError(f"unsecuredLoginStringClaim_{principal}: the principal claim must be set")
    header = _b64url(json.dumps({"alg": "none"}).encode())
    return f"{header}.{_b64url(json.dumps(claims, separators=(',', ':')).encode())}."


def client_initial_response(token: str) -> bytes:
    """RFC 7628's initial client response, as Kafka's OAuthBearerSaslClient sends it."""
    return f"n,,\x01auth=Bearer {token}\x01\x01".encode()
