"""A 3-node KRaft cluster whose every listener is SASL_SSL (issue 14): the Raft quorum, broker
registration and heartbeats, forwarding and the replica fetchers all go through suoi's own
client over TLS with SASL/PLAIN (host names verified), and confluent-kafka produces with
acks=all to a topic of replication factor 3 and reads everything back."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from suoi.cli.cluster_layout import free_ports
from suoi.testing import EmbeddedBroker
from tests.conftest import wait_until
from tests.e2e.security_helpers import ADMIN_PASSWORD, PLAIN_JAAS, SECRETS, make_pki, tls_keystore

pytestmark = pytest.mark.timeout(150)


def test_three_nodes_on_sasl_ssl_replicate_with_rf3(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    picked = free_ports(6)
    ports = list(zip(picked[::2], picked[1::2], strict=True))
    voters = ",".join(f"{i}@127.0.0.1:{c}" for i, (_, c) in enumerate(ports, 1))
    nodes = []
    for i, (port, cport) in enumerate(ports, 1):
        nodes.append(EmbeddedBroker(tmp_path / f"node-{i}", port=port, overrides={
            "process.roles": "broker,controller", "node.id": str(i), "cluster.id": "c2VjdXJlLWNsdXN0ZXItdGVzdA",
            "listeners": f"INTERNAL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
            "advertised.listeners": f"INTERNAL://127.0.0.1:{port}",
            "listener.security.protocol.map": "INTERNAL:SASL_SSL,CONTROLLER:SASL_SSL",
            "controller.listener.names": "CONTROLLER", "controller.quorum.voters": voters,
            "inter.broker.listener.name": "INTERNAL", "sasl.enabled.mechanisms": "PLAIN",
            "sasl.mechanism.inter.broker.protocol": "PLAIN", "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.internal.plain.sasl.jaas.config": PLAIN_JAAS,
            "listener.name.controller.plain.sasl.jaas.config": PLAIN_JAAS,
            "broker.heartbeat.interval.ms": "200", "broker.session.timeout.ms": "3000",
            **tls_keystore(pki),
        }))
    conf = {"bootstrap.servers": ",".join(n.bootstrap for n in nodes), "security.protocol": "SASL_SSL",
            "sasl.mechanism": "PLAIN", "sasl.username": "admin", "sasl.password": ADMIN_PASSWORD,
            "ssl.ca.location": pki.ca_file}
    try:
        for node in nodes:
            node.launch()
        for node in nodes:
            node.wait_ready()
        admin = AdminClient(conf)
        wait_until(lambda: len(admin.list_topics(timeout=5).brokers) == 3, timeout=60,
                   message="3 brokers registered over SASL_SSL")
        admin.create_topics([NewTopic("secured", 2, 3, config={"min.insync.replicas": "3"})])["secured"].result(30)
        wait_until(lambda: all(len(p.isrs) == 3 for p in admin.list_topics("secured", timeout=5)
                               .topics["secured"].partitions.values()), timeout=30, message="ISR of 3")
        producer = Producer({**conf, "acks": "all", "enable.idempotence": True})
        for i in range(200):
            producer.produce("secured", key=str(i % 7).encode(), value=f"m{i}".encode())
        assert producer.flush(30) == 0
        consumer = Consumer({**conf, "group.id": "secured-readers", "auto.offset.reset": "earliest"})
        consumer.subscribe(["secured"])
        seen: set[bytes] = set()
        try:
            def all_read() -> bool:
                message = consumer.poll(0.5)
                if message is not None and message.error() is None:
                    seen.add(message.value())
                return len(seen) == 200
            wait_until(all_read, timeout=30, interval=0, message="200 messages read back")
        finally:
            consumer.close()
        assert seen == {f"m{i}".encode() for i in range(200)}
        for node in nodes:
            logs = node.logs()
            assert "Traceback" not in logs
            for secret in SECRETS:
                assert secret not in logs
    finally:
        for node in nodes:  # SIGTERM all first, so the last voters do not wait for a lost quorum
            if node.proc is not None and node.proc.poll() is None:
                node.proc.send_signal(signal.SIGTERM)
        for node in nodes:
            node.stop()
