#!/usr/bin/env python3
"""Event-loop stalls from fsyncs on a slow disk (issue 19, helper "truncsync"): a 3-node KRaft
cluster (subprocesses, every node a voter) whose fsyncs of the bench topic's partition files take
``--fsync-ms`` (the nodes run under this script as a launcher that wraps ``os.fsync``: fault
injection, the product is unchanged), through two phases, for each ``--tree`` in turn (alternated):

* ``delete``: DeleteRecords of every partition up to its high watermark (the leaders' and then the
  followers' log-start-offset files and leader-epoch checkpoints);
* ``truncate``: the followers of node X's partitions are stopped (SIGSTOP), X takes ``--records``
  acks=1 records per partition that nobody replicates, X is stopped and the followers go on, so
  they elect new leaders; X goes on and, now a follower, truncates every partition's unreplicated
  tail (recovery point, leader-epoch checkpoint, directory).

* ``--case clean`` (helper "swapsync"), instead of those two: the topic is compacted
  (``min.cleanable.dirty.ratio=0.01``, nodes with ``log.cleaner.backoff.ms=500``), ``--records``
  keyed records (20 keys) per partition go in with acks=all, and the nodes' own cleaners compact
  every replica (the cleaned segments, the swap's directory fsyncs, the cleaner checkpoint) until
  every replica has a cleaner checkpoint; ApiVersions is probed on every node meanwhile.

Per phase and node: the pauses of the event loop (the admin endpoint's ``suoi_eventloop_lag_seconds``:
how many >= 10 ms / >= 100 ms, their total, the bucket bound of the longest) and, for ``truncate``,
the longest ApiVersions round trip to X in the ``--window`` seconds from its first answer after
SIGCONT (the pauses are counted from there too, so X's own SIGSTOP gap is not among them), how
many partitions X logged as truncated, and how many of the topic's fsyncs ran on a loop thread
(the launcher prints each with its stack to the node's log).

    python benchmarks/bench_loop_fsync.py --tree before=/tmp/before/src --tree after=src --rounds 2
    python benchmarks/bench_loop_fsync.py --case clean --partitions 8 --records 400 \
        --tree before=/tmp/before/src --tree after=src --rounds 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from base64 import urlsafe_b64encode
from pathlib import Path
from typing import Any

if __name__ == "__main__" and sys.argv[1:2] == ["--as-node"]:  # the launcher: slow fsyncs, then the CLI
    import runpy
    import threading
    import traceback

    _delay, _match, _real = float(os.environ["SLOW_FSYNC_MS"]) / 1000, os.environ["SLOW_FSYNC_MATCH"], os.fsync

    def _slow(fd: int) -> None:
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            path = ""
        if _match in path:
            if threading.current_thread() is threading.main_thread():  # the event loop's: say where
                print(f"fsync on the loop: {path}\n{''.join(traceback.format_stack(limit=12))}", file=sys.stderr)
            time.sleep(_delay)
        _real(fd)

    os.fsync = _slow
    sys.argv = ["suoi", *sys.argv[2:]]
    runpy.run_module("suoi", run_name="__main__", alter_sys=True)
    sys.exit(0)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from benchmarks.common import admin_histogram, free_port, log, wait_ready  # noqa: E402
from tests.integration.support import api_versions_req  # noqa: E402
from tests.rawclient import RawClient  # noqa: E402

TOPIC = "slowfsync"
LAG = "suoi_eventloop_lag_seconds"


class Cluster:
    def __init__(self, label: str, src: str, fsync_ms: float) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"bench-loopfsync-{label}-"))
        self.ids = (1, 2, 3)
        ports = {i: (free_port(), free_port(), free_port()) for i in self.ids}
        voters = ",".join(f"{i}@127.0.0.1:{ports[i][1]}" for i in self.ids)
        cluster_id = urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        env = dict(os.environ, PYTHONPATH=os.path.abspath(src), SLOW_FSYNC_MS=str(fsync_ms),
                   SLOW_FSYNC_MATCH=f"/{TOPIC}-")
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.boot = {i: f"127.0.0.1:{ports[i][0]}" for i in self.ids}
        self.admin_ports = {i: ports[i][2] for i in self.ids}
        for i in self.ids:
            p, c, a = ports[i]
            props = self.dir / f"node-{i}.properties"
            props.write_text(
                f"process.roles=broker,controller\nnode.id={i}\ncluster.id={cluster_id}\nlog.dirs={self.dir}/node-{i}\n"
                f"listeners=PLAINTEXT://127.0.0.1:{p},CONTROLLER://127.0.0.1:{c}\n"
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{p}\ncontroller.listener.names=CONTROLLER\n"
                f"controller.quorum.voters={voters}\n"
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n"
                "offsets.topic.replication.factor=3\ngroup.initial.rebalance.delay.ms=0\n"
                "broker.heartbeat.interval.ms=200\ncontroller.quorum.election.timeout.ms=500\n"
                "broker.session.timeout.ms=3000\nlog.segment.bytes=16384\nlog.cleaner.backoff.ms=500\n"
                f"admin.listeners=http://127.0.0.1:{a}\n")
            with open(self.dir / f"node-{i}.log", "wb") as out:
                self.procs[i] = subprocess.Popen([sys.executable, __file__, "--as-node", "broker", "--config", str(props)],
                                                 stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        for i in self.ids:
            wait_ready(self.boot[i], 120, self.procs[i])
        self.bootstrap = ",".join(self.boot.values())

    def loop_fsyncs(self, i: int) -> int:
        """The bench topic's fsyncs node ``i`` ran on its event loop so far (the launcher logs each)."""
        text = (self.dir / f"node-{i}.log").read_text(errors="replace")
        return sum(1 for line in text.splitlines() if line.startswith("fsync on the loop: /"))

    def lag(self, i: int) -> dict[str, float]:
        return admin_histogram(self.admin_ports[i], LAG)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def pauses(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    gained = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    count = gained.get("count", 0.0)
    bounds = sorted((float(k), v) for k, v in gained.items() if k not in ("sum", "count", "+Inf"))
    longest = next((b for b, c in bounds if c >= count), float("inf")) if count else 0.0
    return {">=10ms": count - gained.get("0.01", 0.0), ">=100ms": count - gained.get("0.1", 0.0),
            "total_ms": gained.get("sum", 0.0) * 1e3, "max_lt_ms": longest * 1e3}


def leaders(admin: AdminClient, partitions: int) -> dict[int, int]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        tm = admin.list_topics(topic=TOPIC, timeout=5).topics.get(TOPIC)
        if tm is not None and tm.error is None and len(tm.partitions) == partitions and all(
                p.leader > 0 for p in tm.partitions.values()):
            return {p: m.leader for p, m in tm.partitions.items()}
        time.sleep(0.1)
    raise TimeoutError("no leaders")


def produce(bootstrap: str, parts: list[int], records: int, acks: str, keys: int = 0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 5})
    errors: list[object] = []
    for p in parts:
        for n in range(records):
            producer.produce(TOPIC, value=b"%08d" % n + b"x" * 200, partition=p, key=b"k%d" % (n % keys) if keys else None,
                             on_delivery=lambda err, _msg: err is not None and errors.append(err))
            producer.poll(0)
            if keys and n % keys == keys - 1:  # one batch per round of keys: segments to clean
                producer.flush(60)
    assert producer.flush(60) == 0 and not errors, errors[:3]


