"""The admin endpoint's app loads only once the node serves, but its port is bound during the start:
a port in use still refuses the start in one line, before any Kafka listener is bound."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from suoi.testing.embedded import free_port

SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_an_admin_port_in_use_refuses_the_start(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    try:
        done = subprocess.run([sys.executable, "-m", "suoi", "broker", "--listeners", f"PLAINTEXT://127.0.0.1:{port}",
                               "--log-dirs", str(tmp_path / "data"),
                               "-o", f"admin.listeners=http://127.0.0.1:{taken.getsockname()[1]}"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
    finally:
        taken.close()
    assert done.returncode == 1, done.stderr
    refusal = [line for line in done.stderr.splitlines() if line.startswith("suoi broker:")]
    assert len(refusal) == 1 and "in use" in refusal[0], done.stderr
    assert "Traceback" not in done.stderr
    assert "listening on" not in done.stderr and "bound (serving once unfenced)" not in done.stderr
