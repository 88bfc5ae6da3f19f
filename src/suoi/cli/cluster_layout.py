"""`suoi cluster`: the plan of a local cluster (node ids, roles, ports, cluster id), the
server.properties of each node, and the state file DIR/cluster.json. No process is started
here; see `suoi.cli.cluster` for the layout of DIR."""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from suoi.atomic_file import write_atomically
from suoi.cli.common import CliError

HOST = "127.0.0.1"
DEFAULT_DIR = Path("suoi-cluster")
STATE_FILE = "cluster.json"
CLIENT_LISTENER = "PLAINTEXT"
#: The client (and inter-broker) listener of a `--secure` cluster (`suoi.cli.cluster_secure`).
SECURE_LISTENER = "SASL_SSL"
CONTROLLER_LISTENER = "CONTROLLER"
MAX_COMBINED_VOTERS = 3
MAX_BROKERS = 64
MAX_CONTROLLERS = 9
DEFAULT_WAIT_S = 60.0
#: SIGTERM, then SIGKILL after this many seconds.
STOP_TIMEOUT_S = 20.0
#: Per-request bound for `status` (Metadata, DescribeQuorum).
STATUS_TIMEOUT_S = 3.0
STATE_VERSION = 1


# ============================================================================ plan (pure)


@dataclass
class Node:
    id: int
    roles: list[str]
    #: PLAINTEXT listener port (brokers), None for a controller-only node.
    port: int | None
    #: CONTROLLER listener port (voters), None for a broker-only node.
    controller_port: int | None
    pid: int | None = None
    #: the admin HTTP endpoint (admin.listeners: /metrics, /v1/status/ready); None in older state files
    admin_port: int | None = None

    @property
    def is_broker(self) -> bool:
        return "broker" in self.roles

    @property
    def is_controller(self) -> bool:
        return "controller" in self.roles

    @property
    def address(self) -> str | None:
        return f"{HOST}:{self.port}" if self.port is not None else None

    @property
    def controller_address(self) -> str | None:
        return f"{HOST}:{self.controller_port}" if self.controller_port is not None else None

    @property
    def admin_url(self) -> str | None:
        return f"http://{HOST}:{self.admin_port}" if self.admin_port is not None else None


@dataclass
class Cluster:
    dir: Path
    cluster_id: str
    nodes: list[Node] = field(default_factory=list)
    #: `up --secure`: SASL_SSL listeners, SCRAM, ACLs (`suoi.cli.cluster_secure`)
    secure: bool = False

    @property
    def client_listener(self) -> str:
        return SECURE_LISTENER if self.secure else CLIENT_LISTENER

    @property
    def brokers(self) -> list[Node]:
        return [n for n in self.nodes if n.is_broker]

    @property
    def controllers(self) -> list[Node]:
        return [n for n in self.nodes if n.is_controller]

    @property
    def bootstrap(self) -> str:
        return ",".join(n.address for n in self.brokers if n.address)

    @property
    def quorum_voters(self) -> str:
        return ",".join(f"{n.id}@{n.controller_address}" for n in self.controllers)

    def node(self, node_id: int) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        ids = ", ".join(str(n.id) for n in self.nodes)
        raise CliError(f"no node {node_id} in the cluster in {self.dir} (nodes: {ids})")

    def node_dir(self, node_id: int) -> Path:
        return self.dir / f"node-{node_id}"

    def config_path(self, node_id: int) -> Path:
        return self.node_dir(node_id) / "server.properties"

    def log_path(self, node_id: int) -> Path:
        return self.node_dir(node_id) / "broker.log"

    def data_dir(self, node_id: int) -> Path:
        return self.node_dir(node_id) / "data"

    def command(self, node_id: int) -> list[str]:
        return [sys.executable, "-m", "suoi", "broker", "--config", str(self.config_path(node_id))]


def new_cluster_id() -> str:
    """Kafka's format (`kafka-storage.sh random-uuid`): 16 random bytes, URL-safe base64, no padding."""
    from suoi.log.meta_properties import random_uuid

    return random_uuid()


