#!/usr/bin/env python3
"""Stop benchmark: how long a loaded `python -m suoi broker` node takes to stop cleanly, and
how long its restart then takes to serve.

Prints figures; it is not a test. Per run, on a new data dir: a plain single KRaft node (as
`bench_startup.py --bare` starts it), one topic of --partitions (1,000) partitions, --mb
(300) MB of 10 KB values produced into them (confluent-kafka, acks=1: nothing is fsynced
before the stop, so the final flush has it all to write), and a producer still sending when
SIGTERM arrives. Figures:

  stop        SIGTERM -> the process exited (os.wait4), and its CPU time over the stop
  flush       from the node's log: the final flush and close ("flushed and closed N logs in
              X s", a line of the after tree only)
  clean       1 if the node said it stopped cleanly (0: its flush ran past its bound)
  restart     start on the same data dir -> every partition served (Metadata + ListOffsets),
              and the node's CPU time by then
  skipped     1 if the restart loaded the last segments without re-scanning them (the log
              dir's clean-shutdown marker, after tree)

`--src LABEL=DIR` (repeatable) runs the node from another source tree (e.g. `git archive` of
an older commit into DIR, then DIR/src); the trees' runs alternate so the machine's load hits
them alike. Medians of --runs (3) [min-max].

  python benchmarks/bench_stop.py
  python benchmarks/bench_stop.py --src before=/tmp/old/src --src after=src --runs 3
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_startup import TOPIC, Node, ask, metadata_answered, serving_partitions, wait_for  # noqa: E402
from common import log  # noqa: E402
from confluent_kafka import Producer  # noqa: E402
from kio.schema.create_topics.v7.request import CreatableTopic, CreateTopicsRequest  # noqa: E402
from kio.schema.types import TopicName  # noqa: E402
from kio.static.primitive import i16, i32  # noqa: E402

VALUE = b"v" * 10_000


def produce(bootstrap: str, partitions: int, total_bytes: int, stop: threading.Event | None = None) -> int:
    """Round-robin over the partitions until `total_bytes` (or until `stop` is set); bytes sent."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 20, "batch.size": 1_000_000,
                  "queue.buffering.max.kbytes": 256_000, "message.timeout.ms": 30_000})
    sent = i = 0
    while sent < total_bytes and not (stop is not None and stop.is_set()):
        try:
            p.produce(TOPIC, VALUE, partition=i % partitions)
        except BufferError:
            p.poll(0.05)
            continue
        sent += len(VALUE)
        i += 1
        if i % 1000 == 0:
            p.poll(0)
    p.flush(60 if stop is None else 1)
    return sent


def run(src: Path, partitions: int, mb: int, timeout: float, verbose: bool) -> dict[str, float]:
    node = Node(src, bare=True)
    try:
        t0 = node.start()
        wait_for(lambda: metadata_answered(node), node, t0 + timeout, "first Metadata")
        answer = ask(node.port, CreateTopicsRequest(topics=(CreatableTopic(
            name=TopicName(TOPIC), num_partitions=i32(partitions), replication_factor=i16(1), assignments=(),
            configs=()),), validate_only=False), timeout=timeout)
        assert answer.topics[0].error_code == 0, answer.topics[0].error_code
        wait_for(lambda: serving_partitions(node, partitions), node, time.monotonic() + timeout, "partitions served")
        bootstrap = f"127.0.0.1:{node.port}"
        started = time.monotonic()
        produce(bootstrap, partitions, mb * 1_000_000)
        log(f"  {mb} MB produced in {time.monotonic() - started:.1f}s")
        load_stop = threading.Event()
        load = threading.Thread(target=produce, args=(bootstrap, partitions, 1 << 40, load_stop), daemon=True)
        load.start()
        time.sleep(1.0)  # the load is flowing when the signal arrives
        assert node.proc is not None
        pid = node.proc.pid
        cpu_before = node.cpu_s()
        signalled = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        _, status, usage = os.wait4(pid, 0)
        stop_s = time.monotonic() - signalled
        node.proc.returncode = os.waitstatus_to_exitcode(status)
        node.proc = None
        load_stop.set()
        load.join(30)
        text = node.logfile.read_text(errors="replace") if node.logfile else ""
        if verbose:  # the stop's own log lines, with their times
            log("  " + "\n  ".join(line for line in text[text.find("shutting down") - 30:].splitlines()
                                    if " INFO " in line or " WARNING " in line)[:4000])
        flushed = re.search(r"flushed and closed (\d+) logs in ([\d.]+) s", text)
        figures = {"stop_s": stop_s, "stop_cpu_s": usage.ru_utime + usage.ru_stime - cpu_before,
                   "flush_s": float(flushed.group(2)) if flushed else float("nan"),
                   "clean": float("stopped cleanly" in text)}
        t1 = node.start()
        wait_for(lambda: serving_partitions(node, partitions), node, t1 + timeout, "restart serving")
        figures["restart_s"] = time.monotonic() - t1
        figures["restart_cpu_s"] = node.cpu_s()
        restart_log = node.logfile.read_text(errors="replace") if node.logfile else ""
        figures["skipped"] = float("last segments were not re-scanned" in restart_log)
        return figures
    finally:
        node.remove()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument("--mb", type=int, default=300, help="MB of values produced before the stop")
    parser.add_argument("--src", action="append", default=[], metavar="LABEL=DIR")
    parser.add_argument("--verbose", action="store_true", help="print each stop's log lines")
    parser.add_argument("--timeout", type=float, default=120.0, help="bound of each wait (s)")
    args = parser.parse_args()
    repo = Path(__file__).resolve().parent.parent
    trees = [(s.split("=", 1)[0], Path(s.split("=", 1)[1]).resolve()) for s in args.src] or [("this", repo / "src")]
    results: dict[str, list[dict[str, float]]] = {label: [] for label, _ in trees}
    for i in range(args.runs):
        for label, src in trees:
            figures = run(src, args.partitions, args.mb, args.timeout, args.verbose)
            results[label].append(figures)
            log(f"{label} run {i + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in figures.items()))
    print(f"\nstop of a node with {args.partitions} partitions and {args.mb} MB unflushed, under load; "
          f"median [min-max] of {args.runs} runs")
    for key in ("stop_s", "stop_cpu_s", "flush_s", "clean", "restart_s", "restart_cpu_s", "skipped"):
        print(f"  {key}")
        for label, _ in trees:
            values = [r[key] for r in results[label]]
            print(f"    {label:<12}{statistics.median(values):>8.2f}  [{min(values):.2f}-{max(values):.2f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
