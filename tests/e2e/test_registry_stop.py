"""A node stopped right after its schema registry loaded exits at once. The registry creates `_schemas`
through librdkafka on a thread; a stop during that call used to leave the thread waiting out
librdkafka's 30 s timeout, and the process waited for it. Here the registry's cluster never answers
(the node advertises a port nobody listens on), so its topic creation is in flight whenever the
SIGTERM comes: the process must still exit within a few seconds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from suoi.testing.embedded import free_port
from tests.conftest import wait_until

SRC = str(Path(__file__).resolve().parents[2] / "src")
EXIT_BOUND_S = 8.0  # a node's clean stop takes well under a second; the bug took 30 s


def test_a_node_stopped_while_its_registry_creates_its_topic_exits_promptly(tmp_path: Path) -> None:
    port, dead = free_port(), free_port()
    (tmp_path / "server.properties").write_text(
        f"listeners=PLAINTEXT://127.0.0.1:{port}\n"
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{dead}\n"  # where the registry connects: nobody there
        f"log.dirs={tmp_path / 'data'}\n"
        f"schema.registry.listeners=http://127.0.0.1:{free_port()}\n")
    log = tmp_path / "node.log"
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "suoi", "broker", "--config", "server.properties"],
                                cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "schema registry listening on" in log.read_text(errors="replace"), timeout=60,
                   message="the registry loaded")
        proc.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        proc.wait(timeout=40)
        took = time.monotonic() - stopped
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    text = log.read_text(errors="replace")
    assert proc.returncode == 0, text[-2000:]
    assert "stopped cleanly" in text
    assert took < EXIT_BOUND_S, f"exited {took:.1f}s after SIGTERM:\n{text[-2000:]}"
    assert "Traceback" not in text
