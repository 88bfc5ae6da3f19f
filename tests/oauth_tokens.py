"""Test JWTs for OAUTHBEARER: unsigned (alg none) and RS256/ES256 signed with keys made here, and
the JWKS document that publishes the public keys (made with `cryptography`)."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from typing import Any
from urllib.parse import unquote_plus

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _uint(value: int, size: int | None = None) -> str:
    return b64(value.to_bytes(size or (value.bit_length() + 7) // 8, "big"))


def claims(sub: str = "alice", lifetime_s: float = 600, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": sub, "iat": now, "exp": now + lifetime_s, **extra}


def unsigned(payload: dict[str, Any]) -> str:
    return f"{b64(json.dumps({'alg': 'none'}).encode())}.{b64(json.dumps(payload).encode())}."


class SigningKeys:
    """One RSA and one EC P-256 key pair, kids "rsa-1" and "ec-1"."""

    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())

    def jwks(self) -> dict[str, Any]:
        r, e = self.rsa.public_key().public_numbers(), self.ec.public_key().public_numbers()
        return {"keys": [{"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256", "n": _uint(r.n), "e": _uint(r.e)},
                         {"kty": "EC", "kid": "ec-1", "crv": "P-256", "x": _uint(e.x, 32), "y": _uint(e.y, 32)}]}

    def sign(self, payload: dict[str, Any], alg: str = "RS256", kid: str | None = None) -> str:
        kid = kid or ("rsa-1" if alg == "RS256" else "ec-1")
        head = f"{b64(json.dumps({'alg': alg, 'kid': kid, 'typ': 'JWT'}).encode())}.{b64(json.dumps(payload).encode())}"
        if alg == "RS256":
            signature = self.rsa.sign(head.encode(), padding.PKCS1v15(), hashes.SHA256())
        else:
            r, s = decode_dss_signature(self.ec.sign(head.encode(), ec.ECDSA(hashes.SHA256())))
            signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return f"{head}.{b64(signature)}"


def initial_response(token: str, authzid: str = "", **extensions: str) -> bytes:
    """RFC 7628's client initial response."""
    kvs = "".join(f"{k}={v}\x01" for k, v in extensions.items())
    return f"n,{'a=' + authzid if authzid else ''},\x01auth=Bearer {token}\x01{kvs}\x01".encode()


class IdentityProvider:
    """A small OAuth identity provider on 127.0.0.1 (an aiohttp app in its own thread and event
    loop): GET /jwks publishes ``document``; POST /token is the client-credentials grant (RFC 6749
    section 4.4, HTTP basic authentication with form-urlencoded id and secret) for ``clients``
    (id -> secret), answering RS256 tokens signed by ``keys`` whose subject is the client id and
    which live ``lifetime_s``. ``issued`` counts the tokens given per client (``issued_at``: when,
    by time.time(), each was signed), ``requests`` all asks."""

    def __init__(self, document: dict[str, Any], keys: SigningKeys | None = None,
                 clients: dict[str, str] | None = None, lifetime_s: float = 600) -> None:
        from suoi.cli.cluster_layout import free_ports

        self.document, self.keys, self.clients, self.lifetime_s = document, keys, clients or {}, lifetime_s
        self.issued: dict[str, int] = {}
        self.issued_at: dict[str, list[float]] = {}
        self.requests = 0  # token requests, granted or not
        self.port = free_ports(1)[0]
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/jwks"

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def _client(self, authorization: str) -> str | None:
        scheme, _, encoded = authorization.partition(" ")
        if scheme != "Basic":
            return None
        user, _, secret = base64.b64decode(encoded).decode().partition(":")
        user, secret = unquote_plus(user), unquote_plus(secret)
        return user if self.clients.get(user) == secret else None

    def _run(self) -> None:
        from aiohttp import web

        async def jwks(_: web.Request) -> web.Response:
            return web.json_response(self.document)

        async def token(request: web.Request) -> web.Response:
            self.requests += 1
            form = await request.post()
            if form.get("grant_type") != "client_credentials":
                return web.json_response({"error": "unsupported_grant_type"}, status=400)
            client = self._client(request.headers.get("Authorization", ""))
            if client is None or self.keys is None:
                return web.json_response({"error": "invalid_client", "error_description": "bad client credentials"},
                                         status=401)
            self.issued[client] = self.issued.get(client, 0) + 1
            self.issued_at.setdefault(client, []).append(time.time())
            scope = str(form.get("scope") or "")
            jwt = self.keys.sign(claims(client, self.lifetime_s, scope=scope))
            return web.json_response({"access_token": jwt, "token_type": "Bearer", "expires_in": self.lifetime_s})

        app = web.Application()
        app.router.add_get("/jwks", jwks)
        app.router.add_post("/token", token)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        self.loop.run_until_complete(web.TCPSite(self.runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self.loop.run_forever()

    def __enter__(self) -> IdentityProvider:
        self._thread.start()
        assert self._ready.wait(10), "the identity provider did not start"
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
