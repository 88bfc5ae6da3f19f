"""SCRAM-SHA-256 / SCRAM-SHA-512 (RFC 5802, RFC 7677), sans-IO, as Kafka uses them.

A credential is what the metadata log keeps for a user and mechanism: salt, iterations,
StoredKey = H(ClientKey) and ServerKey -- never the password, and nothing a thief could log in
with (the client proves it knows ClientKey, which StoredKey only lets us check).

``ScramServer`` and ``ScramClient`` are the two ends of one exchange: feed the peer's message
to ``step`` and send what it returns. No channel binding (Kafka: gs2 header ``n,,``), no
extensions (Kafka's ``tokenauth`` is for delegation tokens, which suoi does not have).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["MECHANISMS", "MAX_ITERATIONS", "MIN_ITERATIONS", "ScramClient", "ScramCredential", "ScramError",
           "ScramServer", "mechanism_id", "mechanism_name", "make_credential", "salted_password"]

#: Kafka's ScramMechanism ids (AlterUserScramCredentials, DescribeUserScramCredentials).
MECHANISMS = {"SCRAM-SHA-256": 1, "SCRAM-SHA-512": 2}
_HASH = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
#: Kafka's bounds for a SCRAM credential's iterations.
MIN_ITERATIONS = 4096
MAX_ITERATIONS = 16384


class ScramError(Exception):
    """The exchange failed; the message is safe to log (no secrets, no proofs)."""


def mechanism_id(name: str) -> int:
    return MECHANISMS[name.upper()]


def mechanism_name(mechanism: int) -> str | None:
    return next((n for n, i in MECHANISMS.items() if i == mechanism), None)


@dataclass(frozen=True, slots=True)
class ScramCredential:
    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int

    def __repr__(self) -> str:
        return f"ScramCredential(iterations={self.iterations})"


def _hmac(algo: str, key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, algo).digest()


def salted_password(mechanism: str, password: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac(_HASH[mechanism], password.encode(), salt, iterations)


def credential_from_salted(mechanism: str, salted: bytes, salt: bytes, iterations: int) -> ScramCredential:
    algo = _HASH[mechanism]
    client_key = _hmac(algo, salted, b"Client Key")
    return ScramCredential(salt, hashlib.new(algo, client_key).digest(), _hmac(algo, salted, b"Server Key"), iterations)


def make_credential(mechanism: str, password: str, iterations: int = MIN_ITERATIONS,
                    salt: bytes | None = None) -> ScramCredential:
    salt = salt if salt is not None else os.urandom(32)
    return credential_from_salted(mechanism, salted_password(mechanism, password, salt, iterations), salt, iterations)


def _attrs(message: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in message.split(","):
        if len(part) < 2 or part[1] != "=":
            raise ScramError("malformed SCRAM message")
        out.setdefault(part[0], part[2:])
    return out


def _saslname(name: str) -> str:
    if "=" in name.replace("=2C", "").replace("=3D", ""):
        raise ScramError("malformed user name")
    return name.replace("=2C", ",").replace("=3D", "=")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise ScramError("malformed base64 in SCRAM message") from None


class ScramServer:
    """Server side: client-first -> server-first -> client-final -> server-final (done)."""

    def __init__(self, mechanism: str, lookup: Callable[[str], ScramCredential | None],
                 nonce: str | None = None) -> None:
        self.mechanism = mechanism
        self._algo = _HASH[mechanism]
        self._lookup = lookup
        self._nonce = nonce or base64.b64encode(os.urandom(24)).decode()
        self._step = 0
        self.username: str | None = None
        self.done = False

    def step(self, message: bytes) -> bytes:
        """The answer to the client's next message; raises ScramError when authentication fails."""
        try:
            text = message.decode("utf-8")
        except UnicodeDecodeError:
            raise ScramError("SCRAM message is not UTF-8") from None
        if self._step == 0:
            return self._first(text)
        if self._step == 1:
            return self._final(text)
        raise ScramError("unexpected SCRAM message after the exchange completed")

    def _first(self, text: str) -> bytes:
        cbind, _, rest = text.partition(",")
        authzid, _, bare = rest.partition(",")
        if cbind not in ("n", "y") or not bare:
            raise ScramError("unsupported SCRAM gs2 header (channel binding is not supported)")
        attrs = _attrs(bare)
        if "n" not in attrs or "r" not in attrs or "m" in attrs:
            raise ScramError("SCRAM client-first message lacks a user name or nonce")
        extensions = set(attrs) - {"n", "r"}
        if extensions:
            raise ScramError("SCRAM extensions are not supported")
        user = _saslname(attrs["n"])
        if authzid and _saslname(authzid[2:] if authzid.startswith("a=") else "\0") != user:
            raise ScramError("authorization id differs from the user name")
        credential = self._lookup(user)
        if credential is None:
            raise ScramError(f"unknown user {user!r} for {self.mechanism}")
        self.username, self._credential = user, credential
        self._gs2 = f"{cbind},{authzid},"
        self._client_first_bare = bare
        self._full_nonce = attrs["r"] + self._nonce
        self._server_first = f"r={self._full_nonce},s={_b64(credential.salt)},i={credential.iterations}"
        self._step = 1
        return self._server_first.encode()

    def _final(self, text: str) -> bytes:
        without_proof, sep, proof_b64 = text.rpartition(",p=")
        if not sep:
            raise ScramError("SCRAM client-final message lacks a proof")
        attrs = _attrs(without_proof)
        if attrs.get("c") != _b64(self._gs2.encode()):
            raise ScramError("SCRAM channel binding mismatch")
        # Kafka's check is endsWith, not equality: librdkafka before 2.1 sends its own nonce twice
        # (client nonce + the server's combined nonce), and Kafka accepts that.
        if not attrs.get("r", "").endswith(self._full_nonce):
            raise ScramError("SCRAM nonce mismatch")
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        cred = self._credential
        signature = _hmac(self._algo, cred.stored_key, auth_message)
        proof = _unb64(proof_b64)
        if len(proof) != len(signature):
            raise ScramError("invalid SCRAM proof")
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        if not hmac.compare_digest(hashlib.new(self._algo, client_key).digest(), cred.stored_key):
            raise ScramError(f"invalid credentials for user {self.username!r}")
        self._step = 2
        self.done = True
        return f"v={_b64(_hmac(self._algo, cred.server_key, auth_message))}".encode()


