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
              enable.idempotence=true (librdkafka then sends one Produce per partition at a
              time: it counts messages, not requests, against its 5-request window).  Runs:
              RF=1 acks=1 (baseline), RF=3 acks=1, RF=3 acks=all (topic
              min.insync.replicas=2), and RF=1 acks=all as a diagnostic (the same idempotent
              producer without replication), --rounds (3) times each, order alternating,
              medians reported; the topic is deleted after each run.  Also timed: until the
              high watermarks cover everything delivered ("until replicated": acks=1 returns
              before the followers have the data).  Ratio RF=3 acks=all / RF=1 acks=1
              against the target (>= 50 %, issue 19).  Per run also: the Produce requests' mean
              time at the brokers and, by Little's law, how many were in flight per partition
              (librdkafka's idempotent producer keeps one per partition: the rest of the cycle
              is the client's); --batch-size sets batch.size (librdkafka's default: 1000000).
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
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import clean_json, log  # noqa: E402
from replication_cluster import LocalCluster  # noqa: E402
from replication_failover import run_failover  # noqa: E402
from replication_phases import PRODUCER_CONF, THROUGHPUT_RUNS, latency_run, run_throughput, throughput_run  # noqa: E402
from replication_table import print_table  # noqa: E402

# The phases live in replication_phases.py / replication_failover.py, the cluster in
# replication_cluster.py, the table in replication_table.py; bench_scorecard.py uses these from here.
__all__ = ["LocalCluster", "build_parser", "latency_run", "main", "throughput_run"]

TUNED_OVERRIDES = {"broker.session.timeout.ms": "3000", "broker.heartbeat.interval.ms": "500"}


class Interrupted(BaseException):
    """SIGTERM, turned into an exception so that the cluster is stopped on the way out."""


def _on_sigterm(_signum: int, _frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: let the cleanup finish
    raise Interrupted("SIGTERM")


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
    ap.add_argument("--batch-size", type=int, default=PRODUCER_CONF["batch.size"],
                    help="the throughput producer's batch.size in bytes (librdkafka's own default is 1000000; "
                         "the idempotent producer sends one batch per partition per round trip)")
    ap.add_argument("--no-idempotence", action="store_true",
                    help="acks=all throughput runs without enable.idempotence (librdkafka's idempotent producer "
                         "busy-polls while its one Produce per partition is out: 3-6x the client CPU per MB)")
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
