"""What creating and deleting big topics costs the other clients of a node (issue 19: loop stalls).

A KRaft node creates the local logs of a new topic's partitions when its reconciler applies the
metadata record, and removes them when the topic is deleted. Whatever of that work runs on the
node's event loop delays every client's Produce and Fetch meanwhile. Per `--src` tree and round:
a KRaft node (run inside `stall_probe.py`, a 1 ms ticker on its loop that writes every stall of
>= 2 ms with its time), a paced librdkafka producer (`--rate` msg/s, linger.ms=0, on a
`--probe-partitions` topic) and a consumer of that topic (`latency_clients.py`, bench_latency's
clients: every message's produce() -> poll() latency, same clock as the windows). After a quiet
stretch (the baseline), for each `--partitions` count: a topic of that many partitions is created
(CreateTopics, then Metadata polled until every partition has a leader, then one record produced
to every partition and flushed: the topic is usable), a pause, then it is deleted (DeleteTopics,
then until its partition directories are gone from the data dir). Printed per window, medians
over the rounds (max): the longest loop stall, the stalls of >= 5 ms, the probe's e2e p99.9 and
max for the messages produced in that window, and the times to answer / leaders / usable (create)
or gone from Metadata / from disk (delete); the admin endpoint's loop-lag histogram (a 250 ms
probe) gives its own "max <" bound. Trees alternate per round; lost probe messages are counted.
On a shared machine the stalls are mostly other processes' (see the quiet window); ``--callbacks``
runs the node in `latency_probe.py` instead (every loop callback timed, thread CPU as well as wall)
and adds per window the reconciler's loop CPU, its longest callback, the callbacks of >= 5 ms wall
and the longest callback's CPU (the create window then includes the first use).

    git archive main src | tar -x -C /tmp/reconcile-before
    python benchmarks/bench_reconcile_stall.py --src before=/tmp/reconcile-before/src --src after=src
    python benchmarks/bench_reconcile_stall.py --callbacks --partitions 1000 5000 --src before=... --src after=src
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import statistics
import time
import uuid
from array import array
from pathlib import Path
from typing import Any

from common import REPO_ROOT, Target, admin_histogram, create_topic, log, pauses_between, percentile, start_suoi_kraft
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from latency_clients import consumer_main, producer_main
from latency_run import wait_for
from stall_probe import read_stalls

PROBE = str(Path(__file__).resolve().parent / "stall_probe.py")
CALLBACKS = str(Path(__file__).resolve().parent / "latency_probe.py")
RECONCILER = "task LocalReconciler.run"
LAG = "suoi_eventloop_lag_seconds"


def poll_until(what: str, check: Any, timeout: float, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout:.0f} s")
        time.sleep(every)


def all_led(admin: AdminClient, name: str, count: int) -> bool:
    try:
        tm = admin.list_topics(topic=name, timeout=5.0).topics.get(name)
    except KafkaException:
        return False
    return (tm is not None and tm.error is None and len(tm.partitions) == count
            and all(p.leader >= 0 and p.error is None for p in tm.partitions.values()))


def gone(admin: AdminClient, name: str) -> bool:
    try:
        tm = admin.list_topics(topic=name, timeout=5.0).topics.get(name)
    except KafkaException:
        return False
    return tm is None or tm.error is not None


def dirs_left(data: Path, name: str) -> int:
    prefix = name + "-"
    return sum(1 for child in data.iterdir() if child.name.startswith(prefix) and child.name[len(prefix):].isdigit())


def create_window(node: Target, admin: AdminClient, name: str, count: int, timeout: float) -> dict[str, float]:
    """Create `name`, wait until the node leads every partition (t1), then until every partition
    took a record (t2: one Produce of `count` partitions, its own window); the phases' times (s)."""
    seen = os.path.getsize(node.logfile or "")
    t0 = time.perf_counter_ns()
    admin.create_topics([NewTopic(name, num_partitions=count, replication_factor=1)],
                        operation_timeout=timeout, request_timeout=timeout)[name].result(timeout=timeout)
    answered = time.perf_counter_ns()
    poll_until(f"leaders of {name}", lambda: all_led(admin, name, count), timeout, every=0.1)
    leaders = time.perf_counter_ns()
    # the node's own word that the replicas lead (its log file: asking it would load its loop)
    poll_until(f"{name}'s logs and leaders on the node", lambda: applied(node, count, seen), timeout, every=0.01)
    installed = time.perf_counter_ns()
    failed: list[Any] = []
    p = Producer({"bootstrap.servers": node.bootstrap, "linger.ms": 5, "log_level": 3,
                  "message.timeout.ms": int(timeout * 1000)})
    for i in range(count):
        p.produce(name, b"x", partition=i, on_delivery=lambda err, _m: err is not None and failed.append(err))
    left = p.flush(timeout)
    if left or failed:
        raise RuntimeError(f"{name}: {left} records unflushed, {len(failed)} failed (first {failed[:1]})")
    usable = time.perf_counter_ns()
    return {"t0": t0, "t1": installed, "t2": usable, "answer s": (answered - t0) / 1e9,
            "leaders s": (leaders - t0) / 1e9, "installed s": (installed - t0) / 1e9, "usable s": (usable - t0) / 1e9}


