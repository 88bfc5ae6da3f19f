"""TLS contexts from Kafka's ``ssl.*`` settings, with Python's ``ssl``.

Keystores (the node's certificate and key): ``ssl.keystore.type`` PEM -- inline
``ssl.keystore.certificate.chain`` + ``ssl.keystore.key`` (encrypted with ``ssl.key.password``
or not), or a ``ssl.keystore.location`` file holding both -- or PKCS12 (``ssl.keystore.location``
+ ``ssl.keystore.password``, read with ``cryptography``). Truststores (the CAs we accept):
``ssl.truststore.type`` PEM (``ssl.truststore.certificates`` inline, or a location) or PKCS12.
JKS is a Java format: refused with the keytool command that converts it. Without a type,
Kafka's default JKS is assumed only if the file is one; PEM and PKCS12 files are recognised.

``ssl`` loads a certificate chain only from a file, so an inline or PKCS12 keystore is written,
as PEM, to a private temporary file (mode 0600 in a 0700 directory) that is deleted as soon as
it is loaded.

``settings`` is a callable ``key -> str | None`` that already resolved per-listener overrides
(``listener.name.<l>.ssl.*``); errors name the key, never a value.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["TlsConfigError", "client_context", "keystore_certificate", "reload_server_context", "server_context"]

Settings = Callable[[str], str | None]

_JKS_MAGIC = b"\xfe\xed\xfe\xed"
_PROTOCOLS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3,
              "TLSv1.1": ssl.TLSVersion.TLSv1_1, "TLSv1": ssl.TLSVersion.TLSv1}
CLIENT_AUTH = {"none": ssl.CERT_NONE, "requested": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


class TlsConfigError(ValueError):
    """The ssl.* settings cannot make a TLS context; the message names keys, never secrets."""


def server_context(settings: Settings, listener: str) -> ssl.SSLContext:
    """The TLS context of a listener: keystore required, client auth per ``ssl.client.auth``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _common(ctx, settings, listener)
    if not _load_keystore(ctx, settings, listener):
        raise TlsConfigError(f"listener {listener}: an SSL listener needs a keystore (ssl.keystore.location, or "
                             f"ssl.keystore.type=PEM with ssl.keystore.certificate.chain and ssl.keystore.key)")
    auth = (settings("ssl.client.auth") or "none").strip().lower()
    if auth not in CLIENT_AUTH:
        raise TlsConfigError(f"ssl.client.auth={auth}: expected one of none, requested, required")
    ctx.verify_mode = CLIENT_AUTH[auth]
    if auth != "none" and not _load_truststore(ctx, settings, listener):
        ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    return ctx


def reload_server_context(ctx: ssl.SSLContext, settings: Settings, listener: str) -> None:
    """Load the current keystore (and truststore CAs) into a live server context, after checking
    that they make a complete context; raises TlsConfigError and changes nothing if not."""
    server_context(settings, listener)
    _load_keystore(ctx, settings, listener)
    if ctx.verify_mode != ssl.CERT_NONE:
        _load_truststore(ctx, settings, listener)


