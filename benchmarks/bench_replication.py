#!/usr/bin/env python3
"""Partition replication benchmark: produce throughput by replication factor and acks,
acks=all latency, and leader failover time, on a local 3-broker cluster.

Prints figures; it is not a test.  Client: confluent-kafka (librdkafka).

The script starts its own cluster in a temporary directory with
`suoi cluster up --brokers 3 --controllers 1` (brokers 1..3, a controller-only node 4, so
killing a broker never takes the metadata quorum with it), all on 127.0.0.1, and always
stops it (`suoi cluster down`, then SIGKILL by PID for anything left), also on Ctrl-C,
SIGTERM and errors.  Every node gets -o offsets.topic.num.partitions=3 (consumers used for
read-back would otherwise create 50 replicated offsets partitions) and any --override.

Phases (cluster A: default broker timeouts):
  throughput  fresh topic per run, --partitions (6) partitions, --size (1 KB) values, a tight
              produce() loop (BufferError -> poll(0.1)) stopped at --messages or --seconds,
              time includes the final flush.  Producer: linger.ms=5, batch.size=256 KiB,
              no compression; acks=1 runs without idempotence, acks=all with
              enable.idempotence=true (so at most 5 requests in flight per broker).  Runs:
              RF=1 acks=1 (baseline), RF=3 acks=1, RF=3 acks=all (topic
              min.insync.replicas=2), and RF=1 acks=all as a diagnostic (the same idempotent
              producer without replication), --rounds (3) times each, order alternating,
              medians reported; the topic is deleted after each run.  Also timed: until the
              high watermarks cover everything delivered ("until replicated": acks=1 returns
              before the followers have the data).  Ratio RF=3 acks=all / RF=1 acks=1
              against the target (>= 50 %, issue 19).
  latency     RF=3 acks=all (min.insync.replicas=2), idempotent producer, linger.ms=0, one
              message at a time at --latency-rate msg/s for --latency-seconds: produce() ->
              delivery report, p50/p99/max.  The same on an RF=1 acks=1 topic for reference.
  failover    an idempotent acks=all producer (linger.ms=0) paced at --failover-rate msg/s
              to an RF=3 topic with 1 partition (min.insync.replicas=2); once it is steady,
              signal the partition leader (found via Metadata).  Measured from the signal:
              a new leader in Metadata (polled from the surviving brokers), and the first
              successful delivery report of a message produced after the signal.  Counts
              failed deliveries (expected 0), then reads the partition back: acknowledged
              messages missing, duplicates.  The stopped broker is restarted and timed back
              into the ISR.  Cluster A: once with SIGTERM (controlled shutdown, for contrast),
              then with SIGKILL and the default timeouts (broker.session.timeout.ms=9000,
              broker.heartbeat.interval.ms=2000); cluster B (fresh): SIGKILL with
              broker.session.timeout.ms=3000 and broker.heartbeat.interval.ms=500.
With kill -9 nothing tells the controller the broker is gone: as in Kafka's KRaft, it fences
the broker (and elects new leaders) only once broker.session.timeout.ms has passed without a
heartbeat, so the default-timeout figure cannot be below ~7-9 s.  The client adds up to about
a second more: librdkafka re-queries the leader of a partition whose broker is down once a
second.

After each phase the new lines of every node-*/broker.log are scanned for ERROR and
Traceback; counts are in the table, the first lines on stderr.

  python benchmarks/bench_replication.py
  python benchmarks/bench_replication.py --quick
  python benchmarks/bench_replication.py --messages 500000 --rounds 5 --json
  python benchmarks/bench_replication.py --no-throughput --no-latency --failover-trials 3
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import MB, REPO_ROOT, clean_json, fmt_num, log, payload, percentile, read_cpu_s  # noqa: E402
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

BROKERS = (1, 2, 3)
BASE_OVERRIDES = {"offsets.topic.num.partitions": "3", "transaction.state.log.num.partitions": "3"}
TUNED_OVERRIDES = {"broker.session.timeout.ms": "3000", "broker.heartbeat.interval.ms": "500"}
# (replication factor, acks); RF=1 acks=all is a diagnostic: the same idempotent producer (at most 5
# requests in flight per broker) without replication.
THROUGHPUT_RUNS = [(1, "1"), (3, "1"), (3, "all"), (1, "all")]
PRODUCER_CONF = {"linger.ms": 5, "batch.size": 256 * 1024, "batch.num.messages": 100_000,
                 "compression.type": "none", "queue.buffering.max.messages": 1_000_000,
                 "queue.buffering.max.kbytes": 512 * 1024}
# Clients that live through a broker being stopped: librdkafka would print every refused
# reconnect; failed deliveries are counted from the delivery reports instead.
QUIET = {"log_level": 2, "log.connection.close": False}
THROUGHPUT_TARGET_PCT = 50.0
FAILOVER_TARGET_S = 5.0
REQUESTS_LINE = re.compile(r'^kafka_network_requestmetrics_requests_total\{request="(?P<api>\w+)"\} (?P<n>\S+)$', re.M)
ERROR_LINE = re.compile(rb"\bERROR\b|Traceback")


class Interrupted(BaseException):
    """SIGTERM, turned into an exception so that the cluster is stopped on the way out."""


def _on_sigterm(_signum: int, _frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: let the cleanup finish
    raise Interrupted("SIGTERM")


# --------------------------------------------------------------------------
# The local cluster
# --------------------------------------------------------------------------


def _proc_alive(pid: int, config: str) -> bool:
    """A live, non-zombie process whose command line names this node's config file."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rpartition(b")")[2].split()[0]
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X") and os.fsencode(config) in cmdline


