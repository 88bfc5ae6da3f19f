"""bench_replication.py's throughput and latency phases (see its docstring): one throughput run
per (RF, acks) with its cluster CPU and Produce/Fetch requests per MB (py-spy on every broker with
--profile), the medians over rounds, and one paced acks=all latency run. bench_scorecard.py runs
`throughput_run` and `latency_run` on its own clusters."""

from __future__ import annotations

import argparse
import functools
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from common import MB, fmt_num, log, payload, percentile
from confluent_kafka import Consumer, KafkaException, Producer
from replication_cluster import BROKERS, LocalCluster, create_topic, delete_topic, high_watermarks, topic_configs, wait_for

# (replication factor, acks); RF=1 acks=all is a diagnostic: the same idempotent producer (at most 5
# requests in flight per broker) without replication.
THROUGHPUT_RUNS = [(1, "1"), (3, "1"), (3, "all"), (1, "all")]
PRODUCER_CONF = {"linger.ms": 5, "batch.size": 256 * 1024, "batch.num.messages": 100_000,
                 "compression.type": "none", "queue.buffering.max.messages": 1_000_000,
                 "queue.buffering.max.kbytes": 512 * 1024}


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
                  **PRODUCER_CONF, "queue.buffering.max.kbytes": args.queue_kb, "batch.size": args.batch_size,
                  "delivery.report.only.error": True, "on_delivery": on_delivery})
    watcher = warm_up(c, p, topic, args.partitions)
    value = payload(args.size)
    profilers = start_profilers(c, args, f"rf{rf}-acks{acks}") if (rf, acks) == (3, "all") else []
    requests0 = c.request_counts()
    cpu0, ccpu0 = c.cpu_s(), time.process_time()
    t0 = time.perf_counter()
    sent = produce_loop(p, topic, value, args.messages, t0 + args.seconds)
    remaining = p.flush(args.flush_timeout)
    elapsed = time.perf_counter() - t0
    delivered = sent - errors["n"] - remaining
    # acks=1 returns before the followers have the data: also time until the high watermarks
    # (advanced by the followers' fetches) cover everything delivered.
    try:
        wait_for("high watermarks", lambda: high_watermarks(watcher, topic, args.partitions) >= delivered + 1,
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
    res.update({f"{api.lower()}_per_mb": (requests1[api] - requests0[api]) / mb if mb else None
                for api in ("Produce", "Fetch")})
    res.update(produce_pipeline(requests0, requests1, elapsed, args.partitions))
    res["cpu_ms_per_mb"] = None if res["cluster_cpu_s"] is None or not delivered else \
        res["cluster_cpu_s"] * 1000 / (delivered * args.size / MB)
    if errors["first"]:
        res["first_error"] = errors["first"]
    delete_topic(c.bootstrap, topic)
    return res


def warm_up(c: LocalCluster, p: Producer, topic: str, partitions: int) -> Consumer:
    """Connect, and (idempotent) get a producer id, before the clock starts; returns a consumer
    for the topic's high watermarks (its metadata already fetched)."""
    p.produce(topic, b"warm-up")
    if p.flush(30):
        raise RuntimeError(f"{topic}: warm-up message not delivered")
    watcher = Consumer({"bootstrap.servers": c.bootstrap, "group.id": f"bench-{uuid.uuid4().hex}"})
    high_watermarks(watcher, topic, partitions)
    return watcher


def produce_loop(p: Producer, topic: str, value: bytes, messages: int, deadline: float) -> int:
    """A tight produce() loop (BufferError -> poll(0.1)) until `messages` are queued or the
    perf_counter() `deadline`; returns how many were."""
    produce, poll = p.produce, p.poll
    sent = 0
    while sent < messages and time.perf_counter() < deadline:
        try:
            produce(topic, value)
        except BufferError:
            poll(0.1)
            continue
        sent += 1
        if not sent & 63:
            poll(0)
    return sent


def produce_pipeline(before: dict[str, float], after: dict[str, float], elapsed_s: float,
                     partitions: int) -> dict[str, float | None]:
    """How the run's Produce requests were pipelined, from the brokers' request metrics: their mean
    time at the broker (arrival to answer ready) and its wait for the ISR, and by Little's law the
    mean number in flight per partition (sum of their times / elapsed / partitions). librdkafka's
    idempotent producer sends one Produce per partition at a time (it counts messages, not
    requests, against its 5-request window), so for acks=all that figure is ~1 and throughput is
    a batch per partition per (broker time + client turnaround): `cycle_ms` is the elapsed time
    per Produce of a partition, `broker_share` the part of that cycle the broker held it."""
    count = after["Produce"] - before["Produce"]
    if count <= 0 or elapsed_s <= 0:
        return {"produce_ms": None, "produce_wait_ms": None, "produce_in_flight": None, "cycle_ms": None,
                "broker_share": None}
    total_ms = after["Produce_ms"] - before["Produce_ms"]
    cycle_ms = elapsed_s * 1000 * partitions / count
    return {"produce_ms": total_ms / count, "produce_wait_ms": (after["Produce_remote_ms"] - before["Produce_remote_ms"]) / count,
            "produce_in_flight": total_ms / (elapsed_s * 1000) / partitions, "cycle_ms": cycle_ms,
            "broker_share": total_ms / count / cycle_ms}


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
            rate = str(getattr(args, "profile_rate", 250))
            procs.append(subprocess.Popen([py_spy, "record", "--format", "raw", "--rate", rate, "--nonblocking",
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
                f"cluster CPU {res['cluster_cpu_s']}s, client CPU {res['client_cpu_s']}s; Produce at the broker "
                f"{fmt_num(res['produce_ms'])} ms (ISR wait {fmt_num(res['produce_wait_ms'])} ms), in flight per "
                f"partition {fmt_num(res['produce_in_flight'])}, cycle per partition {fmt_num(res['cycle_ms'])} ms)")
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
        for key in ("cpu_ms_per_mb", "produce_ms", "produce_in_flight", "cycle_ms"):
            got = [x[key] for x in mine if x.get(key) is not None]
            out[f"rf{rf}_acks{acks}"][key] = statistics.median(got) if got else None
    def ratio(a: str, b: str) -> float | None:
        return out[a]["mb_s"] / out[b]["mb_s"] * 100 if a in out and b in out else None

    out["ratio_pct"] = ratio("rf3_acksall", "rf1_acks1")
    out["ratio_idempotent_pct"] = ratio("rf3_acksall", "rf1_acksall")
    return out
