#!/usr/bin/env python3
"""The metadata log's fsync and the event loop: how long the loop stalls while KRaft commits
metadata (what a topic's creation does), on a disk busy with other writes (what produce load
does to the partitions' segments).

Prints figures; it is not a test. Per run, in a child process (so each tree's ``suoi`` is the one
imported: ``--src LABEL=DIR`` puts DIR first on PYTHONPATH, repeatable, runs alternate between the
trees): a single-voter ``QuorumDriver`` with ``fsync=True`` (the only voter leads at once; no
network) in a temporary directory on a real disk (``--dir``, not tmpfs), a thread that writes
256 KiB and fsyncs it in a loop in the same directory (``--disk-load``), and a loop-lag probe (a
1 ms timer; how late each one fires). Then ``--appends`` times ``append_and_wait`` of 3 entries
(~ a TopicRecord and two PartitionRecords), one after the other. Reported per run: commit latency
(append -> committed) and loop lag while the appends ran (p50 / p99 / max, and how many probes were
late by 5 ms or more), plus the loop thread's CPU per commit.

``--broker``: the same question on a real node. Per tree and round, a KRaft combined node (one
voter) runs inside ``latency_probe.py`` (every loop callback timed); a librdkafka producer sends
``--rate`` msg/s of 100 B to a 6-partition topic; meanwhile ``--topics`` topics are created one
after the other (AdminClient, until their partitions have leaders). Reported: the creation latency,
and the loop callbacks of >= 5 ms wall inside the creations' window: how many, the longest, and
the longest by name (``QuorumDriver._tick`` held the loop for the metadata log's fsync before).

  python benchmarks/bench_raft_flush.py --src before=/tmp/raftsync-before/src --src after=src --rounds 3
  python benchmarks/bench_raft_flush.py --broker --src before=/tmp/raftsync-before/src --src after=src
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def _disk_load(directory: Path, stop: threading.Event) -> None:
    chunk = os.urandom(256 << 10)
    path = directory / "disk-load.bin"
    with open(path, "wb") as f:
        while not stop.is_set():
            f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
            if f.tell() > (64 << 20):
                f.seek(0)
                f.truncate()


async def _child(args: argparse.Namespace) -> dict[str, float]:
    from suoi.raft_driver import QuorumDriver

    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-raft-flush-") as tmp:
        d = Path(tmp)
        driver = QuorumDriver(1, {1: ("127.0.0.1", 1)}, d / "meta", fsync=True)
        await driver.start()
        deadline = time.monotonic() + 10
        while not driver.is_leader:
            if time.monotonic() > deadline:
                raise SystemExit("the single voter did not lead within 10 s")
            await asyncio.sleep(0.01)
        stop = threading.Event()
        load = threading.Thread(target=_disk_load, args=(d, stop), daemon=True)
        if args.disk_load:
            load.start()
            await asyncio.sleep(0.5)  # the disk is busy before the first commit
        lags: list[float] = []
        probing = True

        async def probe() -> None:
            while probing:
                t0 = loop.time()
                await asyncio.sleep(0.001)
                lags.append((loop.time() - t0 - 0.001) * 1000)

        task = asyncio.create_task(probe())
        commits: list[float] = []
        cpu0 = time.thread_time()
        for k in range(args.appends):
            payloads = [b"T" * 120 + str(k).encode(), b"P" * 150, b"P" * 150]
            t0 = time.perf_counter()
            await driver.append_and_wait(payloads, timeout=10)
            commits.append((time.perf_counter() - t0) * 1000)
        cpu = time.thread_time() - cpu0
        probing = False
        await task
        stop.set()
        if args.disk_load:
            load.join()
        await driver.stop()
    return {
        "commit_p50_ms": statistics.median(commits), "commit_p99_ms": _pct(commits, 0.99), "commit_max_ms": max(commits),
        "lag_p50_ms": statistics.median(lags), "lag_p99_ms": _pct(lags, 0.99), "lag_max_ms": max(lags),
        "late_5ms": float(sum(1 for x in lags if x >= 5)), "probes": float(len(lags)),
        "loop_cpu_us_per_commit": cpu / len(commits) * 1e6,
    }


def _producer(bootstrap: str, topic: str, rate: int, stop: object) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "all"})
    value = b"x" * 100
    t0 = time.perf_counter()
    n = 0
    while not stop.is_set():  # type: ignore[attr-defined]
        due = t0 + n / rate
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        producer.produce(topic, value, partition=n % 6)
        producer.poll(0)
        n += 1
    producer.flush(10)


def _broker_run(label: str, src: str, args: argparse.Namespace, probe_dir: str) -> dict[str, float]:
    import multiprocessing as mp
    import signal
    import uuid

    from common import create_topic, start_suoi_kraft

    out = os.path.join(probe_dir, label + "-" + uuid.uuid4().hex[:6])
    launcher = [str(Path(__file__).resolve().parent / "latency_probe.py"), "--out", out]
    target = start_suoi_kraft(label, src, 60.0, launcher=launcher)
    try:
        create_topic(target.bootstrap, "load", 6, timeout=60)
        ctx = mp.get_context("spawn")
        stop = ctx.Event()
        prod = ctx.Process(target=_producer, args=(target.bootstrap, "load", args.rate, stop))
        prod.start()
        time.sleep(3.0)  # the producer connected and at its rate
        assert target.proc is not None
        target.proc.send_signal(signal.SIGUSR1)  # start the probe's record here
        time.sleep(0.5)
        w0 = time.perf_counter_ns()
        creates = []
        for k in range(args.topics):
            t = time.perf_counter()
            create_topic(target.bootstrap, f"created-{uuid.uuid4().hex[:8]}-{k}", 3, timeout=30)
            creates.append((time.perf_counter() - t) * 1000)
        w1 = time.perf_counter_ns()
        stop.set()
        prod.join(30)
        target.proc.send_signal(signal.SIGUSR1)
        path = out + ".1.json"
        deadline = time.monotonic() + 30
        while not os.path.exists(path):
            if time.monotonic() > deadline:
                raise SystemExit(f"no probe dump at {path}")
            time.sleep(0.1)
        dump = json.loads(Path(path).read_text())
    finally:
        target.stop()
    slow = [s for s in dump["slow"] if w0 <= s[1] <= w1 and s[2] >= 5e6]
    by_name: dict[str, float] = {}
    for name, _, wall, *_ in slow:
        by_name[name] = max(by_name.get(name, 0.0), wall / 1e6)
    raft = max((w for n, w in by_name.items() if "Quorum" in n or "raft" in n.lower()), default=0.0)
    return {"create_p50_ms": statistics.median(creates), "create_max_ms": max(creates),
            "stalls_5ms": float(len(slow)), "stall_max_ms": max((s[2] / 1e6 for s in slow), default=0.0),
            "raft_stall_max_ms": raft, "slept_5ms": float(sum(1 for s in slow if s[4])),
            "top": " ".join(f"{n}:{w:.1f}" for n, w in sorted(by_name.items(), key=lambda kv: -kv[1])[:4])}  # type: ignore[dict-item]


def _broker_main(args: argparse.Namespace, trees: list[tuple[str, str]]) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    probe_dir = tempfile.mkdtemp(prefix="bench-raft-flush-probe-")
    results: dict[str, list[dict[str, float]]] = {label: [] for label, _ in trees}
    for r in range(args.rounds):
        for label, src in trees:
            res = _broker_run(label, src, args, probe_dir)
            results[label].append(res)
            print(f"[round {r + 1}/{args.rounds}] {label}: {res}", file=sys.stderr, flush=True)
            if args.json:
                print(json.dumps({"tree": label, "round": r, **res}))
    keys = ["create_p50_ms", "create_max_ms", "stalls_5ms", "stall_max_ms", "raft_stall_max_ms", "slept_5ms"]
    _table(results, trees, keys)
    return 0


def _table(results: dict[str, list[dict[str, float]]], trees: list[tuple[str, str]], keys: list[str]) -> None:
    print("| median of runs (min-max) | " + " | ".join(label for label, _ in trees) + " |")
    print("| --- |" + " --- |" * len(trees))
    for k in keys:
        cells = []
        for label, _ in trees:
            vals = [res[k] for res in results[label]]
            cells.append(f"{statistics.median(vals):.2f} ({min(vals):.2f}-{max(vals):.2f})")
        print(f"| {k} | " + " | ".join(cells) + " |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", action="append", default=[], metavar="LABEL=DIR",
                    help="a tree's src directory (repeatable; default: this checkout's src)")
    ap.add_argument("--rounds", type=int, default=3, help="runs per tree, alternating (default 3)")
    ap.add_argument("--appends", type=int, default=200, help="commits per run (default 200)")
    ap.add_argument("--dir", default=str(Path(__file__).resolve().parent.parent),
                    help="where the temporary directories go: a real disk, not tmpfs (default: the checkout)")
    ap.add_argument("--no-disk-load", dest="disk_load", action="store_false")
    ap.add_argument("--broker", action="store_true", help="a real node under produce load (module docstring)")
    ap.add_argument("--rate", type=int, default=2000, help="--broker: producer msg/s (default 2000)")
    ap.add_argument("--topics", type=int, default=10, help="--broker: topics created per run (default 10)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true", help="print every run's figures as JSON lines")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_child(args))))
        return 0
    trees = [(s.split("=", 1)[0], s.split("=", 1)[1]) for s in args.src] or [
        ("this", str(Path(__file__).resolve().parent.parent / "src"))]
    if args.broker:
        return _broker_main(args, trees)
    results: dict[str, list[dict[str, float]]] = {label: [] for label, _ in trees}
    for r in range(args.rounds):
        for label, src in trees:
            env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())}
            cmd = [sys.executable, __file__, "--child", "--appends", str(args.appends), "--dir", args.dir]
            if not args.disk_load:
                cmd.append("--no-disk-load")
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=True).stdout
            res = json.loads(out.strip().splitlines()[-1])
            results[label].append(res)
            if args.json:
                print(json.dumps({"tree": label, "round": r, **res}))
            print(f"[round {r + 1}/{args.rounds}] {label}: commit p50 {res['commit_p50_ms']:.2f} ms, loop lag p99 "
                  f"{res['lag_p99_ms']:.2f} / max {res['lag_max_ms']:.2f} ms, late>=5ms {res['late_5ms']:.0f}",
                  file=sys.stderr, flush=True)
    keys = ["commit_p50_ms", "commit_p99_ms", "commit_max_ms", "lag_p50_ms", "lag_p99_ms", "lag_max_ms", "late_5ms",
            "loop_cpu_us_per_commit"]
    _table(results, trees, keys)
    return 0


if __name__ == "__main__":
    sys.exit(main())
