"""Cost of one `PartitionLog.append` (the log layer alone), CPU and wall time per call.

`bench_partition_path.py` times a whole Produce; this isolates the log append under it: a
batch appended N times per round to a log in a temp dir (CPU time of the thread,
`time.thread_time`, and wall time, best of several rounds). Cases:

* ``default``: a 10 x 1 KiB batch, default config (the figure of the first issue-19 table);
* ``flush.messages=1``: the same, every append fsyncs (the cost of durability settings);
* ``64 x 1 KiB`` / ``640 x 100 B``: the batches of `bench_produce_wire.py`'s ``1k`` / ``100b``
  phases (64 KiB each);
* ``64 x 1 KiB idempotent``: with a producer id and increasing sequences (the producer-state
  checks and update; each batch's sequence is rewritten outside the timed call);
* ``64 x 1 KiB no write``: the segment's write seam (`segment._writev`; `_write` in trees before
  the writev append, so before/after runs compare alike) replaced by one that
  writes nothing: what is left is the Python (and CRC32C) share of an append, without the
  kernel's page-cache copy.

Run it against two trees, alternating, to compare them:

    git archive <commit> src | tar -x -C /tmp/old
    python benchmarks/bench_log_append.py --src before=/tmp/old/src --src after=src

``--cases`` picks some (comma-separated names as printed). A script, not a test.
"""

from __future__ import annotations

import argparse
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: name -> (records per batch, record size, LogConfig overrides, options)
CASES: dict[str, tuple[int, int, dict[str, Any], str]] = {
    "default": (10, 1024, {}, ""),
    "flush.messages=1": (10, 1024, {"flush_interval_messages": 1}, ""),
    "64 x 1 KiB": (64, 1024, {}, ""),
    "640 x 100 B": (640, 100, {}, ""),
    "64 x 1 KiB idempotent": (64, 1024, {}, "idempotent"),
    "64 x 1 KiB no write": (64, 1024, {}, "no-write"),
}

_SEQ_AT = 53  # baseSequence in a v2 batch header


def _measure(case: str, per_round: int, rounds: int) -> tuple[float, float]:
    """Best (CPU µs, wall µs) per append over ``rounds`` fresh logs (runs in the child)."""
    from suoi.log import segment
    from suoi.log.config import LogConfig
    from suoi.log.partition_log import PartitionLog
    from suoi.protocol.record_batch import write_crc
    from suoi.protocol.records import build_batch

    records, size, overrides, option = CASES[case]
    idempotent = option == "idempotent"
    data = build_batch([(None, os.urandom(size))] * records, timestamp_ms=int(time.time() * 1000),
                       **({"producer_id": 7, "producer_epoch": 0, "base_sequence": 0} if idempotent else {}))
    batch = bytearray(data)
    if option == "no-write":
        segment._write = lambda fd, buf: len(buf)  # type: ignore[attr-defined]  # an older tree's write seam
        if hasattr(segment, "_writev"):
            segment._writev = lambda fd, parts: sum(map(len, parts))  # type: ignore[attr-defined]
    best_cpu = best_wall = float("inf")
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="suoi-bench-append-", dir=os.environ.get("BENCH_DIR")) as d:
            log = PartitionLog.open(Path(d) / "t-0", "t", 0, LogConfig(**overrides))
            seq = 0

            def next_batch() -> bytearray | bytes:
                nonlocal seq
                if not idempotent:
                    return data
                struct.pack_into(">i", batch, _SEQ_AT, seq)
                write_crc(batch)
                seq += records
                return bytes(batch)

            for _ in range(50):  # warm-up
                log.append(next_batch(), leader_epoch=0)
            cpu = wall = 0.0
            if idempotent:  # the sequence rewrite stays out of the timed call
                for _ in range(per_round):
                    b = next_batch()
                    c, w = time.thread_time(), time.perf_counter()
                    log.append(b, leader_epoch=0)
                    cpu += time.thread_time() - c
                    wall += time.perf_counter() - w
            else:
                c, w = time.thread_time(), time.perf_counter()
                for _ in range(per_round):
                    log.append(data, leader_epoch=0)
                cpu, wall = time.thread_time() - c, time.perf_counter() - w
            best_cpu = min(best_cpu, cpu / per_round * 1e6)
            best_wall = min(best_wall, wall / per_round * 1e6)
            log.close()
    return best_cpu, best_wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", action="append", default=[], help="name=path of a source tree (repeatable)")
    ap.add_argument("--runs", type=int, default=3, help="alternations of the trees")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--per-round", type=int, default=2000)
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated case names (default: all)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        cpu, wall = _measure(args.child, args.per_round, args.rounds)
        print(f"{cpu:.2f} {wall:.2f}")
        return
    cases = [c.strip() for c in args.cases.split(",")]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}; known: {list(CASES)}")
    trees = [s.split("=", 1) for s in args.src] or [["this", "src"]]
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for run in range(args.runs):
        for case in cases:
            for name, src in (trees if run % 2 == 0 else trees[::-1]):
                per_round = max(args.per_round // 10, 50) if case.startswith("flush") else args.per_round
                if CASES[case][0] * CASES[case][1] > 32 * 1024:  # 64 KiB batches: ~128 MB a round
                    per_round = max(per_round // 2, 50)
                out = subprocess.run(
                    [sys.executable, __file__, "--child", case, "--rounds", str(args.rounds),
                     "--per-round", str(per_round)],
                    env={**os.environ, "PYTHONPATH": str(Path(src).resolve())},
                    check=True, capture_output=True, text=True).stdout.split()
                results.setdefault((case, name), []).append((float(out[0]), float(out[1])))
    print(f"µs per append; median of {args.runs} runs (min-max), each best of {args.rounds}")
    for (case, name), runs in results.items():
        cpus, walls = sorted(r[0] for r in runs), sorted(r[1] for r in runs)
        print(f"  {case:24} {name:8} CPU {cpus[len(cpus) // 2]:7.1f} ({cpus[0]:.1f}-{cpus[-1]:.1f})"
              f"   wall {walls[len(walls) // 2]:8.1f} ({walls[0]:.1f}-{walls[-1]:.1f})")


if __name__ == "__main__":
    main()
