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

`--nodes 3`: the same on a 3-node KRaft cluster (combined nodes, as `bench_metadata.py` starts
them; the topic has 3 replicas): node 2 is stopped while the load runs, and the figures add
`handed` (1 if its controlled shutdown moved its leaderships away before it stopped: no
"incomplete" line in its log); no restart.

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
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_metadata import start_cluster  # noqa: E402
from bench_startup import TOPIC, Node, ask, metadata, metadata_answered, serving_partitions, wait_for  # noqa: E402
from common import log, read_cpu_s  # noqa: E402
from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
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


def stop_under_load(bootstrap: str, partitions: int, pid: int) -> tuple[float, float]:
    """SIGTERM `pid` while a producer sends to every partition: (s to its exit, its CPU s meanwhile)."""
    load_stop = threading.Event()
    load = threading.Thread(target=produce, args=(bootstrap, partitions, 1 << 40, load_stop), daemon=True)
    load.start()
    time.sleep(1.0)  # the load is flowing when the signal arrives
    cpu_before = read_cpu_s(pid) or 0.0
    signalled = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    _, _, usage = os.wait4(pid, 0)
    stop_s = time.monotonic() - signalled
    load_stop.set()
    load.join(30)
    return stop_s, usage.ru_utime + usage.ru_stime - cpu_before


def flush_s(text: str) -> float:
    flushed = re.search(r"flushed and closed (\d+) logs in ([\d.]+) s", text)
    return float(flushed.group(2)) if flushed else float("nan")


def _led(port: int, partitions: int) -> bool:
    """Every partition of the topic has a leader in node `port`'s Metadata."""
    md = metadata(port, TOPIC)
    return bool(md.topics) and len(md.topics[0].partitions) == partitions and all(
        p.leader_id >= 0 for p in md.topics[0].partitions)


def _answers(check: Any) -> bool:
    try:
        return bool(check())
    except (OSError, TimeoutError, ConnectionError, EOFError):
        return False


def run_cluster(src: Path, partitions: int, mb: int, timeout: float, verbose: bool) -> dict[str, float]:
    """Node 2 of a 3-node cluster stopped under load (see the module doc)."""
    os.environ["PYTHONPATH"] = str(src)  # the nodes' `python -m suoi` runs this tree
    root = Path(tempfile.mkdtemp(prefix="bench-stop-"))
    nodes = start_cluster(root)
    try:
        bootstrap = ",".join(n.bootstrap for n in nodes.values())
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(TOPIC, partitions, 3)])[TOPIC].result(timeout)
        port = nodes[1].port
        deadline = time.monotonic() + timeout
        while not _answers(lambda: _led(port, partitions)):
            if time.monotonic() > deadline:
                raise TimeoutError("the topic's partitions were not served in time")
            time.sleep(0.05)
        started = time.monotonic()
        produce(bootstrap, partitions, mb * 1_000_000)
        log(f"  {mb} MB produced in {time.monotonic() - started:.1f}s")
        victim = nodes[2]
        assert victim.proc is not None
        stop_s, cpu_s = stop_under_load(bootstrap, partitions, victim.proc.pid)
        victim.proc.returncode = 0
        victim.proc = None
        text = victim.logs()
        if verbose:
            log("  " + "\n  ".join(line for line in text[text.find("shutting down") - 30:].splitlines()
                                    if (" INFO " in line or " WARNING " in line) and "suoi.replication" not in line))
        return {"stop_s": stop_s, "stop_cpu_s": cpu_s, "flush_s": flush_s(text),
                "clean": float("stopped cleanly" in text),
                "handed": float("controlled shutdown of node 2 incomplete" not in text)}
    finally:
        for node in nodes.values():
            if node.proc is not None:
                node.proc.send_signal(signal.SIGTERM)
        for node in nodes.values():
            node.stop()
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument("--mb", type=int, default=300, help="MB of values produced before the stop")
    parser.add_argument("--src", action="append", default=[], metavar="LABEL=DIR")
    parser.add_argument("--verbose", action="store_true", help="print each stop's log lines")
    parser.add_argument("--nodes", type=int, choices=(1, 3), default=1, help="a single node, or node 2 of 3")
    parser.add_argument("--timeout", type=float, default=120.0, help="bound of each wait (s)")
    args = parser.parse_args()
    repo = Path(__file__).resolve().parent.parent
    trees = [(s.split("=", 1)[0], Path(s.split("=", 1)[1]).resolve()) for s in args.src] or [("this", repo / "src")]
    results: dict[str, list[dict[str, float]]] = {label: [] for label, _ in trees}
    for i in range(args.runs):
        for label, src in trees:
            runner = run if args.nodes == 1 else run_cluster
            figures = runner(src, args.partitions, args.mb, args.timeout, args.verbose)
            results[label].append(figures)
            log(f"{label} run {i + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in figures.items()))
    where = "a node" if args.nodes == 1 else "node 2 of a 3-node cluster (3 replicas)"
    print(f"\nstop of {where} with {args.partitions} partitions and {args.mb} MB unflushed, under load; "
          f"median [min-max] of {args.runs} runs")
    for key in results[trees[0][0]][0]:
        print(f"  {key}")
        for label, _ in trees:
            values = [r[key] for r in results[label]]
            print(f"    {label:<12}{statistics.median(values):>8.2f}  [{min(values):.2f}-{max(values):.2f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
