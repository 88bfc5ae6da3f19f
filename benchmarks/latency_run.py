"""One paced run of bench_latency.py against one broker: the client processes started, the broker
watched over the measured window, and the run's figures (latency percentiles, CPU, loop lag, the
probe's split with `--probe`)."""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import time
import uuid
from array import array
from typing import Any

from common import Target, create_topic, log, pauses_between, percentile, read_cpu_s
from latency_breakdown import breakdown
from latency_clients import consumer_main, producer_main
from latency_procs import Processes, cpu_of, run_queue_wait_s, start_neighbours, start_py_spy
from latency_watch import ApiVersionsProbe, Scraper, broker_sample

#: the admin endpoint's first sample of a run is taken this long before the measured window
SAMPLE_LEAD_S = 0.3


def wait_for(queue: Any, deadline_s: float, what: str) -> dict[str, Any]:
    import queue as queue_mod
    try:
        return queue.get(timeout=deadline_s)
    except queue_mod.Empty:
        raise TimeoutError(f"no result from the {what} within {deadline_s:.0f} s") from None


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
