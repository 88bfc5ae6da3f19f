#!/usr/bin/env python3
"""What one log-cleaner pass costs (`suoi.log.cleaner`), in process, on a compacted log with
transactions; two source trees alternated (``--before SRC``: e.g. a ``git archive`` of main).

Builds, with this tree, a compacted partition log on disk (--mib MiB; batches of --records
records of --value-bytes-byte values over --keys keys; every --txn-every-th batch transactional,
producers 1-4 in turn, one batch per transaction followed by its marker, every 4th aborted;
segments rolled by hand every --segment-mib MiB after a marker, so no transaction straddles a
segment end and both trees must write the very same bytes), then times one synchronous
`LogCleaner.clean` (plan, build, commit) per run on a fresh copy, in a subprocess per tree:

  first   the whole log dirty: the first cleaning of the topic
  again   the log cleaned once, then --again-pct % more appended and rolled: a routine later
          cleaning (the clean head is rewritten too, the offset map covers the new part only)

Figures: wall and CPU time of the process (time.process_time: the clean runs on one thread),
bytes read by read/pread (/proc/self/io rchar; the page cache is warm from the copy, so they are
copies from it, not disk reads) and a SHA-256 of the cleaned segments (both trees must agree).

  python benchmarks/bench_cleaner.py --before /tmp/cleanidx-before/src --mib 200 --runs 3
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
SRC = HERE.parents[1] / "src"


def log_config(segment_mib: int):  # type: ignore[no-untyped-def]
    from suoi.log.config import LogConfig

    return LogConfig(cleanup_policy=("compact",), segment_bytes=max(segment_mib, 1) << 21)


def build(directory: Path, args: argparse.Namespace, mib: int, seed: int, seqs: dict[int, int], n: int = 0) -> int:
    """Append ~mib MiB to the log at ``directory`` (opened, appended, closed) from batch ``n``
    on; returns the batch count (``seqs``: the producers' next sequences, updated)."""
    from suoi.log.partition_log import PartitionLog
    from suoi.protocol.records import build_batch

    rng = random.Random(seed)
    log = PartitionLog.open(directory, "bench", 0, log_config(args.segment_mib))
    value = b"v" * args.value_bytes
    target = log.size_in_bytes + (mib << 20)
    while log.size_in_bytes < target:
        records = [(b"key-%08d" % rng.randrange(args.keys), value) for _ in range(args.records)]
        if n % args.txn_every == 0:
            pid = 1 + (n // args.txn_every) % 4
            log.append(build_batch(records, producer_id=pid, producer_epoch=0, base_sequence=seqs[pid],
                                   is_transactional=True))  # type: ignore[arg-type]
            seqs[pid] += len(records)
            log.append_control(pid, 0, (n // args.txn_every) % 4 != 3, 0)
        else:
            log.append(build_batch(records))  # type: ignore[arg-type]
        n += 1
        if log.segments[-1].size >= args.segment_mib << 20:
            log.roll()
    log.roll()
    log.append(build_batch([(b"active", value)]))  # the active segment is never cleaned
    log.close()
    return n


def prepare(tmp: Path, args: argparse.Namespace) -> dict[str, Path]:
    """Build 'first' and 'again' source logs with this tree."""
    from suoi.log.cleaner import LogCleaner
    from suoi.log.partition_log import PartitionLog

    first = tmp / "first-0"
    seqs = dict.fromkeys(range(1, 5), 0)
    batches = build(first, args, args.mib, 1, seqs)
    again = tmp / "again-0"
    shutil.copytree(first, again)
    log = PartitionLog.open(again, "bench", 0, log_config(args.segment_mib))
    assert LogCleaner().clean(log, int(time.time() * 1000), force=True) is not None
    log.close()
    build(again, args, max(args.mib * args.again_pct // 100, 1), 2, seqs, batches)
    return {"first": first, "again": again}


def rchar() -> int:
    with open("/proc/self/io") as f:
        for line in f:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    return 0


def transactions_alone(log) -> tuple[float, str]:  # type: ignore[no-untyped-def]
    """CPU of what each tree does to learn the range's transactions, on a plan of its own: before,
    the pass over the planned batches (`scan_transactions`); after, the copy of the abort index
    entries (`plan`) and the ranges built from them (`build`)."""
    from suoi.log import cleaner, cleaner_txn

    plan = cleaner.LogCleaner().plan(log, int(time.time() * 1000), force=True)
    assert plan is not None
    try:
        c0 = time.process_time()
        if hasattr(cleaner_txn, "scan_transactions"):
            cleaner_txn.scan_transactions(b for s in plan.segments for b in cleaner._iter_batches(s))
            return time.process_time() - c0, "scan of the batches"
        c0 = time.process_time()
        entries = list(itertools.chain.from_iterable(s.txn_index.entries for s in log.segments))
        cleaner_txn.AbortedRanges(entries, plan.segments[0].base_offset, plan.segments[-1].next_offset)
        return time.process_time() - c0, f"{len(entries):,} index entries"
    finally:
        plan.close()


def run_one(directory: Path, segment_mib: int) -> dict[str, object]:
    """In the measuring subprocess (``sys.path`` set to the tree under test)."""
    from suoi.log.cleaner import LogCleaner
    from suoi.log.partition_log import PartitionLog

    log = PartitionLog.open(directory, "bench", 0, log_config(segment_mib))
    txn_cpu, txn_kind = transactions_alone(log)
    r0, c0, t0 = rchar(), time.process_time(), time.perf_counter()
    result = LogCleaner().clean(log, int(time.time() * 1000), force=True)
    wall, cpu, read = time.perf_counter() - t0, time.process_time() - c0, rchar() - r0
    assert result is not None
    digest = hashlib.sha256()
    for seg in log.segments[:-1]:
        digest.update(seg.log_path.read_bytes())
    out = {"wall": wall, "cpu": cpu, "read": read, "bytes_in": result.bytes_in, "bytes_out": result.bytes_out,
           "removed": result.records_removed, "txn_cpu": txn_cpu, "txn_kind": txn_kind,
           "sha": digest.hexdigest()[:16], "tree": sys.modules["suoi"].__file__}
    log.close()
    return out


def measure(src: str, source: Path, tmp: Path, segment_mib: int) -> dict[str, object]:
    copy = tmp / "run-0"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(source, copy)
    cmd = [sys.executable, str(HERE), "--worker", src, str(copy), str(segment_mib)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=1800)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", help="the src directory of the tree to compare with")
    ap.add_argument("--mib", type=int, default=200)
    ap.add_argument("--records", type=int, default=10)
    ap.add_argument("--value-bytes", type=int, default=100)
    ap.add_argument("--keys", type=int, default=200_000)
    ap.add_argument("--txn-every", type=int, default=4)
    ap.add_argument("--segment-mib", type=int, default=64)
    ap.add_argument("--again-pct", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        src, directory, segment_mib = args.worker
        sys.path.insert(0, src)
        print(json.dumps(run_one(Path(directory), int(segment_mib))))
        return
    if not args.before:
        ap.error("--before SRC is required")
    sys.path.insert(0, str(SRC))
    trees = {"before": str(Path(args.before).resolve()), "after": str(SRC)}
    with tempfile.TemporaryDirectory(prefix="bench-cleaner-") as tmp_name:
        tmp = Path(tmp_name)
        sources = prepare(tmp, args)
        print(f"load: {os.getloadavg()[0]:.2f}; {args.mib} MiB, {args.records} x {args.value_bytes} B records a batch, "
              f"{args.keys:,} keys, 1 batch in {args.txn_every} transactional (1/4 aborted)")
        for case, source in sources.items():
            runs: dict[str, list[dict[str, object]]] = {name: [] for name in trees}
            for _ in range(args.runs):
                for name, src in trees.items():  # alternated, back to back
                    runs[name].append(measure(src, source, tmp, args.segment_mib))
                    assert str(runs[name][-1]["tree"]).startswith(src), runs[name][-1]["tree"]
            shas = {r["sha"] for rs in runs.values() for r in rs}
            for name, rs in runs.items():
                med = {k: statistics.median(float(r[k]) for r in rs) for k in ("wall", "cpu", "read")}  # type: ignore[arg-type]
                cpus = [float(r["cpu"]) for r in rs]  # type: ignore[arg-type]
                print(f"  {case:5s} {name:6s} wall {med['wall']:7.2f} s  CPU {med['cpu']:7.2f} s "
                      f"({min(cpus):.2f}-{max(cpus):.2f})  read {med['read'] / 2**20:7.1f} MiB  "
                      f"in {int(rs[0]['bytes_in']) / 2**20:6.1f} MiB -> out {int(rs[0]['bytes_out']) / 2**20:6.1f} MiB  "  # type: ignore[call-overload]
                      f"removed {rs[0]['removed']:,}")
            for name, rs in runs.items():
                alone = statistics.median(float(r["txn_cpu"]) for r in rs)  # type: ignore[arg-type]
                print(f"  {case:5s} {name:6s} transactions alone: {alone * 1000:7.1f} ms CPU ({rs[0]['txn_kind']})")
            print(f"  {case:5s} cleaned segments identical in both trees: {len(shas) == 1} ({', '.join(sorted(shas))})")


if __name__ == "__main__":
    main()
