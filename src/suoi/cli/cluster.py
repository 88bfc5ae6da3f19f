"""`suoi cluster`: start, inspect and stop a local KRaft-mode cluster on 127.0.0.1.

    suoi cluster up --brokers N [--controllers M] [--dir DIR] [--base-port P] [--wait S]
    suoi cluster status [--dir DIR] [--output json]
    suoi cluster down [--dir DIR] [--purge]
    suoi cluster start-node --node ID [--dir DIR]   (restart one node with its original command line)
    suoi cluster stop-node --node ID [--dir DIR] [--kill]

Layout (DIR defaults to ./suoi-cluster):

* Brokers have node ids 1..N. With `--controllers 0` (the default) the first min(N, 3) brokers
  are also the Raft voters (combined mode, `process.roles=broker,controller`, like Kafka's
  quickstart); with `--controllers M` there are M controller-only nodes with ids N+1..N+M and the
  brokers are brokers only.
* Node `ID` lives in DIR/node-ID/: `server.properties` (Kafka property names), `data/` (its
  log.dirs) and `broker.log` (stdout+stderr). Each node is its own detached process
  (`python -m suoi broker --config DIR/node-ID/server.properties`, a new session, so it
  outlives the `suoi cluster up` that started it).
* Ports: free loopback ports chosen by the OS, or with `--base-port P` node ID gets
  P + 2*(ID-1) for its PLAINTEXT (client) listener and P + 2*(ID-1) + 1 for its CONTROLLER
  listener (a broker-only node uses only the first, a controller-only node only the second).
* DIR/cluster.json is the state file: cluster id, bootstrap string, quorum voters and, per
  node, id, roles, pid, ports and paths. `down` and `stop-node` signal only the PIDs recorded
  there, and only while /proc shows that PID still running this node's command line (a PID the
  OS has reused for something else is left alone).
* The cluster id is reused when DIR already holds nodes of the same layout (after `down`
  without `--purge`), so their data stays valid; a different layout is refused.

`status` reads cluster.json, checks every PID, asks the brokers for Metadata (confluent-kafka
AdminClient) and the controllers for DescribeQuorum (suoi.client, kio's DescribeQuorum v2,
following NOT_LEADER_OR_FOLLOWER to the leader it names).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from suoi.cli.common import CliError, guarded, print_json, quiet_logger

HOST = "127.0.0.1"
DEFAULT_DIR = Path("suoi-cluster")
STATE_FILE = "cluster.json"
CLIENT_LISTENER = "PLAINTEXT"
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


@dataclass
class Cluster:
    dir: Path
    cluster_id: str
    nodes: list[Node] = field(default_factory=list)

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
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def layout(brokers: int, controllers: int) -> list[tuple[int, list[str]]]:
    """(node id, roles) for every node: brokers 1..N, controller-only nodes N+1..N+M, or with
    M = 0 the first min(N, 3) brokers as combined voters."""
    if brokers < 1:
        raise CliError("--brokers must be at least 1")
    if brokers > MAX_BROKERS:
        raise CliError(f"--brokers must be at most {MAX_BROKERS}")
    if controllers < 0:
        raise CliError("--controllers must be 0 (combined mode) or more")
    if controllers > MAX_CONTROLLERS:
        raise CliError(f"--controllers must be at most {MAX_CONTROLLERS}")
    out: list[tuple[int, list[str]]] = []
    if controllers == 0:
        voters = min(brokers, MAX_COMBINED_VOTERS)
        for i in range(1, brokers + 1):
            out.append((i, ["broker", "controller"] if i <= voters else ["broker"]))
    else:
        out += [(i, ["broker"]) for i in range(1, brokers + 1)]
        out += [(brokers + j, ["controller"]) for j in range(1, controllers + 1)]
    return out


def plan_cluster(directory: Path, brokers: int, controllers: int = 0, *, base_port: int | None = None,
                 cluster_id: str | None = None) -> Cluster:
    """The nodes, ports and ids of a new cluster (nothing is started or written)."""
    shape = layout(brokers, controllers)
    cluster = Cluster(directory, cluster_id or new_cluster_id())
    needed = sum(("broker" in roles) + ("controller" in roles) for _, roles in shape)
    if base_port is not None:
        top = base_port + 2 * max(i for i, _ in shape) - 1
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
        else:
            port = next(free) if "broker" in roles else None
            cport = next(free) if "controller" in roles else None
        cluster.nodes.append(Node(node_id, roles, port, cport))
    return cluster


def node_properties(cluster: Cluster, node: Node) -> dict[str, str]:
    """The server.properties of one node (Kafka's property names)."""
    listeners = []
    if node.port is not None:
        listeners.append(f"{CLIENT_LISTENER}://{node.address}")
    if node.controller_port is not None:
        listeners.append(f"{CONTROLLER_LISTENER}://{node.controller_address}")
    props = {
        "process.roles": ",".join(node.roles),
        "node.id": str(node.id),
        "listeners": ",".join(listeners),
    }
    if node.port is not None:
        props["advertised.listeners"] = f"{CLIENT_LISTENER}://{node.address}"
    props.update({
        "controller.listener.names": CONTROLLER_LISTENER,
        "controller.quorum.voters": cluster.quorum_voters,
        "cluster.id": cluster.cluster_id,
        "log.dirs": str(cluster.data_dir(node.id).resolve()),
    })
    return props


def render_properties(props: dict[str, str], header: str) -> str:
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"{k}={v}" for k, v in props.items()]
    return "\n".join(lines) + "\n"


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports the OS calls free (all bound at once, then released)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
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
            "address": n.address, "controller_address": n.controller_address,
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
        "nodes": nodes,
    }


