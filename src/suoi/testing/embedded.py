"""EmbeddedBroker: a real broker process on loopback, started and stopped by tests."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO

from suoi.cli.cluster_layout import HOST as LOOPBACK
from suoi.cli.cluster_layout import free_ports


def free_port(host: str = LOOPBACK) -> int:
    """A port that was free a moment ago. On 127.0.0.1 one picked at random outside the
    ephemeral range (`free_ports`), where neither a port-0 bind (another test worker's free
    port) nor an outgoing connection's local port can take it before the node binds it, or
    while a node that keeps it is down for a restart; elsewhere the OS picks it."""
    if host == LOOPBACK:
        return free_ports(1)[0]
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class PortTakenError(RuntimeError):
    """The broker exited at start because another process had bound its port."""


def port_taken(logs: str) -> str | None:
    """The line of a broker's output saying it could not bind a port already in use, if any."""
    return next((line for line in logs.splitlines() if "address already in use" in line.lower()), None)


#: Starts of a broker whose port `EmbeddedBroker` picked itself, should another process take it
#: between the pick and the bind (a bounded retry: each start picks a new random port).
PICK_ATTEMPTS = 3

#: What a broker logs once every port it was given is bound (suoi.broker: "suoi broker node.id=...
#: cluster.id=... started").
STARTED = re.compile(r"suoi broker node\.id=\d+ cluster\.id=\S+ started")


class EmbeddedBroker:
    """Run `python -m suoi broker` with its own data directory and a free port.

    `overrides` are broker properties (Kafka names), e.g. {"log.segment.bytes": "1024"}.
    Without `process.roles` among them the node is a single KRaft node that is its own quorum;
    it serves clients once it has elected itself and registered (about 0.1 s).
    """

    def __init__(self, data_dir: str | os.PathLike[str] | None = None, *,
                 overrides: dict[str, str] | None = None, host: str = "127.0.0.1",
                 port: int | None = None, start_timeout: float = 30.0,
                 log_dirs: list[str | os.PathLike[str]] | None = None,
                 preexec_fn: Callable[[], None] | None = None) -> None:
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="suoi-test-"))
        self.host = host
        #: Whether the port is ours to pick again should another process bind it first (only
        #: before the first start: a restarted node keeps its port, as its clients know it).
        self._may_repick = port is None and "listeners" not in (overrides or {})
        self.port = port or free_port(host)
        self.overrides = dict(overrides or {})
        #: Where partition data lives; by default `data_dir/data`.
        self.log_dirs = [Path(p) for p in log_dirs] if log_dirs else [self.data_dir / "data"]
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir / "broker.log"
        #: Run in the child before the broker starts (e.g. `resource.setrlimit` for a low `ulimit -n`).
        self.preexec_fn = preexec_fn
        self._log_file: IO[bytes] | None = None
        self._log_start = 0  # where this launch's output starts in the (appended) log file

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "suoi", "broker", "--log-dirs", ",".join(str(p) for p in self.log_dirs)]
        if "listeners" not in self.overrides:  # e.g. a KRaft node that also needs a CONTROLLER listener
            cmd += ["--listeners", f"PLAINTEXT://{self.host}:{self.port}"]
        for k, v in self.overrides.items():
            cmd += ["--override", f"{k}={v}"]
        return cmd

    def start(self) -> EmbeddedBroker:
        """Start the process and wait until it serves clients (`launch` + `wait_ready`); at the
        first start of a node on a port picked here, again on another port if that one was taken."""
        for attempt in range(1, PICK_ATTEMPTS + 1):
            self.launch()
            try:
                self.wait_ready()
            except PortTakenError:
                if not self._may_repick or attempt == PICK_ATTEMPTS:
                    raise
                self.stop()
                self.port = free_port(self.host)
                continue
            self._may_repick = False
            return self
        raise AssertionError("unreachable")

    def launch(self) -> EmbeddedBroker:
        """Start the process without waiting. A KRaft broker serves clients only once the
        controller has unfenced it, so the nodes of a cluster are launched together and waited
        for afterwards (one node alone has no quorum to register with)."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("broker already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in _reap
        self._log_start = self._log_file.tell()
        self.proc = subprocess.Popen(self.command(), stdout=self._log_file, stderr=subprocess.STDOUT,
                                     preexec_fn=self.preexec_fn)
        return self

    def wait_ready(self) -> None:
        """Until the client port accepts connections and this process is the one that bound it
        (its log says so: a port-in-use start must not pass for ready because another process,
        say another test worker's node, listens there), within start_timeout."""
        self._wait_ready()

    def wait_started(self) -> None:
        """Until this launch's process has bound every port it was given (its log says "started"),
        without waiting to serve clients: a KRaft node alone, with no quorum to register with,
        gets this far. Raises PortTakenError if a port was in use, within start_timeout."""
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            self._check_running()
            if STARTED.search(self._launch_logs()):
                return
            time.sleep(0.02)
        raise TimeoutError(f"broker did not start within {self.start_timeout}s:\n{self.logs()}")

    def _check_running(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            error = PortTakenError if port_taken(self._launch_logs()) else RuntimeError
            raise error(f"broker exited with {self.proc.returncode}:\n{self.logs()}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        bound = f":{self.port} ("  # "listening on PLAINTEXT://127.0.0.1:<port> (PLAINTEXT)", or "bound ..."
        while time.monotonic() < deadline:
            self._check_running()
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    if bound in self._launch_logs():
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise TimeoutError(f"broker did not listen on {self.bootstrap} within {self.start_timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def _launch_logs(self) -> str:
        """What the process of the latest launch wrote."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_start)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait: a clean shutdown that flushes and closes every log."""
        return self._signal(signal.SIGTERM, timeout)

    def kill(self) -> int | None:
        """SIGKILL: no flush, no goodbye; recovery runs at the next start."""
        return self._signal(signal.SIGKILL, 10.0)

    def restart(self) -> EmbeddedBroker:
        self.stop()
        return self.start()

    def _signal(self, sig: int, timeout: float) -> int | None:
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self.proc = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return proc.returncode

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