def _wait_for(what: str, fn: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
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
            v = read_cpu_s(n["pid"]) if n.get("pid") and _proc_alive(n["pid"], n["config"]) else None
            if v is None:
                return None
            total += v
        return total

    def request_counts(self) -> dict[str, int]:
        """Produce and Fetch requests answered so far, summed over the brokers (their /metrics)."""
        counts = {"Produce": 0, "Fetch": 0}
        for n in self.nodes():
            if n["id"] not in BROKERS or not n.get("admin_port"):
                continue
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{n['admin_port']}/metrics", timeout=5) as r:
                    text = r.read().decode()
            except OSError:
                continue
            for m in REQUESTS_LINE.finditer(text):
                if m["api"] in counts:
                    counts[m["api"]] += int(float(m["n"]))
        return counts

    def kill(self, node_id: int, sig: int = signal.SIGKILL) -> float:
        """Signal a node by its recorded PID and wait until it is gone; returns the
        perf_counter() of the signal."""
        n = self.node(node_id)
        pid, config = int(n["pid"]), n["config"]
        if not _proc_alive(pid, config):
            raise RuntimeError(f"node {node_id} (pid {pid}) is not running")
        t = time.perf_counter()
        os.kill(pid, sig)
        _wait_for(f"node {node_id} to exit", lambda: not _proc_alive(pid, config), 60)
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
            if _proc_alive(pid, config):
                log(f"{self.label}: SIGKILL pid {pid} ({config})")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for data in self.dir.glob("node-*/data"):
            shutil.rmtree(data, ignore_errors=True)
        if self.keep:
            log(f"{self.label}: node logs kept in {self.dir}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)


# --------------------------------------------------------------------------
# Topics
# --------------------------------------------------------------------------


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
    _wait_for(f"topic {name} leaders and ISR", ready, timeout)


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


# --------------------------------------------------------------------------
# Phases
# --------------------------------------------------------------------------


def throughput_run(c: LocalCluster, args: argparse.Namespace, rf: int, acks: str) -> dict[str, Any]:
    topic = f"bench-rf{rf}-acks{acks}-{uuid.uuid4().hex[:8]}"
    create_topic(c.bootstrap, topic, args.partitions, rf, topic_configs(rf, acks))
    errors: dict[str, Any] = {"n": 0, "first": None}

    def on_delivery(err: Any, _msg: Any) -> None:  # failures only (delivery.report.only.error)
        if err is not None:
            errors["n"] += 1
            errors["first"] = errors["first"] or str(err)

    idempotent = acks == "all" and not args.no_idempotence
    p = Producer({"bootstrap.servers": c.bootstrap, "acks": acks, "enable.idempotence": idempotent,
                  **PRODUCER_CONF, "queue.buffering.max.kbytes": args.queue_kb,
                  "delivery.report.only.error": True, "on_delivery": on_delivery})
    # Connect, and (idempotent) get a producer id, before the clock starts.
    p.produce(topic, b"warm-up")
    if p.flush(30):
        raise RuntimeError(f"{topic}: warm-up message not delivered")
    watcher = Consumer({"bootstrap.servers": c.bootstrap, "group.id": f"bench-{uuid.uuid4().hex}"})
    high_watermarks(watcher, topic, args.partitions)
    value = payload(args.size)
    produce, poll = p.produce, p.poll
    sent = 0
    profilers = start_profilers(c, args, f"rf{rf}-acks{acks}") if (rf, acks) == (3, "all") else []
    requests0 = c.request_counts()
    cpu0, ccpu0 = c.cpu_s(), time.process_time()
    t0 = time.perf_counter()
    deadline = t0 + args.seconds
    while sent < args.messages and time.perf_counter() < deadline:
        try:
            produce(topic, value)
        except BufferError:
            poll(0.1)
            continue
        sent += 1
        if not sent & 63:
            poll(0)
    remaining = p.flush(args.flush_timeout)
    elapsed = time.perf_counter() - t0
    delivered = sent - errors["n"] - remaining
    # acks=1 returns before the followers have the data: also time until the high watermarks
    # (advanced by the followers' fetches) cover everything delivered.
    try:
        _wait_for("high watermarks", lambda: high_watermarks(watcher, topic, args.partitions) >= delivered + 1,
                  args.flush_timeout, 0.01)
        replicated = time.perf_counter() - t0
    except (TimeoutError, KafkaException) as e:
        log(f"{topic}: {e}")
        replicated = None
    finally:
        watcher.close()
    cpu1 = c.cpu_s()
    stop_profilers(profilers)
    requests1 = c.request_counts()
    res = {"rf": rf, "acks": acks, "idempotence": idempotent, "topic": topic, "sent": sent,
           "delivered": delivered, "errors": errors["n"], "undelivered": remaining,
           "elapsed_s": round(elapsed, 3), "mb_s": delivered * args.size / MB / elapsed,
           "replicated_s": None if replicated is None else round(replicated, 3),
           "replicated_mb_s": None if replicated is None else delivered * args.size / MB / replicated,
           "msg_s": delivered / elapsed, "client_cpu_s": round(time.process_time() - ccpu0, 2),
           "cluster_cpu_s": None if cpu0 is None or cpu1 is None else round(cpu1 - cpu0, 2)}
    mb = delivered * args.size / MB
    res.update({f"{api.lower()}_per_mb": (requests1[api] - requests0[api]) / mb if mb else None for api in requests0})
    res["cpu_ms_per_mb"] = None if res["cluster_cpu_s"] is None or not delivered else \
        res["cluster_cpu_s"] * 1000 / (delivered * args.size / MB)
    if errors["first"]:
        res["first_error"] = errors["first"]
    delete_topic(c.bootstrap, topic)
    return res


def start_profilers(c: LocalCluster, args: argparse.Namespace, what: str) -> list[subprocess.Popen[bytes]]:
    """--profile DIR: `py-spy record` (collapsed stacks) on every broker for this run."""
    if args.profile is None:
        return []
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        raise RuntimeError("--profile needs py-spy (pip install py-spy)")
    args.profile.mkdir(parents=True, exist_ok=True)
    procs = []
    for n in c.nodes():
        if n["id"] in BROKERS and n.get("pid"):
            out = args.profile / f"{what}-{uuid.uuid4().hex[:6]}-broker{n['id']}.txt"
            procs.append(subprocess.Popen([py_spy, "record", "--format", "raw", "--rate", "250", "--nonblocking",
                                           "--pid", str(n["pid"]), "-o", str(out)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(0.5)  # py-spy attaches
    return procs


def stop_profilers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def latency_run(c: LocalCluster, args: argparse.Namespace, rf: int, acks: str) -> dict[str, Any]:
    topic = f"bench-lat-rf{rf}-acks{acks}-{uuid.uuid4().hex[:8]}"
    create_topic(c.bootstrap, topic, 1, rf, topic_configs(rf, acks))
    lat: list[float] = []
    failed: list[str] = []

    def on_delivery(t_send: float, err: Any, _msg: Any) -> None:
        if err is None:
            lat.append(time.perf_counter() - t_send)
        else:
            failed.append(str(err))

    p = Producer({"bootstrap.servers": c.bootstrap, "acks": acks, "enable.idempotence": acks == "all",
                  "linger.ms": 0, "compression.type": "none"})
    p.list_topics(topic, timeout=10.0)
    value = payload(args.size)
    for _ in range(5):  # warm-up: connection to the leader, producer id
        p.produce(topic, value)
    p.flush(30)
    interval = 1.0 / args.latency_rate
    n = max(1, int(args.latency_rate * args.latency_seconds))
    t_next = time.perf_counter()
    for _ in range(n):
        t_send = time.perf_counter()
        p.produce(topic, value, on_delivery=functools.partial(on_delivery, t_send))
        t_next += interval
        while (wait := t_next - time.perf_counter()) > 0:
            p.poll(wait)
    p.flush(30)
    delete_topic(c.bootstrap, topic)
    lat.sort()
    ms = [x * 1000 for x in lat]
    return {"rf": rf, "acks": acks, "messages": n, "delivered": len(lat), "failed": len(failed),
            "p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99), "max_ms": ms[-1] if ms else None}


class PacedProducer:
    """An idempotent acks=all producer in its own thread, one message every 1/rate s;
    values are sequence numbers; send and delivery times are kept per sequence number."""

    def __init__(self, bootstrap: str, topic: str, rate: float, size: int) -> None:
        self.topic = topic
        self.interval = 1.0 / rate
        self.pad = b"x" * max(0, size - 8)
        self.p: Producer | None = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                                            "linger.ms": 0, "compression.type": "none", **QUIET})
        self.lock = threading.Lock()
        self.sent_at: list[float] = []
        self.acked: dict[int, float] = {}  # seq -> delivery report time
        self.failed: dict[int, str] = {}
        self.stopping = threading.Event()
        self.remaining = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _on_delivery(self, err: Any, msg: Any) -> None:
        t = time.perf_counter()
        seq = int(msg.value()[:8])
        with self.lock:
            if err is None:
                self.acked[seq] = t
            else:
                self.failed[seq] = str(err)

    def _run(self) -> None:
        p = self.p
        assert p is not None
        t_next = time.perf_counter()
        seq = 0
        while not self.stopping.is_set():
            now = time.perf_counter()
            if now >= t_next:
                try:
                    p.produce(self.topic, b"%08d" % seq + self.pad, on_delivery=self._on_delivery)
                    with self.lock:
                        self.sent_at.append(now)
                    seq += 1
                except BufferError:
                    pass
                t_next += self.interval
            p.poll(max(0.0, min(0.05, t_next - time.perf_counter())))
        self.remaining = p.flush(60)
        self.p = None  # let the handle go now, not when the cluster is stopped

    def first_ack_sent_after(self, t: float) -> float | None:
        """Delivery time of the first message produced at or after t that was acknowledged."""
        with self.lock:
            times = [self.acked[s] for s in range(len(self.sent_at)) if self.sent_at[s] >= t and s in self.acked]
        return min(times) if times else None


def read_back(bootstrap: str, topic: str, timeout: float) -> list[int]:
    """Every sequence number in partition 0, in offset order."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}", **QUIET,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest", "enable.partition.eof": False})
    try:
        _, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        c.assign([TopicPartition(topic, 0, 0)])
        seqs: list[int] = []
        last = -1
        deadline = time.monotonic() + timeout
        while last < high - 1 and time.monotonic() < deadline:
            for m in c.consume(num_messages=10_000, timeout=0.5):
                value, offset = m.value(), m.offset()
                if m.error() is None and value is not None and offset is not None:
                    seqs.append(int(value[:8]))
                    last = offset
        if last < high - 1:
            log(f"read-back of {topic} stopped at offset {last} of {high}")
        return seqs
    finally:
        c.close()


def failover_trial(c: LocalCluster, args: argparse.Namespace, sig: int) -> dict[str, Any]:
    topic = f"bench-failover-{uuid.uuid4().hex[:8]}"
    create_topic(c.bootstrap, topic, 1, 3, {"min.insync.replicas": "2"})
    admin = AdminClient({"bootstrap.servers": c.bootstrap, **QUIET})
    leader, isr = _wait_for("failover topic metadata", lambda: partition_state(admin, topic), 30)
    pp = PacedProducer(c.bootstrap, topic, args.failover_rate, args.size)
    pp.thread.start()
    res: dict[str, Any] = {"topic": topic, "old_leader": leader}
    t_kill = time.perf_counter()
    try:
        _wait_for("steady acknowledgements before the kill",
                  lambda: len(pp.acked) >= max(50, args.failover_rate * args.failover_warmup), 60)
        t_kill = c.kill(leader, sig)
        log(f"{c.label}: {signal.Signals(sig).name} node {leader} (leader of {topic}, ISR {isr}), "
            f"exited after {time.perf_counter() - t_kill:.2f}s")
        survivors = AdminClient({"bootstrap.servers": ",".join(c.node(n)["address"] for n in BROKERS if n != leader),
                                 **QUIET})
        t_new_leader = None
        t_first = None
        deadline = t_kill + args.failover_timeout
        while time.perf_counter() < deadline and (t_first is None or t_new_leader is None):
            if t_new_leader is None:
                st = partition_state(survivors, topic)
                if st is not None and st[0] not in (-1, leader):
                    t_new_leader = time.perf_counter()
                    res["new_leader"], res["isr_after"] = st
            if t_first is None:
                t_first = pp.first_ack_sent_after(t_kill)
            time.sleep(0.02)
        res["new_leader_s"] = None if t_new_leader is None else t_new_leader - t_kill
        res["first_ack_s"] = None if t_first is None else t_first - t_kill
        time.sleep(1.0)  # keep producing a little after the failover
    finally:
        pp.stopping.set()
        pp.thread.join(90)
    with pp.lock:
        sent, acked, failed = len(pp.sent_at), set(pp.acked), dict(pp.failed)
        after = sorted(t for t in pp.acked.values() if t >= t_kill)
    # The longest time without any delivery report from the signal on (what the application sees).
    res["longest_pause_s"] = max((b - a for a, b in zip([t_kill, *after], after, strict=False)), default=None)
    seqs = read_back(c.bootstrap, topic, 60)
    res.update({"sent": sent, "acked": len(acked), "failed": len(failed), "undelivered": pp.remaining,
                "lost_acked": len(acked - set(seqs)), "duplicates": len(seqs) - len(set(seqs)),
                "read_back": len(seqs)})
    if failed:
        res["first_failure"] = next(iter(failed.values()))
    # Bring the killed broker back and time it into the ISR.
    t0 = time.perf_counter()
    c.start_node(leader)
    try:
        _wait_for("the restarted broker back in the ISR",
                  lambda: (st := partition_state(admin, topic)) is not None and leader in st[1], 60, 0.1)
        res["rejoin_isr_s"] = time.perf_counter() - t0
    except TimeoutError as e:
        log(f"{c.label}: {e}")
        res["rejoin_isr_s"] = None
    delete_topic(c.bootstrap, topic)
    return res


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------


def run_throughput(c: LocalCluster, args: argparse.Namespace) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    for r in range(args.rounds):
        order = args.runs if r % 2 == 0 else args.runs[::-1]
        for rf, acks in order:
            res = throughput_run(c, args, rf, acks)
            log(f"RF={rf} acks={acks}: {res['mb_s']:.1f} MB/s, {res['msg_s']:,.0f} msg/s "
                f"({res['delivered']} msgs in {res['elapsed_s']}s, replicated after {res['replicated_s']}s, "
                f"errors {res['errors']}, Produce/Fetch requests per MB {fmt_num(res['produce_per_mb'])}/"
                f"{fmt_num(res['fetch_per_mb'])}, CPU per MB {fmt_num(res['cpu_ms_per_mb'])} ms, "
                f"cluster CPU {res['cluster_cpu_s']}s, client CPU {res['client_cpu_s']}s)")
            runs.append(res)
    out: dict[str, Any] = {"runs": runs}
    for rf, acks in args.runs:
        mine = [x for x in runs if x["rf"] == rf and x["acks"] == acks]
        reps = [x["replicated_mb_s"] for x in mine if x["replicated_mb_s"] is not None]
        out[f"rf{rf}_acks{acks}"] = {"mb_s": statistics.median(x["mb_s"] for x in mine),
                                     "mb_s_min": min(x["mb_s"] for x in mine), "mb_s_max": max(x["mb_s"] for x in mine),
                                     "msg_s": statistics.median(x["msg_s"] for x in mine),
                                     "replicated_mb_s": statistics.median(reps) if len(reps) == len(mine) else None,
                                     "errors": sum(x["errors"] + x["undelivered"] for x in mine)}
        cpus = [x["cpu_ms_per_mb"] for x in mine if x["cpu_ms_per_mb"] is not None]
        out[f"rf{rf}_acks{acks}"]["cpu_ms_per_mb"] = statistics.median(cpus) if cpus else None
    def ratio(a: str, b: str) -> float | None:
        return out[a]["mb_s"] / out[b]["mb_s"] * 100 if a in out and b in out else None

    out["ratio_pct"] = ratio("rf3_acksall", "rf1_acks1")
    out["ratio_idempotent_pct"] = ratio("rf3_acksall", "rf1_acksall")
    return out


def run_failover(c: LocalCluster, args: argparse.Namespace, sig: int = signal.SIGKILL) -> dict[str, Any]:
    trials = []
    for i in range(args.failover_trials):
        res = failover_trial(c, args, sig)
        log(f"{c.label}: failover ({signal.Signals(sig).name}) {i + 1}: "
            f"new leader in metadata after {fmt_num(res['new_leader_s'])}s, "
            f"first ack after {fmt_num(res['first_ack_s'])}s, longest pause {fmt_num(res['longest_pause_s'])}s, "
            f"failed {res['failed']}, lost {res['lost_acked']}, duplicates {res['duplicates']}")
        trials.append(res)
    firsts = [t["first_ack_s"] for t in trials if t["first_ack_s"] is not None]
    leaders = [t["new_leader_s"] for t in trials if t["new_leader_s"] is not None]
    pauses = [t["longest_pause_s"] for t in trials if t["longest_pause_s"] is not None]
    return {"trials": trials,
            "first_ack_s": statistics.median(firsts) if len(firsts) == len(trials) else None,
            "new_leader_s": statistics.median(leaders) if len(leaders) == len(trials) else None,
            "longest_pause_s": statistics.median(pauses) if len(pauses) == len(trials) else None,
            "failed": sum(t["failed"] + t["undelivered"] for t in trials),
            "lost_acked": sum(t["lost_acked"] for t in trials), "duplicates": sum(t["duplicates"] for t in trials)}


def run_cluster(label: str, overrides: dict[str, str], phases: list[tuple[str, Callable[[LocalCluster], Any]]],
                args: argparse.Namespace, out: dict[str, Any]) -> None:
    c = LocalCluster(label, overrides, args)
    try:
        c.up()
        out.setdefault("logs", {})[f"{label}/up"] = c.scan_logs("up")
        for name, fn in phases:
            try:
                out[name] = fn(c)
            except (Exception, KeyboardInterrupt, Interrupted) as e:
                out.setdefault("errors", {})[name] = f"{type(e).__name__}: {e}"
                log(f"{label}: phase {name} FAILED: {type(e).__name__}: {e}")
                c.keep = True
                if not isinstance(e, Exception):
                    raise
            finally:
                out["logs"][f"{label}/{name}"] = c.scan_logs(name)
    finally:
        c.stop()


def print_table(out: dict[str, Any], args: argparse.Namespace) -> None:
    rows: list[tuple[str, str, str]] = []
    if "throughput" in out:
        t = out["throughput"]
        for rf, acks in args.runs:
            r = t[f"rf{rf}_acks{acks}"]
            idempotent = acks == "all" and not args.no_idempotence
            what = f"produce {args.size} B RF={rf} acks={acks}{' idempotent' if idempotent else ''}"
            spread = f"runs {fmt_num(r['mb_s_min'])}..{fmt_num(r['mb_s_max'])}" if args.rounds > 1 else ""
            rows.append((f"{what} (MB/s)", fmt_num(r["mb_s"]), spread))
            rows.append((f"{what} (msgs/s)", fmt_num(r["msg_s"]), ""))
            rows.append((f"{what}: cluster CPU per MB (ms)", fmt_num(r["cpu_ms_per_mb"]), ""))
            if (rf, acks) == (3, "1"):
                rows.append((f"{what} until replicated (MB/s)", fmt_num(r["replicated_mb_s"]), ""))
            if r["errors"]:
                rows.append((f"{what} failed/undelivered", str(r["errors"]), "0"))
        if t["ratio_pct"] is not None:
            ok = "ok" if t["ratio_pct"] >= THROUGHPUT_TARGET_PCT else "MISSED"
            rows.append(("RF=3 acks=all / RF=1 acks=1 (%)", fmt_num(t["ratio_pct"]), f">= {THROUGHPUT_TARGET_PCT:g} {ok}"))
        if t["ratio_idempotent_pct"] is not None:
            rows.append(("RF=3 acks=all / RF=1 acks=all, both idempotent (%)", fmt_num(t["ratio_idempotent_pct"]), ""))
    for key, what in (("latency_rf3_all", "RF=3 acks=all idempotent"), ("latency_rf1_1", "RF=1 acks=1")):
        if key in out:
            r = out[key]
            for q in ("p50", "p99", "max"):
                rows.append((f"latency {what} {q} (ms)", fmt_num(r[f"{q}_ms"]), ""))
            if r["failed"]:
                rows.append((f"latency {what} failed", str(r["failed"]), "0"))
    for key, what in (("failover_sigterm", "SIGTERM (controlled shutdown)"),
                      ("failover_default", "kill -9, default timeouts (9000/2000 ms)"),
                      ("failover_tuned", "kill -9, tuned timeouts (3000/500 ms)")):
        if key in out:
            r = out[key]
            target = f"< {FAILOVER_TARGET_S:g}" if key == "failover_default" else ""
            if target and r["first_ack_s"] is not None:
                target += " ok" if r["first_ack_s"] < FAILOVER_TARGET_S else " MISSED"
            rows.append((f"failover {what}: kill -> new leader (s)", fmt_num(r["new_leader_s"]), ""))
            rows.append((f"failover {what}: kill -> first ack (s)", fmt_num(r["first_ack_s"]), target))
            rows.append((f"failover {what}: longest pause in acks (s)", fmt_num(r["longest_pause_s"]), ""))
            rows.append((f"failover {what}: failed / lost / dup", f"{r['failed']} / {r['lost_acked']} / "
                         f"{r['duplicates']}", "0 / 0 / 0"))
    for key, counts in out.get("logs", {}).items():
        if counts["error"] or counts["traceback"]:
            rows.append((f"node logs after {key}: ERROR / Traceback", f"{counts['error']} / {counts['traceback']}", "0"))
    total = [sum(c[k] for c in out.get("logs", {}).values()) for k in ("error", "traceback")]
    rows.append(("node logs, all phases: ERROR / Traceback lines", f"{total[0]} / {total[1]}", "0"))
    exceptions: dict[str, int] = {}
    for c in out.get("logs", {}).values():
        for name, n in c["exceptions"].items():
            exceptions[name] = exceptions.get(name, 0) + n
    width = max(len(r[0]) for r in rows) + 2
    print(f"\n{'figure':<{width}}{'value':>14}   target / spread")
    for name, value, target in rows:
        print(f"{name:<{width}}{value:>14}   {target}")
    for name, err in out.get("errors", {}).items():
        print(f"phase {name} FAILED: {err}")
    if exceptions:
        print("exceptions in node logs: " + ", ".join(f"{k} x{v}" for k, v in sorted(exceptions.items())))
    if "throughput" in out:
        print(f"\nthroughput: median of {args.rounds} run(s) of {args.messages:,} messages per configuration")
    print(f"producer (throughput): {', '.join(f'{k}={v}' for k, v in PRODUCER_CONF.items())}; "
          "acks=1 without idempotence, acks=all with enable.idempotence=true; acks=all topics have "
          "min.insync.replicas=2.")
    print("failover: a broker is fenced (its partitions get new leaders) when it misses "
          "broker.session.timeout.ms of heartbeats, or sooner when its heartbeat connection closes and "
          "it does not come back within broker.connection.loss.fence.ms (at once if its endpoints refuse "
          "connections, as after kill -9); 'first ack' is the delivery report of the first message "
          "produced after the kill. Throughput: on one machine every replica's work shares the same "
          "cores, so RF=3 costs about three times the CPU of RF=1.")
    print(f"machine: {os.cpu_count()} CPUs, load average {out['load_before']} before, "
          f"{out.get('load_after')} after (clients and all 4 nodes share it)")


def build_parser() -> argparse.ArgumentParser:
    """The command line; `bench_scorecard` takes its defaults too (`parse_args([])`)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suoi-python", default=sys.executable, help="interpreter that runs `-m suoi cluster`")
    ap.add_argument("--ready-timeout", type=float, default=60.0, help="cluster up / start-node --wait")
    ap.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                    help="a server property for every node of both clusters (repeatable)")
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--size", type=int, default=1024, help="value size in bytes (default 1024)")
    ap.add_argument("--messages", type=int, default=200_000, help="messages per throughput run")
    ap.add_argument("--seconds", type=float, default=120.0, help="time bound per throughput run")
    ap.add_argument("--flush-timeout", type=float, default=120.0)
    ap.add_argument("--rounds", type=int, default=3, help="throughput runs per configuration (median)")
    ap.add_argument("--latency-rate", type=float, default=100.0, help="messages/s")
    ap.add_argument("--latency-seconds", type=float, default=10.0)
    ap.add_argument("--failover-rate", type=float, default=500.0, help="messages/s")
    ap.add_argument("--failover-warmup", type=float, default=2.0, help="seconds of acks before the kill")
    ap.add_argument("--failover-timeout", type=float, default=60.0, help="bound on kill -> first ack")
    ap.add_argument("--failover-trials", type=int, default=1, help="kills per cluster (median)")
    ap.add_argument("--queue-kb", type=int, default=PRODUCER_CONF["queue.buffering.max.kbytes"],
                    help="the throughput producer's queue.buffering.max.kbytes")
    ap.add_argument("--no-idempotence", action="store_true",
                    help="acks=all throughput runs without enable.idempotence (librdkafka's idempotent producer "
                         "costs the client ~2.5x the CPU per MB and at most 5 requests in flight)")
    ap.add_argument("--runs", default=",".join(f"{rf}:{acks}" for rf, acks in THROUGHPUT_RUNS),
                    help="throughput configurations RF:acks, comma-separated (default: all four; "
                         "e.g. 1:1,3:all for the ratio alone)")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 20k messages, 3 s of latency")
    ap.add_argument("--no-throughput", action="store_true")
    ap.add_argument("--no-latency", action="store_true")
    ap.add_argument("--no-failover", action="store_true")
    ap.add_argument("--keep-dir", action="store_true", help="keep the cluster dirs' node logs")
    ap.add_argument("--tansu", action="store_true", help="accepted and ignored: Tansu has no replication")
    ap.add_argument("--profile", type=Path, metavar="DIR",
                    help="py-spy record every broker during the RF=3 acks=all runs (collapsed stacks in DIR; "
                         "summarise with benchmarks/profile_buckets.py)")
    ap.add_argument("--json", action="store_true", help="also print one JSON line with every run")
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    args.runs = [(int(rf), acks) for rf, _, acks in (x.partition(":") for x in args.runs.split(","))]
    if any(run not in THROUGHPUT_RUNS for run in args.runs):
        ap.error(f"--runs: each of {', '.join(f'{rf}:{a}' for rf, a in THROUGHPUT_RUNS)}")
    if args.quick:
        args.messages = min(args.messages, 20_000)
        args.rounds = 1
        args.latency_seconds = min(args.latency_seconds, 3.0)
        args.failover_warmup = min(args.failover_warmup, 1.0)
    extra = dict(kv.split("=", 1) for kv in args.override)
    if args.tansu:
        log("--tansu: skipped, Tansu has no partition replication to compare with")

    signal.signal(signal.SIGTERM, _on_sigterm)
    out: dict[str, Any] = {"load_before": [round(x, 2) for x in os.getloadavg()]}
    phases_a: list[tuple[str, Callable[[LocalCluster], Any]]] = []
    if not args.no_throughput:
        phases_a.append(("throughput", lambda c: run_throughput(c, args)))
    if not args.no_latency:
        phases_a.append(("latency_rf3_all", lambda c: latency_run(c, args, 3, "all")))
        phases_a.append(("latency_rf1_1", lambda c: latency_run(c, args, 1, "1")))
    if not args.no_failover:
        phases_a.append(("failover_sigterm", lambda c: run_failover(c, args, signal.SIGTERM)))
        phases_a.append(("failover_default", lambda c: run_failover(c, args)))
    try:
        if phases_a:
            run_cluster("A", extra, phases_a, args, out)
        if not args.no_failover:
            run_cluster("B", {**TUNED_OVERRIDES, **extra}, [("failover_tuned", lambda c: run_failover(c, args))],
                        args, out)
    except (KeyboardInterrupt, Interrupted) as e:
        log(f"interrupted ({type(e).__name__}); clusters stopped")
        return 130
    out["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print_table(out, args)
    if args.json:
        print(json.dumps(clean_json(out)))
    return 1 if out.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