def from_state(directory: Path, data: dict[str, Any]) -> Cluster:
    try:
        cluster = Cluster(directory, str(data["cluster_id"]))
        for d in data["nodes"]:
            cluster.nodes.append(Node(int(d["id"]), [str(r) for r in d["roles"]],
                                      None if d.get("port") is None else int(d["port"]),
                                      None if d.get("controller_port") is None else int(d["controller_port"]),
                                      None if d.get("pid") is None else int(d["pid"])))
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
    """Write cluster.json atomically (temp file + rename)."""
    path = state_path(cluster.dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(to_state(cluster), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


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


# ============================================================================ processes


def pid_running(pid: int | None, config: Path | None = None) -> bool:
    """True if `pid` is a live (not zombie) process -- and, when /proc is there and `config` is
    given, one whose command line names that config file (so a reused PID is never ours)."""
    if not pid or pid <= 0:
        return False
    proc = Path(f"/proc/{pid}")
    if Path("/proc/self").exists():
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        if stat[stat.rfind(")") + 2:].startswith(("Z", "X")):
            return False
        return config is None or os.fsencode(str(config)) in cmdline
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return config is None
    return True


def node_running(cluster: Cluster, node: Node) -> bool:
    return pid_running(node.pid, cluster.config_path(node.id))


def spawn(cluster: Cluster, node: Node) -> int:
    """Start a node as a detached process (own session, output to its broker.log)."""
    log_path = cluster.log_path(node.id)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(cluster.command(node.id), stdin=subprocess.DEVNULL, stdout=log_file,
                                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
                                cwd=str(cluster.node_dir(node.id)))
    node.pid = proc.pid
    _SPAWNED.add(proc.pid)
    # The Popen object is dropped on purpose: the node outlives this command. Silence the
    # "subprocess still running" ResourceWarning Python would print at exit.
    proc.returncode = 0
    return proc.pid


def stop_pids(cluster: Cluster, nodes: list[Node], *, sig: int = signal.SIGTERM,
              timeout: float = STOP_TIMEOUT_S) -> dict[int, str]:
    """Signal the running ones of `nodes`, wait up to `timeout`, SIGKILL what is left.
    Returns node id -> "stopped" | "killed" | "not running"."""
    out: dict[int, str] = {}
    live = []
    for n in nodes:
        if node_running(cluster, n):
            with contextlib.suppress(ProcessLookupError):
                os.kill(n.pid, sig)  # type: ignore[arg-type]
            live.append(n)
            out[n.id] = "killed" if sig == signal.SIGKILL else "stopped"
        else:
            out[n.id] = "not running"
    deadline = time.monotonic() + timeout
    while live and time.monotonic() < deadline:
        _reap(live)
        live = [n for n in live if node_running(cluster, n)]
        if live:
            time.sleep(0.05)
    for n in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(n.pid, signal.SIGKILL)  # type: ignore[arg-type]
        out[n.id] = "killed"
    deadline = time.monotonic() + 10.0
    while live and time.monotonic() < deadline:
        _reap(live)
        live = [n for n in live if node_running(cluster, n)]
        if live:
            time.sleep(0.05)
    return out


#: PIDs this process started (only those are its children to reap).
_SPAWNED: set[int] = set()


def _reap(nodes: list[Node]) -> None:
    """Collect those of `nodes` that this process started and that exited (no zombies)."""
    for n in nodes:
        if n.pid in _SPAWNED:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(n.pid, os.WNOHANG)


def last_log_line(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 8192))
            lines = [ln for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


# ============================================================================ talking to the cluster


def metadata(bootstrap: str, timeout: float) -> Any:
    """confluent-kafka Metadata for all topics, or raises."""
    from confluent_kafka.admin import AdminClient

    conf: dict[str, Any] = {"bootstrap.servers": bootstrap, "logger": quiet_logger(),
                            "socket.connection.setup.timeout.ms": max(1000, int(timeout * 1000))}
    admin = AdminClient(conf)
    return admin.list_topics(timeout=timeout)


def describe_quorum(address: str, timeout: float) -> Any:
    """DescribeQuorum v2 for __cluster_metadata-0 sent to one controller listener."""
    from kio.schema.describe_quorum.v2.request import DescribeQuorumRequest, PartitionData, TopicData
    from kio.schema.types import TopicName
    from kio.static.primitive import i32

    from suoi.client import request_sync

    host, _, port = address.rpartition(":")
    request = DescribeQuorumRequest(topics=(TopicData(topic_name=TopicName("__cluster_metadata"),
                                                      partitions=(PartitionData(partition_index=i32(0)),)),))
    return request_sync(host, int(port), request, client_id="suoi-cluster", timeout=timeout)


def quorum_status(cluster: Cluster, timeout: float = STATUS_TIMEOUT_S) -> dict[str, Any]:
    """Ask the controllers (running ones first) until the leader answers; follows a named leader."""
    by_id = {n.id: n for n in cluster.controllers}
    order = sorted(by_id.values(), key=lambda n: not node_running(cluster, n))
    queue = [n.id for n in order]
    tried: set[int] = set()
    errors: list[str] = []
    while queue:
        node_id = queue.pop(0)
        if node_id in tried:
            continue
        tried.add(node_id)
        node = by_id[node_id]
        try:
            resp = describe_quorum(str(node.controller_address), timeout)
        except OSError as exc:  # refused, dropped, timed out (asyncio.TimeoutError is TimeoutError)
            errors.append(f"node {node_id}: {exc.strerror or str(exc) or type(exc).__name__}")
            continue
        except Exception as exc:  # a malformed answer: report it, try the next controller
            errors.append(f"node {node_id}: {type(exc).__name__}: {exc}")
            continue
        part = next((p for t in resp.topics for p in t.partitions), None)
        top = resp.error_code
        if part is None:
            errors.append(f"node {node_id}: {top.name if top.value else 'no partition in the answer'}")
            continue
        if part.error_code.value != 0:
            errors.append(f"node {node_id}: {part.error_code.name}"
                          + (f" (leader {part.leader_id}, epoch {part.leader_epoch})" if part.leader_id >= 0 else ""))
            if int(part.leader_id) in by_id and int(part.leader_id) not in tried:
                queue.insert(0, int(part.leader_id))
            continue
        return _quorum_dict(resp, part, node_id)
    return {"leader_id": None, "leader_epoch": None, "high_watermark": None, "voters": [], "observers": [],
            "error": "; ".join(errors) or "no controller in the cluster"}


def _quorum_dict(resp: Any, part: Any, asked: int) -> dict[str, Any]:
    leader = int(part.leader_id)
    now_ms = int(time.time() * 1000)
    leader_leo = next((int(r.log_end_offset) for r in part.current_voters if int(r.replica_id) == leader), None)

    def replica(r: Any, kind: str) -> dict[str, Any]:
        rid = int(r.replica_id)
        leo = int(r.log_end_offset)
        last_fetch = int(r.last_fetch_timestamp)
        last_caught_up = int(r.last_caught_up_timestamp)
        return {
            "id": rid,
            "status": "leader" if rid == leader else kind,
            "log_end_offset": leo,
            "lag": (max(0, leader_leo - leo) if leader_leo is not None and leo >= 0 else None),
            "last_fetch_ms_ago": (max(0, now_ms - last_fetch) if last_fetch >= 0 and rid != leader else None),
            "last_caught_up_ms_ago": (max(0, now_ms - last_caught_up) if last_caught_up >= 0 and rid != leader else None),
        }

    voters = [replica(r, "follower") for r in part.current_voters]
    followers = [v for v in voters if v["id"] != leader and v["lag"] is not None]
    return {
        "leader_id": leader,
        "leader_epoch": int(part.leader_epoch),
        "high_watermark": int(part.high_watermark),
        "max_follower_lag": max((v["lag"] for v in followers), default=0),
        "voters": voters,
        "observers": [replica(r, "observer") for r in part.observers],
        "answered_by": asked,
        "error": None,
    }


def broker_view(address: str, timeout: float) -> set[int]:
    """The broker ids one broker's own Metadata answer lists (asked of that broker only)."""
    from kio.schema.metadata.v12.request import MetadataRequest

    from suoi.client import request_sync

    host, _, port = address.rpartition(":")
    request = MetadataRequest(topics=(), allow_auto_topic_creation=False, include_topic_authorized_operations=False)
    response = request_sync(host, int(port), request, client_id="suoi-cluster", timeout=timeout)
    return {int(b.node_id) for b in response.brokers}


def wait_ready(cluster: Cluster, nodes: list[Node], timeout: float) -> None:
    """Until every running broker's Metadata lists every broker in `nodes` (each broker asked
    directly: their metadata images converge independently) and every controller-only node in
    `nodes` accepts TCP on its controller port; fails fast if one of `nodes` exits."""
    deadline = time.monotonic() + timeout
    want = {n.id for n in nodes if n.is_broker}
    want_ports = [n for n in nodes if not n.is_broker]
    views: dict[int, set[int] | str] = {}
    while True:
        _reap(nodes)
        for n in nodes:
            if not node_running(cluster, n):
                line = last_log_line(cluster.log_path(n.id))
                raise CliError(f"node {n.id} exited while starting (log {cluster.log_path(n.id)})"
                               + (f": {line}" if line else ""))
        pending_ports = [n for n in want_ports if not _accepts(str(n.controller_address))]
        askers = [n for n in cluster.brokers if n.address and node_running(cluster, n)] if want else []
        views = {}
        for n in askers:
            try:
                views[n.id] = broker_view(str(n.address), 2.0)
            except Exception as exc:  # not listening yet, timed out, ...
                views[n.id] = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        lagging = {i: v for i, v in views.items() if isinstance(v, str) or not want <= v}
        if not lagging and not pending_ports:
            return
        if time.monotonic() >= deadline:
            what = [f"broker {i} " + (f"lists {sorted(v) or 'none'}" if isinstance(v, set) else f"does not answer ({v})")
                    for i, v in sorted(lagging.items())]
            if lagging:
                what[0] = f"waiting for Metadata to list {sorted(want)}: " + what[0]
            if pending_ports:
                what.append(f"controller(s) {[n.id for n in pending_ports]} not listening")
            raise CliError(f"not ready within {timeout:g}s: {'; '.join(what)} (logs in "
                           f"{cluster.dir}/node-*/broker.log)")
        time.sleep(0.1)


def _accepts(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


def _short(exc: BaseException) -> str:
    from suoi.cli.common import describe_error

    return describe_error(exc)


# ============================================================================ commands


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "cluster", help="start, inspect and stop a local multi-broker KRaft cluster",
        description="Run a cluster of suoi nodes on this machine (127.0.0.1): each node a separate "
        "process with its own data dir and ports, coordinated by a Raft metadata quorum.",
        epilog="example: suoi cluster up --brokers 3 && suoi cluster status && suoi cluster down",
    )
    actions = p.add_subparsers(dest="cluster_command", metavar="ACTION")

    def dir_arg(q: argparse.ArgumentParser) -> None:
        q.add_argument("--dir", type=Path, default=DEFAULT_DIR, metavar="DIR",
                       help=f"the cluster's directory: cluster.json, node-N/ (default ./{DEFAULT_DIR})")

    def output_arg(q: argparse.ArgumentParser) -> None:
        q.add_argument("--output", choices=("text", "json"), default="text", help="text (default) or json")

    up = actions.add_parser(
        "up", help="start a cluster and print its bootstrap string",
        description="Start N brokers (ids 1..N) and the metadata quorum: with --controllers 0 the first "
        "min(N,3) brokers are also voters (combined mode); with --controllers M there are M "
        "controller-only nodes (ids N+1..N+M). Waits until Metadata lists every broker, then prints "
        "the bootstrap string.")
    up.add_argument("--brokers", type=int, required=True, metavar="N", help="REQUIRED: number of brokers")
    up.add_argument("--controllers", type=int, default=0, metavar="M",
                    help="controller-only nodes (default 0: brokers 1..min(N,3) are also controllers)")
    dir_arg(up)
    up.add_argument("--base-port", type=int, metavar="P",
                    help="node N listens on P+2(N-1) (PLAINTEXT) and P+2(N-1)+1 (CONTROLLER); "
                    "default: free ports chosen by the OS")
    up.add_argument("--wait", type=float, default=DEFAULT_WAIT_S, metavar="SECONDS",
                    help=f"how long to wait for the cluster to answer (default {DEFAULT_WAIT_S:g}; 0: do not wait)")
    up.add_argument("--keep-on-failure", action="store_true",
                    help="leave the nodes running when the cluster does not come up (to debug it)")
    output_arg(up)
    up.set_defaults(func=guarded("cluster")(run_up))

    status = actions.add_parser(
        "status", help="brokers, quorum and partition leaders",
        description="Every node (alive by PID and as listed by Metadata), the Raft quorum (leader, "
        "epoch, followers' lag, via DescribeQuorum) and the partitions each broker leads or follows.")
    dir_arg(status)
    output_arg(status)
    status.set_defaults(func=guarded("cluster")(run_status))

    down = actions.add_parser(
        "down", help="stop every node of the cluster",
        description="SIGTERM every node recorded in cluster.json (brokers first, then controller-only "
        "nodes), SIGKILL what is still running after --timeout, and remove cluster.json. Data is kept "
        "unless --purge.")
    dir_arg(down)
    down.add_argument("--purge", action="store_true", help="also delete the nodes' directories (data and logs)")
    down.add_argument("--timeout", type=float, default=STOP_TIMEOUT_S, metavar="SECONDS",
                      help=f"grace period before SIGKILL (default {STOP_TIMEOUT_S:g})")
    output_arg(down)
    down.set_defaults(func=guarded("cluster")(run_down))

    start = actions.add_parser(
        "start-node", help="start (restart) one node of the cluster",
        description="Start a node that is not running, with the same command line, config and data as "
        "before, and wait until it is back (a broker: listed by Metadata).")
    dir_arg(start)
    start.add_argument("--node", type=int, required=True, metavar="ID", help="REQUIRED: the node id")
    start.add_argument("--wait", type=float, default=DEFAULT_WAIT_S, metavar="SECONDS",
                       help=f"how long to wait for it (default {DEFAULT_WAIT_S:g}; 0: do not wait)")
    output_arg(start)
    start.set_defaults(func=guarded("cluster")(run_start_node))

    stop = actions.add_parser(
        "stop-node", help="stop one node of the cluster",
        description="SIGTERM one node (SIGKILL after --timeout), or SIGKILL at once with --kill.")
    dir_arg(stop)
    stop.add_argument("--node", type=int, required=True, metavar="ID", help="REQUIRED: the node id")
    stop.add_argument("--kill", action="store_true", help="SIGKILL (a crash) instead of a clean stop")
    stop.add_argument("--timeout", type=float, default=STOP_TIMEOUT_S, metavar="SECONDS",
                      help=f"grace period before SIGKILL (default {STOP_TIMEOUT_S:g})")
    output_arg(stop)
    stop.set_defaults(func=guarded("cluster")(run_stop_node))

    def no_action(args: argparse.Namespace) -> int:
        p.print_help(sys.stderr)
        return 1

    p.set_defaults(func=no_action)


def run_up(args: argparse.Namespace) -> int:
    if args.wait < 0:
        raise CliError("--wait must be 0 or more seconds")
    directory: Path = args.dir.resolve()
    with state_lock(directory):
        if state_path(directory).exists():
            old = load_cluster(directory)
            running = [n.id for n in old.nodes if node_running(old, n)]
            if running:
                raise CliError(f"a cluster is already running in {directory} (nodes {running}); "
                               f"stop it with 'suoi cluster down --dir {directory}'")
        cluster = plan_cluster(directory, args.brokers, args.controllers, base_port=args.base_port,
                               cluster_id=_existing_cluster_id(directory, layout(args.brokers, args.controllers)))
        if args.base_port is not None:
            busy = [p for n in cluster.nodes for p in (n.port, n.controller_port) if p is not None and port_in_use(p)]
            if busy:
                raise CliError(f"port(s) {', '.join(map(str, busy))} on {HOST} already in use "
                               f"(--base-port {args.base_port})")
        for n in cluster.nodes:
            cluster.data_dir(n.id).mkdir(parents=True, exist_ok=True)
            header = (f"suoi cluster {cluster.cluster_id}: node {n.id} ({','.join(n.roles)}), "
                      f"written by 'suoi cluster up'")
            cluster.config_path(n.id).write_text(render_properties(node_properties(cluster, n), header),
                                                 encoding="utf-8")
        # Voters first, so brokers find a quorum forming; cluster.json after every start so that
        # `down` can stop whatever was started even if this command dies half-way.
        for n in sorted(cluster.nodes, key=lambda n: not n.is_controller):
            spawn(cluster, n)
            save_cluster(cluster)
    if args.wait > 0:
        try:
            wait_ready(cluster, cluster.nodes, args.wait)
        except (CliError, KeyboardInterrupt):
            if not args.keep_on_failure:
                with state_lock(directory):
                    stop_pids(cluster, cluster.nodes, timeout=5.0)
                    state_path(directory).unlink(missing_ok=True)
            raise
    if args.output == "json":
        print_json(to_state(cluster))
    else:
        print(cluster.bootstrap)
    return 0


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


def run_status(args: argparse.Namespace) -> int:
    cluster = load_cluster(args.dir.resolve())
    report = cluster_status(cluster)
    if args.output == "json":
        print_json(report)
    else:
        print_status(report)
    return 0


def cluster_status(cluster: Cluster) -> dict[str, Any]:
    alive = {n.id: node_running(cluster, n) for n in cluster.nodes}
    live_addresses = ",".join(n.address for n in cluster.brokers if n.address and alive[n.id])
    md = None
    md_error = None
    if live_addresses:
        try:
            md = metadata(live_addresses, STATUS_TIMEOUT_S)
        except Exception as exc:
            md_error = _short(exc)
    else:
        md_error = "no broker process is running"
    listed = {int(b): f"{m.host}:{m.port}" for b, m in md.brokers.items()} if md is not None else {}
    leads: dict[int, dict[str, list[int]]] = {}
    follows: dict[int, dict[str, list[int]]] = {}
    offline: dict[str, list[int]] = {}
    if md is not None:
        for name, t in sorted(md.topics.items()):
            for pid, p in sorted(t.partitions.items()):
                if p.leader >= 0:
                    leads.setdefault(int(p.leader), {}).setdefault(name, []).append(int(pid))
                else:
                    offline.setdefault(name, []).append(int(pid))
                for r in p.replicas:
                    if r != p.leader:
                        follows.setdefault(int(r), {}).setdefault(name, []).append(int(pid))
    quorum = quorum_status(cluster) if cluster.controllers else None
    nodes = []
    for n in cluster.nodes:
        nodes.append({
            "id": n.id, "roles": n.roles, "address": n.address, "controller_address": n.controller_address,
            "pid": n.pid, "alive": alive[n.id],
            "in_metadata": (n.id in listed) if n.is_broker and md is not None else None,
            "leader_of": leads.get(n.id, {}), "follower_of": follows.get(n.id, {}),
            "log": str(cluster.log_path(n.id)),
        })
    return {
        "cluster_id": cluster.cluster_id, "dir": str(cluster.dir), "bootstrap": cluster.bootstrap,
        "controller": md.controller_id if md is not None and md.controller_id >= 0 else None,
        "metadata_error": md_error, "nodes": nodes, "quorum": quorum, "offline_partitions": offline,
    }


def _partitions_text(by_topic: dict[str, list[int]]) -> str:
    return " ".join(f"{t}[{','.join(map(str, ps))}]" for t, ps in by_topic.items()) or "-"


def print_status(r: dict[str, Any]) -> None:
    print(f"Cluster {r['cluster_id']} in {r['dir']}")
    print(f"Bootstrap: {r['bootstrap']}")
    if r["metadata_error"]:
        print(f"Metadata: unavailable ({r['metadata_error']})")
    print()
    rows: list[tuple[str, ...]] = [("ID", "ROLES", "ADDRESS", "CONTROLLER", "PID", "PROCESS", "METADATA")]
    for n in r["nodes"]:
        md = {True: "listed", False: "missing", None: "-"}[n["in_metadata"]]
        rows.append((str(n["id"]), ",".join(n["roles"]), n["address"] or "-", n["controller_address"] or "-",
                     str(n["pid"] or "-"), "alive" if n["alive"] else "dead", md))
    _table(rows)
    q = r["quorum"]
    print()
    if q is None:
        print("Quorum: none (no controller in cluster.json)")
    elif q["error"]:
        print(f"Quorum: unknown ({q['error']})")
    else:
        print(f"Quorum: leader {q['leader_id']}, epoch {q['leader_epoch']}, high watermark "
              f"{q['high_watermark']}, max follower lag {q['max_follower_lag']}")
        rows = [("NODE", "STATUS", "LOG END", "LAG", "LAST FETCH", "LAST CAUGHT UP")]
        for v in q["voters"] + q["observers"]:
            rows.append((str(v["id"]), v["status"], str(v["log_end_offset"]),
                         "-" if v["lag"] is None else str(v["lag"]),
                         "-" if v["last_fetch_ms_ago"] is None else f"{v['last_fetch_ms_ago']} ms ago",
                         "-" if v["last_caught_up_ms_ago"] is None else f"{v['last_caught_up_ms_ago']} ms ago"))
        _table(rows)
    print()
    rows = [("BROKER", "LEADER OF", "FOLLOWER OF")]
    for n in r["nodes"]:
        if "broker" in n["roles"]:
            rows.append((str(n["id"]), _partitions_text(n["leader_of"]), _partitions_text(n["follower_of"])))
    _table(rows)
    if r["offline_partitions"]:
        print(f"Offline (no leader): {_partitions_text(r['offline_partitions'])}")


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def run_down(args: argparse.Namespace) -> int:
    directory: Path = args.dir.resolve()
    with state_lock(directory):
        if not state_path(directory).exists() and args.purge:
            removed = _purge(directory, None)
            _say(args, {"stopped": {}, "purged": removed},
                 f"No cluster running in {directory}; removed {len(removed)} node director{'y' if len(removed) == 1 else 'ies'}.")
            return 0
        cluster = load_cluster(directory)
        # Brokers first (a controlled shutdown needs the controllers), then controller-only nodes.
        result = stop_pids(cluster, [n for n in cluster.nodes if n.is_broker], timeout=args.timeout)
        result.update(stop_pids(cluster, [n for n in cluster.nodes if not n.is_broker], timeout=args.timeout))
        still = [n.id for n in cluster.nodes if node_running(cluster, n)]
        if still:
            raise CliError(f"node(s) {still} still running after SIGKILL; {state_path(directory)} kept")
        state_path(directory).unlink(missing_ok=True)
        removed = _purge(directory, cluster) if args.purge else []
    stopped = sum(1 for v in result.values() if v != "not running")
    text = f"Stopped {stopped} node{'s' if stopped != 1 else ''} of cluster {cluster.cluster_id}"
    killed = [i for i, v in result.items() if v == "killed"]
    if killed:
        text += f" (SIGKILL: {', '.join(map(str, killed))})"
    text += "; data removed." if args.purge else f"; data kept in {directory}."
    _say(args, {"cluster_id": cluster.cluster_id, "stopped": {str(k): v for k, v in result.items()},
                "purged": removed}, text)
    return 0


def _purge(directory: Path, cluster: Cluster | None) -> list[str]:
    dirs = ([cluster.node_dir(n.id) for n in cluster.nodes] if cluster is not None
            else sorted(p.parent for p in directory.glob("node-*/server.properties")))
    removed = []
    for d in dirs:
        if d.is_dir():
            shutil.rmtree(d)
            removed.append(str(d))
    (directory / ".cluster.lock").unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        directory.rmdir()  # only if nothing else is in it
    return removed


def run_start_node(args: argparse.Namespace) -> int:
    if args.wait < 0:
        raise CliError("--wait must be 0 or more seconds")
    with state_lock(args.dir.resolve()):
        cluster = load_cluster(args.dir.resolve())
        node = cluster.node(args.node)
        if node_running(cluster, node):
            raise CliError(f"node {node.id} is already running (pid {node.pid})")
        spawn(cluster, node)
        save_cluster(cluster)
    if args.wait > 0:
        wait_ready(cluster, [node], args.wait)
    _say(args, {"node": node.id, "pid": node.pid, "address": node.address,
                "controller_address": node.controller_address},
         f"Started node {node.id} (pid {node.pid}).")
    return 0


def run_stop_node(args: argparse.Namespace) -> int:
    with state_lock(args.dir.resolve()):
        cluster = load_cluster(args.dir.resolve())
        node = cluster.node(args.node)
        if not node_running(cluster, node):
            raise CliError(f"node {node.id} is not running")
        outcome = stop_pids(cluster, [node], sig=signal.SIGKILL if args.kill else signal.SIGTERM,
                            timeout=args.timeout)[node.id]
    _say(args, {"node": node.id, "pid": node.pid, "outcome": outcome},
         f"{'Killed' if outcome == 'killed' else 'Stopped'} node {node.id} (pid {node.pid}).")
    return 0


def _say(args: argparse.Namespace, obj: dict[str, Any], text: str) -> None:
    if getattr(args, "output", "text") == "json":
        print_json(obj)
    else:
        print(text)