def client_context(settings: Settings, listener: str) -> tuple[ssl.SSLContext, bool]:
    """A context for suoi's own connections to ``listener`` of other nodes, and whether the
    server's host name is checked (``ssl.endpoint.identification.algorithm``: https, Kafka's
    default, or empty)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _common(ctx, settings, listener)
    algorithm = settings("ssl.endpoint.identification.algorithm")
    algorithm = "https" if algorithm is None else algorithm.strip().lower()
    if algorithm not in ("https", ""):
        raise TlsConfigError(f"ssl.endpoint.identification.algorithm={algorithm}: expected https or empty")
    ctx.check_hostname = algorithm == "https"
    ctx.verify_mode = ssl.CERT_REQUIRED
    if not _load_truststore(ctx, settings, listener):
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    _load_keystore(ctx, settings, listener)  # presented when the peer asks (mTLS)
    return ctx, ctx.check_hostname


def _common(ctx: ssl.SSLContext, settings: Settings, listener: str) -> None:
    protocols = [p.strip() for p in (settings("ssl.enabled.protocols") or "TLSv1.2,TLSv1.3").split(",") if p.strip()]
    unknown = [p for p in protocols if p not in _PROTOCOLS]
    if unknown or not protocols:
        raise TlsConfigError(f"listener {listener}: ssl.enabled.protocols: unknown protocol(s) {', '.join(unknown)}; "
                             f"expected some of {', '.join(_PROTOCOLS)}")
    protocol = (settings("ssl.protocol") or "TLSv1.3").strip()
    if protocol not in _PROTOCOLS and protocol != "TLS":  # Java's SSLContext algorithm; enabled.protocols rule
        raise TlsConfigError(f"listener {listener}: ssl.protocol={protocol}: expected TLS, TLSv1.2 or TLSv1.3")
    versions = sorted(_PROTOCOLS[p] for p in protocols)
    try:
        ctx.minimum_version, ctx.maximum_version = versions[0], versions[-1]
    except (ValueError, ssl.SSLError) as exc:
        raise TlsConfigError(f"listener {listener}: ssl.enabled.protocols: {exc}") from None
    ciphers = settings("ssl.cipher.suites")
    if ciphers:
        names = [c.strip() for c in ciphers.split(",") if c.strip()]
        # Java names TLS 1.2 suites TLS_ECDHE_..., OpenSSL ECDHE-...; TLS 1.3 suites are not settable here.
        openssl = [_openssl_cipher(n) for n in names if not n.startswith(("TLS_AES", "TLS_CHACHA20"))]
        if openssl:
            try:
                ctx.set_ciphers(":".join(openssl))
            except ssl.SSLError:
                raise TlsConfigError(f"listener {listener}: ssl.cipher.suites: none of {', '.join(names)} is "
                                     f"available") from None


def _openssl_cipher(name: str) -> str:
    """Kafka takes IANA suite names (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256), OpenSSL its own
    (ECDHE-RSA-AES128-GCM-SHA256); names without the TLS_ prefix are taken as OpenSSL's."""
    if not name.startswith("TLS_") or "_WITH_" not in name:
        return name
    kx, cipher = name.removeprefix("TLS_").split("_WITH_", 1)
    cipher = cipher.replace("AES_128", "AES128").replace("AES_256", "AES256").replace("POLY1305_SHA256", "POLY1305")
    parts = ([] if kx == "RSA" else kx.split("_")) + cipher.split("_")
    return "-".join(parts)


def _read(settings: Settings, key: str) -> bytes:
    location = settings(key)
    assert location is not None
    try:
        return Path(location).read_bytes()
    except OSError as exc:
        raise TlsConfigError(f"{key}={location}: cannot read it: {exc.strerror or exc}") from None


def _store_type(settings: Settings, kind: str, data: bytes | None) -> str:
    explicit = settings(f"ssl.{kind}.type")
    if explicit:
        return explicit.strip().upper()
    if data is None or b"-----BEGIN" in data[:4096]:
        return "PEM"
    return "JKS" if data.startswith(_JKS_MAGIC) else "PKCS12"


def _refuse_jks(kind: str, location: str | None) -> TlsConfigError:
    src = location or f"your.{kind}.jks"
    return TlsConfigError(
        f"ssl.{kind}.type=JKS: JKS is a Java-only format; convert it to PKCS12 (keytool -importkeystore "
        f"-srckeystore {src} -destkeystore {Path(src).with_suffix('.p12')} -deststoretype PKCS12) and set "
        f"ssl.{kind}.type=PKCS12, or use PEM")


def _load_keystore(ctx: ssl.SSLContext, settings: Settings, listener: str) -> bool:
    keystore = _keystore_pem(settings)
    if keystore is None:
        return False
    _load_chain_pem(ctx, *keystore)
    return True


