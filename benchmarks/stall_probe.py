"""Every event-loop stall of a node, with when it ended (`bench_reconcile_stall.py` runs the node with it).

Runs `suoi broker ...` in this process with one diagnostic hook that is not in the product: a
ticker task on the node's event loop sleeps `TICK_S` (1 ms) again and again, and every gap
between two of its wake-ups of at least `--min-ms` is appended to `--out` as one line
``<perf_counter_ns at its end> <gap ns>``. `time.perf_counter_ns` is CLOCK_MONOTONIC on Linux,
the clock the benchmark and its clients stamp with, so the benchmark can tell which stalls fell
in which window (a topic creation, a deletion, a quiet stretch). The admin endpoint's own lag
probe ticks every 250 ms and misses a stall that starts and ends between two ticks.

    python benchmarks/stall_probe.py --out /tmp/stalls.txt broker --config server.properties
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

TICK_S = 0.001


def install(out: str, min_ms: float) -> None:
    import asyncio

    from suoi.http.admin.server import AdminServer

    sink = open(out, "a", buffering=1)  # noqa: SIM115 - one line per stall, for the process's life
    threshold = int(min_ms * 1e6)

    async def tick() -> None:
        last = time.perf_counter_ns()
        while True:
            await asyncio.sleep(TICK_S)
            now = time.perf_counter_ns()
            if now - last >= threshold:
                sink.write(f"{now} {now - last}\n")
            last = now

    start = AdminServer.start

    async def start_ticking(self: Any, *args: Any, **kwargs: Any) -> None:
        await start(self, *args, **kwargs)
        self._stall_ticker = asyncio.get_running_loop().create_task(tick(), name="stall-probe-ticker")

    AdminServer.start = start_ticking  # type: ignore[method-assign]


def read_stalls(path: str) -> list[tuple[int, int]]:
    """(end ns, gap ns) of every stall written so far."""
    with open(path) as f:
        return [(int(a), int(b)) for a, b in (line.split() for line in f if line.strip())]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="a line per stall is appended here")
    ap.add_argument("--min-ms", type=float, default=2.0, help="shortest gap written (default 2 ms)")
    ap.add_argument("suoi_args", nargs=argparse.REMAINDER, help="the suoi command line (e.g. broker --config F)")
    args = ap.parse_args()
    install(args.out, args.min_ms)
    from suoi.cli.main import main as suoi_main

    return suoi_main(args.suoi_args)


if __name__ == "__main__":
    sys.exit(main())