def offsets(bootstrap: str, p: int) -> tuple[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench"})
    try:
        return c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)
    finally:
        c.close()


class Probe:
    """ApiVersions round trips to every node, back to back, on a thread: the longest one."""

    def __init__(self, boots: list[str]) -> None:
        self.boots, self.longest, self.stop = boots, 0.0, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        clients = [RawClient(b, timeout=30) for b in self.boots]
        try:
            while not self.stop.is_set():
                for rc in clients:
                    s = time.perf_counter()
                    rc.request(api_versions_req())
                    self.longest = max(self.longest, time.perf_counter() - s)
                self.stop.wait(0.002)
        finally:
            for rc in clients:
                rc.close()

    def done(self) -> float:
        self.stop.set()
        self.thread.join(30)
        return self.longest


def clean_round(cluster: Cluster, admin: AdminClient, args: argparse.Namespace) -> dict[str, object]:
    """``--case clean``: keyed records into the compacted topic, every replica cleaned by its node."""
    config = {"min.insync.replicas": "1", "cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01",
              "segment.bytes": "16384"}
    admin.create_topics([NewTopic(TOPIC, args.partitions, 3, config=config)])[TOPIC].result(60)
    leaders(admin, args.partitions)
    before = {i: cluster.lag(i) for i in cluster.ids}
    fsyncs = {i: cluster.loop_fsyncs(i) for i in cluster.ids}
    probe = Probe(list(cluster.boot.values()))
    t0 = time.monotonic()
    produce(cluster.bootstrap, list(range(args.partitions)), args.records, "all", keys=20)
    checkpoints = [cluster.dir / f"node-{i}" / f"{TOPIC}-{p}" / "cleaner-offset-checkpoint"
                   for i in cluster.ids for p in range(args.partitions)]
    deadline = time.monotonic() + args.clean_timeout
    while not all(c.exists() for c in checkpoints) and time.monotonic() < deadline:
        time.sleep(0.2)
    took = time.monotonic() - t0
    longest = probe.done()
    return {"s": round(took, 1), "cleaned": sum(c.exists() for c in checkpoints), "replicas": len(checkpoints),
            **{f"node{i}": pauses(before[i], cluster.lag(i)) for i in cluster.ids},
            "loop_fsyncs": sum(cluster.loop_fsyncs(i) - fsyncs[i] for i in cluster.ids),
            "apiversions_max_ms": round(longest * 1e3, 1)}


