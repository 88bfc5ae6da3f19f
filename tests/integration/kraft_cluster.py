"""A small KRaft cluster of EmbeddedBroker processes (combined mode: every node is a broker
and a Raft voter), for protocol tests that need several brokers: leaders elsewhere,
leader epochs that move, nodes stopped and started again on their ports. Everything is
polled with deadlines."""

from __future__ import annotations

import logging
import shutil
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from kio.schema.errors import ErrorCode

from suoi.cli.cluster_layout import free_ports
from suoi.testing import EmbeddedBroker
from suoi.testing.embedded import PICK_ATTEMPTS, PortTakenError, port_taken
from tests.conftest import wait_until
from tests.integration.support import metadata_req
from tests.rawclient import RawClient

CLUSTER_ID = "c3VvaS1lcG9jaC10ZXN0cw"

log = logging.getLogger(__name__)


class KRaftCluster:
    def __init__(self, directory: Path, size: int, overrides: dict[str, str] | None = None, *,
                 admin: bool = False) -> None:
        self._directory, self._size, self._overrides, self._admin = directory, size, overrides or {}, admin
        self.nodes: dict[int, EmbeddedBroker] = {}
        #: node id -> port of its CONTROLLER listener (Raft RPCs, registration, forwarded ops)
        self.controller_ports: dict[int, int] = {}
        #: node id -> base URL of its admin endpoint (admin=True only)
        self.admin: dict[int, str] = {}
        self._started = False  # once started, a node keeps its ports (its peers and clients know them)
        self._given: dict[int, dict[str, str]] = {}  # node id -> the overrides _pick_ports gave it
        self._pick_ports()

    def _pick_ports(self) -> None:
        """Every node's ports, picked free now. A KRaft node must know its voters' controller ports
        before it starts, so nothing can bind port 0 and report back: `first_start` picks again
        if another process took a port between the pick and the bind."""
        # Outside the ephemeral range: a restarted node binds the same ports again.
        per_node = 3 if self._admin else 2
        picked = free_ports(per_node * self._size)
        ports = [picked[i:i + per_node] for i in range(0, len(picked), per_node)]
        voters = ",".join(f"{i}@127.0.0.1:{p[1]}" for i, p in enumerate(ports, 1))
        self.controller_ports = {i: p[1] for i, p in enumerate(ports, 1)}
        self.admin = {i: f"http://127.0.0.1:{p[2]}" for i, p in enumerate(ports, 1)} if self._admin else {}
        for i, (port, cport, *_) in enumerate(ports, 1):
            given = {
                "process.roles": "broker,controller", "node.id": str(i),
                "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
                "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
                "controller.listener.names": "CONTROLLER", "controller.quorum.voters": voters,
                "cluster.id": CLUSTER_ID, "broker.heartbeat.interval.ms": "200",
                "broker.session.timeout.ms": "3000",
                **({"admin.listeners": self.admin[i]} if self._admin else {}), **self._overrides,
            }
            old = self.nodes.get(i)
            if old is not None:  # keep what the test changed in the node's overrides since
                before = self._given[i]
                given = {k: v for k, v in given.items() if k not in before or k in old.overrides}
                given.update((k, v) for k, v in old.overrides.items() if before.get(k) != v)
            self.nodes[i] = EmbeddedBroker(self._directory / f"node-{i}", port=port, overrides=given)
            self._given[i] = dict(given)

    def first_start(self, launch: Callable[[], None]) -> None:
        """Run `launch` (which launches the nodes and waits for them) and, should a node exit at
        this first start because another process bound one of its ports between the pick and the
        bind (another test worker's node: PortTakenError), stop every node, wipe their data and run
        it again on fresh ports; at most PICK_ATTEMPTS times, each retry logged. Only before the
        cluster ever started (after, a node keeps its ports) and on storage it made itself.
        Changes the test made to a node's overrides are kept; its ports and the voters are new."""
        # a test that formatted the nodes' storage itself keeps it: no wipe, no retry
        fresh = not any(d.exists() for node in self.nodes.values() for d in node.log_dirs)
        for attempt in range(1, PICK_ATTEMPTS + 1):
            try:
                launch()
            except PortTakenError as exc:
                if self._started or not fresh or attempt == PICK_ATTEMPTS:
                    raise
                log.warning("a port of the cluster was taken at its first start (attempt %d of %d), "
                            "picking new ones: %s", attempt, PICK_ATTEMPTS,
                            port_taken(str(exc)))
                self.stop()
                for node in self.nodes.values():  # formatted with the old voters: start afresh
                    for log_dir in node.log_dirs:
                        shutil.rmtree(log_dir, ignore_errors=True)
                self._pick_ports()
                continue
            self._started = True
            return

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes.values())

    def controller_bootstrap(self, node_id: int) -> str:
        return f"127.0.0.1:{self.controller_ports[node_id]}"

    def start(self, timeout: float = 60.0) -> None:
        def launch_together() -> None:  # together: alone, a node has no quorum and never serves
            for node in self.nodes.values():
                node.launch()
            for node in self.nodes.values():
                node.wait_ready()

        self.first_start(launch_together)
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
