"""Cost of checking batches on the read path (framing + CRC32C), storage layer only.

bench.py's consume phase reads data the broker has just appended, which it already checked
on produce (nothing to verify again). This measures the worst case: a log opened cold (after
a restart every byte is unverified), read from offset 0 to the end with PartitionLog.read in
1 MiB fetches - a first pass (every batch checked) and a second one (checked ranges cached) -
for each source tree given, each in its own process, in one run:

    python benchmarks/bench_verify.py --src before=/work/main/src --src after=src --mb 256

Prints MB/s per tree and pass, and the ratio of each tree to the first one.

With --e2e it measures the same through a broker and a real client instead: each tree's
broker gets bench.py's produce phase, is stopped cleanly and restarted (so nothing it
serves is verified yet), then bench.py's consume phase reads everything back:

    python benchmarks/bench_verify.py --e2e --src before=/work/main/src --src after=src
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


def e2e_round(label: str, src: str, args: argparse.Namespace) -> dict[str, float]:
    """Produce, restart cleanly, consume cold (bench.py's phases) with one tree's broker."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from common import _spawn, create_topic, free_port
    from phases import consume_phase, produce_phase

    workdir = tempfile.mkdtemp(prefix=f"bench-verify-{label}-")
    port = free_port()
    argv = [sys.executable, "-m", "suoi", "broker", "--listeners", f"PLAINTEXT://127.0.0.1:{port}",
            "--log-dirs", os.path.join(workdir, "data"),
            # small segments: after the restart all but the last of each partition are cold
            "--override", f"log.segment.bytes={args.segment_mb * 1024 * 1024}"]
    env = dict(os.environ, PYTHONPATH=os.path.abspath(src))
    topic = "verify"
    t = _spawn(label, argv, port, env=env, workdir=workdir, ready_timeout=60, is_peer=False)
    try:
        create_topic(t.bootstrap, topic, args.partitions)
        prod = produce_phase(t.bootstrap, topic, 1024, "1", args.messages, 60.0, 60.0, t.pid)
        t.workdir = None  # keep the data for the restart
        t.stop()
        t = _spawn(label, argv, port, env=env, workdir=workdir, ready_timeout=60, is_peer=False)
        cons = consume_phase(t.bootstrap, topic, args.partitions, prod["delivered"], 60.0, t.pid)
        assert cons["complete"], cons
        return {"cold": cons["mb_s"], "cpu": cons.get("broker_cpu_s", float("nan"))}
    finally:
        t.workdir = workdir
        t.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", action="append", required=True, metavar="LABEL=PATH",
                    help="a source tree to measure (its src/ directory); repeat to compare")
    ap.add_argument("--mb", type=int, default=256, help="log size (default 256 MB)")
    ap.add_argument("--batch-kb", type=int, default=16, help="records (1 KB each) per batch (default 16)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per tree; best is kept")
    ap.add_argument("--e2e", action="store_true", help="through a broker and confluent-kafka (cold consume)")
    ap.add_argument("--messages", type=int, default=300_000, help="--e2e: 1 KB messages produced")
    ap.add_argument("--partitions", type=int, default=6, help="--e2e: partitions of the topic")
    ap.add_argument("--segment-mb", type=int, default=8, help="--e2e: log.segment.bytes in MB")
    args = ap.parse_args()
    if args.e2e:
        e2e: dict[str, dict[str, float]] = {}
        for _ in range(args.rounds):
            for label, path in (tuple(s.split("=", 1)) for s in args.src):
                r = e2e_round(label, path, args)
                best = e2e.setdefault(label, {"cold": 0.0, "cpu": float("inf")})
                best["cold"], best["cpu"] = max(best["cold"], r["cold"]), min(best["cpu"], r["cpu"])
        first = e2e[args.src[0].split("=", 1)[0]]
        print(f"{'tree':<10} {'cold consume MB/s':>18} {'ratio':>7} {'broker CPU s':>13} {'ratio':>7}")
        for label, v in e2e.items():
            print(f"{label:<10} {v['cold']:>18.1f} {v['cold'] / first['cold']:>7.3f} {v['cpu']:>13.2f} "
                  f"{v['cpu'] / first['cpu']:>7.3f}")
        print(json.dumps({"e2e": e2e, "messages": args.messages, "at": time.time()}))
        return 0
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
