"""Two KRaft nodes for the operator-tool tests: node 1 is a combined broker+controller (the one
voter, so the quorum leader), node 2 a broker-only observer. Asking node 2 exercises forwarding
to the active controller; both are brokers in Metadata."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from suoi.cli.cluster_layout import free_ports
from suoi.testing import EmbeddedBroker

CLUSTER_ID = "dG9vbHMtcGFpci10ZXN0cw"


@contextmanager
def kraft_pair(directory: Path) -> Iterator[tuple[EmbeddedBroker, EmbeddedBroker, int]]:
    """(voter, broker-only node, the voter's CONTROLLER port), both serving."""
    port1, cport, port2 = free_ports(3)
    common = {"cluster.id": CLUSTER_ID, "controller.listener.names": "CONTROLLER",
              "controller.quorum.voters": f"1@127.0.0.1:{cport}", "offsets.topic.replication.factor": "1",
              "transaction.state.log.replication.factor": "1", "transaction.state.log.min.isr": "1",
              "broker.heartbeat.interval.ms": "200"}
    voter = EmbeddedBroker(directory / "node-1", port=port1, overrides={
        **common, "process.roles": "broker,controller", "node.id": "1",
        "listeners": f"PLAINTEXT://127.0.0.1:{port1},CONTROLLER://127.0.0.1:{cport}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port1}"})
    broker = EmbeddedBroker(directory / "node-2", port=port2, overrides={
        **common, "process.roles": "broker", "node.id": "2",
        "listeners": f"PLAINTEXT://127.0.0.1:{port2}", "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port2}"})
    try:
        voter.launch()
        broker.launch()
        voter.wait_ready()
        broker.wait_ready()
        yield voter, broker, cport
    finally:
        broker.stop()
        voter.stop()
