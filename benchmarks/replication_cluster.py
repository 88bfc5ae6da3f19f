"""bench_replication.py's local cluster: `suoi cluster up --brokers 3 --controllers 1` in a temp
dir, stopped by `cluster down` and then SIGKILL by PID for anything left; its CPU, request
counts and node-log scan; and the topic helpers the phases use (create and wait for the full
ISR, delete, high watermarks, partition 0's leader and ISR). bench_txn.py starts its cluster
here too."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import REPO_ROOT, log, read_cpu_s
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

BROKERS = (1, 2, 3)
BASE_OVERRIDES = {"offsets.topic.num.partitions": "3", "transaction.state.log.num.partitions": "3"}
REQUESTS_LINE = re.compile(r'^kafka_network_requestmetrics_requests_total\{request="(?P<api>\w+)"\} (?P<n>\S+)$', re.M)
#: the sums of Produce's request times (ms): arrival to answer ready, and of it the wait for replication
PRODUCE_TIME_LINE = re.compile(r'^kafka_network_requestmetrics_(?P<kind>totaltimems|remotetimems)_sum'
                               r'\{request="Produce"\} (?P<ms>\S+)$', re.M)
ERROR_LINE = re.compile(rb"\bERROR\b|Traceback")


def proc_alive(pid: int, config: str) -> bool:
    """A live, non-zombie process whose command line names this node's config file."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rpartition(b")")[2].split()[0]
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X") and os.fsencode(config) in cmdline


def wait_for(what: str, fn: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:g}s")
        time.sleep(interval)


