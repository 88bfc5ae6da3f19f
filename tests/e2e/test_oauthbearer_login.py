"""OAUTHBEARER tokens for the nodes themselves from an identity provider (KIP-768's
OAuthBearerLoginCallbackHandler, the client-credentials grant).

A small identity provider on 127.0.0.1 (tests.oauth_tokens.IdentityProvider) hands out RS256
tokens that live a few seconds and publishes its JWKS. A 3-node KRaft cluster whose controller
and inter-broker listeners take only SASL/OAUTHBEARER, validated against that JWKS, gets its own
tokens from the provider's token endpoint: the quorum forms, `suoi topics` (a Java client's
KIP-768 properties) creates a topic with RF 3 and min.insync.replicas=3, and confluent-kafka's
acks=all writes (its own ``sasl.oauthbearer.method=oidc`` client credentials) are acknowledged -- before and after the nodes'
first tokens expired, so the nodes refreshed them. A wrong client secret stops `suoi broker`
with one line that names the endpoint and the provider's error, never the secret.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from suoi.testing.embedded import free_port
from suoi.testing.inprocess import InProcessCluster
from tests.conftest import wait_until
from tests.e2e.cli import fails, ok
from tests.oauth_tokens import IdentityProvider, SigningKeys

pytestmark = pytest.mark.timeout(120)
VALIDATOR = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
LOGIN = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler"
LIFETIME_S = 4  # the nodes' tokens: short, so that they are refreshed during the test
CLIENTS = {"broker": "broker-s3cret", "app": "app-s3cret"}


def _node_settings(idp: IdentityProvider, secret: str, listeners: tuple[str, ...]) -> dict[str, str]:
    jaas = (f'org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId="broker" '
            f'clientSecret="{secret}" scope="kafka";')
    settings = {"sasl.enabled.mechanisms": "OAUTHBEARER", "sasl.mechanism.inter.broker.protocol": "OAUTHBEARER",
                "sasl.mechanism.controller.protocol": "OAUTHBEARER", "sasl.oauthbearer.jwks.endpoint.url": idp.url,
                "sasl.oauthbearer.clock.skew.seconds": "0", "sasl.login.callback.handler.class": LOGIN,
                "sasl.oauthbearer.token.endpoint.url": idp.token_url, "sasl.login.retry.backoff.max.ms": "1000"}
    for name in listeners:
        settings[f"listener.name.{name}.oauthbearer.sasl.server.callback.handler.class"] = VALIDATOR
        settings[f"listener.name.{name}.oauthbearer.sasl.jaas.config"] = jaas
    return settings


def _app(bootstrap: str, idp: IdentityProvider, **extra: Any) -> dict[str, Any]:
    return {"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "OAUTHBEARER",
            "sasl.oauthbearer.method": "oidc", "sasl.oauthbearer.client.id": "app",
            "sasl.oauthbearer.client.secret": CLIENTS["app"], "sasl.oauthbearer.token.endpoint.url": idp.token_url,
            **extra}


def _produce_acks_all(bootstrap: str, idp: IdentityProvider, first: int) -> None:
    producer = Producer(_app(bootstrap, idp, acks="all"))
    errors: list[object] = []
    for i in range(first, first + 10):
        producer.produce("idp-rf3", str(i).encode(), on_delivery=lambda err, _msg: errors.append(err))
    assert producer.flush(30) == 0
    assert errors == [None] * 10  # min.insync.replicas=3: both followers fetched every write


def test_nodes_get_and_refresh_their_tokens_from_the_identity_provider(tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "suoi")
    keys = SigningKeys()
    with IdentityProvider(keys.jwks(), keys, CLIENTS, lifetime_s=LIFETIME_S) as idp:
        overrides = {"listener.security.protocol.map": "PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
                     **_node_settings(idp, CLIENTS["broker"], ("plaintext", "controller"))}
        with InProcessCluster(3, overrides=overrides) as cluster:
            started = time.time()
            nodes = list(cluster.nodes.values())
            assert all(n.broker._local_peer.principal == "User:broker" for n in nodes)  # the token's subject
            # a tool with a Java client's properties (KIP-768's names), as kafka-topics.sh takes them
            java = tmp_path / "client.properties"
            java.write_text(f"security.protocol=SASL_PLAINTEXT\nsasl.mechanism=OAUTHBEARER\n"
                            f"sasl.login.callback.handler.class={LOGIN}\n"
                            f"sasl.oauthbearer.token.endpoint.url={idp.token_url}\n"
                            "sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule "
                            f'required clientId="app" clientSecret="{CLIENTS["app"]}";\n')
            assert ok("topics", "--create", "--topic", "idp-rf3", "--partitions", "1", "--replication-factor", "3",
                      "--config", "min.insync.replicas=3", "--bootstrap-server", cluster.bootstrap,
                      f"--command-config={java}") == "Created topic idp-rf3.\n"
            wait_until(lambda: all(n.broker.kraft.image.topic("idp-rf3") is not None for n in nodes))
            _produce_acks_all(cluster.bootstrap, idp, 0)
            first_tokens = idp.issued["broker"]
            # the nodes' first tokens expire: they are refreshed before that, and the replicas go on
            wait_until(lambda: time.time() > started + LIFETIME_S + 1 and idp.issued["broker"] > first_tokens,
                       timeout=LIFETIME_S * 4)
            _produce_acks_all(cluster.bootstrap, idp, 10)
            assert idp.issued["app"] >= 1  # confluent-kafka's own client credentials
    assert "OAUTHBEARER token for broker" in caplog.text, caplog.text
    assert "s3cret" not in caplog.text and "eyJ" not in caplog.text  # neither the secret nor a token is logged


def test_a_wrong_client_secret_stops_the_start_in_one_line(tmp_path: Path) -> None:
    keys = SigningKeys()
    with IdentityProvider(keys.jwks(), keys, CLIENTS) as idp:
        port, controller = free_port(), free_port()
        settings = {"process.roles": "broker,controller", "node.id": "1",
                    "controller.quorum.voters": f"1@127.0.0.1:{controller}", "controller.listener.names": "CONTROLLER",
                    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
                    **_node_settings(idp, "wrong-s3cret", ("controller",))}
        args = [arg for key, value in settings.items() for arg in ("-o", f"{key}={value}")]
        line = fails("broker", "--log-dirs", str(tmp_path / "data"), "--listeners",
                     f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}", *args, timeout=30)
    assert idp.token_url in line and "clientId broker" in line and "HTTP 401 (invalid_client" in line, line
    assert "s3cret" not in line
    assert not (tmp_path / "data" / "meta.properties").exists(), "the node started before its login was refused"