def layout(brokers: int, controllers: int, node_ids: list[int] | None = None) -> list[tuple[int, list[str]]]:
    """(node id, roles) for every node: brokers 1..N (or `node_ids`, in order), controller-only
    nodes numbered on from the highest broker id, or with M = 0 the first min(N, 3) brokers as
    combined voters."""
    if brokers < 1:
        raise CliError("--brokers must be at least 1")
    if brokers > MAX_BROKERS:
        raise CliError(f"--brokers must be at most {MAX_BROKERS}")
    if controllers < 0:
        raise CliError("--controllers must be 0 (combined mode) or more")
    if controllers > MAX_CONTROLLERS:
        raise CliError(f"--controllers must be at most {MAX_CONTROLLERS}")
    ids = list(range(1, brokers + 1)) if node_ids is None else list(node_ids)
    if len(ids) != brokers:
        raise CliError(f"--node-ids names {len(ids)} node(s) but --brokers is {brokers}")
    if len(set(ids)) != len(ids) or min(ids) < 0:
        raise CliError(f"--node-ids must be distinct ids of 0 or more, got {','.join(map(str, ids))}")
    out: list[tuple[int, list[str]]] = []
    if controllers == 0:
        voters = min(brokers, MAX_COMBINED_VOTERS)
        for i, node_id in enumerate(ids):
            out.append((node_id, ["broker", "controller"] if i < voters else ["broker"]))
    else:
        out += [(node_id, ["broker"]) for node_id in ids]
        out += [(max(ids) + j, ["controller"]) for j in range(1, controllers + 1)]
    return out


def plan_cluster(directory: Path, brokers: int, controllers: int = 0, *, base_port: int | None = None,
                 cluster_id: str | None = None, node_ids: list[int] | None = None,
                 ports: list[int] | None = None) -> Cluster:
    """The nodes, ports and ids of a new cluster (nothing is started or written). `ports` are the
    brokers' client ports in order (a combined voter's CONTROLLER listener takes its port + 1)."""
    shape = layout(brokers, controllers, node_ids)
    cluster = Cluster(directory, cluster_id or new_cluster_id())
    if ports is not None:
        return _plan_explicit_ports(cluster, shape, ports)
    needed = sum(("broker" in roles) + ("controller" in roles) + 1 for _, roles in shape)  # + the admin port
    top_id = max(i for i, _ in shape)
    if base_port is not None:
        top = base_port + 3 * top_id - 1  # client/controller pairs, then one admin port per node id
        if base_port < 1024 or top > 65535:
            raise CliError(f"--base-port {base_port} leaves the port range: this cluster needs "
                           f"{base_port}..{top} (1024..65535)")
        free: Iterator[int] = iter(())
    else:
        free = iter(free_ports(needed))
    for node_id, roles in shape:
        if base_port is not None:
            port = base_port + 2 * (node_id - 1) if "broker" in roles else None
            cport = base_port + 2 * (node_id - 1) + 1 if "controller" in roles else None
            admin = base_port + 2 * top_id + node_id - 1
        else:
            port = next(free) if "broker" in roles else None
            cport = next(free) if "controller" in roles else None
            admin = next(free)
        cluster.nodes.append(Node(node_id, roles, port, cport, admin_port=admin))
    return cluster


def _plan_explicit_ports(cluster: Cluster, shape: list[tuple[int, list[str]]], ports: list[int]) -> Cluster:
    """`--ports`: broker i listens on ports[i], a combined voter's controller on ports[i] + 1,
    controller-only nodes on free ports."""
    broker_count = sum("broker" in roles for _, roles in shape)
    if len(ports) != broker_count:
        raise CliError(f"--ports names {len(ports)} port(s) for {broker_count} broker(s)")
    taken = list(ports) + [p + 1 for (_, roles), p in zip(shape, ports, strict=False) if "controller" in roles]
    if any(not 1024 <= p <= 65535 for p in taken):
        raise CliError(f"--ports must be in 1024..65535 (a combined voter also takes port + 1): {_csv(ports)}")
    if len(set(taken)) != len(taken):
        raise CliError(f"--ports must be distinct, and a combined voter's port + 1 (its CONTROLLER listener) "
                       f"must not be another node's port: {_csv(ports)}")
    free = iter(free_ports(2 * len(shape) - broker_count))  # controller-only nodes' ports, every admin port
    for i, (node_id, roles) in enumerate(shape):
        if "broker" in roles:
            cport = ports[i] + 1 if "controller" in roles else None
            cluster.nodes.append(Node(node_id, roles, ports[i], cport, admin_port=next(free)))
        else:
            cluster.nodes.append(Node(node_id, roles, None, next(free), admin_port=next(free)))
    return cluster


