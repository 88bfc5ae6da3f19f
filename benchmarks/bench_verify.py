"""Cost of checking batches on the read path (framing + CRC32C), storage layer only.

bench.py's consume phase reads data the broker has just appended, which it already checked
on produce (nothing to verify again). This measures the worst case: a log opened cold (after
a restart every byte is unverified), read from offset 0 to the end with PartitionLog.read in
1 MiB fetches - a first pass (every batch checked) and a second one (checked ranges cached) -
for each source tree given, each in its own process, in one run:

    python benchmarks/bench_verify.py --src before=/work/main/src --src after=src --mb 256

Prints MB/s per tree and pass, and the ratio of each tree to the first one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, sys, time, tempfile
from pathlib import Path
from suoi.log.config import LogConfig
from suoi.log.partition_log import PartitionLog
from suoi.protocol.records import build_batch

mb, batch_kb, directory = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
cfg = LogConfig(segment_bytes=64 * 1024 * 1024)
value = b"x" * 1000
records = [(None, value)] * max(batch_kb, 1)
if not any(directory.glob("*.log")):
    log = PartitionLog.open(directory, "bench", 0, cfg)
    blob = build_batch(records)
    while log.size_in_bytes < mb * 1024 * 1024:
        log.append(blob)
    log.flush()
    log.close()
out = {}
log = PartitionLog.open(directory, "bench", 0, cfg)  # cold: nothing verified yet
for name in ("cold", "warm"):
    t0 = time.perf_counter()
    offset, total = 0, 0
    while offset < log.log_end_offset:
        data = log.read(offset, 1 << 20)
        total += len(data)
        # next offset: parse the last batch header (base offset + last offset delta)
        pos = 0
        while pos < len(data):
            base = int.from_bytes(data[pos:pos + 8], "big")
            length = int.from_bytes(data[pos + 8:pos + 12], "big")
            delta = int.from_bytes(data[pos + 23:pos + 27], "big")
            pos += 12 + length
        offset = base + delta + 1
    out[name] = total / (time.perf_counter() - t0) / 1e6
log.close()
print(json.dumps(out))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", action="append", required=True, metavar="LABEL=PATH",
                    help="a source tree to measure (its src/ directory); repeat to compare")
    ap.add_argument("--mb", type=int, default=256, help="log size (default 256 MB)")
    ap.add_argument("--batch-kb", type=int, default=16, help="records (1 KB each) per batch (default 16)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per tree; best is kept")
    args = ap.parse_args()
    trees = [tuple(s.split("=", 1)) for s in args.src]
    best: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        for _ in range(args.rounds):
            for label, path in trees:
                env = dict(os.environ, PYTHONPATH=os.path.abspath(path))
                directory = os.path.join(tmp, label)  # each tree writes (and reopens) its own log
                os.makedirs(directory, exist_ok=True)
                res = subprocess.run([sys.executable, "-c", CHILD, str(args.mb), str(args.batch_kb), directory],
                                     env=env, capture_output=True, text=True, check=True)
                figures = json.loads(res.stdout)
                mine = best.setdefault(label, {})
                for k, v in figures.items():
                    mine[k] = max(mine.get(k, 0.0), v)
    first = trees[0][0]
    print(f"{'tree':<10} {'cold MB/s':>10} {'warm MB/s':>10} {'cold ratio':>11} {'warm ratio':>11}")
    for label, _ in trees:
        f = best[label]
        print(f"{label:<10} {f['cold']:>10.0f} {f['warm']:>10.0f} {f['cold'] / best[first]['cold']:>11.3f} "
              f"{f['warm'] / best[first]['warm']:>11.3f}")
    print(json.dumps({"mb": args.mb, "batch_kb": args.batch_kb, "results": best, "at": time.time()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
