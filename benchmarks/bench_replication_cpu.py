#!/usr/bin/env python3
"""Cluster CPU per replicated MB, by broker role: RF=3 acks=all against RF=1 acks=1 (issue 19).

Prints figures; it is not a test.  Each round starts, per source tree (`--src label=path`,
repeatable; trees take turns round after round, each its own cluster), a 3-broker local KRaft
cluster (`replication_cluster.LocalCluster`: brokers 1-3 and a controller, 127.0.0.1 only), and
produces --messages x --size bytes with bench_replication's throughput producer (linger.ms=5,
256 KiB batches, not idempotent: librdkafka's default, the scorecard's RF=3 row) twice:

  RF=1 acks=1     every partition on broker 1 alone
  RF=3 acks=all   every partition led by broker 1, replicas [1, 2, 3], min.insync.replicas=2

Pinning every leader on broker 1 splits the work by role with no profiler: broker 1's CPU
(/proc/<pid>/stat) is the leader's (the Produce, and answering the followers' Fetches), brokers
2 and 3 do only follower work (build the Fetch, decode the answer, append).  Per run: CPU ms per
MB produced for each broker, the cluster's sum, the client's (this process: librdkafka's threads
and the produce loop) and the controller's; MB/s; follower Fetches per Produce (broker 1's
request counts).  `--count` runs the brokers inside `replication_probe.py`'s counters
(sitecustomize, a few integer increments per fetch): how many follower Fetches carried records
and how many only moved the high watermark.  `--profile DIR` records every broker with py-spy
during the RF=3 runs (`profile_buckets.py DIR/*.txt`).  Medians and ranges over the rounds.

Before every run (once the brokers are quiet) and after it (before its topic is deleted) a probe
writes --touch-mb MB of new file in the cluster's directory (256 KiB writes, as the segment
appends) and times its CPU: what a page-cache write into memory the kernel has free costs right
then.  On this VM (Firecracker, virtio-balloon free page reporting) memory left free for a few
seconds goes back to the host, and the first write into it costs ~5-8 ms of CPU per MB (a host
fault per page) against ~0.25-0.3 when it is warm; every replica's segment write pays it, RF=3
three times.  A run whose probes read > 1 ms/MB ran on cold memory: its CPU per MB is the
machine's state, not the code's (compare runs of the same state only).

  python benchmarks/bench_replication_cpu.py --rounds 3
  git archive main src | tar -x -C /tmp/before
  python benchmarks/bench_replication_cpu.py --src before=/tmp/before/src --src after=src --rounds 4
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from common import MB, REPO_ROOT, log, payload, read_cpu_s
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from replication_cluster import LocalCluster, delete_topic, high_watermarks, wait_for
from replication_phases import PRODUCER_CONF, produce_loop, start_profilers, stop_profilers, warm_up

PROBE_DIR = Path(__file__).resolve().parent / "replication_probe"
LEADER = 1
FOLLOWERS = (2, 3)


def create_pinned(bootstrap: str, name: str, partitions: int, replicas: list[int], configs: dict[str, str]) -> None:
    """A topic whose every partition has `replicas` (the first leads), waited for until its ISR is full."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = NewTopic(name, num_partitions=partitions, replica_assignment=[replicas] * partitions, config=configs)
    fut = admin.create_topics([topic], operation_timeout=60, request_timeout=60)[name]
    fut.result(timeout=60)

    def ready() -> bool:
        tm = admin.list_topics(topic=name, timeout=5.0).topics.get(name)
        return bool(tm is not None and tm.error is None and len(tm.partitions) == partitions and all(
            p.leader == replicas[0] and sorted(p.isrs) == sorted(replicas) for p in tm.partitions.values()))
    wait_for(f"topic {name} leaders and ISR", ready, 60)


def pids(c: LocalCluster) -> dict[int, int]:
    return {int(n["id"]): int(n["pid"]) for n in c.nodes() if n.get("pid")}


