"""ReplicatedCluster: N suoi KRaft nodes as real processes, with every link between them
running through a fault-injecting proxy the test controls.

Each node (ids 1..N) is `python -m suoi broker --config <node dir>/server.properties` with
process.roles=broker,controller (every node is a Raft voter) and three listeners on 127.0.0.1:

* CLIENT: what clients use (`bootstrap`, `client_address(n)`); never proxied, so a test keeps
  talking to a node that is cut off from its peers. Metadata answers name this listener.
* REPLICATION (`inter.broker.listener.name`): advertised at `replication_routes[n]`, a proxy
  route to the node's real port, so every replica fetch *to* node n goes through it. The route
  tells the fetching node apart by the client id of its first request (`suoi-<role>-<id>`, as
  `suoi.client.NodeClient` users name themselves), so it can hold node 1's fetches and let node
  2's through.
* CONTROLLER: node i reaches voter j at `controller_routes[(i, j)]` (its own
  controller.quorum.voters entry for j), a route of its own, so Raft and broker-to-controller
  traffic can be cut in each direction between each pair; a node reaches itself directly.

Faults: `kill(n)` (SIGKILL), `pause(n)`/`resume(n)` (SIGSTOP/SIGCONT), `stop_node`/`start_node`/
`restart`, and network cuts: `isolate(n)` (n talks to no peer; clients still reach it),
`partition({1}, {2, 3})`, `cut(a, b)`, `heal()` -- "drop" (a blackhole: connections stay open, the
peers time out) or "reset" (connections reset at once).

Queries ask one node directly over its CLIENT listener (each node's metadata image converges
on its own): `brokers_seen_by`, `describe(topic)` (leader, epoch, replicas, ISR, offline),
`leader_of`, `quorum(n)` / `controller_id()`; `wait_*` helpers poll them with deadlines (these
live in `cluster_queries.py`, a mixin of `ReplicatedCluster`).
`dump()` is every node's log tail and the proxy counters; the pytest fixture prints it when a test
fails. Processes are killed at `close()` and, on Linux, if the test process itself dies
(PR_SET_PDEATHSIG, set by the thread that starts them).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from suoi.cli.cluster_layout import free_ports, new_cluster_id
from suoi.testing.embedded import PICK_ATTEMPTS, port_taken
from tests.faults.cluster_queries import HOST, ClusterQueries, wait_until
from tests.faults.proxy import FaultProxy, Route, kafka_client_id

log = logging.getLogger(__name__)
CLIENT = "CLIENT"
REPLICATION = "REPLICATION"
CONTROLLER = "CONTROLLER"
#: Default broker properties: fast fencing and elections, so fault tests stay short.
FAST_FAILURE_DETECTION = {
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    "controller.quorum.election.timeout.ms": "1000",
    "controller.quorum.fetch.timeout.ms": "2000",
    "controller.quorum.request.timeout.ms": "1000",
    "num.partitions": "1",
    "auto.create.topics.enable": "false",
    "group.initial.rebalance.delay.ms": "0",
}
#: SIGTERM, then SIGKILL after this long.
STOP_TIMEOUT_S = 15.0
CutMode = Literal["drop", "reset"]

#: Runs `python -m suoi broker ...` after asking the kernel to SIGKILL it when the thread that
#: started it dies (and exits at once if that already happened).
_LAUNCHER = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))\n"
    "if os.getppid() != int(os.environ['SUOI_FAULTS_PARENT']): sys.exit(70)\n"
    "os.execv(sys.executable, [sys.executable] + sys.argv[1:])\n"
)




def node_of_client_id(head: bytes) -> str | None:
    """The proxy's source label for an inter-broker connection: the node id in the client id of
    its first request ("suoi-replica-2" -> "2"), "" for any other client, None while unknown."""
    client_id = kafka_client_id(head)
    if client_id is None:
        return None
    m = re.match(r"suoi-\D*?(\d+)", client_id)
    return m.group(1) if m else ""


class NodePortTaken(AssertionError):
    """A node exited at start because another process had bound one of its ports."""




@dataclass
class Node:
    id: int
    dir: Path
    client_port: int
    replication_port: int
    controller_port: int
    proc: subprocess.Popen[bytes] | None = None
    paused: bool = False
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def client_address(self) -> str:
        return f"{HOST}:{self.client_port}"

    @property
    def controller_address(self) -> str:
        return f"{HOST}:{self.controller_port}"

    @property
    def config_path(self) -> Path:
        return self.dir / "server.properties"

    @property
    def log_path(self) -> Path:
        return self.dir / "broker.log"

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class ReplicatedCluster(ClusterQueries):
    def __init__(self, base_dir: Path, nodes: int = 3, *, overrides: dict[str, str] | None = None,
                 node_overrides: dict[int, dict[str, str]] | None = None, start_timeout: float = 45.0,
                 cluster_id: str | None = None) -> None:
        if nodes < 1:
            raise ValueError("a cluster needs at least one node")
        self.base_dir = Path(base_dir)
        self.start_timeout = start_timeout
        self.cluster_id = cluster_id or new_cluster_id()
        self.overrides = {**FAST_FAILURE_DETECTION, **(overrides or {})}
        self.node_overrides = node_overrides or {}
        self.nodes: dict[int, Node] = {}
        self._pick_ports(nodes)
        self.proxy = FaultProxy(name="cluster-proxy")
        self.replication_routes: dict[int, Route] = {}
        self.controller_routes: dict[tuple[int, int], Route] = {}
        #: Cut links: {a, b} -> how.
        self._cuts: dict[frozenset[int], CutMode] = {}
        self._started = False

    def _pick_ports(self, nodes: int) -> None:
        """Every node's three ports, free now (the voters' controller ports go into every node's
        config before it starts, so a node cannot bind port 0 and report back: `start` picks again
        if another process took one between the pick and the bind)."""
        ports = iter(free_ports(3 * nodes))
        self.nodes = {
            i: Node(i, self.base_dir / f"node-{i}", next(ports), next(ports), next(ports)) for i in range(1, nodes + 1)}

    # -- layout -----------------------------------------------------------------------
    @property
    def ids(self) -> list[int]:
        return sorted(self.nodes)

    @property
    def bootstrap(self) -> str:
        """Every node's CLIENT listener."""
        return self.bootstrap_of(self.ids)

    def bootstrap_of(self, ids: Iterable[int]) -> str:
        return ",".join(self.nodes[i].client_address for i in ids)

    def client_address(self, node: int) -> str:
        return self.nodes[node].client_address

    def properties(self, node: int) -> dict[str, str]:
        n = self.nodes[node]
        voters = ",".join(f"{j}@{self.nodes[j].controller_address if j == node else self.controller_routes[(node, j)].address}"
                          for j in self.ids)
        props = {
            "process.roles": "broker,controller",
            "node.id": str(node),
            "listeners": f"{CLIENT}://{n.client_address},{REPLICATION}://{HOST}:{n.replication_port},"
                         f"{CONTROLLER}://{n.controller_address}",
            "advertised.listeners": f"{CLIENT}://{n.client_address},{REPLICATION}://{self.replication_routes[node].address}",
            "listener.security.protocol.map": f"{CLIENT}:PLAINTEXT,{REPLICATION}:PLAINTEXT,{CONTROLLER}:PLAINTEXT",
            "inter.broker.listener.name": REPLICATION,
            "controller.listener.names": CONTROLLER,
            "controller.quorum.voters": voters,
            "cluster.id": self.cluster_id,
            "log.dirs": str(n.data_dir.resolve()),
        }
        props.update(self.overrides)
        props.update(self.node_overrides.get(node, {}))
        return props

    def _write_configs(self) -> None:
        for i, n in self.nodes.items():
            n.dir.mkdir(parents=True, exist_ok=True)
            lines = [f"# suoi fault-test node {i} (tests/faults/cluster.py)"]
            lines += [f"{k}={v}" for k, v in self.properties(i).items()]
            n.config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> ReplicatedCluster:
        if self._started:
            return self
        self._started = True
        for attempt in range(1, PICK_ATTEMPTS + 1):
            try:
                self._first_start()
            except NodePortTaken as exc:  # the cluster is closed: pick new ports, start afresh
                if attempt == PICK_ATTEMPTS:
                    raise
                log.warning("a port of the cluster was taken at its first start (attempt %d of %d), "
                            "picking new ones: %s", attempt, PICK_ATTEMPTS, port_taken(exc.args[0]))
                for n in self.nodes.values():  # formatted with the old voters
                    shutil.rmtree(n.data_dir, ignore_errors=True)
                self._pick_ports(len(self.nodes))
                self.proxy = FaultProxy(name="cluster-proxy")
                self.replication_routes.clear()
                self.controller_routes.clear()
                continue
            return self
        raise AssertionError("unreachable")

    def _first_start(self) -> None:
        self.proxy.start()
        for j, n in self.nodes.items():
            self.replication_routes[j] = self.proxy.add((HOST, n.replication_port), name=f"replication->{j}",
                                                        source_of=node_of_client_id)
            for i in self.ids:
                if i != j:
                    self.controller_routes[(i, j)] = self.proxy.add((HOST, n.controller_port), name=f"controller {i}->{j}")
        self._write_configs()
        try:
            for i in self.ids:
                self._spawn(i)
            self.wait_ready(self.start_timeout)
        except BaseException:
            self.close()
            raise

    def _spawn(self, node: int) -> None:
        n = self.nodes[node]
        if n.running:
            raise RuntimeError(f"node {node} is already running (pid {n.pid})")
        cmd = ["-m", "suoi", "broker", "--config", str(n.config_path)]
        env = dict(os.environ, SUOI_FAULTS_PARENT=str(os.getpid()))
        if sys.platform.startswith("linux"):
            cmd = [sys.executable, "-c", _LAUNCHER, *cmd]
        else:
            cmd = [sys.executable, *cmd]
        n._log = open(n.log_path, "ab")  # noqa: SIM115 - closed in _reaped
        n._log.write(f"==== start node {node} at {time.strftime('%H:%M:%S')} ====\n".encode())
        n._log.flush()
        n.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=n._log, stderr=subprocess.STDOUT,
                                  cwd=str(n.dir), env=env)
        n.paused = False

    def _reaped(self, node: int, timeout: float) -> None:
        n = self.nodes[node]
        if n.proc is not None:
            try:
                n.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                n.proc.kill()
                n.proc.wait(10)
        if n._log is not None:
            n._log.close()
            n._log = None

    def kill(self, node: int) -> None:
        """SIGKILL: no flush, no controlled shutdown."""
        n = self.nodes[node]
        if n.running:
            assert n.proc is not None
            n.proc.send_signal(signal.SIGKILL)
        self._reaped(node, 10)
        n.paused = False

    def stop_node(self, node: int, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM (a clean shutdown; SIGKILL after `timeout`). Returns the exit code."""
        n = self.nodes[node]
        if n.running:
            assert n.proc is not None
            if n.paused:
                n.proc.send_signal(signal.SIGCONT)
            n.proc.send_signal(signal.SIGTERM)
        self._reaped(node, timeout)
        n.paused = False
        return n.proc.returncode if n.proc is not None else None

    def start_node(self, node: int, *, wait: bool = True, timeout: float | None = None) -> None:
        """Start a stopped or killed node again on its config and data."""
        self._spawn(node)
        if wait:
            self.wait_ready(self.start_timeout if timeout is None else timeout)

    def restart(self, node: int, *, kill: bool = False, wait: bool = True) -> None:
        self.kill(node) if kill else self.stop_node(node)
        self.start_node(node, wait=wait)

    def pause(self, node: int) -> None:
        """SIGSTOP: the process freezes with its connections open (a GC pause, a VM stall)."""
        n = self.nodes[node]
        if not n.running or n.proc is None:
            raise RuntimeError(f"node {node} is not running")
        n.proc.send_signal(signal.SIGSTOP)
        n.paused = True
        wait_until(lambda: _proc_state(n.proc.pid if n.proc else 0) in ("T", "t", None), 5,
                   f"node {node} to stop (SIGSTOP)")

    def resume(self, node: int) -> None:
        n = self.nodes[node]
        if n.proc is not None and n.running:
            n.proc.send_signal(signal.SIGCONT)
            wait_until(lambda: _proc_state(n.proc.pid if n.proc else 0) not in ("T", "t"), 5,
                       f"node {node} to continue (SIGCONT)")
        n.paused = False

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM every node at once, then wait (SIGKILL what is left after `timeout`)."""
        for n in self.nodes.values():
            if n.running and n.proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    if n.paused:
                        n.proc.send_signal(signal.SIGCONT)
                    n.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for i in self.ids:
            self._reaped(i, max(0.1, deadline - time.monotonic()))
            self.nodes[i].paused = False

    def close(self) -> None:
        """Stop every node (kill if needed) and the proxy. Idempotent."""
        with contextlib.suppress(Exception):
            self.heal()  # a clean shutdown reaches the controller
        try:
            self.stop(timeout=5)
        finally:
            for i in self.ids:
                n = self.nodes[i]
                if n.running and n.proc is not None:
                    n.proc.kill()
                self._reaped(i, 10)
            self.proxy.close()

    def __enter__(self) -> ReplicatedCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- network faults ---------------------------------------------------------------
    def isolate(self, node: int, mode: CutMode = "drop") -> None:
        """Cut `node` from every peer (Raft, controller RPCs and replica fetches, both ways);
        clients still reach it on its CLIENT listener."""
        for other in self.ids:
            if other != node:
                self._cuts[frozenset((node, other))] = mode
        self._apply_cuts()

    def partition(self, *groups: Iterable[int], mode: CutMode = "drop") -> None:
        """Nodes talk only within their group: partition({1}, {2, 3}). Nodes in no group keep
        their links to everyone. Replaces every earlier cut."""
        sets = [set(g) for g in groups]
        self._cuts = {}
        for a_i, a in enumerate(sets):
            for b in sets[a_i + 1:]:
                for x in a:
                    for y in b:
                        self._cuts[frozenset((x, y))] = mode
        self._apply_cuts()

    def cut(self, a: int, b: int, mode: CutMode = "drop") -> None:
        """Cut the link between two nodes (both ways), keeping the other cuts."""
        self._cuts[frozenset((a, b))] = mode
        self._apply_cuts()

    def heal(self, node: int | None = None) -> None:
        """Restore the links of `node`, or every link."""
        self._cuts = {} if node is None else {k: v for k, v in self._cuts.items() if node not in k}
        self._apply_cuts()

    def cut_links(self) -> dict[tuple[int, int], CutMode]:
        return {tuple(sorted(k)): v for k, v in self._cuts.items()}  # type: ignore[misc]

    def _apply_cuts(self) -> None:
        if not self.controller_routes:
            return
        for (src, dst), route in self.controller_routes.items():
            mode = self._cuts.get(frozenset((src, dst)))
            if mode is None and route.mode != "pass":
                route.heal()
            elif mode is not None and route.mode != mode:
                route.set_mode(mode)
        for dst, route in self.replication_routes.items():
            blocked = route.blocked_sources()
            for src in self.ids:
                if src == dst:
                    continue
                mode = self._cuts.get(frozenset((src, dst)))
                if mode is None and str(src) in blocked:
                    route.unblock_source(str(src))
                elif mode is not None and blocked.get(str(src)) != mode:
                    route.block_source(str(src), mode)

    def connected(self, node: int) -> bool:
        """No cut touches `node`."""
        return not any(node in k for k in self._cuts)

    def healthy(self) -> list[int]:
        """The running, unpaused nodes that can reach each other: the largest group connected by
        uncut links (on a tie, the one with the lowest id). A node isolated, paused or down is
        not in it."""
        up = [i for i, n in sorted(self.nodes.items()) if n.running and not n.paused]
        groups: list[list[int]] = []
        seen: set[int] = set()
        for start in up:
            if start in seen:
                continue
            group, todo = [], [start]
            seen.add(start)
            while todo:
                x = todo.pop()
                group.append(x)
                for y in up:
                    if y not in seen and frozenset((x, y)) not in self._cuts:
                        seen.add(y)
                        todo.append(y)
            groups.append(sorted(group))
        return max(groups, key=len) if groups else []  # max keeps the first of equals

    def _check_alive(self) -> None:
        for i, n in self.nodes.items():
            if n.proc is not None and n.proc.poll() is not None and n._log is not None:
                tail = self.log_tail(i, 60)
                error = NodePortTaken if port_taken(tail) else AssertionError
                raise error(f"node {i} exited with {n.proc.returncode}:\n{tail}")

    # -- diagnostics ------------------------------------------------------------------
    def log_tail(self, node: int, lines: int = 40) -> str:
        try:
            text = self.nodes[node].log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def dump(self, lines: int = 40) -> str:
        """Processes, cuts, proxy counters and each node's log tail."""
        out = [f"cluster {self.cluster_id} in {self.base_dir}; cuts: {self.cut_links() or 'none'}"]
        for i, n in self.nodes.items():
            state = "running" if n.running else f"exited {n.proc.returncode}" if n.proc is not None else "not started"
            out.append(f"node {i}: pid {n.pid} {state}{' (paused)' if n.paused else ''} client {n.client_address}")
        with contextlib.suppress(Exception):
            for route in self.proxy.routes:
                s = route.stats()
                out.append(f"  {route.name} :{route.port} {route.mode} blocked={route.blocked_sources()} "
                           f"conns {s.active}/{s.accepted} refused {s.refused} resets {s.resets} "
                           f"bytes up {s.bytes_up} down {s.bytes_down}")
        for i in self.ids:
            out.append(f"---- node {i} log ({self.nodes[i].log_path}), last {lines} lines")
            out.append(self.log_tail(i, lines))
        return "\n".join(out)


def _proc_state(pid: int) -> str | None:
    """The state letter in /proc/<pid>/stat (R, S, T, Z, ...), None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2:][:1] or None
