"""TLS contexts from Kafka's ssl.* settings: PEM and PKCS12 keystores/truststores, mTLS,
JKS refused with the conversion command; a real handshake between the two contexts in memory."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from suoi.security.principal import SslPrincipalMapper, certificate_dn
from suoi.security.tls import TlsConfigError, client_context, server_context


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> ssl.SSLObject:
    """Run a TLS handshake between the two contexts over memory BIOs; the server's SSLObject."""
    s_in, s_out, c_in, c_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    srv = server.wrap_bio(s_in, s_out, server_side=True)
    cli = client.wrap_bio(c_in, c_out, server_hostname="127.0.0.1")
    done = {"s": False, "c": False}
    for _ in range(20):
        for name, obj in (("c", cli), ("s", srv)):
            if not done[name]:
                try:
                    obj.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            # TLS 1.3: the server's verdict on the client certificate arrives with the first data
            cli.write(b"ping")
            s_in.write(c_out.read())
            assert srv.read(4) == b"ping"
            return srv
    raise AssertionError("handshake did not finish")


def _p12(cert: trustme.LeafCert, password: bytes | None) -> bytes:
    key = serialization.load_pem_private_key(cert.private_key_pem.bytes(), None)
    chain = [x509.load_pem_x509_certificate(p.bytes()) for p in cert.cert_chain_pems]
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return pkcs12.serialize_key_and_certificates(b"node", key, chain[0], chain[1:] or None, encryption)  # type: ignore[arg-type]


def test_pkcs12_keystore_and_truststore_with_required_client_auth(tmp_path: Path) -> None:
    ca = trustme.CA()
    (tmp_path / "node.p12").write_bytes(_p12(ca.issue_cert("127.0.0.1"), b"ks-pass"))
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    (tmp_path / "trust.p12").write_bytes(pkcs12.serialize_key_and_certificates(
        None, None, None, [ca_cert], serialization.BestAvailableEncryption(b"ts-pass")))
    (tmp_path / "client.p12").write_bytes(_p12(ca.issue_cert("c@example.com", common_name="dora",
                                                             organization_unit_name="ops"), None))
    server_settings = {"ssl.keystore.type": "PKCS12", "ssl.keystore.location": str(tmp_path / "node.p12"),
                       "ssl.keystore.password": "ks-pass", "ssl.truststore.type": "PKCS12",
                       "ssl.truststore.location": str(tmp_path / "trust.p12"), "ssl.truststore.password": "ts-pass",
                       "ssl.client.auth": "required"}
    server = server_context(server_settings.get, "SSL")
    client_settings = {"ssl.truststore.location": str(tmp_path / "trust.p12"), "ssl.truststore.password": "ts-pass",
                       "ssl.keystore.location": str(tmp_path / "client.p12")}  # type guessed: PKCS12
    client, check_hostname = client_context(client_settings.get, "SSL")
    assert check_hostname  # ssl.endpoint.identification.algorithm defaults to https, as Kafka's
    srv = _handshake(server, client)
    der = srv.getpeercert(binary_form=True)
    assert der is not None
    assert SslPrincipalMapper("RULE:^CN=([^,]+),OU=ops.*$/$1/").principal(certificate_dn(der)) == "User:dora"
    # a client without a certificate is refused
    bare, _ = client_context({"ssl.truststore.location": str(tmp_path / "trust.p12"),
                              "ssl.truststore.password": "ts-pass"}.get, "SSL")
    with pytest.raises(ssl.SSLError):
        _handshake(server, bare)
    with pytest.raises(TlsConfigError, match="wrong ssl.keystore.password") as raised:
        server_context({**server_settings, "ssl.keystore.password": "nope"}.get, "SSL")
    assert "ks-pass" not in str(raised.value)


def test_pem_inline_with_encrypted_key_protocols_and_ciphers() -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    key = serialization.load_pem_private_key(cert.private_key_pem.bytes(), None)
    encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(b"key-pass")).decode()
    settings = {"ssl.keystore.type": "PEM", "ssl.keystore.key": encrypted, "ssl.key.password": "key-pass",
                "ssl.keystore.certificate.chain": b"".join(p.bytes() for p in cert.cert_chain_pems).decode(),
                "ssl.enabled.protocols": "TLSv1.2",
                "ssl.cipher.suites": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}
    server = server_context(settings.get, "SSL")
    client, _ = client_context({"ssl.truststore.certificates": ca.cert_pem.bytes().decode()}.get, "SSL")
    srv = _handshake(server, client)
    assert srv.version() == "TLSv1.2" and srv.cipher()[0] == "ECDHE-ECDSA-AES128-GCM-SHA256"  # type: ignore[index]
    with pytest.raises(TlsConfigError, match="ssl.key.password") as raised:
        server_context({**settings, "ssl.key.password": "wrong"}.get, "SSL")
    assert "key-pass" not in str(raised.value) and "PRIVATE" not in str(raised.value)
    with pytest.raises(TlsConfigError, match="ssl.enabled.protocols"):
        server_context({**settings, "ssl.enabled.protocols": "SSLv3"}.get, "SSL")


def test_jks_is_refused_with_the_conversion_command(tmp_path: Path) -> None:
    jks = tmp_path / "server.keystore.jks"
    jks.write_bytes(b"\xfe\xed\xfe\xed" + bytes(60))
    for settings in ({"ssl.keystore.location": str(jks)},
                     {"ssl.keystore.location": str(jks), "ssl.keystore.type": "JKS"}):
        with pytest.raises(TlsConfigError, match="keytool -importkeystore") as raised:
            server_context(settings.get, "SSL")
        assert "server.keystore.p12" in str(raised.value)
    with pytest.raises(TlsConfigError, match="needs a keystore"):
        server_context({}.get, "SSL")


def test_a_changed_keystore_file_is_loaded_into_the_live_context(tmp_path: Path) -> None:
    from suoi.security.reload import TlsReloader

    def write_keystore(ca: trustme.CA) -> None:
        cert = ca.issue_cert("127.0.0.1")
        tmp = tmp_path / "node.pem.tmp"
        tmp.write_bytes(cert.private_key_pem.bytes() + b"".join(p.bytes() for p in cert.cert_chain_pems))
        tmp.replace(tmp_path / "node.pem")  # atomically, as a certificate renewal should

    def client_of(ca: trustme.CA) -> ssl.SSLContext:
        return client_context({"ssl.truststore.certificates": ca.cert_pem.bytes().decode()}.get, "SSL")[0]

    old_ca, new_ca = trustme.CA(), trustme.CA()
    write_keystore(old_ca)
    settings = {"ssl.keystore.location": str(tmp_path / "node.pem")}.get
    live = server_context(settings, "SSL")
    reloader = TlsReloader([("SSL", live, settings)])
    assert reloader.check() == []  # nothing changed yet
    _handshake(live, client_of(old_ca))
    write_keystore(new_ca)
    assert reloader.check() == ["SSL"]
    _handshake(live, client_of(new_ca))  # the same context now presents the renewed certificate
    with pytest.raises(ssl.SSLError):
        _handshake(live, client_of(old_ca))
    (tmp_path / "node.pem").write_text("-----BEGIN PRIVATE KEY-----\nhalf written")
    assert reloader.check() == []  # refused, logged, and the current certificate stays
    _handshake(live, client_of(new_ca))