def cpu_by_node(c: LocalCluster) -> dict[int, float]:
    return {node: read_cpu_s(pid) or 0.0 for node, pid in pids(c).items()}


def switches_by_node(c: LocalCluster) -> dict[int, tuple[int, int]]:
    """(voluntary, involuntary) context switches of each broker's main thread (its event loop):
    a voluntary one is the loop going to sleep with nothing to do, i.e. one wake-up per switch."""
    out = {}
    for node, pid in pids(c).items():
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if line.endswith(tuple("0123456789")) and "ctxt_switches" in line)
        out[node] = (int(fields["voluntary_ctxt_switches"]), int(fields["nonvoluntary_ctxt_switches"]))
    return out


def probe_counts(c: LocalCluster, out: Path) -> dict[int, dict[str, int]]:
    """Ask every broker's probe (SIGUSR2) for its counters; {node: counters}."""
    result = {}
    for node, pid in pids(c).items():
        if node not in FOLLOWERS:
            continue
        path = out / f"probe-{pid}.json"
        path.unlink(missing_ok=True)
        os.kill(pid, signal.SIGUSR2)
        wait_for(f"probe of broker {node}", path.exists, 10, 0.01)
        result[node] = json.loads(path.read_text())
    return result


def one_run(c: LocalCluster, args: argparse.Namespace, rf: int, probe_out: Path | None) -> dict[str, Any]:
    topic = f"cpu-rf{rf}-{uuid.uuid4().hex[:8]}"
    acks = "all" if rf == 3 else "1"
    replicas = [LEADER, *FOLLOWERS] if rf == 3 else [LEADER]
    create_pinned(c.bootstrap, topic, args.partitions, replicas, {"min.insync.replicas": "2"} if rf == 3 else {})
    p = Producer({"bootstrap.servers": c.bootstrap, "acks": acks, "enable.idempotence": False, **PRODUCER_CONF,
                  "delivery.report.only.error": True})
    watcher = warm_up(c, p, topic, args.partitions)
    value = payload(args.size)
    wait_for("brokers quiet", lambda: quiet(c), 15, 0.2)
    profilers = start_profilers(c, args, f"rf{rf}")
    profilers += start_perf(c, args, rf)
    touch0 = first_touch_ms_per_mb(c.root, args.touch_mb) if args.touch_mb else None
    counts0 = probe_counts(c, probe_out) if probe_out else {}
    req0 = c.request_counts_by_node()
    sw0 = switches_by_node(c)
    cpu0, ccpu0, t0 = cpu_by_node(c), time.process_time(), time.perf_counter()
    sent = produce_loop(p, topic, value, args.messages, t0 + 600)
    if p.flush(60):
        raise RuntimeError(f"{topic}: not everything delivered")
    elapsed = time.perf_counter() - t0
    wait_for("high watermarks", lambda: high_watermarks(watcher, topic, args.partitions) >= sent + 1, 60, 0.01)
    cpu1, ccpu1 = cpu_by_node(c), time.process_time()
    sw1 = switches_by_node(c)
    stop_profilers(profilers)
    req1 = c.request_counts_by_node()
    counts1 = probe_counts(c, probe_out) if probe_out else {}
    watcher.close()
    touch = first_touch_ms_per_mb(c.root, args.touch_mb) if args.touch_mb else None
    delete_topic(c.bootstrap, topic)
    mb = sent * args.size / MB
    per_mb = {node: (cpu1[node] - cpu0[node]) * 1000 / mb for node in cpu1}
    res: dict[str, Any] = {
        "rf": rf, "mb_s": mb / elapsed,
        "leader": per_mb[LEADER], "followers": sum(per_mb[n] for n in FOLLOWERS),
        "client": (ccpu1 - ccpu0) * 1000 / mb, "controller": per_mb.get(4, 0.0)}
    # at RF=1 brokers 2 and 3 host nothing of the topic: their CPU is the background (heartbeats,
    # metadata, scrubber), shown, not counted
    res["cluster"] = res["leader"] + (res["followers"] if rf == 3 else 0.0)
    if touch0 is not None and touch is not None:  # the machine's page state before and after the run
        res["first_touch_before"], res["first_touch_after"] = touch0, touch
    for role, nodes in (("leader", (LEADER,)), ("follower", FOLLOWERS)):
        res[f"{role}_wakeups_per_mb"] = sum(sw1[n][0] - sw0[n][0] for n in nodes) / len(nodes) / mb
        res[f"{role}_preempted_per_mb"] = sum(sw1[n][1] - sw0[n][1] for n in nodes) / len(nodes) / mb
    produces = req1[LEADER]["Produce"] - req0[LEADER]["Produce"]
    fetches = req1[LEADER]["Fetch"] - req0[LEADER]["Fetch"]
    res["produces_per_mb"] = produces / mb
    res["fetches_per_produce"] = fetches / produces if produces else 0.0
    res["follower_wakeups_per_fetch"] = res["follower_wakeups_per_mb"] * len(FOLLOWERS) / (fetches / mb) if fetches else 0.0
    if counts1:
        d = {k: sum(counts1[n][k] - counts0[n][k] for n in counts1) for k in counts1[FOLLOWERS[0]]}
        res["fetches_with_data_per_produce"] = d["with_records"] / produces if produces else 0.0
        res["fetches_hw_only_per_produce"] = (d["fetches"] - d["with_records"]) / produces if produces else 0.0
        res["probe"] = d
    return res


