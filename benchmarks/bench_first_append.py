"""What the first append to each of N new partitions costs the thread that makes it (issue 19:
the event loop's time in a produce burst to a new topic, or right after a failover).

A partition's first leader append after its log was made (or after a leadership change) wrote
the leader-epoch checkpoint on the caller's thread (a temp file written, closed, renamed) and
created the segment's ``.log`` file. Per `--src` tree and round, in a child process with that
tree on its path: N empty logs made as the reconciler makes them (`PartitionLog.open` of a fresh
directory, on a thread), a leader epoch assigned as a leadership change does (``durable=False``),
then one one-record append per partition, timed on the calling thread (the loop's share). The
deferred work (``state_sync_jobs`` / ``sync_jobs``, what the flush thread runs) is timed apart.
Trees alternate per round; medians over the rounds.

    git archive main src | tar -x -C /tmp/epochfile-before
    python benchmarks/bench_first_append.py --src before=/tmp/epochfile-before/src --src after=src
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, sys, tempfile, time
from pathlib import Path
from suoi.log.config import LogConfig
from suoi.log.partition_log import PartitionLog
from suoi.protocol.record_codec import build_batch

n = int(sys.argv[1])
base = Path(tempfile.mkdtemp(dir=sys.argv[2]))
cfg = LogConfig()
logs = [PartitionLog.open(base / f"t-{i}", "t", i, cfg) for i in range(n)]
for log in logs:
    log.leader_epoch_cache.assign(5, log.log_end_offset, durable=False)
data = build_batch([(b"k", b"v" * 100)], timestamp_ms=1000)
per = []
t0 = time.perf_counter()
for log in logs:
    t = time.perf_counter()
    log.append(data, leader_epoch=5)
    per.append(time.perf_counter() - t)
loop_s = time.perf_counter() - t0
t0 = time.perf_counter()
jobs = [job for log in logs for job in (log.state_sync_jobs() if hasattr(log, "state_sync_jobs") else [])]
for job in jobs:
    job()
    job.done(True)
for log in logs:
    log.flush()
deferred_s = time.perf_counter() - t0
per.sort()
files = sum(1 for log in logs if (log.directory / "leader-epoch-checkpoint").read_text().split()[-2:] == ["5", "0"])
print(json.dumps({"loop_ms": loop_s * 1e3, "p50_us": per[len(per) // 2] * 1e6, "p99_us": per[int(len(per) * 0.99)] * 1e6,
                  "max_us": per[-1] * 1e6, "deferred_ms": deferred_s * 1e3, "files_ok": files}))
"""


def run(src: str, n: int, tmp: str) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(src))
    out = subprocess.run([sys.executable, "-c", CHILD, str(n), tmp], env=env, check=True, capture_output=True,
                         text=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", action="append", required=True, help="name=path of a src tree (repeat)")
    p.add_argument("--partitions", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    trees = [s.split("=", 1) for s in args.src]
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in trees}
    with tempfile.TemporaryDirectory(prefix="bench-first-append-") as tmp:
        for r in range(args.rounds):
            for name, src in (trees if r % 2 == 0 else trees[::-1]):
                results[name].append(run(src, args.partitions, tmp))
    print(f"{args.partitions} partitions, {args.rounds} rounds, load: {os.getloadavg()[0]:.2f}")
    print(f"{'tree':10} {'loop ms':>9} {'p50 us':>8} {'p99 us':>8} {'max us':>8} {'deferred ms':>12} {'files ok':>9}")
    for name, rows in results.items():
        med = {k: statistics.median(row[k] for row in rows) for k in rows[0]}
        print(f"{name:10} {med['loop_ms']:9.1f} {med['p50_us']:8.0f} {med['p99_us']:8.0f} {med['max_us']:8.0f} "
              f"{med['deferred_ms']:12.1f} {min(row['files_ok'] for row in rows):9.0f}")


if __name__ == "__main__":
    t = time.monotonic()
    main()
    print(f"({time.monotonic() - t:.0f} s)")
