#!/usr/bin/env python3
"""Unclean restart benchmark: how long a `python -m suoi broker` node takes to serve again after a
SIGKILL with many rolled segments, and what flushing at each roll costs the produce path.

Prints figures; it is not a test. Per tree, once: a node as `bench_startup.py` starts it
(config/server.properties on free ports, or `--bare`: listeners and log dirs only) with
`log.segment.bytes` = --segment-mb (8) MiB and `log.flush.offset.checkpoint.interval.ms` = 1000,
one topic of --partitions (4), --mb (256) MB of
10 KB values produced (`bench_stop.produce`: confluent-kafka, acks=1; the default flush settings:
nothing flushed by size or time), then up to --settle (5) s for every partition's
`recovery-point` file to reach its active segment (a tree that does not flush at a roll never
does). Figures:

  produce     MB/s of that produce (wall; the machine is shared), the node's CPU s per 100 MB and
              its event-loop thread's (the request path: the flush threads' fsyncs, and the
              writeback they start, are charged to the node, not to its loop), in
              --produce-rounds (4) rounds, the trees alternating
  restart     per run: SIGKILL, start on the same data dir -> first Metadata, -> every partition
              served (Metadata + ListOffsets), and the node's CPU s by then
  rescanned   from the restart's "log recovery:" line (trees that log it): segments and MB
              re-scanned with CRC checks, segments loaded from their indexes, and the time the
              logs took to open (with server.properties a restart after a SIGKILL takes ~8-10 s to
              its first Metadata whatever the logs; `--bare` restarts in ~1 s)

The page cache still holds the data (a process crash), unless `--cold`: the topic's files are
written back and evicted (`posix_fadvise` DONTNEED, this node's files only) before each restart,
as after a power loss. `--src LABEL=DIR` (repeatable) as in bench_startup.py; the trees' runs
alternate. Medians of --runs (5) [min-max].

  cp -r src /tmp/off/  # then make LogManager._note_roll a no-op there: no flush at a roll, same line
  python benchmarks/bench_unclean_restart.py --bare --mb 1024 --segment-mb 16 --src off=/tmp/off/src --src after=src
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_startup import REPO_ROOT, TOPIC, Node, ask, metadata_answered, serving_partitions, wait_for  # noqa: E402
from bench_stop import produce  # noqa: E402  (confluent-kafka, acks=1, 10 KB values round-robin)
from common import log, read_cpu_s  # noqa: E402
from kio.schema.create_topics.v7.request import CreatableTopic, CreateTopicsRequest  # noqa: E402
from kio.schema.types import TopicName  # noqa: E402
from kio.static.primitive import i16, i32  # noqa: E402

RECOVERY = re.compile(r"log recovery: (\d+) segments \((\d+) bytes\) re-scanned .*?, (\d+) loaded .*? in ([\d.]+) s")


def _points_reached(node: Node, partitions: int) -> bool:
    """Every partition's persisted recovery point is at (or past) its active segment's base."""
    for p in range(partitions):
        directory = node.workdir / "data" / f"{TOPIC}-{p}"
        bases = sorted(int(f.stem) for f in directory.glob("*.log"))
        try:
            point = int((directory / "recovery-point").read_text().strip() or 0)
        except FileNotFoundError:
            point = 0
        if not bases or point < bases[-1]:
            return False
    return True


def prepare(src: Path, args: argparse.Namespace) -> Node:
    """A running node of tree `src` with the topic created and served."""
    node = Node(src, bare=args.bare, overrides={"log.segment.bytes": str(args.segment_mb << 20),
                                                "log.flush.offset.checkpoint.interval.ms": "1000"})
    t0 = node.start()
    wait_for(lambda: metadata_answered(node), node, t0 + args.timeout, "first Metadata")
    answer = ask(node.port, CreateTopicsRequest(topics=(CreatableTopic(
        name=TopicName(TOPIC), num_partitions=i32(args.partitions), replication_factor=i16(1), assignments=(),
        configs=()),), validate_only=False), timeout=args.timeout)
    assert answer.topics[0].error_code == 0, answer.topics[0].error_code
    wait_for(lambda: serving_partitions(node, args.partitions), node, time.monotonic() + args.timeout, "served")
    return node


def produce_round(node: Node, args: argparse.Namespace) -> dict[str, float]:
    """Produce --mb / --produce-rounds MB: (MB/s, the node's CPU s per 100 MB)."""
    mb = args.mb / args.produce_rounds
    assert node.proc is not None
    pid = node.proc.pid
    cpu0, loop0, started = node.cpu_s(), read_cpu_s(pid, pid) or 0.0, time.monotonic()
    produce(f"127.0.0.1:{node.port}", args.partitions, int(mb * 1_000_000))
    wall, cpu, loop = time.monotonic() - started, node.cpu_s() - cpu0, (read_cpu_s(pid, pid) or 0.0) - loop0
    return {"produce_mb_s": mb / wall, "produce_cpu_s_per_100mb": cpu * 100 / mb,
            "produce_loop_cpu_s_per_100mb": loop * 100 / mb}


def settle(node: Node, args: argparse.Namespace) -> dict[str, float]:
    """Up to --settle s for the recovery points; (segments, whether they all reached)."""
    settled = time.monotonic() + args.settle
    while not _points_reached(node, args.partitions) and time.monotonic() < settled:
        time.sleep(0.05)
    segments = len(list((node.workdir / "data").glob(f"{TOPIC}-*/*.log")))
    return {"segments": float(segments), "points_reached": float(_points_reached(node, args.partitions))}


def drop_cached(node: Node) -> None:
    """Evict the partitions' files from the page cache (written back first: DONTNEED keeps dirty
    pages), as after a power loss or a reboot; only this node's files, not the shared machine's."""
    for path in (node.workdir / "data").glob(f"{TOPIC}-*/*"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def unclean_restart(node: Node, args: argparse.Namespace) -> dict[str, float]:
    node.stop(kill=True)
    if args.cold:
        drop_cached(node)
    t0 = node.start()
    wait_for(lambda: metadata_answered(node), node, t0 + args.timeout, "first Metadata")
    first = time.monotonic() - t0
    wait_for(lambda: serving_partitions(node, args.partitions), node, t0 + args.timeout, "serving")
    figures = {"restart_metadata_s": first, "restart_serving_s": time.monotonic() - t0, "restart_cpu_s": node.cpu_s()}
    found = RECOVERY.search(node.logfile.read_text(errors="replace")) if node.logfile else None
    if found:
        figures.update(rescanned_segments=float(found[1]), rescanned_mb=int(found[2]) / 1e6,
                       loaded_segments=float(found[3]), logs_opened_s=float(found[4]))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--mb", type=int, default=256)
    parser.add_argument("--segment-mb", type=int, default=8)
    parser.add_argument("--produce-rounds", type=int, default=4, help="--mb produced in this many rounds, alternating")
    parser.add_argument("--settle", type=float, default=5.0, help="longest wait for the recovery points (s)")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--cold", action="store_true",
                        help="evict the topic's files from the page cache before each restart (a power loss)")
    parser.add_argument("--bare", action="store_true",
                        help="no config file (as suoi.testing.EmbeddedBroker starts a node) instead of server.properties")
    parser.add_argument("--src", action="append", default=[], metavar="LABEL=DIR")
    args = parser.parse_args()
    trees = [(s.split("=", 1)[0], Path(s.split("=", 1)[1]).resolve()) for s in args.src] or [("this", REPO_ROOT / "src")]

    nodes: dict[str, Node] = {}
    produced: dict[str, list[dict[str, float]]] = {label: [] for label, _ in trees}
    settled: dict[str, dict[str, float]] = {}
    results: dict[str, list[dict[str, float]]] = {label: [] for label, _ in trees}
    try:
        for label, src in trees:
            nodes[label] = prepare(src, args)
        for r in range(args.produce_rounds):
            for label, _ in trees:
                produced[label].append(produce_round(nodes[label], args))
                log(f"{label} produce round {r + 1}: {produced[label][-1]}")
        for label, _ in trees:
            settled[label] = settle(nodes[label], args)
            log(f"{label}: {settled[label]}")
        for run in range(args.runs):
            for label, _ in trees:
                results[label].append(unclean_restart(nodes[label], args))
                log(f"{label} run {run + 1}: {results[label][-1]}")
    finally:
        for node in nodes.values():
            node.remove(kill=True)

    print(f"\nunclean restart, {args.mb} MB in {args.partitions} partitions, {args.segment_mb} MiB segments; "
          f"median [min-max] of {args.runs} runs")
    for label, _ in trees:
        print(f"  {label}: {settled[label]['segments']:.0f} segments, recovery points reached: "
              f"{bool(settled[label]['points_reached'])}")
        for key, runs in (*((key, produced[label]) for key in ("produce_mb_s", "produce_cpu_s_per_100mb",
                                                                  "produce_loop_cpu_s_per_100mb")),
                          *((key, results[label]) for key in ("restart_metadata_s", "restart_serving_s",
                                                              "restart_cpu_s", "rescanned_segments", "rescanned_mb",
                                                              "loaded_segments", "logs_opened_s"))):
            values = [r[key] for r in runs if key in r]
            if values:
                print(f"    {key:<24}{statistics.median(values):>9.3f}  [{min(values):.3f}-{max(values):.3f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