class LocalCluster:
    """`suoi cluster up --brokers 3 --controllers 1` in a temp dir; every node it started is
    remembered by (pid, config) so that stop() can SIGKILL leftovers by PID."""

    def __init__(self, label: str, overrides: dict[str, str], args: argparse.Namespace) -> None:
        self.label = label
        self.overrides = {**BASE_OVERRIDES, **overrides}
        self.args = args
        self.root = Path(tempfile.mkdtemp(prefix=f"bench-repl-{label}-"))
        self.dir = self.root / "cluster"
        self.bootstrap = ""
        self.started: dict[int, str] = {}  # pid -> config path, every node process ever started
        self.log_pos: dict[Path, int] = {}
        self.keep = args.keep_dir
        self.env = dict(os.environ)
        src = str(REPO_ROOT / "src")  # work from a source checkout without installing
        self.env["PYTHONPATH"] = src + (os.pathsep + self.env["PYTHONPATH"] if self.env.get("PYTHONPATH") else "")

    def _suoi(self, *argv: str, timeout: float) -> subprocess.CompletedProcess[str]:
        cmd = [self.args.suoi_python, "-m", "suoi", "cluster", *argv, "--dir", str(self.dir)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=self.env,
                              stdin=subprocess.DEVNULL, check=False)

    def nodes(self) -> list[dict[str, Any]]:
        return list(json.loads((self.dir / "cluster.json").read_text())["nodes"])

    def node(self, node_id: int) -> dict[str, Any]:
        return next(n for n in self.nodes() if n["id"] == node_id)

    def _remember(self) -> None:
        for n in self.nodes():
            if n.get("pid"):
                self.started[int(n["pid"])] = n["config"]

    def up(self) -> None:
        opts = [x for k, v in self.overrides.items() for x in ("-o", f"{k}={v}")]
        log(f"{self.label}: suoi cluster up --brokers 3 --controllers 1 {' '.join(opts)} (dir {self.dir})")
        t0 = time.monotonic()
        try:
            proc = self._suoi("up", "--brokers", "3", "--controllers", "1", "--wait", str(self.args.ready_timeout),
                              *opts, timeout=self.args.ready_timeout + 60)
        finally:
            if (self.dir / "cluster.json").exists():
                self._remember()
        if proc.returncode != 0:
            raise RuntimeError(f"cluster up failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
        self.bootstrap = proc.stdout.strip().splitlines()[-1]
        log(f"{self.label}: up after {time.monotonic() - t0:.1f}s, bootstrap {self.bootstrap}")

    def cpu_s(self) -> float | None:
        """CPU seconds (user+sys) of every live node, summed."""
        total = 0.0
        for n in self.nodes():
            v = read_cpu_s(n["pid"]) if n.get("pid") and proc_alive(n["pid"], n["config"]) else None
            if v is None:
                return None
            total += v
        return total

    def request_counts(self) -> dict[str, float]:
        """Produce and Fetch requests answered so far, summed over the brokers (their /metrics), and
        the sums of the Produce requests' times in ms (`Produce_ms`: arrival to answer ready;
        `Produce_remote_ms`: of it, waiting for the ISR)."""
        counts = {"Produce": 0.0, "Fetch": 0.0, "Produce_ms": 0.0, "Produce_remote_ms": 0.0}
        for node in self.request_counts_by_node().values():
            for k, v in node.items():
                counts[k] += v
        return counts

    def request_counts_by_node(self) -> dict[int, dict[str, float]]:
        """`request_counts`' figures per broker."""
        result = {}
        for n in self.nodes():
            if n["id"] not in BROKERS or not n.get("admin_port"):
                continue
            counts = result[n["id"]] = {"Produce": 0.0, "Fetch": 0.0, "Produce_ms": 0.0, "Produce_remote_ms": 0.0}
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{n['admin_port']}/metrics", timeout=5) as r:
                    text = r.read().decode()
            except OSError:
                continue
            for m in REQUESTS_LINE.finditer(text):
                if m["api"] in counts:
                    counts[m["api"]] += int(float(m["n"]))
            for m in PRODUCE_TIME_LINE.finditer(text):
                counts["Produce_ms" if m["kind"] == "totaltimems" else "Produce_remote_ms"] += float(m["ms"])
        return result

    def kill(self, node_id: int, sig: int = signal.SIGKILL) -> float:
        """Signal a node by its recorded PID and wait until it is gone; returns the
        perf_counter() of the signal."""
        n = self.node(node_id)
        pid, config = int(n["pid"]), n["config"]
        if not proc_alive(pid, config):
            raise RuntimeError(f"node {node_id} (pid {pid}) is not running")
        t = time.perf_counter()
        os.kill(pid, sig)
        wait_for(f"node {node_id} to exit", lambda: not proc_alive(pid, config), 60)
        return t

    def start_node(self, node_id: int) -> None:
        proc = self._suoi("start-node", "--node", str(node_id), "--wait", str(self.args.ready_timeout),
                          timeout=self.args.ready_timeout + 60)
        self._remember()
        if proc.returncode != 0:
            raise RuntimeError(f"start-node {node_id} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")

    def scan_logs(self, phase: str) -> dict[str, Any]:
        """Count ERROR / Traceback lines added to the node logs since the last scan, and name
        the exceptions (the first unindented line after a Traceback)."""
        counts: dict[str, Any] = {"error": 0, "traceback": 0, "exceptions": {}}
        shown = 0
        for path in sorted(self.dir.glob("node-*/broker.log")):
            with open(path, "rb") as f:
                f.seek(self.log_pos.get(path, 0))
                data = f.read()
                self.log_pos[path] = f.tell()
            in_traceback = False
            for line in data.splitlines():
                if in_traceback and line[:1] not in (b" ", b"\t", b""):
                    name = line.decode(errors="replace").split(":", 1)[0].rpartition(".")[2][:80]
                    counts["exceptions"][name] = counts["exceptions"].get(name, 0) + 1
                    in_traceback = False
                if not ERROR_LINE.search(line):
                    continue
                in_traceback = in_traceback or b"Traceback" in line
                counts["traceback" if b"Traceback" in line else "error"] += 1
                if shown < 5:
                    shown += 1
                    log(f"{self.label}/{phase}: {path.parent.name}: {line.decode(errors='replace')[:300]}")
        if counts["error"] or counts["traceback"]:
            log(f"{self.label}/{phase}: node logs: {counts['error']} ERROR, {counts['traceback']} Traceback lines "
                f"{counts['exceptions'] or ''}")
            self.keep = True
        return counts

    def stop(self) -> None:
        """`cluster down`, then SIGKILL (by PID) any node process still alive."""
        if (self.dir / "cluster.json").exists():
            log(f"{self.label}: suoi cluster down")
            try:
                proc = self._suoi("down", "--timeout", "15", timeout=60)
                if proc.returncode != 0:
                    log(f"{self.label}: cluster down: {proc.stderr.strip()[-500:]}")
            except (subprocess.TimeoutExpired, OSError) as e:
                log(f"{self.label}: cluster down failed: {e}")
        for pid, config in self.started.items():
            if proc_alive(pid, config):
                log(f"{self.label}: SIGKILL pid {pid} ({config})")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for data in self.dir.glob("node-*/data"):
            shutil.rmtree(data, ignore_errors=True)
        if self.keep:
            log(f"{self.label}: node logs kept in {self.dir}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)


def create_topic(bootstrap: str, name: str, partitions: int, rf: int, configs: dict[str, str],
                 timeout: float = 60.0) -> None:
    """Create a topic and wait until every partition has a leader and its full ISR."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futs = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=rf, config=configs)],
                               operation_timeout=timeout, request_timeout=timeout)
    futs[name].result(timeout=timeout)

    def ready() -> bool:
        tm = admin.list_topics(topic=name, timeout=5.0).topics.get(name)
        return bool(tm is not None and tm.error is None and len(tm.partitions) == partitions and all(
            p.error is None and p.leader >= 0 and len(p.replicas) == rf and sorted(p.isrs) == sorted(p.replicas)
            for p in tm.partitions.values()))
    wait_for(f"topic {name} leaders and ISR", ready, timeout)


def topic_configs(rf: int, acks: str) -> dict[str, str]:
    return {"min.insync.replicas": "2"} if acks == "all" and rf > 1 else {}


def high_watermarks(c: Consumer, topic: str, partitions: int) -> int:
    """Sum of the partitions' high watermarks (what every ISR replica has)."""
    return sum(c.get_watermark_offsets(TopicPartition(topic, i), timeout=5.0, cached=False)[1] for i in range(partitions))


def delete_topic(bootstrap: str, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})  # must outlive the future
    try:
        admin.delete_topics([name], operation_timeout=30)[name].result(60)
    except KafkaException as e:
        log(f"delete {name}: {e}")


def partition_state(admin: AdminClient, topic: str) -> tuple[int, list[int]] | None:
    """(leader, isr) of partition 0, or None when metadata does not answer."""
    try:
        tm = admin.list_topics(topic=topic, timeout=1.0).topics.get(topic)
    except KafkaException:
        return None
    if tm is None or tm.error is not None or 0 not in tm.partitions:
        return None
    p = tm.partitions[0]
    return p.leader, sorted(p.isrs)
