"""Test JWTs for OAUTHBEARER: unsigned (alg none) and RS256/ES256 signed with keys made here, and
the JWKS document that publishes the public keys (made with `cryptography`)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

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
