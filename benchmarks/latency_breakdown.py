"""Split each message's end-to-end latency with the broker's stamps (`latency_probe.py`): pure
functions over the consumer's (partition, offset, produce() ns, arrival ns) and a probe dump.

Per message, in CLOCK_MONOTONIC ns (one clock for every process), client parts and broker parts:

* ``producer`` (client): produce() call -> the broker read the Produce's bytes, less ``loop_busy``
  (librdkafka's queue and send, loopback);
* ``loop_busy`` (broker): how long the loop had been busy without a pause when it read them - the
  most the bytes can have waited in the socket for the loop (they were not there at its last
  wait for events);
* ``broker_in`` (broker): read -> appended (frames of the same read handled before it);
* ``fetch_wake`` (broker): appended -> the parked consumer Fetch it woke read it (the re-read is
  scheduled, so it waits for the callbacks before it);
* ``no_fetch`` (client): appended -> the consumer's next Fetch was read, when none was parked
  (its previous answer was still on its way or being consumed), less ``fetch_busy``;
* ``fetch_busy`` (broker): of that, how long the loop had been busy when it read the Fetch (as
  ``loop_busy``);
* ``fetch_read`` (broker): that Fetch read -> it read the record;
* ``consumer`` (client): the read -> the consumer's poll() returned it (the answer is written in
  the read's callback; loopback, librdkafka's fetch queue, the Python loop).
"""

from __future__ import annotations

import bisect
import statistics
from array import array
from collections import defaultdict
from typing import Any

PARTS = ("producer", "loop_busy", "broker_in", "fetch_wake", "no_fetch", "fetch_busy", "fetch_read", "consumer")
BROKER_PARTS = frozenset({"loop_busy", "broker_in", "fetch_wake", "fetch_busy", "fetch_read"})
APPEND_FIELDS, READ_FIELDS = 6, 7


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p / 100))]


def join(stamps: array, dump: dict[str, Any]) -> list[tuple[float, ...]]:
    """Per message the probe saw appended and read: (e2e, *PARTS) in ms, produce ns, arrival ns.
    Messages it did not see are left out."""
    appends: dict[int, list[tuple[int, ...]]] = defaultdict(list)
    a = dump["appends"]
    for i in range(0, len(a), APPEND_FIELDS):
        p, base, count, read_ns, append_ns, busy_since = a[i:i + APPEND_FIELDS]
        appends[p].append((base, base + count, read_ns, append_ns, busy_since))
    for rows in appends.values():
        rows.sort()
    reads: dict[int, list[tuple[int, ...]]] = defaultdict(list)  # in time order
    r = dump["reads"]
    for i in range(0, len(r), READ_FIELDS):
        p, _offset, hw, ns, retry, request_ns, request_busy_since = r[i:i + READ_FIELDS]
        reads[p].append((ns, hw, retry, request_ns, request_busy_since))
    tops: dict[int, list[int]] = {}  # running max of the high watermark: the first read past an offset
    for p, rows in reads.items():
        rows.sort()
        top, out = -1, []
        for row in rows:
            top = max(top, row[1])
            out.append(top)
        tops[p] = out
    result = []
    for i in range(0, len(stamps), 4):
        p, offset, produced, arrived = stamps[i:i + 4]
        rows = appends.get(p)
        if not rows or p not in tops:
            continue
        j = bisect.bisect_right(rows, (offset, float("inf"))) - 1
        if j < 0 or not rows[j][0] <= offset < rows[j][1]:
            continue
        _, _, read_ns, append_ns, busy_since = rows[j]
        k = bisect.bisect_right(tops[p], offset)
        if k >= len(tops[p]):
            continue
        fetched_ns, _, retry, request_ns, request_busy_since = reads[p][k]
        busy = min(read_ns - busy_since, read_ns - produced)
        if retry:
            wake, no_fetch, fetch_busy, fetch_read = fetched_ns - append_ns, 0, 0, 0
        else:
            no_fetch = max(0, request_ns - append_ns)
            fetch_busy = min(request_ns - request_busy_since, no_fetch)
            wake, no_fetch = 0, no_fetch - fetch_busy
            fetch_read = fetched_ns - max(request_ns, append_ns)
        parts = (read_ns - produced - busy, busy, append_ns - read_ns, wake, no_fetch, fetch_busy, fetch_read,
                 arrived - fetched_ns)
        result.append(((arrived - produced) / 1e6, *(x / 1e6 for x in parts), produced, arrived))
    return result


