"""Signed JWTs checked against a JWKS (KIP-768's OAuthBearerValidatorCallbackHandler).

``JwksKeys`` holds the public keys of ``sasl.oauthbearer.jwks.endpoint.url`` (RSA and EC P-256/
384/521 keys with a ``kid``; other keys are skipped as Kafka does); ``refresh_jwks`` fetches them
once when the node starts and again every ``sasl.oauthbearer.jwks.endpoint.refresh.ms`` (sooner when
a token names an unknown ``kid``, as Kafka does after a key rotation), with
aiohttp (``file:`` URLs are read too), so the event loop never waits on the identity provider.
A failed refresh keeps the last good keys and logs one line. ``JwksValidator`` checks a token:
RS256/384/512 or ES256/384/512 signature by the key named in its ``kid``, ``exp`` (required),
``iat``/``nbf`` within ``sasl.oauthbearer.clock.skew.seconds``, the expected audience and issuer,
the subject claim (the principal) and the scope claim's type. Unsigned tokens are refused.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from suoi.security.oauthbearer import OAuthToken, TokenError, check_times, decode_jwt, principal_of, scope_of

__all__ = ["JwksKeys", "JwksValidator", "fetch_jwks", "parse_jwks", "refresh_jwks"]

log = logging.getLogger("suoi.security")

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_CURVES: dict[str, ec.EllipticCurve] = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
#: Kafka's RefreshingHttpsJwks bounds on refreshes for unknown kids.
MISSING_KID_INTERVAL_S = 60.0
MISSING_KID_MAX = 16
MISSING_KID_MAX_LEN = 1000


def _int(value: object) -> int:
    if not isinstance(value, str):
        raise ValueError("not a base64url string")
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


def parse_jwks(document: bytes) -> dict[str, PublicKey]:
    """kid -> public key of a JWKS document; keys that are not usable signature keys are skipped."""
    keys = json.loads(document).get("keys")
    if not isinstance(keys, list):
        raise ValueError("a JWKS document has a 'keys' list")
    out: dict[str, PublicKey] = {}
    for jwk in keys:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str) or jwk.get("use", "sig") != "sig":
            continue
        try:
            if jwk.get("kty") == "RSA":
                out[jwk["kid"]] = rsa.RSAPublicNumbers(_int(jwk.get("e")), _int(jwk.get("n"))).public_key()
            elif jwk.get("kty") == "EC" and jwk.get("crv") in _CURVES:
                numbers = ec.EllipticCurvePublicNumbers(_int(jwk.get("x")), _int(jwk.get("y")), _CURVES[jwk["crv"]])
                out[jwk["kid"]] = numbers.public_key()
        except ValueError:
            continue  # a malformed key is skipped, as one bad key must not hide the others
    return out


@dataclass(slots=True)
class JwksKeys:
    """The current keys of one JWKS endpoint; replaced as a whole by each refresh."""

    url: str
    refresh_s: float = 3600.0
    keys: dict[str, PublicKey] = field(default_factory=dict)
    #: kid -> time.monotonic() it was last asked for and missing (a refresh was expedited then).
    _missing: dict[str, float] = field(default_factory=dict, repr=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def expedite(self, kid: str) -> None:
        """A token names a key we do not have (the provider rotated its keys): refresh now, as
        Kafka's RefreshingHttpsJwks does, at most once a minute per kid and for a bounded number
        of kids, so tokens with made-up kids cannot make the node hammer the provider."""
        now = time.monotonic()
        if now - self._missing.get(kid, -MISSING_KID_INTERVAL_S) < MISSING_KID_INTERVAL_S:
            return
        if len(self._missing) >= MISSING_KID_MAX and kid not in self._missing:
            oldest = min(self._missing, key=self._missing.__getitem__)
            if now - self._missing[oldest] < MISSING_KID_INTERVAL_S:
                return
            del self._missing[oldest]
        self._missing[kid[:MISSING_KID_MAX_LEN]] = now
        self._wake.set()

    async def wait_refresh(self) -> None:
        """Until the refresh period is over or a refresh was expedited."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.refresh_s)
        self._wake.clear()

    async def fetch(self) -> None:
        """One refresh; raises (OSError, ValueError, aiohttp errors) when it fails."""
        parsed = urlparse(self.url)
        if parsed.scheme == "file":
            document = await asyncio.to_thread(Path(parsed.path).read_bytes)
        else:
            import aiohttp

            timeout = aiohttp.ClientTimeout(total=10)
            async with aiohttp.ClientSession(timeout=timeout) as session, session.get(self.url) as response:
                response.raise_for_status()
                document = await response.read()
        self.keys = parse_jwks(document)