def one_round(label: str, src: str, args: argparse.Namespace) -> dict[str, object]:
    cluster = Cluster(label, src, args.fsync_ms)
    out: dict[str, object] = {}
    try:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        if args.case == "clean":
            out["clean"] = clean_round(cluster, admin, args)
            log(f"{label}: {out}")
            return out
        admin.create_topics([NewTopic(TOPIC, args.partitions, 3, config={"min.insync.replicas": "1"})])[TOPIC].result(60)
        lead = leaders(admin, args.partitions)
        produce(cluster.bootstrap, list(range(args.partitions)), args.records, "all")
        # -- delete: every partition's log start moved to its high watermark
        before = {i: cluster.lag(i) for i in cluster.ids}
        fsyncs = {i: cluster.loop_fsyncs(i) for i in cluster.ids}
        t0 = time.monotonic()
        futs = admin.delete_records([TopicPartition(TOPIC, p, offsets(cluster.bootstrap, p)[1])
                                     for p in range(args.partitions)], operation_timeout=60, request_timeout=120)
        for f in futs.values():
            f.result(120)
        took = time.monotonic() - t0
        time.sleep(args.settle)  # the followers' log starts follow with their next fetches
        out["delete"] = {"s": round(took, 2), **{f"node{i}": pauses(before[i], cluster.lag(i)) for i in cluster.ids},
                         "loop_fsyncs": sum(cluster.loop_fsyncs(i) - fsyncs[i] for i in cluster.ids)}
        # -- truncate: node X's unreplicated tails
        x = max(cluster.ids, key=lambda i: sum(1 for v in lead.values() if v == i))
        mine = [p for p, v in lead.items() if v == x]
        others = [i for i in cluster.ids if i != x]
        for i in others:
            os.kill(cluster.procs[i].pid, signal.SIGSTOP)
        produce(cluster.boot[x], mine, args.records, "1")  # only X has them
        os.kill(cluster.procs[x].pid, signal.SIGSTOP)
        for i in others:
            os.kill(cluster.procs[i].pid, signal.SIGCONT)
        other_boot = ",".join(cluster.boot[i] for i in others)
        o_admin = AdminClient({"bootstrap.servers": other_boot})
        deadline = time.monotonic() + 60
        while any(v == x for p, v in leaders(o_admin, args.partitions).items() if p in mine):
            assert time.monotonic() < deadline, "no new leaders"
            time.sleep(0.1)
        os.kill(cluster.procs[x].pid, signal.SIGCONT)
        longest = 0.0
        with RawClient(cluster.boot[x], timeout=30) as rc:
            rc.request(api_versions_req())  # X runs again: from here on, its truncations
            before_x, fsyncs_x = cluster.lag(x), cluster.loop_fsyncs(x)
            t0 = time.monotonic()
            while time.monotonic() - t0 < args.window:
                s = time.perf_counter()
                rc.request(api_versions_req())
                longest = max(longest, time.perf_counter() - s)
                time.sleep(0.002)
        truncated = sum(1 for line in (cluster.dir / f"node-{x}.log").read_text(errors="replace").splitlines()
                        if "truncated " in line and TOPIC in line)
        out["truncate"] = {"partitions": len(mine), "truncated": truncated, "x": x, "apiversions_max_ms": round(longest * 1e3, 1),
                           f"node{x}": pauses(before_x, cluster.lag(x)), "loop_fsyncs": cluster.loop_fsyncs(x) - fsyncs_x}
        log(f"{label}: {out}")
        return out
    finally:
        cluster.stop()
        if not args.keep:
            shutil.rmtree(cluster.dir, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", action="append", required=True, help="label=path/to/src (repeat; alternated)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--partitions", type=int, default=24)
    ap.add_argument("--records", type=int, default=200, help="per partition and phase")
    ap.add_argument("--fsync-ms", type=float, default=100.0)
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--window", type=float, default=8.0, help="s of probing after X goes on")
    ap.add_argument("--keep", action="store_true", help="keep each cluster's dir (node logs: the loop fsyncs' stacks)")
    ap.add_argument("--case", choices=("delete-truncate", "clean"), default="delete-truncate")
    ap.add_argument("--clean-timeout", type=float, default=120.0, help="s to wait for every replica's cleaning")
    args = ap.parse_args()
    trees = [t.split("=", 1) for t in args.tree]
    results: dict[str, list[dict[str, object]]] = {label: [] for label, _ in trees}
    for r in range(args.rounds):
        for label, src in trees:
            log(f"round {r + 1}: {label}")
            results[label].append(one_round(label, src, args))
    print(f"load (1/5/15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}; fsyncs of the topic's files "
          f"{args.fsync_ms:g} ms; {args.partitions} partitions x {args.records} records")
    if args.case == "clean":
        print("| tree | round | s to clean every replica | cleaned | loop fsyncs | longest pause ms (<) "
              "| pauses >= 100 ms | pauses total ms | ApiVersions max ms |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in range(args.rounds):
            for label, _ in trees:
                c: Any = results[label][r]["clean"]
                nodes = [v for k, v in c.items() if k.startswith("node")]
                print(f"| {label} | {r + 1} | {c['s']} | {c['cleaned']}/{c['replicas']} | {c['loop_fsyncs']} "
                      f"| {max(n['max_lt_ms'] for n in nodes):g} | {sum(n['>=100ms'] for n in nodes):g} "
                      f"| {sum(n['total_ms'] for n in nodes):.0f} | {c['apiversions_max_ms']} |")
        return
    print("| tree | round | DeleteRecords s | its loop fsyncs | longest pause ms (<) | pauses total ms "
          "| truncated | their loop fsyncs | longest pause ms (<) | pauses total ms | ApiVersions max ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in range(args.rounds):
        for label, _ in trees:
            res: Any = results[label][r]
            d, t = res["delete"], res["truncate"]
            nodes = [v for k, v in d.items() if k.startswith("node")]
            tx = t[f"node{t['x']}"]
            print(f"| {label} | {r + 1} | {d['s']} | {d['loop_fsyncs']} | {max(n['max_lt_ms'] for n in nodes):g} "
                  f"| {sum(n['total_ms'] for n in nodes):.0f} | {t['truncated']}/{t['partitions']} | {t['loop_fsyncs']} "
                  f"| {tx['max_lt_ms']:g} | {tx['total_ms']:.0f} | {t['apiversions_max_ms']} |")


if __name__ == "__main__":
    main()
