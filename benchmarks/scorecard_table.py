"""The issue-19 scorecard's goals and its table: pure functions, no I/O.

`bench_scorecard.py` measures and fills ``figures`` (goal key -> column -> one value per round);
this module decides what each goal's figure is (the median of the rounds, with their spread),
whether the goal is met, and prints the table as text or Markdown. Kept apart from the
measuring so the threshold logic has a fast unit test (tests/unit/test_bench_scorecard.py).

Columns are the source trees (``--src label=path``, in the order given; the last one is the
tree the goals are judged on, "after") and ``Tansu`` when it was measured.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

TANSU = "Tansu"


@dataclass(frozen=True)
class Goal:
    """One issue-19 target: a figure, its threshold and where it comes from."""

    key: str
    what: str
    section: str  # the scorecard section that measures it (--only)
    source: str  # the benchmark script (and phase) the measurement comes from
    op: str | None = None  # "<=" or ">=": the judged figure must be at most / at least `limit`
    limit: float | None = None  # None: a figure shown for reference, not judged
    vs_tansu: bool = False  # judge (last tree / Tansu) against `limit` instead of the figure itself
    unit: str = ""


GOALS: tuple[Goal, ...] = (
    Goal("produce_1k_us", "pre-encoded produce 1 KiB acks=1, broker µs/msg", "produce",
         "bench_produce_wire.py 1k", "<=", 2.0, unit="µs"),
    Goal("produce_100b_us", "pre-encoded produce 100 B acks=1, broker µs/msg", "produce",
         "bench_produce_wire.py 100b", "<=", 0.2, unit="µs"),
    Goal("p1000_ratio", "1,000 / 6 partitions, produce cost per message", "produce",
         "bench_produce_wire.py p1000 / 1k", "<=", 1.3, unit="x"),
    Goal("small_path_us", "small path (parked Fetch + 1-record Produce), broker µs/round", "produce",
         "bench_produce_wire.py small", "<=", 100.0, unit="µs"),
    # The same rounds against a C server (epoll) that does no broker work, right after each tree's:
    # what the loop, the syscalls and the wake-ups cost any server here (benchmarks/README.md).
    Goal("small_floor_c_us", "small path floor: the same rounds, a C server doing no broker work, µs/round",
         "produce", "bench_small_floor.py (C), bench_produce_wire.py small", unit="µs"),
    Goal("consume_100b_msgs", "consume 100 B, msg/s (librdkafka), vs Tansu in the same run", "consume",
         "bench_consume.py", ">=", 1.0, vs_tansu=True, unit="msg/s"),
    Goal("consume_100b_us", "consume 100 B, broker µs/msg", "consume", "bench_consume.py", unit="µs"),
    # The consume row is librdkafka's: its CPU and page faults per message show what the broker's
    # answers cost it (a faster broker deepens its prefetch: benchmarks/README.md, fifth session).
    Goal("consume_100b_client_us", "consume 100 B, client (librdkafka + Python) CPU µs/msg", "consume",
         "bench_consume.py", unit="µs"),
    Goal("consume_100b_faults", "consume 100 B, client page faults per 1,000 msg", "consume",
         "bench_consume.py"),
    Goal("e2e_1000_p99", "e2e latency at 1,000 msg/s, p99 ms", "latency", "bench.py --latency", "<=", 5.0,
         unit="ms"),
    Goal("e2e_1000_p999", "e2e latency at 1,000 msg/s, p99.9 ms", "latency", "bench.py --latency", "<=", 10.0,
         unit="ms"),
    Goal("e2e_1000_cpu_us", "broker CPU per message at 1,000 msg/s (linger 0), µs", "latency",
         "bench.py --latency", "<=", 100.0, unit="µs"),
    Goal("e2e_10000_p99", "e2e latency at 10,000 msg/s, p99 ms", "latency", "bench.py --latency", "<=", 5.0,
         unit="ms"),
    Goal("e2e_10000_p999", "e2e latency at 10,000 msg/s, p99.9 ms", "latency", "bench.py --latency", "<=", 10.0,
         unit="ms"),
    Goal("e2e_10000_cpu_us", "broker CPU per message at 10,000 msg/s (linger 0), µs", "latency",
         "bench.py --latency", "<=", 100.0, unit="µs"),
    Goal("e2e_1000n_p99", "e2e latency at 1,000 msg/s, a CPU-bound neighbour running, p99 ms", "latency",
         "bench.py --latency", "<=", 20.0, unit="ms"),
    Goal("rf3_ratio_pct", "RF=3 acks=all / RF=1 acks=1, 6 partitions, producer not idempotent (256 KiB batches), %",
         "replication", "bench_replication.py throughput --no-idempotence", ">=", 50.0, unit="%"),
    # librdkafka's idempotent producer keeps one Produce per partition in flight (it counts messages, not
    # requests, against max.in.flight): latency-bound, ~40 % even at RF=1 acks=all. Reported, not the target.
    Goal("rf3_idem_ratio_pct", "same, idempotent producer (client-bound, see benchmarks/README.md), %",
         "replication", "bench_replication.py throughput", unit="%"),
    Goal("rf3_p99_ms", "RF=3 acks=all p99 at 100 msg/s, ms", "replication", "bench_replication.py latency",
         "<=", 10.0, unit="ms"),
    Goal("soak_slope", "RSS slope after warm-up, 10-minute soak at 50 MB/s in and out, MB/min", "soak",
         "bench_soak.py", "<=", 1.0, unit="MB/min"),
    Goal("soak_slope_short", "RSS slope after warm-up, shorter soak (RSS may still climb), MB/min", "soak",
         "bench_soak.py", unit="MB/min"),
    Goal("soak_rss_end", "RSS at the end of the soak, MB", "soak", "bench_soak.py", unit="MB"),
)

SECTIONS: tuple[str, ...] = tuple(dict.fromkeys(g.section for g in GOALS))


def fmt(v: float | None) -> str:
    """A figure with about three significant digits (thousands separated)."""
    if v is None or v != v:
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:#.3g}" if abs(v) >= 0.01 else f"{v:#.2g}"


def median(values: list[float] | None) -> float | None:
    return statistics.median(values) if values else None


def cell(values: list[float] | None) -> str:
    """The median of the rounds, with their spread when there are several: ``2.6 (2.1-3.7)``."""
    if not values:
        return "-"
    if len(values) == 1:
        return fmt(values[0])
    return f"{fmt(statistics.median(values))} ({fmt(min(values))}-{fmt(max(values))})"


def meets(op: str, limit: float, value: float) -> bool:
    if op == "<=":
        return value <= limit
    if op == ">=":
        return value >= limit
    raise ValueError(f"unknown comparison {op!r}")


def threshold_text(goal: Goal) -> str:
    if goal.op is None or goal.limit is None:
        return ""
    sign = "≤" if goal.op == "<=" else "≥"
    if goal.vs_tansu:
        return f"{sign} {fmt(goal.limit)}x Tansu"
    return f"{sign} {fmt(goal.limit)}"


@dataclass(frozen=True)
class Row:
    goal: Goal
    cells: tuple[str, ...]  # one per column (trees, then Tansu)
    ratio: float | None  # last tree / first tree (None with one tree)
    vs_tansu: float | None  # last tree / Tansu
    met: str  # "yes", "no", "-" (no figure) or "" (not judged)


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def evaluate(goal: Goal, figures: dict[str, list[float]], trees: list[str], tansu: bool) -> Row:
    """One goal's row: each column's median and spread, the ratios, and whether the last tree
    meets the goal (on its own median, or on its ratio to Tansu for a ``vs_tansu`` goal)."""
    columns = [*trees, TANSU] if tansu else list(trees)
    last = median(figures.get(trees[-1]))
    first = median(figures.get(trees[0]))
    vs = ratio(last, median(figures.get(TANSU))) if tansu else None
    judged = vs if goal.vs_tansu else last
    if goal.op is None or goal.limit is None:
        met = ""
    elif judged is None:
        met = "-"
    else:
        met = "yes" if meets(goal.op, goal.limit, judged) else "no"
    return Row(goal, tuple(cell(figures.get(c)) for c in columns),
               ratio(last, first) if len(trees) > 1 else None, vs, met)


def rows(goals: tuple[Goal, ...] | list[Goal], figures: dict[str, dict[str, list[float]]], trees: list[str],
         tansu: bool) -> list[Row]:
    """Every judged goal's row (a missing figure shows as such), and the shown-only rows that have figures."""
    return [evaluate(g, figures.get(g.key, {}), trees, tansu) for g in goals
            if g.op is not None or any(figures.get(g.key, {}).values())]