async def fetch_jwks(all_keys: Sequence[JwksKeys]) -> None:
    """Fetch every JWKS once (at start, before the listeners serve); failures are logged, not raised."""

    async def one(keys: JwksKeys) -> None:
        before = set(keys.keys)
        try:
            await keys.fetch()
            if set(keys.keys) != before:  # one line per change of the key set, not per refresh
                log.info("JWKS %s: signing keys %s", keys.url, ", ".join(sorted(keys.keys)) or "none")
        except Exception as exc:  # noqa: BLE001 - any failure keeps the last good keys
            log.warning("JWKS %s could not be fetched (%s); keeping %d key(s)", keys.url,
                        type(exc).__name__, len(keys.keys))

    await asyncio.gather(*(one(k) for k in all_keys))


async def refresh_jwks(all_keys: Sequence[JwksKeys]) -> None:
    """Run for the node's lifetime: fetch each JWKS again every refresh period."""

    async def one(keys: JwksKeys) -> None:
        while True:
            await keys.wait_refresh()
            await fetch_jwks([keys])

    await asyncio.gather(*(one(k) for k in all_keys))


@dataclass(frozen=True, slots=True)
class JwksValidator:
    keys: JwksKeys
    audience: tuple[str, ...] = ()
    issuer: str | None = None
    sub_claim: str = "sub"
    scope_claim: str = "scope"
    clock_skew_s: float = 30.0

    @classmethod
    def from_settings(cls, keys: JwksKeys, get: Mapping[str, str | None]) -> JwksValidator:
        audience = tuple(a.strip() for a in (get.get("sasl.oauthbearer.expected.audience") or "").split(",")
                         if a.strip())
        return cls(keys, audience, get.get("sasl.oauthbearer.expected.issuer") or None,
                   get.get("sasl.oauthbearer.sub.claim.name") or "sub",
                   get.get("sasl.oauthbearer.scope.claim.name") or "scope",
                   float(get.get("sasl.oauthbearer.clock.skew.seconds") or 30))

    def __call__(self, token: str, now_s: float | None = None) -> OAuthToken:
        header, claims, signed, signature = decode_jwt(token)
        self._verify(header, signed, signature)
        expires = check_times(claims, self.clock_skew_s, now_s)
        if self.issuer is not None and claims.get("iss") != self.issuer:
            raise TokenError("the token's issuer is not the expected one")
        if self.audience:
            aud = claims.get("aud")
            auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
            if not any(a in self.audience for a in auds):
                raise TokenError("the token's audience is not an expected one")
        return OAuthToken(principal_of(claims, self.sub_claim), expires, scope_of(claims, self.scope_claim))

    def _verify(self, header: Mapping[str, Any], signed: bytes, signature: bytes) -> None:
        alg = header.get("alg")
        if not isinstance(alg, str) or alg[:2] not in ("RS", "ES") or alg[2:] not in _HASHES:
            raise TokenError(f"the token's algorithm {str(alg)[:20]!r} is not accepted (RS256/384/512, ES256/384/512)")
        kid = header.get("kid")
        key = self.keys.keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            if isinstance(kid, str) and kid:
                self.keys.expedite(kid)
            raise TokenError("the token's kid names no key of the JWKS")
        digest = _HASHES[alg[2:]]()
        try:
            if alg.startswith("RS") and isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, signed, padding.PKCS1v15(), digest)
            elif alg.startswith("ES") and isinstance(key, ec.EllipticCurvePublicKey):
                half = len(signature) // 2
                if not signature or len(signature) % 2:
                    raise InvalidSignature
                der = encode_dss_signature(int.from_bytes(signature[:half], "big"),
                                           int.from_bytes(signature[half:], "big"))
                key.verify(der, signed, ec.ECDSA(digest))
            else:
                raise TokenError("the token's algorithm does not match its key's type")
        except InvalidSignature:
            raise TokenError("the token's signature is invalid") from None
