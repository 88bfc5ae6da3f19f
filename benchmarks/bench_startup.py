#!/usr/bin/env python3
"""Start-up benchmark: how long a `python -m suoi broker` process takes from its start to
answering clients, fresh and restarted with many partitions.

Prints figures; it is not a test.  Client: suoi's own raw client (`suoi.client`), polling
every 10 ms, so no client library's reconnect backoff is measured.

  fresh     `python -m suoi broker --config <config/server.properties on free ports, temp
            log dir>` (a KRaft combined node, `make run`'s config): process start -> first
            Metadata answer that lists a broker.  A new data dir each run.
  restart   the same node restarted on a data dir holding one topic of --partitions (1,000)
            empty partitions: process start -> first Metadata answer, and -> "serving": a
            Metadata of the topic names a leader for every partition and one ListOffsets
            (latest) of all partitions is answered without error (every log is open).
            Also the number of log lines the restart wrote.
  --bare    the node as `suoi.testing.EmbeddedBroker` starts it: no config file, only
            `--listeners PLAINTEXT://...` and `--log-dirs` (no process.roles: before KRaft
            everywhere a standalone node, now a single KRaft node that is its own quorum).

Each figure also comes with the node process's CPU time by then (utime + stime from /proc): on
the shared 2-core machine wall-clock times swing 2-3x with other jobs' load, CPU time much less.
`--no-fresh` runs only the restarts (at 10,000 partitions a fresh node per run is minutes of
set-up for nothing).

Medians of --runs (5) runs each, after --warmup (1) uncounted fresh run per tree.
`--src LABEL=DIR` (repeatable) runs the node from another
source tree (e.g. `git archive` of an older commit into DIR, then DIR/src) for before/after
figures in one session; the trees' runs alternate so load on the machine hits them alike.

  python benchmarks/bench_startup.py
  python benchmarks/bench_startup.py --src before=/tmp/old/src --src after=src --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import free_port, log, read_cpu_s  # noqa: E402  (shared benchmark helpers)
from kio.schema.create_topics.v7.request import CreatableTopic, CreateTopicsRequest  # noqa: E402
from kio.schema.list_offsets.v7.request import ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic  # noqa: E402
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic  # noqa: E402
from kio.schema.types import TopicName  # noqa: E402
from kio.static.primitive import i16, i32, i64  # noqa: E402

from suoi.client import request_once  # noqa: E402

TOPIC = "bench-startup"
POLL_S = 0.01


def ask(port: int, request: Any, timeout: float = 5.0) -> Any:
    """One request on a fresh connection; raises OSError/TimeoutError if nobody answers."""
    return asyncio.run(request_once("127.0.0.1", port, request, client_id="bench-startup", timeout=timeout))


def metadata(port: int, topic: str | None = None) -> Any:
    topics = None if topic is None else (MetadataRequestTopic(topic_id=None, name=TopicName(topic)),)
    return ask(port, MetadataRequest(topics=topics, allow_auto_topic_creation=False,
                                     include_topic_authorized_operations=False))


@dataclass
class Node:
    """A node's data dir and config on free ports (kept across restarts)."""

    src: Path
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bench-startup-")))
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    logfile: Path | None = None
    bare: bool = False
    #: Broker properties given as ``--override k=v`` (a bare node has no config file to edit).
    overrides: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        cport = free_port()
        text = (REPO_ROOT / "config" / "server.properties").read_text()
        text = text.replace("9092", str(self.port)).replace("9093", str(cport))
        text = text.replace(":8081", f":{free_port()}")  # make run's schema registry, on a free port too
        text = text.replace(":9644", f":{free_port()}")  # and its admin endpoint (a node still stopping holds it)
        text = text.replace("log.dirs=./suoi-data", f"log.dirs={self.workdir / 'data'}")
        text = text.replace("console.listeners=", "#console.listeners=")  # the broker alone (and no fixed :8080)
        (self.workdir / "server.properties").write_text(text)

    def start(self) -> float:
        """Start the process; returns its start time (time.monotonic)."""
        env = dict(os.environ)
        env["PYTHONPATH"] = str(self.src) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        # An installed suoi has its .pyc files: without them every start compiles ~450 modules
        # (~0.3 s of CPU). The warm-up run writes them, unless the environment says not to.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.logfile = self.workdir / f"broker-{time.monotonic_ns()}.log"
        argv = [sys.executable, "-m", "suoi", "broker", "--config", str(self.workdir / "server.properties")]
        if self.bare:
            argv = [sys.executable, "-m", "suoi", "broker", "--listeners", f"PLAINTEXT://127.0.0.1:{self.port}",
                    "--log-dirs", str(self.workdir / "data")]
        argv += [arg for k, v in self.overrides.items() for arg in ("--override", f"{k}={v}")]
        with open(self.logfile, "wb") as out:
            t0 = time.monotonic()
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=env, cwd=self.workdir)
        return t0

    def cpu_s(self) -> float:
        """The node process's CPU time so far (utime + stime): what a loaded machine does not
        inflate the way it inflates wall-clock time."""
        cpu = read_cpu_s(self.proc.pid if self.proc is not None else None)
        return float("nan") if cpu is None else cpu

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            tail = self.logfile.read_text(errors="replace")[-2000:] if self.logfile else ""
            raise RuntimeError(f"broker exited with code {self.proc.returncode}:\n{tail}")

    def stop(self, kill: bool = False) -> None:
        """SIGTERM (a clean shutdown, as a restart follows), bounded; then SIGKILL. ``kill``: SIGKILL
        at once (a fresh run's node, whose data dir goes next)."""
        if self.proc is None:
            return
        if kill and self.proc.poll() is None:
            self.proc.kill()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def remove(self, kill: bool = False) -> None:
        self.stop(kill)
        shutil.rmtree(self.workdir, ignore_errors=True)


