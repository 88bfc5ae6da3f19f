#!/usr/bin/env python3
"""The node's latency tail while its log cleaner compacts a big dirty topic (issue 19).

The cleaner's rewrite runs on a worker thread, but in Python it holds the GIL: every time the
event loop wants it back it waits up to the switch interval (`sys.setswitchinterval`, set by
`suoi broker`), so a long clean adds latency to every produce and fetch of the node.

Per source tree (``--src LABEL=PATH``, repeatable; rounds alternate the order), a fresh KRaft node
(`common.start_suoi_kraft`, log.cleaner.backoff.ms=500) gets a topic ``dirty`` (1 partition,
cleanup.policy=delete, segment.bytes --segment-mib) filled with --mib MiB of --value-bytes-byte
values over --keys random keys, --records records a batch (librdkafka batch.num.messages, no
compression). Then two paced runs of bench_latency's probe (`latency_run.one_run`: a
confluent-kafka producer at --rate msg/s with linger.ms=0 and a consumer, in their own
processes, e2e latency produce() -> poll, the loop-lag histogram of the admin endpoint read
outside the window) on a topic of its own:

  idle      nothing to clean (the dirty topic sits there, cleanup.policy=delete);
  cleaning  0.3 s before the measured window starts, ``dirty`` is altered to
            cleanup.policy=compact with min.cleanable.dirty.ratio 0.01: the cleaner (polling every
            0.5 s) compacts all its sealed segments. The clean's wall time (alter -> the
            partition's cleaner-offset-checkpoint written) is printed: a window longer than the
            clean also measures the time after it (a cheaper clean hurts the tail for less time).

    python benchmarks/bench_cleaner_tail.py --src before=/tmp/cleanfast-before/src --src after=src \\
        --mib 200 --seconds 20 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import latency_run
from common import REPO_ROOT, Target, log, start_suoi_kraft
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic
from latency_procs import Processes
from latency_table import fmt

DIRTY = "dirty"
#: (key of a run's figures, label) printed per tree and phase: medians over the rounds
ROWS = (("p50_ms", "latency p50 ms"), ("p99_ms", "latency p99 ms"), ("p99.9_ms", "latency p99.9 ms"),
        ("max_ms", "latency max ms"), ("lost", "not received"), ("broker_cpu_pct_window", "broker CPU %"),
        ("loop_lag count", "loop-lag probes"), ("loop_lag >= 5 ms", "loop-lag probes >= 5 ms"),
        ("loop_lag >= 10 ms", "loop-lag probes >= 10 ms"), ("loop_lag max < ms", "loop lag max < ms"),
        ("clean_s", "clean wall s (alter -> checkpoint)"), ("load_avg_1m", "load average (1 min)"))


def fill(bootstrap: str, args: argparse.Namespace) -> float:
    """Create ``dirty`` and write --mib MiB into it; the seconds it took."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    cfg = {"cleanup.policy": "delete", "retention.ms": "-1", "segment.bytes": str(args.segment_mib << 20)}
    admin.create_topics([NewTopic(DIRTY, num_partitions=1, replication_factor=1, config=cfg)])[DIRTY].result(60)
    create_topic_ready(admin)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.num.messages": args.records,
                         "queue.buffering.max.messages": 1_000_000, "acks": 1})
    rng = random.Random(1)
    value = b"v" * args.value_bytes
    t0 = time.perf_counter()
    deadline = time.monotonic() + args.fill_timeout
    n = (args.mib << 20) // (args.value_bytes + 20)  # ~record size on disk with a 12 B key
    for i in range(n):
        while True:
            try:
                producer.produce(DIRTY, value, b"key-%08d" % rng.randrange(args.keys))
                break
            except BufferError:
                producer.poll(0.05)
                if time.monotonic() > deadline:
                    raise TimeoutError("filling the dirty topic took too long") from None
        if i % 10_000 == 0:
            producer.poll(0)
    if producer.flush(max(deadline - time.monotonic(), 1)):
        raise TimeoutError("filling the dirty topic: messages left unsent")
    return time.perf_counter() - t0


