#!/usr/bin/env python3
"""Broker CPU per MB of RF=3 acks=all replication, brokers only, in one process.

Prints figures; it is not a test.  Starts `suoi.testing.InProcessCluster(3)` (three combined
KRaft nodes, each on its own thread and event loop), creates a topic of --partitions
partitions, RF=3, min.insync.replicas=2, and produces --mb MB of --size byte values with an
idempotent acks=all librdkafka producer (linger.ms=5, batch.size 256 KiB; its queue bounded
to --queue-kb).  Measured per node thread (`pthread_getcpuclockid`: CPU time of that thread
only, so the client's threads and the other nodes do not count): broker CPU ms per MB
produced, summed over the three nodes, and Produce/Fetch requests per MB.  --rf 1 --acks 1
gives the baseline the issue's ratio is taken against.  --profile N prints the N heaviest
functions (cProfile on every node thread, by own time; cProfile roughly doubles Python's cost,
so read shares, not absolute times).  Best and median of --rounds runs, each on a fresh topic.

Run each source tree's copy against its own `src` to compare trees:

  python benchmarks/bench_replication_path.py                 # RF=3 acks=all, 6 partitions
  python benchmarks/bench_replication_path.py --rf 1 --acks 1 # the baseline
  python benchmarks/bench_replication_path.py --profile 40 --rounds 1
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from common import fmt_num  # noqa: E402
from replication_phases import produce_pipeline  # noqa: E402

MB = 1024 * 1024


def thread_cpu_s(thread: threading.Thread) -> float:
    assert thread.ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def request_counts(nodes: list[Any]) -> dict[str, float]:
    """Produce and Fetch requests answered, and the sums of the Produce times (ms), as the
    multi-process bench reads them from /metrics (`replication_phases.produce_pipeline`)."""
    counts = {"Produce": 0.0, "Fetch": 0.0, "Produce_ms": 0.0, "Produce_remote_ms": 0.0}
    for node in nodes:
        for api, stats in node.broker.metrics.requests.items():
            if api in counts:
                counts[api] += stats.count
            if api == "Produce":
                counts["Produce_ms"] += stats.total_sum
                counts["Produce_remote_ms"] += stats.remote_sum
    return counts


def one_run(cluster: Any, args: argparse.Namespace, profiles: list[cProfile.Profile] | None) -> dict[str, float]:
    from confluent_kafka import Producer

    topic = f"bench-{uuid.uuid4().hex[:8]}"
    cluster.create_topic(topic, args.partitions, args.rf, {"min.insync.replicas": str(min(2, args.rf))})
    idempotent = args.acks == "all" and not args.no_idempotence
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": args.acks, "enable.idempotence": idempotent,
                  "linger.ms": 5, "batch.size": 256 * 1024, "batch.num.messages": 100_000, "compression.type": "none",
                  "queue.buffering.max.kbytes": args.queue_kb, "queue.buffering.max.messages": 1_000_000})
    p.produce(topic, b"warm-up")
    if p.flush(30):
        raise RuntimeError("warm-up not delivered")
    nodes = list(cluster.nodes.values())
    threads = [n._thread for n in nodes]
    value = b"x" * args.size
    n = args.mb * MB // args.size
    if profiles is not None:
        for node, prof in zip(nodes, profiles, strict=True):
            node._loop.call_soon_threadsafe(prof.enable)
    requests0 = request_counts(nodes)
    cpu0 = [thread_cpu_s(t) for t in threads]
    process0 = time.process_time()
    t0 = time.perf_counter()
    sent = 0
    while sent < n:
        try:
            p.produce(topic, value)
            sent += 1
        except BufferError:
            p.poll(0.05)
    if p.flush(120):
        raise RuntimeError("not every message was delivered")
    elapsed = time.perf_counter() - t0
    cpu = [thread_cpu_s(t) - c for t, c in zip(threads, cpu0, strict=True)]
    client_cpu = time.process_time() - process0 - sum(cpu)  # librdkafka's threads and the produce loop
    requests1 = request_counts(nodes)
    if profiles is not None:
        done = threading.Barrier(len(nodes) + 1)
        for node, prof in zip(nodes, profiles, strict=True):
            node._loop.call_soon_threadsafe(lambda prof=prof: (prof.disable(), done.wait()))
        done.wait(10)
    mb = n * args.size / MB
    return {"cpu_ms_per_mb": sum(cpu) * 1000 / mb, "mb_s": mb / elapsed,
            "node_ms_per_mb": [round(c * 1000 / mb, 2) for c in cpu], "client_ms_per_mb": client_cpu * 1000 / mb,
            "produce_per_mb": (requests1["Produce"] - requests0["Produce"]) / mb,
            "fetch_per_mb": (requests1["Fetch"] - requests0["Fetch"]) / mb,
            **produce_pipeline(requests0, requests1, elapsed, args.partitions)}


def paced_run(cluster: Any, args: argparse.Namespace, profiles: list[cProfile.Profile] | None) -> dict[str, Any]:
    """--paced N: N messages one at a time (each delivered before the next): broker CPU per
    acks=all round trip (produce, the followers' fetches, HW, answer) and its latency."""
    from confluent_kafka import Producer

    topic = f"bench-{uuid.uuid4().hex[:8]}"
    cluster.create_topic(topic, 1, args.rf, {"min.insync.replicas": str(min(2, args.rf))})
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": args.acks, "linger.ms": 0,
                  "enable.idempotence": args.acks == "all" and not args.no_idempotence})
    for _ in range(20):
        p.produce(topic, b"warm-up")
        p.flush(30)
    nodes = list(cluster.nodes.values())
    threads = [n._thread for n in nodes]
    value = b"x" * args.size
    if profiles is not None:
        for node, prof in zip(nodes, profiles, strict=True):
            node._loop.call_soon_threadsafe(prof.enable)
    cpu0 = [thread_cpu_s(t) for t in threads]
    requests0 = request_counts(nodes)
    lat = []
    for _ in range(args.paced):
        t0 = time.perf_counter()
        p.produce(topic, value)
        if p.flush(30):
            raise RuntimeError("not delivered")
        lat.append((time.perf_counter() - t0) * 1000)
    cpu = [thread_cpu_s(t) - c for t, c in zip(threads, cpu0, strict=True)]
    requests1 = request_counts(nodes)
    if profiles is not None:
        for node, prof in zip(nodes, profiles, strict=True):
            node._loop.call_soon_threadsafe(prof.disable)
        time.sleep(0.2)
    lat.sort()
    return {"cpu_us_per_msg": sum(cpu) * 1e6 / args.paced, "p50_ms": lat[len(lat) // 2],
            "p99_ms": lat[int(len(lat) * 0.99)],
            "fetch_per_msg": (requests1["Fetch"] - requests0["Fetch"]) / args.paced}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--rf", type=int, default=3)
    ap.add_argument("--acks", default="all", choices=("all", "1"))
    ap.add_argument("--size", type=int, default=1024, help="value bytes")
    ap.add_argument("--mb", type=int, default=200, help="MB produced per run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--queue-kb", type=int, default=32 * 1024, help="producer queue.buffering.max.kbytes")
    ap.add_argument("--paced", type=int, default=0, metavar="N",
                    help="instead: N messages one at a time, CPU per acks=all round trip and latency")
    ap.add_argument("--no-idempotence", action="store_true", help="acks=all without enable.idempotence")
    ap.add_argument("--switch-interval", type=float, default=None, metavar="S",
                    help="sys.setswitchinterval for the run (Python's default is 0.005 s: a node thread that "
                         "becomes ready while the producing thread holds the GIL waits up to that long)")
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="print the N heaviest functions")
    ap.add_argument("--sort", default="tottime", help="with --profile: pstats sort key (tottime, cumulative)")
    ap.add_argument("--callers", nargs="*", default=[], help="with --profile: print the callers of these functions")
    ap.add_argument("--dump", metavar="FILE", help="with --profile: also write the merged pstats to FILE")
    args = ap.parse_args()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    from suoi.testing import InProcessCluster

    profiles = [cProfile.Profile(time.thread_time) for _ in range(3)] if args.profile or args.callers or args.dump \
        else None
    runs = []
    with InProcessCluster(3) as cluster:
        print("node threads (native ids, for perf --tid):",
              ",".join(str(n._thread.native_id) for n in cluster.nodes.values()), flush=True)
        for r in range(args.rounds if args.paced else 0):
            res = paced_run(cluster, args, profiles)
            print(f"paced run {r + 1}: {res['cpu_us_per_msg']:.0f} us broker CPU per message, latency p50 "
                  f"{res['p50_ms']:.2f} ms p99 {res['p99_ms']:.2f} ms, Fetch requests per message "
                  f"{res['fetch_per_msg']:.2f}", flush=True)
            runs.append(res)
        for r in range(0 if args.paced else args.rounds):
            res = one_run(cluster, args, profiles)
            print(f"run {r + 1}: {res['cpu_ms_per_mb']:.2f} ms CPU per MB (nodes {res['node_ms_per_mb']}; the client "
                  f"{res['client_ms_per_mb']:.2f}), "
                  f"{res['mb_s']:.1f} MB/s, Produce/Fetch requests per MB {res['produce_per_mb']:.2f}/"
                  f"{res['fetch_per_mb']:.2f}; Produce at the broker {fmt_num(res['produce_ms'])} ms (ISR wait "
                  f"{fmt_num(res['produce_wait_ms'])} ms), in flight per partition "
                  f"{fmt_num(res['produce_in_flight'])}, cycle per partition {fmt_num(res['cycle_ms'])} ms", flush=True)
            runs.append(res)
    if args.paced:
        cpus = sorted(r["cpu_us_per_msg"] for r in runs)
        print(f"\nRF={args.rf} acks={args.acks}, one message at a time x {args.paced}: broker CPU per message median "
              f"{statistics.median(cpus):.0f} us (runs {', '.join(f'{c:.0f}' for c in cpus)}), latency p99 median "
              f"{statistics.median(r['p99_ms'] for r in runs):.2f} ms")
        runs = []
    cpu = sorted(r["cpu_ms_per_mb"] for r in runs) or [0.0]
    if runs:
        print(f"\nRF={args.rf} acks={args.acks}, {args.partitions} partitions, {args.mb} MB x {args.rounds}: broker CPU "
              f"per MB best {cpu[0]:.2f} ms, median {statistics.median(cpu):.2f} ms (runs "
              f"{', '.join(f'{c:.2f}' for c in cpu)}); MB/s median {statistics.median(r['mb_s'] for r in runs):.1f} "
              "(one process: not the cluster's throughput)")
    if profiles is not None:
        stats = pstats.Stats(profiles[0])
        for prof in profiles[1:]:
            stats.add(prof)
        if args.paced:
            print(f"Python calls per message (all three nodes): {stats.total_calls / (args.paced * args.rounds):.0f}")
        if args.dump:
            stats.dump_stats(args.dump)
        if args.profile:
            stats.sort_stats(args.sort).print_stats(args.profile)
        for name in args.callers:  # one at a time: pstats applies several restrictions in turn
            stats.print_callers(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