def applied(node: Target, count: int, seen: int) -> bool:
    """The node logged "leadership changes applied: leader of `count` partitions" (after `seen` bytes)."""
    with open(node.logfile or "", "rb") as f:
        f.seek(seen)
        return f"leadership changes applied: leader of {count} partitions".encode() in f.read()


def delete_window(node: Target, admin: AdminClient, name: str, timeout: float) -> dict[str, float]:
    """Delete `name` and wait until its partition directories are gone; the phases' times (s)."""
    data = Path(node.workdir or "") / "data"
    t0 = time.perf_counter_ns()
    admin.delete_topics([name], operation_timeout=timeout, request_timeout=timeout)[name].result(timeout=timeout)
    answered = time.perf_counter_ns()
    poll_until(f"{name} gone from Metadata", lambda: gone(admin, name), timeout)
    unlisted = time.perf_counter_ns()
    poll_until(f"{name} gone from disk", lambda: dirs_left(data, name) == 0, timeout)
    removed = time.perf_counter_ns()
    return {"t0": t0, "t1": removed, "answer s": (answered - t0) / 1e9, "unlisted s": (unlisted - t0) / 1e9,
            "removed s": (removed - t0) / 1e9}


def window_figures(w: dict[str, float], stalls: list[tuple[int, int]], stamps: array) -> dict[str, float]:
    """The loop's stalls that ended in the window, and the probe messages produced in it."""
    t0, t1 = w["t0"], w["t1"]
    gaps = [gap / 1e6 for end, gap in stalls if t0 <= end <= t1 + 50_000_000]  # a stall ending just after
    lat = sorted((stamps[i + 3] - stamps[i + 2]) / 1e6 for i in range(0, len(stamps), 4)
                 if t0 <= stamps[i + 2] <= t1)
    out = {k: v for k, v in w.items() if k.endswith(" s")}
    out.update({"stall max ms": max(gaps, default=0.0), "stalls >= 5 ms": sum(g >= 5 for g in gaps),
                "stalled ms": sum(gaps), "e2e n": len(lat), "e2e p99.9 ms": percentile(lat, 99.9),
                "e2e max ms": lat[-1] if lat else float("nan")})
    return out


def one_round(label: str, src: str, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """One node of tree `src`: the probe clients, the quiet window, then each count's create and delete."""
    out_path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"stalls-{os.getpid()}-{uuid.uuid4().hex[:6]}.txt")
    launcher = [CALLBACKS, "--out", out_path] if args.callbacks else [PROBE, "--out", out_path]
    node = start_suoi_kraft(label, src, 60, "auto.create.topics.enable=false\n", launcher=launcher)
    dumps = Dumps(node, out_path) if args.callbacks else None
    ctx = mp.get_context("spawn")
    results, ready, stop = ctx.Queue(), ctx.Event(), ctx.Event()
    t0_ns, expected = ctx.Value("q", 0), ctx.Value("q", -1)
    cfg = {"bootstrap": node.bootstrap, "topic": "probe", "partitions": args.probe_partitions, "rate": args.rate,
           "seconds": args.seconds, "warmup": args.warmup, "size": 100, "drain": 30.0, "linger_ms": 0.0,
           "client_props": {}}
    consumer = ctx.Process(target=consumer_main, args=(cfg, ready, expected, stop, results), name="consumer")
    producer = ctx.Process(target=producer_main, args=(cfg, t0_ns, results), name="producer")
    windows: dict[str, dict[str, float]] = {}
    callbacks: dict[str, dict[str, float]] = {}
    lags: dict[str, dict[str, float]] = {}
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    try:
        create_topic(node.bootstrap, "probe", args.probe_partitions)
        consumer.start()
        if not ready.wait(30):
            raise TimeoutError("the consumer process did not start within 30 s")
        producer.start()
        start = time.perf_counter_ns() + 2_000_000_000
        t0_ns.value = start
        measured = start + int(args.warmup * 1e9)
        time.sleep(max(0.0, (measured - time.perf_counter_ns()) / 1e9))
        windows["quiet"] = {"t0": time.perf_counter_ns(), "t1": time.perf_counter_ns() + int(args.pause * 1e9)}
        time.sleep(args.pause)
        for count in args.partitions:
            name = f"big-{count}-{uuid.uuid4().hex[:6]}"
            for kind in ("create", "delete"):
                before = admin_histogram(node.admin_port, LAG)
                if dumps is not None:
                    dumps.take()  # (what came before the window: not counted)
                w = (create_window(node, admin, name, count, args.timeout) if kind == "create"
                     else delete_window(node, admin, name, args.timeout))
                windows[f"{kind} {count}"] = w
                if "t2" in w:
                    windows[f"use {count}"] = {"t0": w["t1"], "t1": w.pop("t2")}
                lags[f"{kind} {count}"] = pauses_between(before, admin_histogram(node.admin_port, LAG))
                if dumps is not None:
                    callbacks[f"{kind} {count}"] = callback_figures(dumps.take())
                log(f"{label}: {kind} {count}: " + ", ".join(f"{k} {v:.2f}" for k, v in w.items() if k.endswith(" s")))
                time.sleep(args.pause)
        if time.perf_counter_ns() > measured + args.seconds * 1e9:
            log(f"{label}: the windows outlasted the probe's {args.seconds} s: raise --seconds")
        prod = wait_for(results, args.seconds + 90, "producer")
        expected.value = prod["sent"]
        cons = wait_for(results, 60, "consumer")
    finally:
        stop.set()
        for proc in (producer, consumer):
            proc.join(5)
            if proc.is_alive():
                proc.kill()
        node.stop()
    stamps = array("q", cons["stamps"])
    stalls = [] if args.callbacks else read_stalls(out_path)
    if not args.callbacks:
        os.unlink(out_path)
    lost = prod["sent"] - len(stamps) // 4
    figures = {}
    for key, w in windows.items():
        figures[key] = window_figures(w, stalls, stamps)
        figures[key]["lag max < ms (admin)"] = lags.get(key, {}).get("max < ms", float("nan"))
        figures[key]["probe lost"] = lost
        figures[key].update(callbacks.get(key, {}))
    return figures


