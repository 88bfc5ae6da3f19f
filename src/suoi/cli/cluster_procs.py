"""`suoi cluster`: the nodes' processes -- PID checks against /proc, starting a node detached,
stopping with SIGTERM then SIGKILL, reaping our own children -- and waiting until started
nodes are ready (brokers listed by every broker's Metadata, controllers listening).

Whether a node this process started is still running is decided by waitpid alone (its exit
status is kept and reported). /proc/<pid>/cmdline is only used for PIDs read from cluster.json
(started by an earlier command): right after fork+exec the new program's command line is
briefly empty (the kernel sets it up after closing the close-on-exec fds that tell Popen the
exec happened), so an empty command line is re-read before a PID is called someone else's."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from suoi.cli.cluster_layout import STOP_TIMEOUT_S, Cluster, Node
from suoi.cli.cluster_secure import client_security
from suoi.cli.common import CliError

# ============================================================================ processes


#: How long an empty /proc/<pid>/cmdline is re-read (a process in the middle of exec).
EXEC_GRACE_S = 0.5


def pid_running(pid: int | None, config: Path | None = None) -> bool:
    """True if `pid` is a live (not zombie) process -- and, when /proc is there and `config` is
    given, one whose command line names that config file (so a reused PID is never ours)."""
    if not pid or pid <= 0:
        return False
    if not Path("/proc/self").exists():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return config is None
        return True
    deadline = time.monotonic() + EXEC_GRACE_S
    while True:
        state, cmdline = _proc_state(pid)
        if state is None or state in ("Z", "X"):
            return False
        if config is None or os.fsencode(str(config)) in cmdline:
            return True
        # An empty command line is a process between exec and its new argv (or a kernel
        # thread): look again for a moment rather than call a starting node gone.
        if cmdline != [b""] or time.monotonic() >= deadline:
            return False
        time.sleep(0.002)


def _proc_state(pid: int) -> tuple[str | None, list[bytes]]:
    """(state letter from /proc/<pid>/stat, argv from /proc/<pid>/cmdline); (None, []) if gone."""
    proc = Path(f"/proc/{pid}")
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return None, []
    return stat[stat.rfind(")") + 2:][:1], cmdline


def node_running(cluster: Cluster, node: Node) -> bool:
    """A node this process started: running until waitpid reports its exit. Any other node
    (PID from cluster.json): a live process whose command line names the node's config."""
    if node.pid is not None and node.pid in _CHILDREN:
        _reap([node])
        return _CHILDREN[node.pid] is None
    return pid_running(node.pid, cluster.config_path(node.id))


def exit_description(node: Node) -> str | None:
    """How a node this process started ended ("exit code 1", "killed by signal 9 (SIGKILL)"),
    None if it is running or was not started here."""
    status = _CHILDREN.get(node.pid) if node.pid is not None else None
    if status is None:
        return None
    if status == _STATUS_UNKNOWN:
        return "exit status unknown (reaped elsewhere)"
    code = os.waitstatus_to_exitcode(status)
    if code >= 0:
        return f"exit code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = "?"
    return f"killed by signal {-code} ({name})"


def spawn(cluster: Cluster, node: Node) -> int:
    """Start a node as a detached process (own session, output to its broker.log)."""
    log_path = cluster.log_path(node.id)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log_file:
        log_start = log_file.seek(0, os.SEEK_END)
        proc = subprocess.Popen(cluster.command(node.id), stdin=subprocess.DEVNULL, stdout=log_file,
                                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
                                cwd=str(cluster.node_dir(node.id)))
    node.pid = proc.pid
    _CHILDREN[proc.pid] = None
    _LOG_START[proc.pid] = log_start
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


#: Children this process started: PID -> wait status once reaped, None while running.
_CHILDREN: dict[int, int | None] = {}
#: Where each child's output starts in its broker.log (the file is appended to across restarts).
_LOG_START: dict[int, int] = {}
#: Status of a child that waitpid no longer knows (reaped by someone else, SIGCHLD ignored).
_STATUS_UNKNOWN = -1


def _reap(nodes: list[Node]) -> None:
    """Collect those of `nodes` that this process started and that exited (no zombies),
    keeping their wait status."""
    for n in nodes:
        if n.pid is None or n.pid not in _CHILDREN or _CHILDREN[n.pid] is not None:
            continue
        try:
            pid, status = os.waitpid(n.pid, os.WNOHANG)
        except ChildProcessError:
            _CHILDREN[n.pid] = _STATUS_UNKNOWN
            continue
        if pid == n.pid:
            _CHILDREN[n.pid] = status


def last_log_line(path: Path, start: int = 0) -> str:
    """The last non-blank line of `path` written at or after byte `start`."""
    try:
        with open(path, "rb") as f:
            f.seek(max(start, f.seek(0, os.SEEK_END) - 8192))
            lines = [ln for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


def exited_error(cluster: Cluster, node: Node) -> CliError:
    """'node N exited while starting (<how>; log ...): <its last line>' -- only output of this
    run of the node counts (an older run's last line would be misleading)."""
    path = cluster.log_path(node.id)
    how = exit_description(node)
    line = last_log_line(path, _LOG_START.get(node.pid or 0, 0))
    return CliError(f"node {node.id} (pid {node.pid}) exited while starting ({how + '; ' if how else ''}log {path})"
                    + (f": {line}" if line else ": no output"))


# ============================================================================ readiness


def broker_view(address: str, timeout: float, security: Any = None) -> set[int]:
    """The broker ids one broker's own Metadata answer lists (asked of that broker only)."""
    from kio.schema.metadata.v12.request import MetadataRequest

    from suoi.client import request_sync

    host, _, port = address.rpartition(":")
    request = MetadataRequest(topics=(), allow_auto_topic_creation=False, include_topic_authorized_operations=False)
    response = request_sync(host, int(port), request, client_id="suoi-cluster", timeout=timeout,
                            **({"security": security} if security is not None else {}))
    return {int(b.node_id) for b in response.brokers}


def wait_ready(cluster: Cluster, nodes: list[Node], timeout: float) -> None:
    """Until every running broker's Metadata lists every broker in `nodes` (each broker asked
    directly: their metadata images converge independently) and every controller-only node in
    `nodes` accepts TCP on its controller port; fails fast if one of `nodes` exits."""
    deadline = time.monotonic() + timeout
    want = {n.id for n in nodes if n.is_broker}
    want_ports = [n for n in nodes if not n.is_broker]
    views: dict[int, set[int] | str] = {}
    security = client_security(cluster)  # --secure: as the admin
    while True:
        _reap(nodes)
        for n in nodes:
            if not node_running(cluster, n):
                raise exited_error(cluster, n)
        pending_ports = [n for n in want_ports if not _accepts(str(n.controller_address))]
        askers = [n for n in cluster.brokers if n.address and node_running(cluster, n)] if want else []
        views = {}
        for n in askers:
            try:
                views[n.id] = broker_view(str(n.address), 2.0, security)
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