def keystore_certificate(settings: Settings) -> bytes | None:
    """The DER certificate of the keystore (the first of its chain, as Java's KeyManager presents
    it), or None without a keystore: the identity a node shows a peer that asks for one (mTLS)."""
    keystore = _keystore_pem(settings)
    if keystore is None:
        return None
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        certs = x509.load_pem_x509_certificates(keystore[0])
    except ValueError:
        raise TlsConfigError("keystore: no certificate could be read from ssl.keystore.*") from None
    return certs[0].public_bytes(serialization.Encoding.DER)


def _keystore_pem(settings: Settings) -> tuple[bytes, str | None] | None:
    """(PEM of the key and its chain, key password) of the ssl.keystore.* settings, or None."""
    location = settings("ssl.keystore.location")
    chain, key = settings("ssl.keystore.certificate.chain"), settings("ssl.keystore.key")
    if not location and not chain:
        return None
    data = _read(settings, "ssl.keystore.location") if location else None
    kind = _store_type(settings, "keystore", data)
    key_password = settings("ssl.key.password")
    if kind == "JKS":
        raise _refuse_jks("keystore", location)
    if kind == "PKCS12":
        if data is None:
            raise TlsConfigError("ssl.keystore.type=PKCS12 needs ssl.keystore.location")
        return _pkcs12_keystore_pem(data, settings("ssl.keystore.password")), None
    if kind != "PEM":
        raise TlsConfigError(f"ssl.keystore.type={kind}: expected PEM or PKCS12 (JKS: convert to PKCS12)")
    if data is not None:
        return data, key_password
    if not key:
        raise TlsConfigError("ssl.keystore.certificate.chain needs ssl.keystore.key")
    return chain.encode() + b"\n" + key.encode(), key_password  # type: ignore[union-attr]


def _load_chain_pem(ctx: ssl.SSLContext, pem: bytes, password: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="suoi-tls-") as tmp:  # 0700
        path = os.path.join(tmp, "keystore.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        try:  # never None: OpenSSL would prompt on the terminal for an encrypted key's pass phrase
            ctx.load_cert_chain(path, password=password if password is not None else "")
        except ssl.SSLError as exc:
            reason = exc.reason or "bad PEM or wrong ssl.key.password"
            raise TlsConfigError(f"keystore: cannot load the certificate and key ({reason}); check ssl.keystore.* "
                                 f"and ssl.key.password") from None
        finally:
            os.unlink(path)


def _pkcs12_keystore_pem(data: bytes, password: str | None) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, password.encode() if password else None)
    except ValueError:
        raise TlsConfigError("ssl.keystore.location: not a PKCS12 keystore, or wrong ssl.keystore.password") from None
    if key is None or cert is None:
        raise TlsConfigError("ssl.keystore.location: the PKCS12 keystore holds no private key with its certificate")
    out = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    for c in (cert, *extra):
        out += c.public_bytes(serialization.Encoding.PEM)
    return out


def _load_truststore(ctx: ssl.SSLContext, settings: Settings, listener: str) -> bool:
    location, inline = settings("ssl.truststore.location"), settings("ssl.truststore.certificates")
    if not location and not inline:
        return False
    data = _read(settings, "ssl.truststore.location") if location else inline.encode()  # type: ignore[union-attr]
    kind = _store_type(settings, "truststore", data)
    if kind == "JKS":
        raise _refuse_jks("truststore", location)
    if kind == "PKCS12":
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.serialization import pkcs12

        password = settings("ssl.truststore.password")
        try:
            store = pkcs12.load_pkcs12(data, password.encode() if password else None)
        except ValueError:
            raise TlsConfigError("ssl.truststore.location: not a PKCS12 truststore, or wrong "
                                 "ssl.truststore.password") from None
        certs = [c.certificate for c in store.additional_certs] + ([store.cert.certificate] if store.cert else [])
        data = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
    elif kind != "PEM":
        raise TlsConfigError(f"ssl.truststore.type={kind}: expected PEM or PKCS12 (JKS: convert to PKCS12)")
    try:
        ctx.load_verify_locations(cadata=data.decode("ascii", "replace"))
    except (ssl.SSLError, ValueError):
        raise TlsConfigError("truststore: no CA certificate could be read from ssl.truststore.*") from None
    return True