def start_perf(c: LocalCluster, args: argparse.Namespace, rf: int) -> list[subprocess.Popen[bytes]]:
    """--perf DIR: `perf record -g` on every broker for this run (`perf report -i DIR/...`)."""
    if args.perf is None:
        return []
    args.perf.mkdir(parents=True, exist_ok=True)
    procs = [subprocess.Popen(["perf", "record", "-g", "-F", "1999", "-p", str(pid), "-o",
                               str(args.perf / f"rf{rf}-broker{node}-{uuid.uuid4().hex[:6]}.data")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for node, pid in pids(c).items() if node in (LEADER, *FOLLOWERS)]
    time.sleep(0.5)  # perf attaches
    return procs


def first_touch_ms_per_mb(directory: Path, mb: int) -> float:
    """CPU ms per MB (10^6 B) of writing `mb` MB to a new file in 256 KiB writes (module doc)."""
    path = directory / f"first-touch-{uuid.uuid4().hex[:8]}"
    chunk = b"\x5a" * 262_144
    n = max(1, mb * MB // len(chunk))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        t0 = time.thread_time()
        for _ in range(n):
            os.write(fd, chunk)
        spent = time.thread_time() - t0
    finally:
        os.close(fd)
        path.unlink()
    return spent * 1000 / (n * len(chunk) / MB)


def quiet(c: LocalCluster) -> bool:
    a = sum(cpu_by_node(c).values())
    time.sleep(0.3)
    return sum(cpu_by_node(c).values()) - a < 0.06  # < 20 % of a core over the 4 nodes


def start(label: str, src: Path, args: argparse.Namespace, probe_out: Path | None) -> LocalCluster:
    c = LocalCluster(label, {}, args)
    path = [str(src)]
    if probe_out is not None:
        path.insert(0, str(PROBE_DIR))
        c.env["SUOI_PROBE_OUT"] = str(probe_out)
    c.env["PYTHONPATH"] = os.pathsep.join(path)
    c.up()
    return c


ROWS = [("MB/s", "mb_s"), ("leader (broker 1) CPU ms/MB", "leader"),
        ("brokers 2+3 (followers; idle at RF=1) CPU ms/MB", "followers"),
        ("cluster CPU ms/MB", "cluster"),
        ("page-cache first-touch write before the run, CPU ms/MB", "first_touch_before"),
        ("the same after the run (probe), CPU ms/MB", "first_touch_after"), ("client CPU ms/MB", "client"),
        ("controller CPU ms/MB", "controller"),
        ("leader loop wake-ups (voluntary switches) per MB", "leader_wakeups_per_mb"),
        ("leader preempted (involuntary switches) per MB", "leader_preempted_per_mb"),
        ("each follower's loop wake-ups per MB", "follower_wakeups_per_mb"),
        ("each follower preempted per MB", "follower_preempted_per_mb"),
        ("Produce requests per MB", "produces_per_mb"), ("follower Fetches per Produce", "fetches_per_produce"),
        ("  of which with records", "fetches_with_data_per_produce"),
        ("follower loop wake-ups per follower Fetch", "follower_wakeups_per_fetch"),
        ("  of which HW only (no records)", "fetches_hw_only_per_produce")]


def table(results: dict[str, list[dict[str, Any]]]) -> None:
    def fmt(values: list[float]) -> str:
        if not values:
            return "-"
        return f"{statistics.median(values):.3g} ({min(values):.3g}-{max(values):.3g})"

    print(f"{'figure':<54}" + "".join(f"{label:>26}" for label in results))
    for rf in (1, 3):
        for name, key in ROWS:
            cells = [fmt([r[key] for r in runs if r["rf"] == rf and key in r]) for runs in results.values()]
            if all(c == "-" for c in cells):
                continue
            print(f"{f'RF={rf}: {name}':<54}" + "".join(f"{c:>26}" for c in cells))
    for label, runs in results.items():
        rf1 = [r for r in runs if r["rf"] == 1]
        rf3 = [r for r in runs if r["rf"] == 3]
        ratios = [b["mb_s"] / a["mb_s"] * 100 for a, b in zip(rf1, rf3, strict=False)]
        cpu = [b["cluster"] / a["cluster"] for a, b in zip(rf1, rf3, strict=False)]
        print(f"{label}: RF=3 acks=all / RF=1 acks=1 MB/s {fmt(ratios)} %, cluster CPU per MB RF=3 / RF=1 {fmt(cpu)}x")
        cold = sum(1 for r in runs if max(r.get("first_touch_before", 0.0), r.get("first_touch_after", 0.0)) > 1.0)
        if cold:
            print(f"{label}: {cold} of {len(runs)} runs met cold memory (a first-touch probe > 1 ms/MB): see the module doc")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", action="append", default=[], metavar="LABEL=PATH", help="a source tree (repeatable)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--messages", type=int, default=300_000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--touch-mb", type=int, default=16, help="MB the first-touch probe writes before and after a run (0: none)")
    ap.add_argument("--count", action="store_true", help="count follower Fetches with and without records")
    ap.add_argument("--profile", type=Path, help="py-spy record every broker during the RF=3 runs")
    ap.add_argument("--profile-rate", type=int, default=250, help="py-spy samples per second")
    ap.add_argument("--perf", type=Path, help="perf record -g every broker during every run")
    ap.add_argument("--suoi-python", default=sys.executable)
    ap.add_argument("--ready-timeout", type=float, default=60.0)
    ap.add_argument("--keep-dir", action="store_true")
    args = ap.parse_args()
    trees = [tuple(s.split("=", 1)) for s in args.src] or [("this", str(REPO_ROOT / "src"))]
    results: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in trees}
    probe_out = Path(tempfile.mkdtemp(prefix="rf3cpu-probe-")) if args.count else None
    log(f"load average {os.getloadavg()}")
    for rnd in range(args.rounds):
        for label, src in (trees if rnd % 2 == 0 else trees[::-1]):
            c = start(label, Path(src).resolve(), args, probe_out)
            try:
                for rf in ((1, 3) if rnd % 2 == 0 else (3, 1)):
                    r = one_run(c, args, rf, probe_out)
                    results[label].append(r)
                    log(f"{label} round {rnd + 1} RF={rf}: " + ", ".join(
                        f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()))
            finally:
                c.stop()
    log(f"load average {os.getloadavg()}")
    table(results)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
