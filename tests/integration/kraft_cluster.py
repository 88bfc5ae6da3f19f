"""A small KRaft cluster of EmbeddedBroker processes (combined mode: every node is a broker
and a Raft voter), for protocol tests that need several brokers: leaders elsewhere,
leader epochs that move, nodes stopped and started again on their ports. Everything is
polled with deadlines."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kio.schema.errors import ErrorCode

from suoi.cli.cluster_layout import free_ports
from suoi.testing import EmbeddedBroker
from tests.conftest import wait_until
from tests.integration.support import metadata_req
from tests.rawclient import RawClient

CLUSTER_ID = "c3VvaS1lcG9jaC10ZXN0cw"


class KRaftCluster:
    def __init__(self, directory: Path, size: int, overrides: dict[str, str] | None = None) -> None:
        # Outside the ephemeral range: a restarted node binds the same ports again.
        picked = free_ports(2 * size)
        ports = list(zip(picked[::2], picked[1::2], strict=True))
        voters = ",".join(f"{i}@127.0.0.1:{c}" for i, (_, c) in enumerate(ports, 1))
        self.nodes: dict[int, EmbeddedBroker] = {}
        #: node id -> port of its CONTROLLER listener (Raft RPCs, registration, forwarded ops)
        self.controller_ports = {i: cport for i, (_, cport) in enumerate(ports, 1)}
        for i, (port, cport) in enumerate(ports, 1):
            self.nodes[i] = EmbeddedBroker(directory / f"node-{i}", port=port, overrides={
                "process.roles": "broker,controller", "node.id": str(i),
                "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
                "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
                "controller.listener.names": "CONTROLLER", "controller.quorum.voters": voters,
                "cluster.id": CLUSTER_ID, "broker.heartbeat.interval.ms": "200",
                "broker.session.timeout.ms": "3000", **(overrides or {}),
            })

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes.values())

    def controller_bootstrap(self, node_id: int) -> str:
        return f"127.0.0.1:{self.controller_ports[node_id]}"

    def start(self, timeout: float = 60.0) -> None:
        for node in self.nodes.values():  # together: alone, a node has no quorum and never serves
            node.launch()
        for node in self.nodes.values():
            node.wait_ready()
        self.wait_registered(timeout)

    def stop(self) -> None:
        # SIGTERM every node first: stopped one by one, the last voters lose their quorum and
        # each waits out its controlled shutdown with no controller to answer.
        for node in self.nodes.values():
            if node.proc is not None and node.proc.poll() is None:
                node.proc.send_signal(signal.SIGTERM)
        for node in self.nodes.values():
            node.stop()

    def wait_registered(self, timeout: float = 60.0) -> None:
        """Until every node's own Metadata lists every broker."""
        everyone = sorted(self.nodes)
        wait_until(lambda: all(self.broker_ids(i) == everyone for i in self.nodes), timeout=timeout,
                   message=f"brokers {everyone} in every node's Metadata")

    def broker_ids(self, node_id: int) -> list[int]:
        with RawClient(self.nodes[node_id].bootstrap) as c:
            md = c.request(metadata_req(allow_create=False))
        return sorted(int(b.node_id) for b in md.brokers)

    def partitions(self, node_id: int, topic: str) -> dict[int, tuple[int, int]]:
        """partition -> (leader id, leader epoch) in the Metadata answer of node `node_id`."""
        with RawClient(self.nodes[node_id].bootstrap) as c:
            t = c.request(metadata_req(topic, allow_create=False)).topics[0]
        if t.error_code != ErrorCode.none:
            return {}
        return {int(p.partition_index): (int(p.leader_id), int(p.leader_epoch)) for p in t.partitions}

    def wait_leaders(self, topic: str, count: int, timeout: float = 20.0) -> dict[int, tuple[int, int]]:
        """partition -> (leader, epoch) once every node agrees that all `count` partitions have one."""
        def agreed() -> dict[int, tuple[int, int]] | None:
            views = [self.partitions(i, topic) for i in self.nodes]
            first = views[0]
            if len(first) != count or any(leader < 0 for leader, _ in first.values()):
                return None
            return first if all(v == first for v in views) else None

        return wait_until(agreed, timeout=timeout, message=f"leaders of {topic} agreed by every node")


@contextmanager
def kraft_cluster(directory: Path, size: int = 3, overrides: dict[str, str] | None = None) -> Iterator[KRaftCluster]:
    cluster = KRaftCluster(directory, size, overrides)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