def wait_for(check: Any, node: Node, deadline: float, what: str) -> None:
    """Poll ``check()`` every POLL_S until it returns True (errors count as not yet)."""
    while True:
        node.check_alive()
        try:
            if check():
                return
        except (OSError, TimeoutError, ConnectionError, EOFError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached in time")
        time.sleep(POLL_S)


def metadata_answered(node: Node) -> bool:
    return bool(metadata(node.port).brokers)


def serving_partitions(node: Node, partitions: int) -> bool:
    md = metadata(node.port, TOPIC)
    if not md.topics or md.topics[0].error_code != 0 or len(md.topics[0].partitions) != partitions:
        return False
    if any(p.leader_id < 0 or p.error_code != 0 for p in md.topics[0].partitions):
        return False
    answer = ask(node.port, ListOffsetsRequest(replica_id=i32(-1), isolation_level=0, topics=(ListOffsetsTopic(
        name=TopicName(TOPIC), partitions=tuple(ListOffsetsPartition(partition_index=i32(p), current_leader_epoch=i32(-1),
                                                                     timestamp=i64(-1)) for p in range(partitions))),)))
    return all(p.error_code == 0 for t in answer.topics for p in t.partitions)


def fresh_run(src: Path, timeout: float, bare: bool = False) -> tuple[float, float]:
    """(s to the first Metadata, the node's CPU s by then)."""
    node = Node(src, bare=bare)
    try:
        t0 = node.start()
        wait_for(lambda: metadata_answered(node), node, t0 + timeout, "first Metadata")
        return time.monotonic() - t0, node.cpu_s()
    finally:
        node.remove(kill=True)


def prepare_restart(src: Path, partitions: int, timeout: float, bare: bool = False) -> Node:
    """A node whose data dir holds one topic of `partitions` empty partitions, stopped."""
    node = Node(src, bare=bare)
    t0 = node.start()
    wait_for(lambda: metadata_answered(node), node, t0 + timeout, "first Metadata")
    answer = ask(node.port, CreateTopicsRequest(topics=(CreatableTopic(
        name=TopicName(TOPIC), num_partitions=i32(partitions), replication_factor=i16(1), assignments=(), configs=()),),
        validate_only=False), timeout=timeout)
    if answer.topics[0].error_code != 0:
        raise RuntimeError(f"CreateTopics failed: error {answer.topics[0].error_code}")
    wait_for(lambda: serving_partitions(node, partitions), node, time.monotonic() + timeout, "all partitions ready")
    node.stop()
    return node


def restart_run(node: Node, partitions: int, timeout: float) -> tuple[float, float, int, float, float]:
    """(s to the first Metadata, s to serving every partition, log lines written by then, the
    node's CPU s at the first Metadata, at serving)."""
    t0 = node.start()
    try:
        wait_for(lambda: metadata_answered(node), node, t0 + timeout, "first Metadata")
        first, first_cpu = time.monotonic() - t0, node.cpu_s()
        wait_for(lambda: serving_partitions(node, partitions), node, t0 + timeout, "serving all partitions")
        serving, serving_cpu = time.monotonic() - t0, node.cpu_s()
        assert node.logfile is not None
        lines = len(node.logfile.read_text(errors="replace").splitlines())
        return first, serving, lines, first_cpu, serving_cpu
    finally:
        node.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument("--src", action="append", default=[], metavar="LABEL=DIR",
                        help="a source tree's src/ to run the node from (repeatable; default: this tree)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="fresh runs per tree first, not counted (they write the tree's .pyc files)")
    parser.add_argument("--timeout", type=float, default=120.0, help="bound of each wait (s)")
    parser.add_argument("--no-restart", action="store_true", help="only the fresh start")
    parser.add_argument("--no-fresh", action="store_true", help="only the restart")
    parser.add_argument("--json", action="store_true", help="also print one JSON line of all figures")
    parser.add_argument("--bare", action="store_true",
                        help="no config file (as suoi.testing.EmbeddedBroker starts a node) instead of server.properties")
    args = parser.parse_args()
    trees = [(s.split("=", 1)[0], Path(s.split("=", 1)[1]).resolve()) for s in args.src] or [("this", REPO_ROOT / "src")]

    fresh: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in trees}
    restart: dict[str, list[tuple[float, float, int, float, float]]] = {label: [] for label, _ in trees}
    for label, src in trees:
        for _ in range(0 if args.no_fresh else args.warmup):
            log(f"warm-up {label}: {fresh_run(src, args.timeout, args.bare)[0]:.3f}s")
    for run in range(0 if args.no_fresh else args.runs):
        for label, src in trees:
            fresh[label].append(fresh_run(src, args.timeout, args.bare))
            log(f"fresh {label} run {run + 1}: {fresh[label][-1][0]:.3f}s (cpu {fresh[label][-1][1]:.2f}s)")
    if not args.no_restart:
        nodes = {label: prepare_restart(src, args.partitions, args.timeout, args.bare) for label, src in trees}
        try:
            for run in range(args.runs):
                for label, _ in trees:
                    restart[label].append(restart_run(nodes[label], args.partitions, args.timeout))
                    log(f"restart {label} run {run + 1}: {restart[label][-1]}")
        finally:
            for node in nodes.values():
                node.remove()

    print(f"\nstart-up, median [min-max] of {args.runs} runs (s); cpu = the node process's CPU time by then")
    figures: dict[str, dict[str, float]] = {}
    columns = [] if args.no_fresh else [
        ("fresh: Metadata", "fresh_metadata_s", [(label, [r[0] for r in fresh[label]]) for label, _ in trees]),
        ("fresh: cpu", "fresh_metadata_cpu_s", [(label, [r[1] for r in fresh[label]]) for label, _ in trees])]
    if not args.no_restart:
        for title, key, i in (("restart: Metadata", "restart_metadata_s", 0),
                              ("restart: serving", "restart_serving_s", 1),
                              ("restart: cpu at serving", "restart_serving_cpu_s", 4),
                              ("restart: log lines", "restart_log_lines", 2)):
            columns.append((title, key, [(label, [r[i] for r in restart[label]]) for label, _ in trees]))
    for title, key, per_tree in columns:
        print(f"  {title}")
        for label, values in per_tree:
            median = statistics.median(values)
            figures.setdefault(label, {})[key] = median
            print(f"    {label:<12}{median:>8.3f}  [{min(values):.3f}-{max(values):.3f}]")
    print(f"(restart: one topic of {args.partitions} empty partitions)")
    if args.json:
        print(json.dumps({"runs": args.runs, "partitions": args.partitions, "figures": figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
