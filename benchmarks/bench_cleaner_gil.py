#!/usr/bin/env python3
"""How long an asyncio loop waits for the GIL while the log cleaner's `build` runs on a thread of
its process (issue 19), and whether the cleaner releasing it every so often
(`suoi.log.cleaner_pace.GIL_YIELD_S`, `time.sleep(0)` between batches) shortens the waits.

In process, switch interval 0.5 ms (what `suoi broker` sets): a compacted log is built as
bench_cleaner.py builds it (--mib MiB, --records records of --value-bytes B a batch), then per
setting (alternated, --rounds) a fresh copy is planned on the main thread and built on a worker
thread while the main thread's loop sleeps 1 ms at a time (idle in epoll, as a node's loop between
requests at 1,000 msg/s) and times how late each wake-up is: the wait for the GIL, plus the
timer's own slack (the 'no clean' row: the same loop with no thread). Printed: the build's wall
and CPU, the lateness p50 / p99 / p99.9 / max.

    python benchmarks/bench_cleaner_gil.py --mib 20 --yield-us -1 0 100 250 1000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))


async def measure(log_dir: Path, segment_mib: int, every_us: int) -> dict[str, float]:
    import bench_cleaner

    from suoi.log import cleaner, cleaner_pace
    from suoi.log.partition_log import PartitionLog

    cleaner_pace.GIL_YIELD_S = max(every_us, 0) / 1e6
    log = PartitionLog.open(log_dir, "bench", 0, bench_cleaner.log_config(segment_mib))
    c = cleaner.LogCleaner()
    plan = c.plan(log, int(time.time() * 1000), force=True)
    assert plan is not None
    out: dict[str, float] = {}
    done = threading.Event()

    def work() -> None:
        c0, t0 = time.thread_time(), time.perf_counter()
        out["result"] = c.build(plan)  # type: ignore[assignment]
        out["cpu"], out["wall"] = time.thread_time() - c0, time.perf_counter() - t0
        done.set()

    thread = threading.Thread(target=work)
    if every_us >= 0:
        thread.start()
    else:  # no clean: the loop alone for 2 s
        threading.Timer(2.0, done.set).start()
        out["cpu"] = out["wall"] = 0.0
    late = await lateness(done)
    if every_us >= 0:
        thread.join(60)
        c.commit(log, out.pop("result"))  # type: ignore[arg-type]
    else:
        plan.close()
    log.close()
    n = len(late)
    return {"wall": out["wall"], "cpu": out["cpu"], "p50": late[n // 2] * 1e3, "p99": late[int(n * 0.99)] * 1e3,
            "p99.9": late[int(n * 0.999)] * 1e3, "max": late[-1] * 1e3}


async def lateness(done: threading.Event) -> list[float]:
    """How late each 1 ms sleep of the loop ends, until ``done``; sorted."""
    late: list[float] = []
    while not done.is_set():
        t = time.perf_counter()
        await asyncio.sleep(0.001)
        late.append(time.perf_counter() - t - 0.001)
    return sorted(late)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", default=str(HERE.parents[1] / "src"))
    ap.add_argument("--mib", type=int, default=30)
    ap.add_argument("--records", type=int, default=10)
    ap.add_argument("--value-bytes", type=int, default=100)
    ap.add_argument("--keys", type=int, default=200_000)
    ap.add_argument("--segment-mib", type=int, default=16)
    ap.add_argument("--yield-us", type=int, nargs="+", default=[-1, 0, 100, 250, 1000],
                    help="µs between GIL releases (0: never; -1: no clean, the loop alone; the node's default "
                         "is the switch interval, 500)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, args.src)
    import bench_cleaner

    sys.setswitchinterval(0.0005)
    ns = argparse.Namespace(mib=args.mib, records=args.records, value_bytes=args.value_bytes, keys=args.keys,
                            txn_every=4, segment_mib=args.segment_mib, again_pct=10)
    rows: dict[int, list[dict[str, float]]] = {e: [] for e in args.yield_us}
    with tempfile.TemporaryDirectory(prefix="bench-cleaner-gil-") as tmp_name:
        tmp = Path(tmp_name)
        source = bench_cleaner.prepare(tmp, ns)["first"]
        for rnd in range(args.rounds):
            for every in args.yield_us if rnd % 2 == 0 else args.yield_us[::-1]:
                copy = tmp / "run"
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(source, copy)
                rows[every].append(asyncio.run(measure(copy, args.segment_mib, every)))
    print(f"cleaner build of {args.mib} MiB ({args.records} x {args.value_bytes} B a batch) on a thread beside a "
          f"loop; switch interval 0.5 ms; medians of {args.rounds}; load {os.getloadavg()[0]:.2f}")
    for every, rs in rows.items():
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        what = "no clean" if every < 0 else "never" if every == 0 else f"every {every} µs"
        print(f"  GIL released {what:18s}: build wall {med['wall']:6.2f} s CPU {med['cpu']:6.2f} s | loop wake-up "
              f"late p50 {med['p50']:.3f} p99 {med['p99']:.3f} p99.9 {med['p99.9']:.3f} max {med['max']:.2f} ms")


if __name__ == "__main__":
    main()
