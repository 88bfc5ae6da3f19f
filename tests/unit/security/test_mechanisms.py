"""SCRAM (RFC 7677's test vector), PLAIN, JAAS parsing and principal mapping rules, sans-IO."""

from __future__ import annotations

import base64

import pytest

from suoi.security.jaas import JaasError, parse_jaas
from suoi.security.principal import PrincipalMappingError, SslPrincipalMapper
from suoi.security.sasl import SaslAuthenticationError, SaslClientCredentials, SaslServerSession
from suoi.security.scram import ScramClient, ScramError, ScramServer, make_credential

# RFC 7677 section 3: user "user", password "pencil"
CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")


def test_rfc7677_vector_client_and_server() -> None:
    credential = make_credential("SCRAM-SHA-256", "pencil", 4096, SALT)
    server = ScramServer("SCRAM-SHA-256", lambda user: credential if user == "user" else None, nonce=SERVER_NONCE)
    client = ScramClient("SCRAM-SHA-256", "user", "pencil", nonce=CLIENT_NONCE)
    first = client.first()
    assert first == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    server_first = server.step(first)
    assert server_first == b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    final = client.step(server_first)
    assert final == (b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                     b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    server_final = server.step(final)
    assert server_final == b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    assert server.done and server.username == "user"
    assert client.step(server_final) is None and client.done


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_scram_wrong_password_and_unknown_user_fail(mechanism: str) -> None:
    credential = make_credential(mechanism, "right", 4096)
    lookup = {"alice": credential}.get
    server = ScramServer(mechanism, lookup)
    client = ScramClient(mechanism, "alice", "wrong")
    with pytest.raises(ScramError, match="invalid credentials"):
        server.step(client.step(server.step(client.first())) or b"")
    with pytest.raises(ScramError, match="unknown user"):
        ScramServer(mechanism, lookup).step(ScramClient(mechanism, "mallory", "x").first())
    for garbage in (b"", b"\xff\xfe", b"p=tls-unique,,n=alice,r=x", b"n,,n=alice", b"n,,r=abc,n=alice,m=ext"):
        with pytest.raises(ScramError):
            ScramServer(mechanism, lookup).step(garbage)


def test_sasl_sessions_plain_and_scram_record_the_principal() -> None:
    session = SaslServerSession("PLAIN", plain_users={"bob": "pw"}, scram_lookup=lambda u, m: None)
    assert session.step(b"\0bob\0pw") == b"" and session.done and session.principal == "User:bob"
    for token in (b"\0bob\0nope", b"\0eve\0pw", b"bob\0pw", b"other\0bob\0pw", b"\0\0"):
        with pytest.raises(SaslAuthenticationError):
            SaslServerSession("PLAIN", plain_users={"bob": "pw"}, scram_lookup=lambda u, m: None).step(token)
    credential = make_credential("SCRAM-SHA-512", "s3cret", 4096)
    server = SaslServerSession("SCRAM-SHA-512", plain_users={},
                               scram_lookup=lambda u, m: credential if (u, m) == ("al,ice", "SCRAM-SHA-512") else None)
    exchange = SaslClientCredentials("SCRAM-SHA-512", "al,ice", "s3cret").exchange()
    token = exchange.step(server.step(exchange.first()))
    assert token is not None
    assert exchange.step(server.step(token)) is None
    assert server.principal == "User:al,ice"


def test_jaas_options_and_users() -> None:
    jaas = parse_jaas('org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
                      'password="a\\"b" user_admin="x" user_alice=y;')
    assert jaas.login_module == "org.apache.kafka.common.security.plain.PlainLoginModule"
    assert jaas.options["password"] == 'a"b' and jaas.users == {"admin": "x", "alice": "y"}
    assert "x" not in repr(jaas)
    for bad in ("", "PlainLoginModule", 'PlainLoginModule required user_a="b"', 'M required a="b"; M2 required;'):
        with pytest.raises(JaasError) as raised:
            parse_jaas(bad)
        assert '"b"' not in str(raised.value)


def test_principal_mapping_rules() -> None:
    dn = "CN=alice,OU=clients,O=Example"
    assert SslPrincipalMapper(None).principal(dn) == f"User:{dn}"
    mapper = SslPrincipalMapper("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=([^,]+),OU=(.*),O=.*$/$1@$2/U,DEFAULT")
    assert mapper.principal(dn) == "User:ALICE@CLIENTS"
    assert mapper.principal("CN=svc,OU=ServiceUsers,O=Example") == "User:svc"
    assert mapper.principal("CN=x") == "User:CN=x"
    assert SslPrincipalMapper("RULE:^CN=([^,]+).*$/$1/L").principal("CN=Bob,O=E") == "User:bob"
    with pytest.raises(PrincipalMappingError, match="No rules apply"):
        SslPrincipalMapper("RULE:^CN=admin$/admin/").principal(dn)
    with pytest.raises(PrincipalMappingError):
        SslPrincipalMapper("RULE:broken")
