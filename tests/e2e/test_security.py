"""TLS and SASL on one KRaft node with four listeners (issue 14), driven by real clients.

SASL_SSL (PLAIN, SCRAM-SHA-256/512), SSL with required client certificates (mTLS),
SASL_PLAINTEXT, and a PLAINTEXT controller listener. SCRAM users are created with
`suoi configs --entity-type users` over SASL (admin with PLAIN), then kafka-python, confluent-kafka,
aiokafka and kcat produce and consume with them. Wrong passwords, unauthenticated requests and
clients without certificates are refused while the node keeps serving; no secret reaches the log.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.metadata.v12.request import MetadataRequest
from kio.schema.sasl_authenticate.v2.request import SaslAuthenticateRequest
from kio.schema.sasl_handshake.v1.request import SaslHandshakeRequest

from suoi.cli.cluster_layout import free_ports
from suoi.testing import EmbeddedBroker
from tests.conftest import wait_until
from tests.e2e.cli import ok
from tests.e2e.security_helpers import (
    ADMIN_PASSWORD,
    ALICE_PASSWORD,
    BOB_PASSWORD,
    PLAIN_JAAS,
    SCRAM_JAAS,
    SECRETS,
    Pki,
    make_pki,
    tls_keystore,
    write_props,
)
from tests.rawclient import RawClient

pytestmark = pytest.mark.timeout(120)


class SecureNode:
    def __init__(self, node: EmbeddedBroker, pki: Pki, ports: dict[str, int]) -> None:
        self.node, self.pki, self.ports = node, pki, ports

    def address(self, listener: str) -> str:
        return f"127.0.0.1:{self.ports[listener]}"


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureNode]:
    directory = tmp_path_factory.mktemp("secure-node")
    pki = make_pki(directory / "pki")
    sasl_ssl, ssl_port, sasl_plain, controller = free_ports(4)
    ports = {"SASL_SSL": sasl_ssl, "SSL": ssl_port, "SASL_PLAINTEXT": sasl_plain}
    clients = f"SASL_SSL://127.0.0.1:{sasl_ssl},SSL://127.0.0.1:{ssl_port},SASL_PLAINTEXT://127.0.0.1:{sasl_plain}"
    overrides = {
        "process.roles": "broker,controller", "node.id": "1",
        "listeners": f"{clients},CONTROLLER://127.0.0.1:{controller}", "advertised.listeners": clients,
        "controller.listener.names": "CONTROLLER", "controller.quorum.voters": f"1@127.0.0.1:{controller}",
        "inter.broker.listener.name": "SASL_PLAINTEXT", "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        "listener.name.sasl_ssl.plain.sasl.jaas.config": PLAIN_JAAS,
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": PLAIN_JAAS,
        "listener.name.ssl.ssl.client.auth": "required",
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]+),OU=clients.*$/$1/L,DEFAULT",
        "offsets.topic.replication.factor": "1", "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1", "group.initial.rebalance.delay.ms": "0",
        **tls_keystore(pki),
    }
    with EmbeddedBroker(directory / "node", port=sasl_ssl, overrides=overrides) as node:
        yield SecureNode(node, pki, ports)


def _admin_config(secure: SecureNode, path: Path) -> str:
    return write_props(path, {"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "sasl.username": "admin",
                              "sasl.password": ADMIN_PASSWORD, "ssl.ca.location": secure.pki.ca_file})


def _confluent(secure: SecureNode, listener: str, **extra: Any) -> dict[str, Any]:
    return {"bootstrap.servers": secure.address(listener), "security.protocol": listener,
            "ssl.ca.location": secure.pki.ca_file, **extra}


def _confluent_round_trip(conf: dict[str, Any], topic: str, value: bytes) -> None:
    from confluent_kafka import Consumer, Producer

    producer = Producer(conf)
    producer.produce(topic, value)
    assert producer.flush(30) == 0
    consumer = Consumer({**conf, "group.id": f"g-{topic}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    try:
        got = None
        for _ in range(60):
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                got = message.value()
                break
        assert got == value
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def alice(secure: SecureNode, tmp_path_factory: pytest.TempPathFactory) -> str:
    """SCRAM-SHA-256 and -512 credentials for alice, made with `suoi configs` over SASL_SSL/PLAIN."""
    command_config = _admin_config(secure, tmp_path_factory.mktemp("cfg") / "admin.properties")
    common = ("--bootstrap-server", secure.address("SASL_SSL"), "--command-config", command_config)
    out = ok("configs", *common, "--alter", "--entity-type", "users", "--entity-name", "alice", "--add-config",
             f"SCRAM-SHA-256=[iterations=8192,password={ALICE_PASSWORD}],SCRAM-SHA-512=[password={ALICE_PASSWORD}]")
    assert out.strip() == "Completed updating config for user alice."
    described = ok("configs", *common, "--describe", "--entity-type", "users", "--entity-name", "alice")
    assert described.strip() == ("SCRAM credential configs for user-principal 'alice' are "
                                 "SCRAM-SHA-256=iterations=8192, SCRAM-SHA-512=iterations=4096")
    return "alice"


def test_scram_sha_256_over_sasl_plaintext_with_kafka_python(secure: SecureNode, alice: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    conf = {"bootstrap_servers": secure.address("SASL_PLAINTEXT"), "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "SCRAM-SHA-256", "sasl_plain_username": alice, "sasl_plain_password": ALICE_PASSWORD}
    producer = KafkaProducer(**conf)
    producer.send("kp-scram", b"scram-256").get(timeout=30)
    producer.close()
    consumer = KafkaConsumer("kp-scram", auto_offset_reset="earliest", consumer_timeout_ms=20000, **conf)
    try:
        assert next(iter(consumer)).value == b"scram-256"
    finally:
        consumer.close()


def test_scram_sha_512_over_sasl_ssl_with_confluent_kafka(secure: SecureNode, alice: str) -> None:
    conf = _confluent(secure, "SASL_SSL", **{"sasl.mechanism": "SCRAM-SHA-512", "sasl.username": alice,
                                             "sasl.password": ALICE_PASSWORD})
    _confluent_round_trip(conf, "ck-scram", b"scram-512 over tls")


def test_plain_over_sasl_ssl_with_aiokafka(secure: SecureNode) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.helpers import create_ssl_context

    async def run() -> bytes:
        conf = {"bootstrap_servers": secure.address("SASL_SSL"), "security_protocol": "SASL_SSL",
                "sasl_mechanism": "PLAIN", "sasl_plain_username": "bob", "sasl_plain_password": BOB_PASSWORD,
                "ssl_context": create_ssl_context(cafile=secure.pki.ca_file)}
        producer = AIOKafkaProducer(**conf)
        await producer.start()
        try:
            await producer.send_and_wait("aio-plain", b"plain over tls")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer("aio-plain", auto_offset_reset="earliest", **conf)
        await consumer.start()
        try:
            return (await asyncio.wait_for(consumer.getone(), 20)).value
        finally:
            await consumer.stop()

    assert asyncio.run(run()) == b"plain over tls"


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed")
def test_kcat_scram_over_sasl_ssl(secure: SecureNode, alice: str) -> None:
    args = ["kcat", "-b", secure.address("SASL_SSL"), "-X", "security.protocol=SASL_SSL", "-X",
            "sasl.mechanisms=SCRAM-SHA-256", "-X", f"sasl.username={alice}", "-X", f"sasl.password={ALICE_PASSWORD}",
            "-X", f"ssl.ca.location={secure.pki.ca_file}", "-t", "kcat-scram"]
    subprocess.run([*args, "-P"], input=b"from kcat\n", check=True, timeout=30)
    out = subprocess.run([*args, "-C", "-e", "-o", "beginning"], capture_output=True, check=True, timeout=30)
    assert out.stdout.splitlines() == [b"from kcat"]


def test_kafkajs_scram_sha_512_over_sasl_ssl(secure: SecureNode, alice: str) -> None:
    js_dir = Path(__file__).resolve().parents[1] / "js"
    node = shutil.which("node")
    assert node, "node is not on PATH (this test needs Node.js >= 18 and `make tools`)"
    assert (js_dir / "node_modules" / "kafkajs").is_dir(), "kafkajs is not installed: run `make tools`"
    env = {**os.environ, "KAFKAJS_NO_PARTITIONER_WARNING": "1", "SUOI_BOOTSTRAP": secure.address("SASL_SSL"),
           "SUOI_CA": secure.pki.ca_file, "SUOI_USER": alice, "SUOI_PASSWORD": ALICE_PASSWORD,
           "SUOI_TOPIC": "kafkajs-scram"}
    proc = subprocess.run([node, str(js_dir / "secure.js")], capture_output=True, text=True, timeout=20, env=env,
                          cwd=js_dir)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"values": ["a", "b", "c"]}


def test_mtls_required_accepts_a_certificate_and_refuses_a_client_without(secure: SecureNode) -> None:
    cert, key = secure.pki.client_files("carol")
    _confluent_round_trip(_confluent(secure, "SSL", **{"ssl.certificate.location": cert, "ssl.key.location": key}),
                          "mtls", b"with a client certificate")
    # without a certificate: the TLS handshake is refused (TLS 1.3: the alert comes with the first read)
    ctx = ssl.create_default_context(cafile=secure.pki.ca_file)
    with socket.create_connection(("127.0.0.1", secure.ports["SSL"]), timeout=10) as raw, \
            pytest.raises((ssl.SSLError, ConnectionError)), ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall(b"\0\0\0\0")
        if tls.recv(4) == b"":
            raise ConnectionError("closed by the broker")


def _handshake(client: RawClient, mechanism: str) -> Any:
    return client.request(SaslHandshakeRequest(mechanism=mechanism))


def test_wrong_password_is_sasl_authentication_failed_then_closed(secure: SecureNode) -> None:
    with RawClient(secure.address("SASL_PLAINTEXT")) as client:
        assert client.request(ApiVersionsRequest(client_software_name="raw", client_software_version="1")).error_code == 0
        handshake = _handshake(client, "PLAIN")
        assert (handshake.error_code, handshake.mechanisms) == (0, ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"))
        sent = time.monotonic()
        answer = client.request(SaslAuthenticateRequest(auth_bytes=b"\0bob\0not-the-password"))
        assert answer.error_code == 58  # SASL_AUTHENTICATION_FAILED
        assert time.monotonic() - sent >= 0.09  # connection.failed.authentication.delay.ms (Kafka's 100)
        assert "Invalid username or password" in (answer.error_message or "")
        assert client.is_closed_by_peer()
    with RawClient(secure.address("SASL_PLAINTEXT")) as client:
        handshake = _handshake(client, "GSSAPI")
        assert handshake.error_code == 33  # UNSUPPORTED_SASL_MECHANISM
        assert client.is_closed_by_peer()
    with RawClient(secure.address("SASL_PLAINTEXT")) as client:  # no request but SASL before authenticating
        client.send_bytes(client.encode(MetadataRequest(topics=None, allow_auto_topic_creation=False,
                                                        include_topic_authorized_operations=False)))
        assert client.is_closed_by_peer()
    with RawClient(secure.address("SASL_PLAINTEXT")) as client:  # and the node keeps serving the others
        assert _handshake(client, "PLAIN").error_code == 0
        assert client.request(SaslAuthenticateRequest(auth_bytes=f"\0bob\0{BOB_PASSWORD}".encode())).error_code == 0
        metadata = client.request(MetadataRequest(topics=None, allow_auto_topic_creation=False,
                                                  include_topic_authorized_operations=False))
        # answered with the brokers' SASL_PLAINTEXT address: the listener the request came on
        assert [(b.host, b.port) for b in metadata.brokers] == [("127.0.0.1", secure.ports["SASL_PLAINTEXT"])]


def test_secrets_are_sensitive_in_describe_configs_and_absent_from_the_log(secure: SecureNode, alice: str) -> None:
    from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

    admin = AdminClient(_confluent(secure, "SASL_SSL", **{"sasl.mechanism": "PLAIN", "sasl.username": "admin",
                                                          "sasl.password": ADMIN_PASSWORD}))
    resource = ConfigResource(ResourceType.BROKER, "1")
    described = admin.describe_configs([resource], request_timeout=15)[resource].result(15)
    for name in ("ssl.keystore.key", "ssl.keystore.certificate.chain", "ssl.truststore.certificates"):
        assert described[name].is_sensitive and described[name].value is None, name
    assert described["sasl.enabled.mechanisms"].value == "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
    # A failed login of this test's own (not one left by an earlier test: the test runs alone too), whose
    # wrong password is another user's real one: the failure is logged, the password never is.
    with RawClient(secure.address("SASL_PLAINTEXT")) as client:
        assert _handshake(client, "PLAIN").error_code == 0
        answer = client.request(SaslAuthenticateRequest(auth_bytes=b"\0bob\0" + ALICE_PASSWORD.encode()))
        assert answer.error_code == 58  # SASL_AUTHENTICATION_FAILED
    wait_until(lambda: "authentication failed" in secure.node.logs(), timeout=10, message="the failure logged")
    logs = secure.node.logs()
    for secret in SECRETS:
        assert secret not in logs  # ... but no password or key ever is


def test_storage_format_add_scram_bootstraps_the_first_admin(tmp_path: Path) -> None:
    """KIP-900: a node whose only client listener is SCRAM starts with the admin `format` added."""
    port, controller = free_ports(2)
    props = {"process.roles": "broker,controller", "node.id": "1", "log.dirs": str(tmp_path / "data"),
             "listeners": f"SASL_PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
             "advertised.listeners": f"SASL_PLAINTEXT://127.0.0.1:{port}", "controller.listener.names": "CONTROLLER",
             "controller.quorum.voters": f"1@127.0.0.1:{controller}", "sasl.enabled.mechanisms": "SCRAM-SHA-512",
             "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
             "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": SCRAM_JAAS,
             "offsets.topic.replication.factor": "1", "group.initial.rebalance.delay.ms": "0"}
    config = write_props(tmp_path / "server.properties", props)
    out = ok("storage", "format", "--cluster-id", "c2VjdXJlLWJvb3RzdHJhcA", "--config", config,
             "--add-scram", f"SCRAM-SHA-512=[name=admin,iterations=8192,password={ADMIN_PASSWORD}]")
    assert "Wrote 1 SCRAM credential(s) for admin" in out and ADMIN_PASSWORD not in out
    assert ADMIN_PASSWORD.encode() not in b"".join(f.read_bytes() for f in (tmp_path / "data").iterdir())
    with EmbeddedBroker(tmp_path, port=port, log_dirs=[tmp_path / "data"], overrides=props) as node:
        conf = {"bootstrap.servers": node.bootstrap, "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "admin", "sasl.password": ADMIN_PASSWORD}
        _confluent_round_trip(conf, "bootstrapped", b"first admin")


def _plain_login(client: RawClient, user: str, password: str) -> Any:
    assert _handshake(client, "PLAIN").error_code == 0
    return client.request(SaslAuthenticateRequest(auth_bytes=f"\0{user}\0{password}".encode()))


def _metadata(client: RawClient) -> Any:
    return client.request(MetadataRequest(topics=None, allow_auto_topic_creation=False,
                                          include_topic_authorized_operations=False))


def test_sessions_expire_without_reauthentication_kip_368(tmp_path: Path) -> None:
    """connections.max.reauth.ms: the session lifetime is announced; a client that re-authenticates
    in time keeps its connection (librdkafka does it by itself), one that does not is closed."""
    port = free_ports(1)[0]
    overrides = {"listeners": f"SASL_PLAINTEXT://127.0.0.1:{port}", "sasl.enabled.mechanisms": "PLAIN",
                 "listener.name.sasl_plaintext.plain.sasl.jaas.config": PLAIN_JAAS,
                 "listener.name.sasl_plaintext.connections.max.reauth.ms": "1500",
                 "sasl.mechanism.inter.broker.protocol": "PLAIN"}  # the only listener is also inter-broker
    with EmbeddedBroker(tmp_path, port=port, overrides=overrides) as node, \
            RawClient(node.bootstrap) as lazy, RawClient(node.bootstrap) as diligent:
        for client in (lazy, diligent):
            answer = _plain_login(client, "bob", BOB_PASSWORD)
            assert answer.error_code == 0 and answer.session_lifetime.total_seconds() == 1.5
        # Every deadline below is taken from the client's side of a login: a session starts while its
        # SaslAuthenticate is served, so between the request's send and its answer (never the wall
        # clock of a fixed schedule, which a loaded machine overruns).
        first_ends = time.monotonic() + 1.5  # both first sessions have ended by then
        started = time.monotonic()
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": node.bootstrap, "security.protocol": "SASL_PLAINTEXT",
                             "sasl.mechanism": "PLAIN", "sasl.username": "bob", "sasl.password": BOB_PASSWORD})
        # the diligent client re-authenticates half way through; librdkafka on its own
        wait_until(lambda: time.monotonic() > first_ends - 0.75, timeout=5, message="half the session")
        renewed_from = time.monotonic()  # the renewed session lasts at least until renewed_from + 1.5
        assert _plain_login(diligent, "bob", BOB_PASSWORD).error_code == 0
        renewed_ends = time.monotonic() + 1.5  # ... and at most until then
        assert _handshake(lazy, "PLAIN").error_code == 0  # a re-authentication may not change the principal
        assert lazy.request(SaslAuthenticateRequest(auth_bytes=f"\0admin\0{ADMIN_PASSWORD}".encode())).error_code == 58
        assert lazy.is_closed_by_peer()
        # past the first session's end, the renewed session still serves (0.75 s before it ends)
        wait_until(lambda: time.monotonic() > first_ends, timeout=5, message="the first session's end")
        assert time.monotonic() < renewed_from + 1.5, "too slow to tell the renewed session from the first"
        assert len(_metadata(diligent).brokers) == 1  # its renewed session is still valid

        def past_first_session() -> bool:
            producer.produce("reauth", b"x")
            assert producer.flush(10) == 0
            return time.monotonic() - started > 2.0

        wait_until(past_first_session, timeout=10, message="2 s of produce across re-authentications")
        wait_until(lambda: time.monotonic() > renewed_ends, timeout=10, message="the renewed session ends")
        diligent.send_bytes(diligent.encode(MetadataRequest(topics=None, allow_auto_topic_creation=False,
                                                            include_topic_authorized_operations=False)))
        assert diligent.is_closed_by_peer()
        # only the diligent raw client: librdkafka re-authenticated its connections in time
        assert node.logs().count("expired without re-authentication") == 1, node.logs()