def breakdown(stamps: array, dump: dict[str, Any]) -> dict[str, Any]:
    """Percentiles of each part over every message, and the parts' means over the slowest 1 %
    (the tail: what the p99 is made of); the broker's share; the loop's long callbacks and GC."""
    rows = join(stamps, dump)
    out: dict[str, Any] = {"probe joined": len(rows)}
    window = None
    if rows:
        cut = _pct([r[0] for r in rows], 99)
        tail = [r for r in rows if r[0] >= cut]
        for n, part in enumerate(PARTS, start=1):
            values = [r[n] for r in rows]
            out[f"probe {part} p50 ms"] = _pct(values, 50)
            out[f"probe {part} p99 ms"] = _pct(values, 99)
            out[f"probe {part} tail mean ms"] = statistics.fmean(r[n] for r in tail)
        broker = [n for n, part in enumerate(PARTS, start=1) if part in BROKER_PARTS]
        out["probe broker share of all latency %"] = sum(sum(r[n] for n in broker) for r in rows) / sum(
            r[0] for r in rows) * 100
        out["probe broker share of the tail %"] = sum(sum(r[n] for n in broker) for r in tail) / sum(
            r[0] for r in tail) * 100
        window = (min(r[-2] for r in rows), max(r[-1] for r in rows))
        slow = sorted((s for s in dump["slow"] if s[3] >= 1_000_000), key=lambda s: s[1])
        starts = [s[1] for s in slow]
        near = sum(1 for r in tail if _overlaps(slow, starts, r[-2], r[-1]))
        out["probe tail msgs near a >= 1 ms CPU callback %"] = near / len(tail) * 100
    span_s = (dump["ended_ns"] - dump["started_ns"]) / 1e9
    out["probe loop busy CPU %"] = dump["busy_cpu_ns"] / 1e9 / span_s * 100 if span_s else None
    out.update(stalls(dump, window))
    return out


def _overlaps(slow: list[Any], starts: list[int], t0: int, t1: int) -> bool:
    """Whether a slow callback (sorted by start) ran during [t0, t1]."""
    i = bisect.bisect_left(starts, t0 - 50_000_000)  # a callback starting up to 50 ms before
    while i < len(slow) and slow[i][1] <= t1:
        if slow[i][1] + slow[i][2] >= t0:
            return True
        i += 1
    return False


def stalls(dump: dict[str, Any], window: tuple[int, int] | None = None) -> dict[str, Any]:
    """Callbacks of >= 1 / >= 5 ms CPU, the longest, the names that spent most in them; GC;
    /metrics scrapes (within `window`, ns, if given: the measured messages' span)."""
    def inside(start: int) -> bool:
        return window is None or window[0] <= start <= window[1]

    slow = [s for s in dump["slow"] if inside(s[1])]
    cpu1 = [s for s in slow if s[3] >= 1_000_000]
    out: dict[str, Any] = {
        "probe callbacks >= 1 ms CPU": len(cpu1), "probe callbacks >= 5 ms CPU": sum(1 for s in slow if s[3] >= 5_000_000),
        "probe callbacks >= 5 ms wall": sum(1 for s in slow if s[2] >= 5_000_000),
        "probe longest callback CPU ms": max((s[3] for s in slow), default=0) / 1e6,
    }
    by_name: dict[str, list[int]] = defaultdict(list)
    for s in cpu1:
        by_name[s[0]].append(s[3])
    top = sorted(by_name.items(), key=lambda kv: -sum(kv[1]))[:5]
    out["probe slow callbacks (name: count, max CPU ms)"] = "; ".join(
        f"{name}: {len(v)}, {max(v) / 1e6:.1f}" for name, v in top)
    gcs = [g for g in dump["gcs"] if inside(g[1])]
    out["probe GC collections by generation"] = "/".join(str(sum(1 for g in gcs if g[0] == n)) for n in range(3))
    out["probe GC max CPU ms"] = max((g[3] for g in gcs), default=0) / 1e6
    out["probe /metrics scrapes in the window"] = sum(1 for a, _ in dump.get("scrapes", []) if inside(a))
    # a callback that slept in the kernel (a write blocked by dirty-page throttling, a lock, the GIL)
    # vs one that was only preempted (the machine's other work): >= 5 ms wall, CPU well below it
    slept = [s for s in slow if s[2] >= 5_000_000 and len(s) > 5 and s[4]]
    out["probe callbacks >= 5 ms wall that slept in the kernel"] = len(slept)
    out["probe longest sleep in a callback ms"] = max((s[2] - s[3] for s in slept), default=0) / 1e6
    return out
