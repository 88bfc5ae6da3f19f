#!/usr/bin/env python3
"""Summarise py-spy collapsed stacks of replicating brokers by role (what the CPU is spent on).

`bench_replication.py --profile DIR` writes one `py-spy record --format raw` file per broker and
RF=3 acks=all run; this prints, over all of them (or the files given), the share of samples per
bucket: the leader's append, its serving of (follower) fetches, the follower's fetch
request/answer handling and its append, HW advancement and acks=all completion, ISR and
metadata work, socket writes of answers, the event loop's own C code (epoll, socket reads), and
how much of each bucket is the segment file write itself.

py-spy samples wall time of non-idle threads: on a loaded machine a thread preempted inside a
syscall still counts, so shares lean towards syscalls that wake another process (socket writes
on loopback). Use it for where the Python time goes; use `perf` or CPU time for absolute costs.

  python benchmarks/profile_buckets.py /tmp/prof/*.txt
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

#: (bucket, substrings of the stack, any of which puts a sample in it), first match wins
BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    ("follower append", ("append_as_follower",)),
    ("follower fetch request/answer", ("ReplicaFetcher", "suoi/client/connection.py", "suoi/client/pool.py")),
    ("HW advance, acks=all completion", ("_on_follower_fetch", "suoi/replication/waiters.py",
                                         "suoi/partition/append.py", "_leader_changed", "high_watermark_moved")),
    ("leader append (produce)", ("handle_produce", "PartitionLog.append ")),
    ("leader serving fetches", ("handle_fetch", "suoi/partition/fetch.py", "suoi/api/fetch.py")),
    ("ISR bookkeeping", ("suoi/partition/isr.py", "maybe_shrink_isr")),
    ("metadata", ("metadata",)),
    ("HW checkpoint files", ("hw_checkpoint",)),
    ("request dispatch", ("suoi/api/dispatch.py",)),
    ("socket writes/frames (net/server.py)", ("suoi/net/server.py",)),
]
FILE_WRITE = "LogSegment.append (suoi/log/segment.py"
LOOP = "Runner.run (asyncio/runners.py"


def bucket_of(frames: list[str]) -> str:
    stack = ";".join(frames)
    for name, needles in BUCKETS:
        if any(n in stack for n in needles):
            return name
    if frames and frames[-1].startswith(LOOP):
        return "event loop C code (epoll, socket reads)"
    return "other"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", type=Path, help="py-spy --format raw outputs")
    args = ap.parse_args()
    total = 0
    buckets: collections.Counter[str] = collections.Counter()
    writes: collections.Counter[str] = collections.Counter()
    for path in args.files:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack:
                continue
            n = int(count)
            frames = stack.split(";")
            name = bucket_of(frames)
            total += n
            buckets[name] += n
            if frames[-1].startswith(FILE_WRITE):
                writes[name] += n
    print(f"{len(args.files)} file(s), {total} samples")
    print(f"{'bucket':<42}{'share':>7}   of which the segment file write")
    for name, n in buckets.most_common():
        print(f"{name:<42}{100 * n / total:>6.1f}%   {100 * writes[name] / total:.1f}%")


if __name__ == "__main__":
    main()
