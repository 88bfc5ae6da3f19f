#!/usr/bin/env python3
"""Restart benchmark: how long a node stopped cleanly (SIGTERM) or killed (SIGKILL) takes from
its new process's start until clients can use it again.

Prints figures; it is not a test. One node from `make run`'s config (`bench_startup.Node`: KRaft
combined, config/server.properties on free ports; `--bare`: the EmbeddedBroker command line),
one topic of one partition. Per run the node is stopped (`term`) or killed (`kill`) and started
again on its data; from the process start (suoi's raw client polling every 10 ms, each figure
after the one before):

  port      the client port accepts a connection
  metadata  the first Metadata answer listing a broker
  produce   the first Produce with acks=all answered without error
  join      a confluent-kafka consumer (new group, created then, backoffs 10-100 ms) gets its
            first assignment (FindCoordinator, JoinGroup, SyncGroup, as a user's consumer)

`--nodes 3`: node 2 of a 3-node cluster (combined nodes, `bench_metadata.start_cluster`, Kafka's
default session of 9 s) with a topic of 3 partitions x 3 replicas; node 2 is stopped or killed
and restarted at once (as a supervisor would): -> port, -> metadata (node 2 answers: it has
registered again), -> isr (another node's Metadata has node 2 in the ISR of every partition).
`--victim controller`: the node of the active controller instead of node 2 (another node's
new controller then gives every registration a whole session, the dead one's too).

The modes and the trees (`--src LABEL=DIR`, e.g. `git archive` of an older commit) alternate so
the machine's load hits them alike. Medians of --runs (5) [min-max].

  python benchmarks/bench_restart.py
  python benchmarks/bench_restart.py --src before=/tmp/old/src --src after=src --runs 5
  python benchmarks/bench_restart.py --nodes 3 --runs 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_metadata import start_cluster  # noqa: E402
from bench_startup import REPO_ROOT, Node, ask, metadata, metadata_answered, wait_for  # noqa: E402
from common import log  # noqa: E402
from confluent_kafka import Consumer  # noqa: E402
from kio.schema.create_topics.v7.request import CreatableTopic, CreateTopicsRequest  # noqa: E402
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData  # noqa: E402
from kio.schema.types import TopicName  # noqa: E402
from kio.static.primitive import i16, i32  # noqa: E402

from suoi.protocol.records import build_batch  # noqa: E402

TOPIC = "bench-restart"
PHASES_1 = ("port", "metadata", "produce", "join")
PHASES_3 = ("port", "metadata", "isr")


def port_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True


def produced(port: int) -> bool:
    """One acks=all Produce answered without error (bounded: a node not serving yet may hold it)."""
    import datetime
    request = ProduceRequest(acks=i16(-1), timeout=datetime.timedelta(seconds=5), transactional_id=None, topic_data=(
        TopicProduceData(name=TopicName(TOPIC), partition_data=(
            PartitionProduceData(index=i32(0), records=build_batch([(None, b"x")])),)),))
    answer = ask(port, request, timeout=2.0)
    return all(p.error_code == 0 for t in answer.responses for p in t.partition_responses)


def joined(port: int, deadline: float) -> None:
    """A new group's consumer until its first assignment."""
    assigned: list[Any] = []
    consumer = Consumer({"bootstrap.servers": f"127.0.0.1:{port}", "group.id": f"bench-{uuid.uuid4().hex[:8]}",
                         "reconnect.backoff.ms": 10, "reconnect.backoff.max.ms": 100, "retry.backoff.ms": 10,
                         "retry.backoff.max.ms": 100, "session.timeout.ms": 6000, "enable.auto.commit": False,
                         "log_level": 3})
    try:
        consumer.subscribe([TOPIC], on_assign=lambda c, parts: assigned.extend(parts))
        while not assigned:
            if time.monotonic() > deadline:
                raise TimeoutError("no assignment in time")
            consumer.poll(0.01)
    finally:
        consumer.close()


def create_topic(port: int, partitions: int, replicas: int, timeout: float) -> None:
    answer = ask(port, CreateTopicsRequest(topics=(CreatableTopic(
        name=TopicName(TOPIC), num_partitions=i32(partitions), replication_factor=i16(replicas), assignments=(),
        configs=()),), validate_only=False), timeout=timeout)
    if answer.topics[0].error_code != 0:
        raise RuntimeError(f"CreateTopics failed: error {answer.topics[0].error_code}")


def single_run(node: Node, mode: str, timeout: float) -> dict[str, float]:
    assert node.proc is not None
    node.proc.send_signal(signal.SIGKILL if mode == "kill" else signal.SIGTERM)
    node.proc.wait(timeout)
    node.proc = None
    t0 = node.start()
    deadline = t0 + timeout
    out: dict[str, float] = {}
    for phase, check in (("port", lambda: port_open(node.port)), ("metadata", lambda: metadata_answered(node)),
                         ("produce", lambda: produced(node.port))):
        wait_for(check, node, deadline, phase)
        out[phase] = time.monotonic() - t0
    joined(node.port, deadline)
    out["join"] = time.monotonic() - t0
    return out


