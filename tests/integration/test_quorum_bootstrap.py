"""controller.quorum.bootstrap.servers (KIP-853) instead of controller.quorum.voters: Kafka 4's
single-node quick start, and broker-only nodes that learn the voters from the controllers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from suoi.testing import EmbeddedBroker
from suoi.testing.embedded import free_port
from tests.conftest import wait_until
from tests.e2e.helpers import ck_consume, ck_produce, create_topic
from tests.integration.support import metadata_req
from tests.rawclient import RawClient


def test_kafka4_single_node_config_with_bootstrap_servers(tmp_path: Path) -> None:
    port, cport = free_port(), free_port()
    props = {
        "process.roles": "broker,controller", "node.id": "1",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}", "controller.listener.names": "CONTROLLER",
        "controller.quorum.bootstrap.servers": f"localhost:{cport}",
        "offsets.topic.replication.factor": "1", "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
    }
    with EmbeddedBroker(tmp_path / "n1", port=port, overrides=props) as node:
        create_topic(node.bootstrap, "kafka4", 1)
        ck_produce(node.bootstrap, "kafka4", [{"value": b"hello"}])
        assert [r.value for r in ck_consume(node.bootstrap, "kafka4", [0], 1)] == [b"hello"]


def test_a_broker_learns_the_voters_from_bootstrap_servers(tmp_path: Path) -> None:
    cport, b1, b2 = free_port(), free_port(), free_port()
    controller = EmbeddedBroker(tmp_path / "c", port=cport, overrides={
        "process.roles": "controller", "node.id": "9", "listeners": f"CONTROLLER://127.0.0.1:{cport}",
        "controller.listener.names": "CONTROLLER", "controller.quorum.voters": f"9@127.0.0.1:{cport}",
        "cluster.id": "bootstrapClusterIdAAAAA"})

    def broker(node_id: int, port: int) -> EmbeddedBroker:
        return EmbeddedBroker(tmp_path / f"b{node_id}", port=port, overrides={
            "process.roles": "broker", "node.id": str(node_id),
            "listeners": f"PLAINTEXT://127.0.0.1:{port}", "controller.listener.names": "CONTROLLER",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{cport}", "cluster.id": "bootstrapClusterIdAAAAA",
            "offsets.topic.replication.factor": "2", "broker.heartbeat.interval.ms": "300"})

    with controller, broker(1, b1) as one, broker(2, b2) as two:
        def listed() -> bool:
            with RawClient(one.bootstrap) as c:
                md = c.request(metadata_req(allow_create=False))
            return sorted(b.node_id for b in md.brokers) == [1, 2]
        wait_until(listed, timeout=30, message="both brokers registered through the discovered quorum")
        create_topic(one.bootstrap, "discovered", 2)
        bootstrap = f"{one.bootstrap},{two.bootstrap}"
        ck_produce(bootstrap, "discovered", [{"value": b"p%d" % p, "partition": p} for p in range(2)])
        got = ck_consume(bootstrap, "discovered", [0, 1], 2, timeout=20)
        assert sorted(r.value for r in got) == [b"p0", b"p1"]


def test_several_controllers_need_explicit_voters(tmp_path: Path) -> None:
    port, cport = free_port(), free_port()
    cmd = [sys.executable, "-m", "suoi", "broker", "--log-dirs", str(tmp_path / "d"),
           "--listeners", f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
           "-o", "process.roles=broker,controller", "-o", "node.id=1",
           "-o", f"controller.quorum.bootstrap.servers=127.0.0.1:{cport},127.0.0.1:{free_port()}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "controller.quorum.voters" in proc.stderr and "Traceback" not in proc.stderr
