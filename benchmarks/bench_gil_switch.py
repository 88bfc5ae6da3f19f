"""How much an asyncio loop gets done while another thread of its process runs Python, per GIL
switch interval (issue 19: `suoi broker` sets 0.5 ms, `cli/broker._tune_gil`).

The loop does what a node's loop does between callbacks - a syscall that releases the GIL (a write
and a read on a pipe) and a loop iteration - while a thread burns `--burn-ms` of CPU in Python (as
the /metrics encoding does). Each time the loop releases the GIL the thread takes it, and the loop
waits up to the switch interval to get it back. Printed per interval (alternated, medians of
`--rounds`): the thread's wall time, the loop's iterations and CPU meanwhile, its longest gap.

    python benchmarks/bench_gil_switch.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time


def burn(ms: float) -> None:
    end = time.thread_time() + ms / 1000
    x = 0
    while time.thread_time() < end:
        for _ in range(200):
            x += 1


async def one(interval_s: float, burn_ms: float) -> tuple[float, int, float, float]:
    """(the thread's wall ms, loop iterations, the loop's longest gap ms, the loop's CPU ms)."""
    sys.setswitchinterval(interval_s)
    r, w = os.pipe()
    done = threading.Event()
    thread = threading.Thread(target=lambda: (burn(burn_ms), done.set()))
    n, longest = 0, 0.0
    c0, t0 = time.thread_time(), time.perf_counter()
    last = t0
    thread.start()
    deadline = t0 + 10
    while not done.is_set() and time.perf_counter() < deadline:
        os.write(w, b"x")
        os.read(r, 1)
        await asyncio.sleep(0)
        now = time.perf_counter()
        longest, last, n = max(longest, now - last), now, n + 1
    wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
    thread.join(10)
    os.close(r)
    os.close(w)
    return wall * 1e3, n, longest * 1e3, cpu * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--intervals-ms", type=float, nargs="+", default=[5.0, 1.0, 0.5])
    ap.add_argument("--burn-ms", type=float, default=10.0, help="CPU the thread burns (default 10 ms)")
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    default = sys.getswitchinterval()
    results: dict[float, list[tuple[float, int, float, float]]] = {ms: [] for ms in args.intervals_ms}
    try:
        for _ in range(args.rounds):
            for ms in args.intervals_ms:
                results[ms].append(asyncio.run(one(ms / 1000, args.burn_ms)))
    finally:
        sys.setswitchinterval(default)
    print(f"a thread burning {args.burn_ms:g} ms of CPU beside an asyncio loop; medians of {args.rounds} rounds; "
          f"load average {os.getloadavg()[0]:.1f}")
    for ms, rows in results.items():
        wall, n, gap, cpu = (statistics.median(col) for col in zip(*rows, strict=True))
        print(f"switch interval {ms:g} ms: thread done after {wall:.1f} ms, loop iterations meanwhile {n:.0f}, "
              f"loop CPU {cpu:.1f} ms, longest loop gap {gap:.2f} ms")


if __name__ == "__main__":
    main()