def header(trees: list[str], tansu: bool) -> list[str]:
    cols = ["target", "threshold", *trees]
    if tansu:
        cols.append(TANSU)
    if len(trees) > 1:
        cols.append(f"{trees[-1]}/{trees[0]}")
    if tansu:
        cols.append(f"{trees[-1]}/{TANSU}")
    return [*cols, "met"]


def table(table_rows: list[Row], trees: list[str], tansu: bool) -> list[list[str]]:
    """Header and rows as lists of strings."""
    out = [header(trees, tansu)]
    for r in table_rows:
        line = [r.goal.what, threshold_text(r.goal), *r.cells]
        if len(trees) > 1:
            line.append(f"{r.ratio:.2f}x" if r.ratio is not None else "-")
        if tansu:
            line.append(f"{r.vs_tansu:.2f}x" if r.vs_tansu is not None else "-")
        out.append([*line, r.met])
    return out


def render_text(lines: list[list[str]]) -> str:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]

    def one(line: list[str]) -> str:
        return "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(line)).rstrip()

    return "\n".join([one(lines[0]), "  ".join("-" * w for w in widths), *(one(line) for line in lines[1:])])


def render_markdown(lines: list[list[str]]) -> str:
    def one(line: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in line) + " |"

    return "\n".join([one(lines[0]), "| " + " | ".join("---" for _ in lines[0]) + " |", *(one(x) for x in lines[1:])])
