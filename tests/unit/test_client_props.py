"""A tool's client properties in Kafka's Java names become librdkafka's (`suoi.cli.client_props`),
so one admin.properties works with Kafka's tools and suoi's."""

from __future__ import annotations

import pytest

from suoi.cli.client_props import librdkafka_names
from suoi.cli.common import CliError

SCRAM = 'org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="p@ss \\"q\\"";'


def test_java_names_become_librdkafkas() -> None:
    out = librdkafka_names({"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
                            "sasl.jaas.config": SCRAM, "ssl.truststore.type": "PEM",
                            "ssl.truststore.location": "/d/ca.pem", "ssl.endpoint.identification.algorithm": ""})
    assert out == {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "admin",
                   "sasl.password": 'p@ss "q"', "ssl.ca.location": "/d/ca.pem",
                   "ssl.endpoint.identification.algorithm": "none"}


def test_kip768_client_credentials_become_librdkafkas_oidc() -> None:
    jaas = ('org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId="app" '
            'clientSecret="s" scope="kafka";')
    out = librdkafka_names({"sasl.mechanism": "OAUTHBEARER", "sasl.jaas.config": jaas,
                            "sasl.login.callback.handler.class":
                                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler",
                            "sasl.oauthbearer.token.endpoint.url": "https://idp/token"})
    assert out == {"sasl.mechanism": "OAUTHBEARER", "sasl.oauthbearer.method": "oidc",
                   "sasl.oauthbearer.client.id": "app", "sasl.oauthbearer.client.secret": "s",
                   "sasl.oauthbearer.scope": "kafka", "sasl.oauthbearer.token.endpoint.url": "https://idp/token"}
    with pytest.raises(CliError, match="OAuthBearerLoginModule is not supported"):  # no login handler: unsecured
        librdkafka_names({"sasl.jaas.config": jaas})


def test_librdkafka_names_pass_and_win() -> None:
    given = {"sasl.username": "bob", "sasl.password": "b", "ssl.ca.location": "/x.pem", "acks": "all"}
    assert librdkafka_names(given) == given
    both = librdkafka_names({**given, "sasl.jaas.config": SCRAM, "ssl.truststore.location": "/d/ca.pem"})
    assert (both["sasl.username"], both["sasl.password"], both["ssl.ca.location"]) == ("bob", "b", "/x.pem")


def test_pem_keystores() -> None:
    assert librdkafka_names({"ssl.keystore.type": "PEM", "ssl.keystore.location": "/k.pem"}) == {
        "ssl.certificate.location": "/k.pem", "ssl.key.location": "/k.pem"}
    assert librdkafka_names({"ssl.keystore.type": "PEM", "ssl.keystore.certificate.chain": "C",
                             "ssl.keystore.key": "K", "ssl.truststore.certificates": "T"}) == {
        "ssl.certificate.pem": "C", "ssl.key.pem": "K", "ssl.ca.pem": "T"}
    pkcs12 = {"ssl.keystore.type": "PKCS12", "ssl.keystore.location": "/k.p12", "ssl.keystore.password": "x"}
    assert librdkafka_names(pkcs12) == {"ssl.keystore.location": "/k.p12", "ssl.keystore.password": "x"}


@pytest.mark.parametrize(("props", "message"), [
    ({"ssl.truststore.type": "JKS", "ssl.truststore.location": "/t.jks"}, "PEM truststores only"),
    ({"ssl.keystore.type": "JKS", "ssl.keystore.location": "/k.jks"}, "convert it"),
    ({"sasl.jaas.config": "com.sun.security.auth.module.Krb5LoginModule required;"}, "not supported by the tools"),
    ({"sasl.jaas.config": 'ScramLoginModule required password="leaked"'}, "sasl.jaas.config"),
])
def test_what_librdkafka_cannot_do_is_refused(props: dict[str, str], message: str) -> None:
    with pytest.raises(CliError) as caught:
        librdkafka_names(props)
    assert message in str(caught.value) and "leaked" not in str(caught.value)
