"""The processes bench_latency.py starts and watches: brokers (suoi trees, Tansu, an external
one), CPU-bound neighbours, py-spy; each one killed by PID on the way out, and their CPU and
run-queue wait read from /proc."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from common import REPO_ROOT, Target, log, read_cpu_s, start_suoi_kraft, start_tansu


@dataclass
class Processes:
    """Every process this script starts, killed by PID on the way out."""

    brokers: list[Target] = field(default_factory=list)
    children: list[Any] = field(default_factory=list)  # mp.Process or subprocess.Popen

    def kill_children(self) -> None:
        for child in self.children:
            try:
                if isinstance(child, subprocess.Popen):
                    if child.poll() is None:
                        child.kill()
                    child.wait(timeout=5)
                else:
                    if child.is_alive():
                        child.kill()
                    child.join(timeout=5)
            except Exception as exc:  # keep killing the others
                log(f"could not stop pid {child.pid}: {exc}")
        self.children.clear()

    def stop_all(self) -> None:
        self.kill_children()
        for b in self.brokers:
            b.stop()
        self.brokers.clear()


def start_neighbours(procs: Processes, n: int, max_s: float) -> list[int]:
    """N busy loops at nice 0 (the broker's niceness): a CPU-bound process sharing the cores.
    Each stops by itself after `max_s` too, should this script be killed without cleaning up."""
    pids = []
    loop = f"import time\nend = time.monotonic() + {max_s:.0f}\nwhile time.monotonic() < end:\n    pass\n"
    for _ in range(n):
        child = subprocess.Popen([sys.executable, "-c", loop], stdin=subprocess.DEVNULL)
        procs.children.append(child)
        pids.append(child.pid)
    return pids


def cpu_of(pids: list[int]) -> list[float | None]:
    return [read_cpu_s(pid) for pid in pids]


def run_queue_wait_s(pid: int | None) -> float | None:
    """Seconds the threads of `pid` spent runnable but waiting for a CPU (/proc/<pid>/task/*/schedstat,
    second field): how much the machine's other work, not the process itself, delayed it."""
    if pid is None:
        return None
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return total / 1e9


def start_py_spy(procs: Processes, args: argparse.Namespace, target: Target, rate: int,
                 run_no: int) -> subprocess.Popen | None:
    """py-spy record of the broker over the measured window (--py-spy DIR), non-blocking sampling."""
    if not args.py_spy or target.pid is None:
        return None
    os.makedirs(args.py_spy, exist_ok=True)
    out = os.path.join(args.py_spy, f"{target.label}-{rate}-nb{args.neighbour}-{run_no}.{args.py_spy_format}")
    spy = subprocess.Popen([args.py_spy_bin, "record", "--pid", str(target.pid), "--duration", str(int(args.seconds)),
                            "--nonblocking", "--rate", "250", "--format", args.py_spy_format, "-o", out],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.children.append(spy)
    log(f"py-spy recording {target.label} (pid {target.pid}) to {out}")
    return spy


def start_targets(args: argparse.Namespace, procs: Processes) -> list[Target]:
    here = str(REPO_ROOT / "src")
    trees = [s.split("=", 1) for s in args.src]
    if not trees and not args.bootstrap and not args.tansu:
        trees = [["suoi", here]]
    args.probe_dumps = {}
    for label, path in trees:
        launcher = None
        if args.probe:  # the node runs inside latency_probe.py: stamps, timed callbacks, GC by generation
            os.makedirs(args.probe, exist_ok=True)
            launcher = [str(REPO_ROOT / "benchmarks" / "latency_probe.py"), "--out", os.path.join(args.probe, label)]
            args.probe_dumps[label] = 0
        procs.brokers.append(start_suoi_kraft(label, path, args.ready_timeout, launcher=launcher))
    if args.tansu:
        procs.brokers.append(start_tansu(args))
    targets = list(procs.brokers)
    if args.bootstrap:
        targets.append(Target("external", args.bootstrap, args.broker_pid, admin_port=args.admin_port))
    return targets
