"""Three KRaft nodes for the operator-tool tests: nodes 1 and 2 are combined broker+controllers
(the two voters), node 3 a broker-only observer. Asking a broker that does not lead the quorum
exercises forwarding to the active controller; asking a follower's CONTROLLER listener, the
tool's following of the leader it names."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from suoi.cli.cluster_layout import free_ports
from suoi.testing import EmbeddedBroker

CLUSTER_ID = "dG9vbHMtcGFpci10ZXN0cw"


@dataclass
class KRaftNodes:
    nodes: dict[int, EmbeddedBroker]
    controller_ports: dict[int, int]

    def controller(self, node_id: int) -> str:
        return f"127.0.0.1:{self.controller_ports[node_id]}"


@contextmanager
def kraft_nodes(directory: Path, extra: dict[str, str] | None = None) -> Iterator[KRaftNodes]:
    """Voters 1 and 2, broker-only node 3, all serving (``extra``: more properties for every node)."""
    port1, cport1, port2, cport2, port3 = free_ports(5)
    common = {"cluster.id": CLUSTER_ID, "controller.listener.names": "CONTROLLER",
              "controller.quorum.voters": f"1@127.0.0.1:{cport1},2@127.0.0.1:{cport2}",
              "offsets.topic.replication.factor": "1", "transaction.state.log.replication.factor": "1",
              "transaction.state.log.min.isr": "1", "broker.heartbeat.interval.ms": "200", **(extra or {})}

    def voter(node_id: int, port: int, cport: int) -> EmbeddedBroker:
        return EmbeddedBroker(directory / f"node-{node_id}", port=port, overrides={
            **common, "process.roles": "broker,controller", "node.id": str(node_id),
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}"})

    nodes = {1: voter(1, port1, cport1), 2: voter(2, port2, cport2),
             3: EmbeddedBroker(directory / "node-3", port=port3, overrides={
                 **common, "process.roles": "broker", "node.id": "3",
                 "listeners": f"PLAINTEXT://127.0.0.1:{port3}",
                 "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port3}"})}
    try:
        for n in nodes.values():  # together: a voter alone has no quorum and never serves
            n.launch()
        for n in nodes.values():
            n.wait_ready()
        yield KRaftNodes(nodes, {1: cport1, 2: cport2})
    finally:
        for n in nodes.values():  # SIGTERM all at once: stopped one by one, each would wait for the others
            if n.proc is not None and n.proc.poll() is None:
                n.proc.send_signal(signal.SIGTERM)
        for n in nodes.values():
            n.stop()
