"""Cost of one `PartitionLog.append` (the log layer alone), CPU and wall time per call.

`bench_partition_path.py` times a whole Produce; this isolates the log append under it: a
1 KiB x 10 batch appended N times per round to a log in a temp dir (CPU time of the thread,
`time.thread_time`, and wall time, best of several rounds), with the default config and with
``flush.messages=1`` (every append fsyncs: the cost of durability settings). Run it against
two trees, alternating, to compare them:

    git archive <commit> src | tar -x -C /tmp/old
    python benchmarks/bench_log_append.py --src before=/tmp/old/src --src after=src

A script, not a test.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {"default": {}, "flush.messages=1": {"flush_interval_messages": 1}}


def _measure(case: str, per_round: int, rounds: int) -> tuple[float, float]:
    """Best (CPU µs, wall µs) per append over ``rounds`` fresh logs (runs in the child)."""
    from suoi.log.config import LogConfig
    from suoi.log.partition_log import PartitionLog
    from suoi.protocol.records import build_batch

    data = build_batch([(None, b"x" * 1024)] * 10)
    best_cpu = best_wall = float("inf")
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="suoi-bench-append-", dir=os.environ.get("BENCH_DIR")) as d:
            log = PartitionLog.open(Path(d) / "t-0", "t", 0, LogConfig(**CASES[case]))  # type: ignore[arg-type]
            for _ in range(50):  # warm-up
                log.append(data, leader_epoch=0)
            cpu, wall = time.thread_time(), time.perf_counter()
            for _ in range(per_round):
                log.append(data, leader_epoch=0)
            best_cpu = min(best_cpu, (time.thread_time() - cpu) / per_round * 1e6)
            best_wall = min(best_wall, (time.perf_counter() - wall) / per_round * 1e6)
            log.close()
    return best_cpu, best_wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", action="append", default=[], help="name=path of a source tree (repeatable)")
    ap.add_argument("--runs", type=int, default=3, help="alternations of the trees")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--per-round", type=int, default=2000)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        cpu, wall = _measure(args.child, args.per_round, args.rounds)
        print(f"{cpu:.2f} {wall:.2f}")
        return
    trees = [s.split("=", 1) for s in args.src] or [["this", "src"]]
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(args.runs):
        for case in CASES:
            for name, src in trees:
                per_round = args.per_round if case == "default" else max(args.per_round // 10, 50)
                out = subprocess.run(
                    [sys.executable, __file__, "--child", case, "--rounds", str(args.rounds),
                     "--per-round", str(per_round)],
                    env={**os.environ, "PYTHONPATH": str(Path(src).resolve())},
                    check=True, capture_output=True, text=True).stdout.split()
                results.setdefault((case, name), []).append((float(out[0]), float(out[1])))
    print(f"µs per append of a 10 x 1 KiB batch; median of {args.runs} runs (min-max), each best of {args.rounds}")
    for (case, name), runs in results.items():
        cpus, walls = sorted(r[0] for r in runs), sorted(r[1] for r in runs)
        print(f"  {case:18} {name:8} CPU {cpus[len(cpus) // 2]:7.1f} ({cpus[0]:.1f}-{cpus[-1]:.1f})"
              f"   wall {walls[len(walls) // 2]:8.1f} ({walls[0]:.1f}-{walls[-1]:.1f})")


if __name__ == "__main__":
    main()
