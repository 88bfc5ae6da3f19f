"""`suoi cluster`: the nodes' processes -- PID checks against /proc, starting a node detached,
stopping with SIGTERM then SIGKILL, reaping our own children -- and waiting until started
nodes are ready (brokers listed by every broker's Metadata, controllers listening)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from suoi.cli.cluster_layout import STOP_TIMEOUT_S, Cluster, Node
from suoi.cli.common import CliError

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


# ============================================================================ readiness


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
