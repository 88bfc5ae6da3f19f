"""EmbeddedBroker: a real broker process on loopback, started and stopped by tests."""

from __future__ import annotations

import os
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


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


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
        """Start the process and wait until it serves clients (`launch` + `wait_ready`)."""
        self.launch()
        self.wait_ready()
        return self

    def launch(self) -> EmbeddedBroker:
        """Start the process without waiting. A KRaft broker serves clients only once the
        controller has unfenced it, so the nodes of a cluster are launched together and waited
        for afterwards (one node alone has no quorum to register with)."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("broker already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in _reap
        self.proc = subprocess.Popen(self.command(), stdout=self._log_file, stderr=subprocess.STDOUT,
                                     preexec_fn=self.preexec_fn)
        return self

    def wait_ready(self) -> None:
        """Until the client port accepts connections (start_timeout)."""
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.02)
        raise TimeoutError(f"broker did not listen on {self.bootstrap} within {self.start_timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
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