def create_topic_ready(admin: AdminClient, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        tm = admin.list_topics(topic=DIRTY, timeout=5.0).topics.get(DIRTY)
        if tm is not None and tm.error is None and all(p.leader >= 0 for p in tm.partitions.values()):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {DIRTY} not ready after {timeout}s")
        time.sleep(0.05)


def start_compaction(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    res = ConfigResource(ConfigResource.Type.TOPIC, DIRTY, incremental_configs=[
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("min.cleanable.dirty.ratio", "0.01", incremental_operation=AlterConfigOpType.SET)])
    for fut in admin.incremental_alter_configs([res]).values():
        fut.result(30)


class Trigger:
    """Starts the compaction when the run takes its first admin sample (0.3 s before the window),
    then times the clean until the partition's cleaner checkpoint exists."""

    def __init__(self, target: Target, timeout_s: float) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self.clean_s: float | None = None
        self.thread: threading.Thread | None = None

    def __call__(self, admin_port: int | None) -> dict[str, Any]:
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="trigger", daemon=True)
            self.thread.start()
        return ORIGINAL_SAMPLE(admin_port)

    def _run(self) -> None:
        checkpoint = Path(str(self.target.workdir)) / "data" / f"{DIRTY}-0" / "cleaner-offset-checkpoint"
        t0 = time.perf_counter()
        start_compaction(self.target.bootstrap)
        deadline = time.monotonic() + self.timeout_s
        while not checkpoint.exists():
            if time.monotonic() > deadline:
                log(f"{self.target.label}: no cleaner checkpoint within {self.timeout_s:.0f} s")
                return
            time.sleep(0.05)
        self.clean_s = time.perf_counter() - t0


ORIGINAL_SAMPLE = latency_run.broker_sample


def one_tree(label: str, src: str, args: argparse.Namespace, procs: Processes, rnd: int) -> list[dict[str, Any]]:
    target = start_suoi_kraft(label, src, args.ready_timeout, "log.cleaner.backoff.ms=500\n")
    procs.brokers.append(target)
    try:
        took = fill(target.bootstrap, args)
        log(f"{label}: {args.mib} MiB written to '{DIRTY}' in {took:.1f} s")
        runs = []
        for phase in ("idle", "cleaning"):
            trigger = Trigger(target, 600) if phase == "cleaning" else None
            latency_run.broker_sample = trigger or ORIGINAL_SAMPLE
            try:
                r = latency_run.one_run(target, procs, args, args.rate, rnd * 2 + len(runs))
            finally:
                latency_run.broker_sample = ORIGINAL_SAMPLE
            if trigger is not None and trigger.thread is not None:
                trigger.thread.join(600)
                r["clean_s"] = trigger.clean_s
            r.update(tree=label, phase=phase, load_avg_1m=os.getloadavg()[0])
            log(f"{label} {phase}: p99 {fmt(r['p99_ms'])} p99.9 {fmt(r['p99.9_ms'])} max {fmt(r['max_ms'])} ms, "
                f"loop lag max < {fmt(r.get('loop_lag max < ms'))} ms, clean {fmt(r.get('clean_s'))} s, "
                f"load {r['load_avg_1m']:.2f}")
            runs.append(r)
        return runs
    finally:
        procs.stop_all()


def print_table(runs: list[dict[str, Any]], labels: list[str]) -> None:
    cols = [(t, p) for t in labels for p in ("idle", "cleaning")]
    print(f"{'':38s}" + "".join(f"{t + ' ' + p:>20s}" for t, p in cols))
    for key, name in ROWS:
        cells = []
        for t, p in cols:
            vals = [float(r[key]) for r in runs if r["tree"] == t and r["phase"] == p and r.get(key) is not None]
            cells.append(f"{fmt(statistics.median(vals)) if vals else '-':>20s}")
        print(f"{name:38s}" + "".join(cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", action="append", default=[], metavar="LABEL=PATH",
                    help="a suoi src tree (repeatable; default: this checkout's src)")
    ap.add_argument("--mib", type=int, default=200, help="MiB written to the dirty topic (default 200)")
    ap.add_argument("--value-bytes", type=int, default=100)
    ap.add_argument("--records", type=int, default=10, help="records a batch (default 10)")
    ap.add_argument("--keys", type=int, default=200_000)
    ap.add_argument("--segment-mib", type=int, default=16)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=20.0, help="measured seconds per run (default 20)")
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--drain", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--fill-timeout", type=float, default=600.0)
    ap.add_argument("--ready-timeout", type=float, default=60.0)
    args = ap.parse_args()
    # what latency_run.one_run reads besides (bench_latency.py's defaults)
    args.partitions, args.size, args.linger_ms, args.client_prop = 1, 100, "0", []
    args.neighbour, args.probe_ms, args.py_spy, args.scrape_every, args.probe = 0, 20.0, None, 0.0, None
    trees = [s.split("=", 1) for s in args.src] or [["suoi", str(REPO_ROOT / "src")]]
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # KeyboardInterrupt: every process stopped
    procs = Processes()
    runs: list[dict[str, Any]] = []
    try:
        log(f"load average {os.getloadavg()}; {args.mib} MiB of {args.value_bytes} B values, {args.records} a "
            f"batch, {args.keys:,} keys; probe {args.rate} msg/s for {args.seconds:.0f} s")
        for rnd in range(args.rounds):
            for label, src in trees if rnd % 2 == 0 else trees[::-1]:
                runs += one_tree(label, src, args, procs, rnd)
    except KeyboardInterrupt:
        log("interrupted: stopping every process started")
    finally:
        procs.stop_all()
    if runs:
        print(f"latency ms (produce() call -> consumer poll), {args.rate} msg/s, linger.ms=0; medians over "
              f"{args.rounds} round(s); load average at the end {os.getloadavg()[0]:.2f}")
        print_table(runs, [label for label, _ in trees])


if __name__ == "__main__":
    sys.exit(main())
