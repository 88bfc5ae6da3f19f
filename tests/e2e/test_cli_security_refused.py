"""A security setting suoi lacks is refused at start, never ignored (hardening issue, item 0).

`suoi broker` with a TLS/SASL listener or a property asking for TLS, SASL or an authorizer
exits 1 with one line naming the setting, before binding anything; listeners with custom
names mapped to PLAINTEXT keep working.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer

from suoi.testing import EmbeddedBroker
from suoi.testing.embedded import free_port
from tests.e2e.cli import fails

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("args, named", [
    (["--listeners", "SSL://127.0.0.1:{port}"], "SSL"),
    (["--listeners", "SASL_PLAINTEXT://127.0.0.1:{port}"], "SASL_PLAINTEXT"),
    (["--listeners", "PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:{port2}"], "SASL_SSL"),
    (["--listeners", "CLIENT://127.0.0.1:{port}", "-o", "listener.security.protocol.map=CLIENT:SSL"],
     "maps CLIENT to SSL"),
    (["--advertised-listeners", "SSL://example.com:{port}"], "SSL"),
    (["-o", "ssl.keystore.location=/tmp/keystore.jks"], "ssl.keystore.location"),
    (["-o", "ssl.truststore.location=/tmp/trust.jks"], "ssl.truststore.location"),
    (["-o", "ssl.client.auth=required"], "ssl.client.auth"),
    (["-o", "sasl.enabled.mechanisms=PLAIN"], "sasl.enabled.mechanisms"),
    (["-o", "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512"], "sasl.mechanism.inter.broker.protocol"),
    (["-o", "authorizer.class.name=kafka.security.authorizer.AclAuthorizer"],
     "authorizer.class.name=kafka.security.authorizer.AclAuthorizer"),
    (["-o", "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer"],
     "standalone node"),
    (["-o", "security.inter.broker.protocol=SSL"], "security.inter.broker.protocol=SSL"),
    (["-o", "listener.name.internal.ssl.keystore.location=/tmp/k.jks"], "listener.name.internal.ssl"),
    (["-o", "listener.name.client.plain.sasl.jaas.config=secret-jaas"], "listener.name.client.plain.sasl"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_security_setting_refused_with_one_line(tmp_path: Path, args: list[str], named: str) -> None:
    port, port2 = free_port(), free_port()
    argv = [a.format(port=port, port2=port2) for a in args]
    line = fails("broker", "--log-dirs", str(tmp_path / "data"), *argv, timeout=30)
    assert named in line, line
    assert "not supported" in line
    assert "secret-jaas" not in line  # secrets are named by key, never echoed
    assert not (tmp_path / "data").exists(), "the broker started before refusing"


def test_named_plaintext_listeners_keep_working(tmp_path: Path) -> None:
    """INTERNAL:PLAINTEXT and CONTROLLER:PLAINTEXT in listener.security.protocol.map (KRaft
    combined node) start, and a real client produces and consumes through INTERNAL."""
    port, cport = free_port(), free_port()
    overrides = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "listeners": f"INTERNAL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
        "listener.security.protocol.map": "INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "INTERNAL",
        "controller.listener.names": "CONTROLLER",
        "controller.quorum.voters": f"1@127.0.0.1:{cport}",
        "security.inter.broker.protocol": "PLAINTEXT",
        "authorizer.class.name": "",
        "offsets.topic.replication.factor": "1",
    }
    with EmbeddedBroker(tmp_path, port=port, overrides=overrides) as node:
        producer = KafkaProducer(bootstrap_servers=node.bootstrap)
        producer.send("named-listeners", b"hello").get(timeout=30)
        producer.close()
        consumer = KafkaConsumer("named-listeners", bootstrap_servers=node.bootstrap,
                                 auto_offset_reset="earliest", consumer_timeout_ms=20000)
        try:
            assert next(iter(consumer)).value == b"hello"
        finally:
            consumer.close()