def _csv(values: list[int]) -> str:
    return ",".join(map(str, values))


def _existing_cluster_id(directory: Path, shape: list[tuple[int, list[str]]]) -> str | None:
    """The cluster id of a stopped cluster kept in `directory`, if its layout is `shape`."""
    from suoi.config import read_properties

    found: dict[int, dict[str, str]] = {}
    for cfg in directory.glob("node-*/server.properties"):
        try:
            node_id = int(cfg.parent.name.removeprefix("node-"))
            found[node_id] = read_properties(cfg)
        except (ValueError, OSError):
            continue
    if not found:
        return None
    old_shape = sorted((i, p.get("process.roles", "")) for i, p in found.items())
    new_shape = sorted((i, ",".join(roles)) for i, roles in shape)
    ids = {p.get("cluster.id") for p in found.values()}
    if old_shape != new_shape or len(ids) != 1 or None in ids:
        desc = ", ".join(f"{i}:{r}" for i, r in old_shape)
        raise CliError(f"{directory} holds the data of a different cluster (nodes {desc}); use another "
                       f"--dir or remove it with 'suoi cluster down --purge --dir {directory}'")
    return ids.pop()


def node_properties(cluster: Cluster, node: Node) -> dict[str, str]:
    """The server.properties of one node (Kafka's property names)."""
    listeners = []
    if node.port is not None:
        listeners.append(f"{cluster.client_listener}://{node.address}")
    if node.controller_port is not None:
        listeners.append(f"{CONTROLLER_LISTENER}://{node.controller_address}")
    props = {
        "process.roles": ",".join(node.roles),
        "node.id": str(node.id),
        "listeners": ",".join(listeners),
    }
    if node.port is not None:
        props["advertised.listeners"] = f"{cluster.client_listener}://{node.address}"
    props.update({
        "controller.listener.names": CONTROLLER_LISTENER,
        "controller.quorum.voters": cluster.quorum_voters,
        "cluster.id": cluster.cluster_id,
        "log.dirs": str(cluster.data_dir(node.id).resolve()),
    })
    # Kafka's defaults (3 replicas of the internal topics, 2 in sync for transactions) refuse
    # to create them on smaller clusters; a local cluster uses what it has.
    brokers = len(cluster.brokers)
    props.update({
        "offsets.topic.replication.factor": str(min(3, brokers)),
        "transaction.state.log.replication.factor": str(min(3, brokers)),
        "transaction.state.log.min.isr": str(min(2, brokers)),
    })
    if node.port is not None:  # brokers re-check cold segments and repair them from replicas
        props["log.scrubber.enable"] = "true"
    if node.admin_url is not None:
        props["admin.listeners"] = node.admin_url
    return props


def prometheus_config(cluster: Cluster) -> str:
    """DIR/prometheus.yml: a Prometheus scrape job with every node's admin endpoint."""
    targets = ", ".join(f'"{HOST}:{n.admin_port}"' for n in cluster.nodes if n.admin_port is not None)
    return (f"# Prometheus scrape config for suoi cluster {cluster.cluster_id}, written by 'suoi cluster up'.\n"
            f"# prometheus --config.file={cluster.dir / 'prometheus.yml'}\n"
            "global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: suoi\n    static_configs:\n"
            f"      - targets: [{targets}]\n")


def render_properties(props: dict[str, str], header: str) -> str:
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"{k}={v}" for k, v in props.items()]
    return "\n".join(lines) + "\n"


