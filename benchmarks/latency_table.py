"""bench_latency.py's printed table: one column per target, rate and neighbour count."""

from __future__ import annotations

import statistics
from typing import Any

from latency_breakdown import PARTS

#: (key in a run's figures, row label) of the printed table
ROWS = (
    ("p50_ms", "latency p50 ms"), ("p99_ms", "latency p99 ms"), ("p99.9_ms", "latency p99.9 ms"),
    ("max_ms", "latency max ms"), ("sched_p99_ms", "from schedule slot p99 ms"), ("ack_p99_ms", "produce ack p99 ms"),
    ("lost", "not received (in --drain)"), ("duplicates", "duplicates"), ("achieved_rate", "achieved msg/s"),
    ("late_sends_pct", "sends > 1 ms late %"),
    ("broker_cpu_pct_window", "broker CPU %"), ("broker_runq_wait_ms_per_s", "broker run-queue wait ms/s"),
    ("broker_runnable_pct", "broker running or runnable %"),
    ("producer_cpu_pct", "producer CPU %"), ("producer_runq_wait_ms_per_s", "producer run-queue wait ms/s"),
    ("consumer_cpu_pct", "consumer CPU %"), ("consumer_runq_wait_ms_per_s", "consumer run-queue wait ms/s"),
    ("neighbour_cpu_pct", "each neighbour CPU %"),
    ("broker Produce req/s", "broker Produce req/s"), ("broker Fetch req/s", "broker Fetch req/s"),
    ("broker_cpu_us_per_request", "broker CPU µs/request"),
    ("probe_p50_ms", "ApiVersions probe p50 ms"), ("probe_p99_ms", "ApiVersions probe p99 ms"),
    ("probe_max_ms", "ApiVersions probe max ms"),
    ("loop_lag count", "loop-lag probes"), ("loop_lag >= 5 ms", "loop-lag probes >= 5 ms"),
    ("loop_lag >= 10 ms", "loop-lag probes >= 10 ms"), ("loop_lag max < ms", "loop lag max < ms"),
    ("gc count", "GC collections"), ("gc total ms", "GC total ms"), ("gc >= 5 ms", "GC pauses >= 5 ms"),
    ("gc max < ms", "GC max pause < ms"),
    *((f"probe {part} {q}", f"probe {part} {q}") for part in PARTS for q in ("p50 ms", "p99 ms", "tail mean ms")),
    *((k, k) for k in ("probe broker share of all latency %", "probe broker share of the tail %",
                       "probe tail msgs near a >= 1 ms CPU callback %", "probe loop busy CPU %",
                       "probe callbacks >= 1 ms CPU", "probe callbacks >= 5 ms CPU", "probe callbacks >= 5 ms wall",
                       "probe longest callback CPU ms", "probe slow callbacks (name: count, max CPU ms)",
                       "probe GC collections by generation", "probe GC max CPU ms",
                       "probe /metrics scrapes in the window", "probe callbacks >= 5 ms wall that slept in the kernel",
                       "probe longest sleep in a callback ms", "probe joined")),
    ("load_avg_1m", "load average (1 min)"),
    ("issue19", "issue 19 target"))


def fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"
    return str(v)


def print_table(runs: list[dict[str, Any]], rounds: int) -> None:
    """One column per target, rate and neighbour count: the median (min-max over rounds)."""
    keys = list(dict.fromkeys((r["target"], r["rate"], r["neighbours"]) for r in runs))
    width = 28 if rounds > 1 else 20
    print(f"{'':28}" + "".join(f"{f'{t} {rate}/s nb{nb}':>{width}}" for t, rate, nb in keys))
    for col, label in ROWS:
        cells = []
        for key in keys:
            vals = [r[col] for r in runs if (r["target"], r["rate"], r["neighbours"]) == key and r.get(col) is not None]
            if not vals:
                cells.append("-")
            elif isinstance(vals[0], str):
                cells.append(",".join(vals))
            elif len(vals) == 1:
                cells.append(fmt(vals[0]))
            else:
                cells.append(f"{fmt(statistics.median(vals))} ({fmt(min(vals))}-{fmt(max(vals))})")
        if any(c != "-" for c in cells):
            print(f"{label:28}" + "".join(f"{c:>{width}}" for c in cells))
