#!/usr/bin/env python3
"""What the one-time abort-index check of an upgraded log costs at open (`suoi.log.txn_upgrade`).

Builds a partition log on disk in process (`PartitionLog.append`, --mib MiB of --batch-bytes
batches, 1 GiB segments), closes it, makes it look written by a version before the follower fix
(producer snapshots rewritten as version 2), then times `PartitionLog.open` as after a clean
stop (`clean=True`: no segment re-scanned, so what is left is the check):

  aged      the first open after the upgrade: a non-transactional log is hopped over (CHECKED),
            a transactional one (producers 1-4, one batch per transaction, every 4th aborted) is
            rebuilt from its batch headers (REBUILT)
  the hop alone  `_transactional_below` over the whole plain log (what CHECKED adds)
  trusted   the next open (a version-3 snapshot at the log end): what every later start costs,
            and what the open cost before this change

CPU time of this thread (time.thread_time) and wall time; medians of --runs opens, each of a
fresh aged copy. The log's files are in the page cache (just written): a cold disk adds the
read of the headers' pages (for batches of a few KiB, the whole log).

  python benchmarks/bench_txn_upgrade.py --mib 512 --batch-bytes 1024
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from suoi.log import txn_upgrade  # noqa: E402
from suoi.log.config import LogConfig  # noqa: E402
from suoi.log.partition_log import PartitionLog  # noqa: E402
from suoi.log.producer_state import SNAPSHOT_SUFFIX  # noqa: E402
from suoi.protocol.records import build_batch  # noqa: E402

CONFIG = LogConfig(segment_bytes=1 << 30)


def build(directory: Path, mib: int, batch_bytes: int, transactional: bool) -> tuple[int, int]:
    """Append ~mib MiB; returns (batches, aborted transactions)."""
    log = PartitionLog.open(directory, "b", 0, CONFIG)
    value = b"x" * max(batch_bytes - 90, 1)
    seqs = [0, 0, 0, 0, 0]
    batches = aborted = 0
    while log.size_in_bytes < mib << 20:
        if transactional:
            pid = 1 + batches % 4
            log.append(build_batch([(None, value)], producer_id=pid, producer_epoch=0, base_sequence=seqs[pid],
                                   is_transactional=True))
            seqs[pid] += 1
            commit = batches % 16 < 12
            log.append_control(pid, 0, commit, 0)
            aborted += not commit
        else:
            log.append(build_batch([(None, value)]))
        batches += 1
    log.close()
    return batches, aborted


def age(directory: Path) -> None:
    for path in directory.glob(f"*{SNAPSHOT_SUFFIX}"):
        path.write_text(json.dumps({**json.loads(path.read_text()), "version": 2}))


def timed_hop(directory: Path) -> float:
    """CPU of the hop alone (`txn_upgrade._transactional_below`) over the whole log."""
    log = PartitionLog.open(directory, "b", 0, CONFIG, clean=True)
    try:
        c0 = time.thread_time()
        txn_upgrade._transactional_below(log.segments, log.log_end_offset)
        return time.thread_time() - c0
    finally:
        log.close()


def timed_open(directory: Path) -> tuple[float, float, str, int]:
    t0, c0 = time.perf_counter(), time.thread_time()
    log = PartitionLog.open(directory, "b", 0, CONFIG, clean=True)
    cpu, wall = time.thread_time() - c0, time.perf_counter() - t0
    check = log.txn_index_check.value
    entries = len(log.aborted_transactions(0, log.log_end_offset))
    log.close()
    return cpu, wall, check, entries


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--batch-bytes", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-txn-upgrade-") as tmp:
        print(f"{args.mib} MiB log of ~{args.batch_bytes} B batches; medians of {args.runs} opens (CPU / wall, ms)")
        for transactional in (False, True):
            kind = "transactional" if transactional else "plain"
            built = Path(tmp) / f"{kind}-0"
            batches, aborted = build(built, args.mib, args.batch_bytes, transactional)
            aged_t: list[tuple[float, float]] = []
            trusted_t: list[tuple[float, float]] = []
            checks = set()
            for _ in range(args.runs):
                copy = Path(tmp) / "copy-0"
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(built, copy)
                age(copy)
                cpu, wall, check, entries = timed_open(copy)
                assert entries == aborted, (entries, aborted)
                aged_t.append((cpu, wall))
                checks.add(check)
                cpu, wall, check, entries = timed_open(copy)
                assert check == "trusted" and entries == aborted, (check, entries)
                trusted_t.append((cpu, wall))
            for label, times in ((f"aged ({'/'.join(sorted(checks))})", aged_t), ("trusted", trusted_t)):
                cpu_ms = statistics.median(c for c, _ in times) * 1000
                wall_ms = statistics.median(w for _, w in times) * 1000
                spread = f"{min(c for c, _ in times) * 1000:.1f}-{max(c for c, _ in times) * 1000:.1f}"
                print(f"  {kind:13s} {batches:>9,d} batches {label:20s} {cpu_ms:9.1f} / {wall_ms:9.1f}"
                      f"  (CPU {spread}; {cpu_ms * 1000 / batches:.2f} us/batch)")
            if not transactional:
                hop_ms = statistics.median(timed_hop(built) for _ in range(args.runs)) * 1000
                print(f"  {kind:13s} {batches:>9,d} batches {'the hop alone':20s} {hop_ms:9.1f} (CPU)"
                      f"{'':14s}({hop_ms * 1000 / batches:.2f} us/batch)")


if __name__ == "__main__":
    main()
