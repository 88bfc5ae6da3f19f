"""SASL/OAUTHBEARER (KIP-255, KIP-768) on one KRaft node, driven by confluent-kafka and the raw client.

Two SASL_PLAINTEXT listeners: UNSECURED uses Kafka's default unsecured validator (librdkafka's
``enable.sasl.oauthbearer.unsecure.jwt`` tokens), JWKS checks RS256/ES256 tokens against the keys a
small aiohttp server on 127.0.0.1 publishes (confluent-kafka's ``oauth_cb`` hands them over).
``super.users`` is alice only (with ``allow.everyone.if.no.acl.found=false``), so a round trip that
works proves the principal is User:alice and bob is refused. Bad tokens get the invalid_token
challenge, then SASL_AUTHENTICATION_FAILED, one log line without the token, and the node serves on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.schema.sasl_authenticate.v2.request import SaslAuthenticateRequest
from kio.schema.sasl_handshake.v1.request import SaslHandshakeRequest
from kio.schema.types import TopicName

from suoi.cli.cluster_layout import free_ports
from suoi.testing import EmbeddedBroker
from tests.conftest import wait_until
from tests.e2e.test_security import _confluent_round_trip
from tests.integration.support import LogWatch
from tests.oauth_tokens import IdentityProvider as JwksServer
from tests.oauth_tokens import SigningKeys, claims, initial_response, unsigned
from tests.rawclient import RawClient

pytestmark = pytest.mark.timeout(90)
ISSUER, AUDIENCE = "https://idp.test", "suoi"
VALIDATOR = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"


class OAuthNode:
    def __init__(self, node: EmbeddedBroker, ports: dict[str, int], keys: SigningKeys, jwks: JwksServer) -> None:
        self.node, self.ports, self.keys, self.jwks = node, ports, keys, jwks

    def address(self, listener: str) -> str:
        return f"127.0.0.1:{self.ports[listener]}"


@pytest.fixture(scope="module")
def oauth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthNode]:
    keys = SigningKeys()
    unsecured, jwks, internal, controller = free_ports(4)
    ports = {"UNSECURED": unsecured, "JWKS": jwks}
    clients = f"UNSECURED://127.0.0.1:{unsecured},JWKS://127.0.0.1:{jwks},INTERNAL://127.0.0.1:{internal}"
    with JwksServer(keys.jwks()) as server:
        overrides = {
            "process.roles": "broker,controller", "node.id": "1",
            "listeners": f"{clients},CONTROLLER://127.0.0.1:{controller}", "advertised.listeners": clients,
            "listener.security.protocol.map": "UNSECURED:SASL_PLAINTEXT,JWKS:SASL_PLAINTEXT,INTERNAL:PLAINTEXT,"
                                              "CONTROLLER:PLAINTEXT",
            "controller.listener.names": "CONTROLLER", "controller.quorum.voters": f"1@127.0.0.1:{controller}",
            "inter.broker.listener.name": "INTERNAL", "sasl.enabled.mechanisms": "OAUTHBEARER",
            "listener.name.unsecured.oauthbearer.sasl.jaas.config":
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
                'unsecuredValidatorAllowableClockSkewMs="1000";',
            "listener.name.jwks.oauthbearer.sasl.server.callback.handler.class": VALIDATOR,
            "listener.name.jwks.sasl.oauthbearer.jwks.endpoint.url": server.url,
            "sasl.oauthbearer.expected.audience": AUDIENCE, "sasl.oauthbearer.expected.issuer": ISSUER,
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:alice;User:ANONYMOUS", "allow.everyone.if.no.acl.found": "false",
            "offsets.topic.replication.factor": "1", "group.initial.rebalance.delay.ms": "0",
        }
        directory = tmp_path_factory.mktemp("oauth-node")
        with EmbeddedBroker(directory, port=unsecured, overrides=overrides) as node:
            yield OAuthNode(node, ports, keys, server)


def _confluent(oauth: OAuthNode, listener: str, **extra: Any) -> dict[str, Any]:
    return {"bootstrap.servers": oauth.address(listener), "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "OAUTHBEARER", **extra}


def _login(oauth: OAuthNode, listener: str, token: str) -> tuple[RawClient, Any]:
    client = RawClient(oauth.address(listener))
    assert client.request(SaslHandshakeRequest(mechanism="OAUTHBEARER")).error_code == 0
    return client, client.request(SaslAuthenticateRequest(auth_bytes=initial_response(token)))


def _topic_error(client: RawClient, topic: str) -> int:
    metadata = client.request(MetadataRequest(topics=(MetadataRequestTopic(topic_id=None, name=TopicName(topic)),),
                                              allow_auto_topic_creation=True,
                                              include_topic_authorized_operations=False))
    return int(metadata.topics[0].error_code)


def test_unsecured_jwt_round_trip_as_alice_with_confluent_kafka(oauth: OAuthNode) -> None:
    conf = _confluent(oauth, "UNSECURED", **{"enable.sasl.oauthbearer.unsecure.jwt": True,
                                            "sasl.oauthbearer.config": "principal=alice"})
    _confluent_round_trip(conf, "oauth-unsecured", b"hello alice")
    watch = LogWatch(oauth.node)
    client, answer = _login(oauth, "UNSECURED", unsigned(claims("bob")))  # authenticated, but not a super user
    with client:
        assert answer.error_code == 0 and 0 < answer.session_lifetime.total_seconds() <= 600  # the token's exp
        assert _topic_error(client, "oauth-unsecured") == 29  # TOPIC_AUTHORIZATION_FAILED
    watch.wait_for("Principal = User:bob is Denied", level="INFO")  # the audit line names the token's principal


def test_jwks_round_trip_with_oauth_cb(oauth: OAuthNode) -> None:
    calls: list[str] = []

    def oauth_cb(_config: str) -> tuple[str, float]:
        calls.append(_config)
        payload = claims("alice", aud=AUDIENCE, iss=ISSUER, scope="kafka")
        return oauth.keys.sign(payload, "RS256"), float(payload["exp"])

    _confluent_round_trip(_confluent(oauth, "JWKS", oauth_cb=oauth_cb), "oauth-jwks", b"signed alice")
    assert calls  # the token came from the callback
    client, answer = _login(oauth, "JWKS", oauth.keys.sign(claims("alice", aud=AUDIENCE, iss=ISSUER), "ES256"))
    with client:
        assert answer.error_code == 0
        assert _topic_error(client, "oauth-jwks") == 0


@pytest.mark.parametrize("why", ["unsigned", "expired", "audience", "foreign-key"])
def test_bad_tokens_on_the_jwks_listener_are_refused_and_the_node_serves_on(oauth: OAuthNode, why: str) -> None:
    good = claims("alice", aud=AUDIENCE, iss=ISSUER)
    token = {"unsigned": unsigned(good), "expired": oauth.keys.sign({**good, "exp": time.time() - 300}),
             "audience": oauth.keys.sign({**good, "aud": "other"}), "foreign-key": SigningKeys().sign(good)}[why]
    watch = LogWatch(oauth.node)
    client, challenge = _login(oauth, "JWKS", token)
    with client:
        assert challenge.error_code == 0 and json.loads(challenge.auth_bytes) == {"status": "invalid_token"}
        answer = client.request(SaslAuthenticateRequest(auth_bytes=b"\x01"))
        assert answer.error_code == 58  # SASL_AUTHENTICATION_FAILED
        assert answer.error_message == '{"status":"invalid_token"}'
        assert client.is_closed_by_peer()
    watch.wait_for("OAUTHBEARER authentication failed")
    assert token not in oauth.node.logs() and token.split(".")[1] not in oauth.node.logs()
    good_client, answer = _login(oauth, "JWKS", oauth.keys.sign(good))  # the node keeps serving
    with good_client:
        assert answer.error_code == 0


def test_confluent_kafka_with_a_bad_token_gets_an_authentication_error(oauth: OAuthNode) -> None:
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import AdminClient

    errors: list[KafkaError] = []
    conf = _confluent(oauth, "JWKS", oauth_cb=lambda _: (unsigned(claims("alice")), time.time() + 600),
                      error_cb=errors.append)
    admin = AdminClient(conf)  # connects to the bootstrap server at once
    wait_until(lambda: admin.poll(0.2) is not None and any(e.code() == KafkaError._AUTHENTICATION for e in errors),
               10, message="an _AUTHENTICATION error from librdkafka's error_cb")
    assert "invalid_token" in next(e.str() for e in errors if e.code() == KafkaError._AUTHENTICATION)


def test_token_expiry_sets_the_session_and_reauthentication_keeps_the_principal(oauth: OAuthNode) -> None:
    client, answer = _login(oauth, "UNSECURED", unsigned(claims("alice", lifetime_s=30)))
    with client:
        assert answer.error_code == 0 and 25 < answer.session_lifetime.total_seconds() <= 30
        assert client.request(SaslHandshakeRequest(mechanism="OAUTHBEARER")).error_code == 0  # KIP-368
        renewed = client.request(SaslAuthenticateRequest(auth_bytes=initial_response(unsigned(claims("alice")))))
        assert renewed.error_code == 0 and renewed.session_lifetime.total_seconds() > 500
        assert _topic_error(client, "oauth-unsecured") == 0
        assert client.request(SaslHandshakeRequest(mechanism="OAUTHBEARER")).error_code == 0
        other = client.request(SaslAuthenticateRequest(auth_bytes=initial_response(unsigned(claims("bob")))))
        assert other.error_code == 58 and client.is_closed_by_peer()  # a principal may not change


def test_a_token_with_an_unknown_kid_expedites_the_jwks_refresh(oauth: OAuthNode) -> None:
    rotated = SigningKeys()
    document = rotated.jwks()
    for key in document["keys"]:
        key["kid"] = "rotated-" + key["kid"]
    token = rotated.sign(claims("alice", aud=AUDIENCE, iss=ISSUER), kid="rotated-rsa-1")
    client, challenge = _login(oauth, "JWKS", token)
    with client:
        assert json.loads(challenge.auth_bytes) == {"status": "invalid_token"}  # not published yet
    oauth.jwks.document = {"keys": oauth.keys.jwks()["keys"] + document["keys"]}
    client, challenge = _login(oauth, "JWKS", rotated.sign(claims("alice", aud=AUDIENCE, iss=ISSUER),
                                                            alg="ES256", kid="rotated-ec-1"))
    client.close()  # refused too, but its unknown kid makes the node refresh its JWKS now (not in an hour)

    def accepted() -> bool:
        client, answer = _login(oauth, "JWKS", token)
        client.close()
        return answer.error_code == 0 and not answer.auth_bytes

    wait_until(accepted, 10, message="the rotated key accepted after a JWKS refresh")