class ScramClient:
    """Client side (suoi's own inter-node client): first() -> step(server-first) -> step(server-final)."""

    def __init__(self, mechanism: str, username: str, password: str, nonce: str | None = None) -> None:
        self.mechanism = mechanism
        self._algo = _HASH[mechanism]
        self._user = username.replace("=", "=3D").replace(",", "=2C")
        self._password = password
        self._nonce = nonce or base64.b64encode(os.urandom(24)).decode()
        self.done = False

    def __repr__(self) -> str:
        return f"ScramClient({self.mechanism}, {self._user})"

    def first(self) -> bytes:
        self._bare = f"n={self._user},r={self._nonce}"
        return f"n,,{self._bare}".encode()

    def step(self, message: bytes) -> bytes | None:
        text = message.decode("utf-8", "replace")
        if not hasattr(self, "_server_signature"):
            attrs = _attrs(text)
            nonce, salt, iterations = attrs.get("r", ""), _unb64(attrs.get("s", "")), int(attrs.get("i", "0"))
            if not nonce.startswith(self._nonce) or iterations < 1:
                raise ScramError("bad SCRAM server-first message")
            salted = salted_password(self.mechanism, self._password, salt, iterations)
            without_proof = f"c={_b64(b'n,,')},r={nonce}"
            auth_message = f"{self._bare},{text},{without_proof}".encode()
            client_key = _hmac(self._algo, salted, b"Client Key")
            signature = _hmac(self._algo, hashlib.new(self._algo, client_key).digest(), auth_message)
            proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
            self._server_signature = _hmac(self._algo, _hmac(self._algo, salted, b"Server Key"), auth_message)
            return f"{without_proof},p={_b64(proof)}".encode()
        attrs = _attrs(text)
        if "e" in attrs or not hmac.compare_digest(_unb64(attrs.get("v", "")), self._server_signature):
            raise ScramError("the server's SCRAM signature does not verify")
        self.done = True
        return None