class Dumps:
    """`latency_probe.py`'s dumps (SIGUSR1: what it gathered since the last one, then it starts over)."""

    def __init__(self, node: Target, prefix: str) -> None:
        self.node, self.prefix, self.n = node, prefix, 0

    def take(self) -> dict[str, Any]:
        os.kill(self.node.pid or 0, signal.SIGUSR1)
        path = f"{self.prefix}.{self.n}.json"
        self.n += 1
        poll_until(f"dump {path}", lambda: os.path.exists(path), 30, every=0.01)
        with open(path) as f:
            data = json.load(f)
        os.unlink(path)
        return data


def callback_figures(dump: dict[str, Any]) -> dict[str, float]:
    """The window's loop callbacks: the reconciler's CPU and its longest callback, every callback
    of >= 5 ms wall (`latency_probe.SLOW_WALL_S`) and the longest one's CPU."""
    slow = dump["slow"]  # (name, start ns, wall ns, cpu ns, ...) over SLOW_CPU_S or SLOW_WALL_S
    mine = [s for s in slow if s[0] == RECONCILER]
    long = [s for s in slow if s[2] >= 5_000_000]
    return {"reconciler cpu ms": dump["by_name"].get(RECONCILER, [0, 0])[1] / 1e6,
            "reconciler longest cpu ms": max((s[3] for s in mine), default=0) / 1e6,
            "reconciler longest wall ms": max((s[2] for s in mine), default=0) / 1e6,
            "callbacks >= 5 ms": len(long), "longest callback cpu ms": max((s[3] for s in slow), default=0) / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", action="append", default=[], metavar="LABEL=PATH", help="src trees (default: this one)")
    ap.add_argument("--partitions", type=int, nargs="+", default=[100, 500, 1000])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--rate", type=int, default=1000, help="probe messages per second (default 1000)")
    ap.add_argument("--probe-partitions", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=60.0, help="the probe's measured seconds (cover every window)")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--pause", type=float, default=2.0, help="quiet seconds before and between windows")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--callbacks", action="store_true",
                    help="run the node in latency_probe.py (every loop callback timed) instead of stall_probe.py: "
                         "per window the reconciler's loop CPU and longest callback (no stall figures)")
    args = ap.parse_args()
    trees = [s.split("=", 1) for s in args.src] or [["this", str(REPO_ROOT / "src")]]
    runs: dict[str, dict[str, dict[str, list[float]]]] = {label: {} for label, _ in trees}
    for rnd in range(args.rounds):
        for label, path in (trees if rnd % 2 == 0 else trees[::-1]):
            for key, figures in one_round(label, path, args).items():
                for k, v in figures.items():
                    runs[label].setdefault(key, {}).setdefault(k, []).append(v)
    print(f"uptime: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}; probe {args.rate} msg/s on "
          f"{args.probe_partitions} partitions (linger.ms=0), {args.rounds} rounds; medians (max)")
    for label, by_window in runs.items():
        for key, figures in by_window.items():
            print(f"{label:>8} {key:>12}: " + "; ".join(
                f"{k} {statistics.median(v):.2f} ({max(v):.2f})" for k, v in figures.items() if k != "probe lost"))
        print(f"{label:>8} probe messages lost per round: {runs[label]['quiet']['probe lost']}")


if __name__ == "__main__":
    main()