#: Picked ports start here (below: well-known services) and stay out of the ephemeral range.
PICK_PORT_LOW = 10000
#: Where the ephemeral range is unknown: Linux's default start .. the IANA (BSD, macOS) end.
DEFAULT_EPHEMERAL = (32768, 65535)


def ephemeral_port_range() -> tuple[int, int]:
    """The range the OS takes local ports of outgoing connections (and port 0 binds) from."""
    try:
        lo, hi = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return DEFAULT_EPHEMERAL
    return lo, hi


def free_ports(count: int, *, rng: random.Random | None = None) -> list[int]:
    """`count` distinct loopback ports that are free now (all bound at once, then released),
    chosen at random outside the ephemeral range: a node keeps its ports across restarts, and
    while it is down any outgoing connection on the host could take a port from that range as
    its local port, so the node could not bind it again. Falls back to ports the OS picks only
    if too few are free outside it."""
    lo, hi = ephemeral_port_range()
    pool = [*range(PICK_PORT_LOW, max(PICK_PORT_LOW, lo)), *range(max(PICK_PORT_LOW, hi + 1), 65536)]
    rng = rng or random.SystemRandom()
    socks: list[socket.socket] = []
    try:
        for port in rng.sample(pool, min(len(pool), 50 * count + 100)):
            if len(socks) == count:
                break
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((HOST, port))
            except OSError:
                s.close()
                continue
            socks.append(s)
        while len(socks) < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def port_in_use(port: int) -> bool:
    """Whether a node could not listen on `port`. Probed as the node binds (SO_REUSEADDR), so a
    port whose only sockets are TIME_WAIT leftovers of a stopped cluster counts as free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return True
    return False


# ============================================================================ state file


def state_path(directory: Path) -> Path:
    return directory / STATE_FILE


def to_state(cluster: Cluster) -> dict[str, Any]:
    nodes = []
    for n in cluster.nodes:
        d = asdict(n)
        d.update({
            "address": n.address, "controller_address": n.controller_address, "admin_url": n.admin_url,
            "config": str(cluster.config_path(n.id)), "log": str(cluster.log_path(n.id)),
            "data_dir": str(cluster.data_dir(n.id)), "command": cluster.command(n.id),
        })
        nodes.append(d)
    return {
        "version": STATE_VERSION,
        "cluster_id": cluster.cluster_id,
        "dir": str(cluster.dir),
        "bootstrap": cluster.bootstrap,
        "controller_quorum_voters": cluster.quorum_voters,
        "secure": cluster.secure,
        "nodes": nodes,
    }


def from_state(directory: Path, data: dict[str, Any]) -> Cluster:
    try:
        cluster = Cluster(directory, str(data["cluster_id"]), secure=bool(data.get("secure", False)))
        for d in data["nodes"]:
            cluster.nodes.append(Node(int(d["id"]), [str(r) for r in d["roles"]],
                                      None if d.get("port") is None else int(d["port"]),
                                      None if d.get("controller_port") is None else int(d["controller_port"]),
                                      None if d.get("pid") is None else int(d["pid"]),
                                      None if d.get("admin_port") is None else int(d["admin_port"])))
    except (KeyError, TypeError, ValueError) as exc:
        raise CliError(f"{state_path(directory)} is not a suoi cluster state file ({type(exc).__name__}: {exc})") from None
    return cluster


def load_cluster(directory: Path) -> Cluster:
    path = state_path(directory)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(f"no cluster in {directory} (no {STATE_FILE}); start one with "
                       f"'suoi cluster up --brokers N --dir {directory}'") from None
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CliError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CliError(f"{path} is not a suoi cluster state file")
    return from_state(directory, data)


def save_cluster(cluster: Cluster) -> None:
    """Write cluster.json atomically (temp file + rename; no fsync: the CLI's own record of the
    nodes it started, not broker state)."""
    path = state_path(cluster.dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps(to_state(cluster), indent=2) + "\n", fsync=False,
                     tmp=path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp"))


@contextlib.contextmanager
def state_lock(directory: Path) -> Iterator[None]:
    """Serialise commands that change cluster.json (up/down/start-node/stop-node) on one DIR."""
    import fcntl

    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".cluster.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
