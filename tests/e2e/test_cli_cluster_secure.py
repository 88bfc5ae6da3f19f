"""`suoi cluster up --secure` (issue 14): a 3-node SASL_SSL cluster in one command. Every
listener is SASL_SSL (SCRAM-SHA-512 for clients and between brokers, PLAIN on CONTROLLER), the
admin's SCRAM credential is bootstrapped into the metadata log (KIP-900) and ACLs are on.
confluent-kafka with DIR/admin.properties (Kafka's Java names, translated for librdkafka)
round-trips messages with acks=all, the tools take it as --command-config, clients without
credentials or without TLS are refused, no password reaches a log, and `down --purge` removes
everything `up` wrote."""

from __future__ import annotations

import json
import socket
import ssl
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.metadata.v12.request import MetadataRequest

from suoi.cli.client_props import librdkafka_names
from suoi.config import read_properties
from suoi.protocol.codec import encode_request
from tests.conftest import wait_until
from tests.e2e.cli import cluster_down_for_good, fails, ok, suoi
from tests.rawclient import RawClient

pytestmark = pytest.mark.timeout(150)


@pytest.fixture(scope="module")
def cluster_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("secure") / "c"
    try:
        yield directory
    finally:
        cluster_down_for_good(directory)


def test_secure_cluster_in_one_command(cluster_dir: Path) -> None:
    d = cluster_dir
    up = suoi("cluster", "up", "--secure", "--brokers", "3", "--dir", str(d), "--wait", "60", timeout=90)
    assert up.returncode == 0, up.stderr
    bootstrap = up.stdout.strip()  # stdout is the bootstrap string alone, as without --secure
    assert len(bootstrap.split(",")) == 3 and "\n" not in bootstrap
    assert f"--command-config {d / 'admin.properties'}" in up.stderr
    assert "security.protocol=SASL_SSL" in up.stderr and "sasl.mechanism=SCRAM-SHA-512" in up.stderr

    # files: keys and passwords readable by the owner only; Kafka's property names
    for private in ("admin.properties", "client.properties", "controller.properties", "tls/ca.key",
                    "tls/node-1.pem", "tls/node-2.pem", "tls/node-3.pem", "node-1/server.properties"):
        assert stat.S_IMODE((d / private).stat().st_mode) == 0o600, private
    admin_props = read_properties(d / "admin.properties")
    assert admin_props["security.protocol"] == "SASL_SSL"
    assert admin_props["sasl.mechanism"] == "SCRAM-SHA-512"
    assert admin_props["sasl.jaas.config"].startswith(
        "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"")
    assert (admin_props["ssl.truststore.type"], admin_props["ssl.truststore.location"]) == ("PEM", str(d / "tls/ca.pem"))
    node = read_properties(d / "node-1/server.properties")
    assert node["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:SASL_SSL"
    assert node["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert node["ssl.keystore.type"] == "PEM" and node["ssl.keystore.location"] == str(d / "tls/node-1.pem")
    conf = librdkafka_names(admin_props)
    password = conf["sasl.password"]
    assert len(password) >= 24 and password not in up.stdout + up.stderr

    # the admin round-trips messages with acks=all through a topic replicated 3 times
    admin = f"--command-config={d / 'admin.properties'}"
    assert ok("topics", "--create", "--topic", "orders", "--partitions", "2", "--replication-factor", "3",
              "--config", "min.insync.replicas=3", "--bootstrap-server", bootstrap, admin) == "Created topic orders.\n"
    assert "orders" in ok("topics", "--list", "--bootstrap-server", bootstrap, admin).split()
    conf["bootstrap.servers"] = bootstrap
    values = [f"m{i}".encode() for i in range(50)]
    producer = Producer({**conf, "acks": "all", "enable.idempotence": True})
    for i, value in enumerate(values):
        producer.produce("orders", key=str(i % 5).encode(), value=value)
    assert producer.flush(30) == 0  # every message acknowledged by all 3 replicas (min.insync.replicas=3)
    consumer = Consumer({**conf, "group.id": "secure-readers", "auto.offset.reset": "earliest"})
    consumer.subscribe(["orders"])
    seen: list[bytes] = []
    try:  # as a group member: FindCoordinator, JoinGroup, SyncGroup, OffsetFetch over SASL_SSL too
        wait_until(lambda: seen.extend(m.value() for m in consumer.consume(50, 0.5) if m.error() is None)
                   or len(seen) >= 50, timeout=30, interval=0, message="50 messages read back")
    finally:
        consumer.close()
    assert sorted(seen) == sorted(values)

    # refused: a wrong password (SASL_AUTHENTICATION_FAILED), TLS without SASL, and plaintext
    errors: list[KafkaError] = []
    wrong = Producer({**conf, "sasl.password": "not-the-password", "error_cb": errors.append, "log_level": 0})
    wait_until(lambda wrong=wrong: wrong.poll(0.1) is not None and any(
        e.code() == KafkaError._AUTHENTICATION and "invalid credentials" in e.str() for e in errors),
        timeout=10, interval=0, message=f"SASL_AUTHENTICATION_FAILED reported ({errors})")
    del wrong
    host, port = bootstrap.split(",")[0].split(":")
    tls = ssl.create_default_context(cafile=conf["ssl.ca.location"])
    with socket.create_connection((host, int(port)), timeout=10) as raw, \
            tls.wrap_socket(raw, server_hostname=host) as no_sasl:  # TLS (the certificate checks out), no SASL
        no_sasl.sendall(encode_request(1, "no-sasl", MetadataRequest(
            topics=None, allow_auto_topic_creation=False, include_topic_authorized_operations=False)))
        assert no_sasl.recv(4) == b""  # closed: only SASL requests before authenticating
    with RawClient(bootstrap.split(",")[0]) as plain:  # a plaintext request on the TLS port: closed
        plain.send_bytes(plain.encode(ApiVersionsRequest(client_software_name="raw", client_software_version="1")))
        assert plain.is_closed_by_peer()
    line = fails("topics", "--list", "--bootstrap-server", bootstrap, f"--command-config={_wrong_password(d)}")
    assert "SASL authentication error" in line and "invalid credentials" in line, line

    # status: secure mode, where the client properties are; the quorum through the CONTROLLER listeners
    status = json.loads(ok("cluster", "status", "--dir", str(d), "--output", "json"))
    assert [n["in_metadata"] for n in status["nodes"]] == [True, True, True]
    assert status["quorum"]["leader_id"] in (1, 2, 3) and status["quorum"]["error"] is None
    assert status["security"]["admin_properties"] == str(d / "admin.properties")
    assert "Security: SASL_SSL, SCRAM-SHA-512, ACLs on" in ok("cluster", "status", "--dir", str(d))

    # no password in any node's log, and the admin's in no node's config either (only its SCRAM keys)
    node_password = librdkafka_names(read_properties(d / "controller.properties"))["sasl.password"]
    for i in (1, 2, 3):
        log = (d / f"node-{i}/broker.log").read_text()
        assert password not in log and node_password not in log and "Traceback" not in log
        assert password not in (d / f"node-{i}/server.properties").read_text()

    ok("cluster", "down", "--dir", str(d), "--purge", timeout=90)
    assert not d.exists()


def _wrong_password(d: Path) -> Path:
    path = d.parent / "wrong.properties"
    text = (d / "admin.properties").read_text()
    path.write_text(text.replace('password="', 'password="x'))
    return path


def test_secure_refuses_overrides_of_its_own_settings(tmp_path: Path) -> None:
    line = fails("cluster", "up", "--secure", "--brokers", "1", "--dir", str(tmp_path / "c"),
                 "-o", "listener.security.protocol.map=SASL_SSL:PLAINTEXT,CONTROLLER:PLAINTEXT")
    assert "--secure sets the listeners" in line and "listener.security.protocol.map" in line
    assert not list((tmp_path / "c").glob("node-*")) and not (tmp_path / "c" / "tls").exists()