def in_isr_everywhere(port: int, node_id: int, partitions: int) -> bool:
    md = metadata(port, TOPIC)
    parts = md.topics[0].partitions if md.topics and md.topics[0].error_code == 0 else ()
    return len(parts) == partitions and all(node_id in p.isr_nodes for p in parts)


def cluster_run(src: Path, modes: list[str], runs: int, timeout: float,
                victim_is_controller: bool = False) -> dict[str, list[dict[str, float]]]:
    """Node 2 (or the active controller's node) of a 3-node cluster stopped/killed and
    restarted, `runs` times per mode."""
    os.environ["PYTHONPATH"] = str(src)  # the nodes' `python -m suoi` runs this tree
    root = Path(tempfile.mkdtemp(prefix="bench-restart-"))
    nodes = start_cluster(root)
    results: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    try:
        create_topic(nodes[1].port, 3, 3, timeout)
        for _ in range(runs):
            for mode in modes:
                wait_for(lambda: all(in_isr_everywhere(nodes[1].port, i, 3) for i in nodes), _Alive(),
                         time.monotonic() + timeout, "every node in every ISR")
                vid = metadata(nodes[1].port).controller_id if victim_is_controller else 2
                victim, other = nodes[vid], nodes[1 if vid != 1 else 3]
                # at once, as a supervisor restarts a crashed process: the old registration may
                # still look alive to the controller (node 2 answers Metadata only once it has
                # registered again, which takes it out of the ISRs until it catches up)
                victim.kill() if mode == "kill" else victim.stop()
                out = _relaunched(victim, vid, other.port, timeout)
                results[mode].append(out)
                log(f"  3 nodes, {mode} node {vid}: " + ", ".join(f"{k} {v:.2f}s" for k, v in out.items()))
    finally:
        for node in nodes.values():
            node.stop()
        shutil.rmtree(root, ignore_errors=True)
    return results


def _relaunched(victim: Any, vid: int, other_port: int, timeout: float) -> dict[str, float]:
    """Launch the stopped node `vid` again: s from its start to each phase of PHASES_3."""
    t0 = time.monotonic()
    victim.launch()
    out: dict[str, float] = {}
    for phase, check in (("port", lambda: port_open(victim.port)),
                         ("metadata", lambda: bool(metadata(victim.port).brokers)),
                         ("isr", lambda: in_isr_everywhere(other_port, vid, 3))):
        wait_for(check, _Alive(), t0 + timeout, phase)
        out[phase] = time.monotonic() - t0
    return out


class _Alive:
    """`wait_for` wants a node to check; the cluster's EmbeddedBrokers raise on their own."""

    def check_alive(self) -> None:
        pass


def summary(title: str, values: list[float]) -> str:
    return f"    {title:<22}{statistics.median(values):>7.2f}  [{min(values):.2f}-{max(values):.2f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--modes", default="term,kill", help="comma-separated: term (SIGTERM), kill (SIGKILL)")
    parser.add_argument("--src", action="append", default=[], metavar="LABEL=DIR",
                        help="a source tree's src/ to run the node from (repeatable; default: this tree)")
    parser.add_argument("--nodes", type=int, choices=(1, 3), default=1)
    parser.add_argument("--victim", choices=("2", "controller"), default="2",
                        help="--nodes 3: restart node 2, or the node of the active controller")
    parser.add_argument("--bare", action="store_true", help="the EmbeddedBroker command line, no config file")
    parser.add_argument("--timeout", type=float, default=60.0, help="bound of each wait (s)")
    args = parser.parse_args()
    trees = [(s.split("=", 1)[0], Path(s.split("=", 1)[1]).resolve()) for s in args.src] or [("this", REPO_ROOT / "src")]
    modes = args.modes.split(",")
    results: dict[tuple[str, str], list[dict[str, float]]] = {(label, m): [] for label, _ in trees for m in modes}
    if args.nodes == 3:
        for label, src in trees:
            for mode, outs in cluster_run(src, modes, args.runs, args.timeout, args.victim == "controller").items():
                results[label, mode] = outs
        phases = PHASES_3
    else:
        nodes = {}
        for label, src in trees:
            nodes[label] = Node(src, bare=args.bare)
            t0 = nodes[label].start()
            wait_for(lambda n=nodes[label]: metadata_answered(n), nodes[label], t0 + args.timeout, "first start")
            create_topic(nodes[label].port, 1, 1, args.timeout)
            wait_for(lambda n=nodes[label]: produced(n.port), nodes[label], time.monotonic() + args.timeout, "topic")
        try:
            for run in range(args.runs):
                for mode in modes:
                    for label, _ in trees:
                        out = single_run(nodes[label], mode, args.timeout)
                        results[label, mode].append(out)
                        log(f"{label} {mode} run {run + 1}: " + ", ".join(f"{k} {v:.2f}s" for k, v in out.items()))
        finally:
            for node in nodes.values():
                node.remove()
        phases = PHASES_1
    where = f"node {args.victim} of 3" if args.nodes == 3 else ("a bare node" if args.bare else "make run's node")
    print(f"\nrestart of {where}: process start -> each phase, median [min-max] of {args.runs} runs (s)")
    for mode in modes:
        for label, _ in trees:
            print(f"  {mode} / {label}")
            for phase in phases:
                print(summary(phase, [r[phase] for r in results[label, mode]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
