"""Run `python -m suoi ...` as a real subprocess, as an operator would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any


def suoi(*args: str, stdin: str | bytes | None = None, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    data = stdin.decode() if isinstance(stdin, bytes) else stdin
    return subprocess.run([sys.executable, "-m", "suoi", *args], input=data, capture_output=True,
                          text=True, timeout=timeout, check=False)


def ok(*args: str, stdin: str | None = None, timeout: float = 30.0) -> str:
    """stdout of a command that must succeed."""
    proc = suoi(*args, stdin=stdin, timeout=timeout)
    assert proc.returncode == 0, f"suoi {' '.join(args)} exited {proc.returncode}: {proc.stderr}"
    return proc.stdout


def ok_json(*args: str, stdin: str | None = None) -> Any:
    return json.loads(ok(*args, "--output", "json", stdin=stdin))


def fails(*args: str, stdin: str | None = None, timeout: float = 30.0) -> str:
    """The single error line of a command that must fail with exit code 1 and no traceback."""
    proc = suoi(*args, stdin=stdin, timeout=timeout)
    assert proc.returncode == 1, f"suoi {' '.join(args)} exited {proc.returncode}: {proc.stdout} {proc.stderr}"
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line, got: {proc.stderr!r}"
    assert "Traceback" not in proc.stderr
    assert lines[0].startswith("suoi"), lines[0]
    return lines[0]


def cluster_down_for_good(directory: Path) -> None:
    """Test cleanup of a `suoi cluster up` in `directory`: `down`, then SIGKILL any node still running."""
    from suoi.cli.cluster import pid_running

    if not (directory / "cluster.json").exists():
        return
    nodes = json.loads((directory / "cluster.json").read_text())["nodes"]
    suoi("cluster", "down", "--dir", str(directory), timeout=90)
    for n in nodes:  # never leave a process behind
        if pid_running(n["pid"], Path(n["config"])):
            os.kill(n["pid"], signal.SIGKILL)
