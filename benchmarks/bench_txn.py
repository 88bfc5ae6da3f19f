#!/usr/bin/env python3
"""Idempotent and transactional produce benchmark.

Prints figures; it is not a test.  Client: confluent-kafka (librdkafka).

  --bootstrap HOST:PORT   an already running broker
  --suoi                  start suoi on a free loopback port (as benchmarks/bench.py does)

Phases:
  idempotence   1 KB values, acks=all, a fresh 6-partition topic per run, the same tight
                produce loop as bench.py (linger.ms=10, 1 MB batches, no compression):
                enable.idempotence off and on, alternating, --rounds times each; each run
                stops at --messages or --seconds, time includes the final flush.  Reports
                MB/s per run, the median of each mode, and the overhead of idempotence.
  txn           a transactional producer on a 6-partition topic: begin, --txn-size 1 KB
                records (round robin over partitions), commit; repeated for --txn-seconds.
                Reports transactions/s and MB/s (committed payload only).

  cluster       (--cluster) a local 3-broker cluster (`suoi cluster up --brokers 3 --controllers 1`,
                internal topics with 3 replicas, as bench_replication.py starts it): a consumer
                joins a group, then a transactional producer runs --cluster-txns transactions
                that each write one record to two topics and send_offsets_to_transaction,
                while a bystander acks=all producer writes one record at a time to an unrelated
                topic.  Reports transaction latency p50/p99/max, the bystander's longest wait,
                and init_transactions of another transactional id.

  python benchmarks/bench_txn.py --suoi
  python benchmarks/bench_txn.py --bootstrap 127.0.0.1:9092 --rounds 3 --seconds 5
  python benchmarks/bench_txn.py --cluster --cluster-txns 50
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import MB, create_topic, log, payload, read_cpu_s, start_suoi  # noqa: E402  (shared helpers)
from confluent_kafka import Producer  # noqa: E402


def produce_run(bootstrap: str, partitions: int, size: int, idempotent: bool, max_msgs: int, seconds: float,
                pid: int | None) -> dict[str, Any]:
    topic = f"bench-idem-{'on' if idempotent else 'off'}-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic, partitions)
    errors = {"n": 0, "first": None}

    def on_delivery(err, _msg):  # noqa: ANN001 - delivery reports for failures only
        if err is not None:
            errors["n"] += 1
            errors["first"] = errors["first"] or str(err)

    p = Producer({
        "bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": idempotent,
        "linger.ms": 10, "batch.size": 1_000_000, "batch.num.messages": 100_000,
        "queue.buffering.max.messages": 2_000_000, "queue.buffering.max.kbytes": 512 * 1024,
        "compression.type": "none", "delivery.report.only.error": True, "on_delivery": on_delivery,
    })
    p.list_topics(topic, timeout=10.0)
    value = payload(size)
    sent = 0
    cpu0 = read_cpu_s(pid)
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while sent < max_msgs:
        try:
            p.produce(topic, value)
        except BufferError:
            p.poll(0.1)
            if time.perf_counter() > deadline:
                break
            continue
        sent += 1
        if not sent & 63:
            p.poll(0)
            if time.perf_counter() > deadline:
                break
    remaining = p.flush(60)
    elapsed = time.perf_counter() - t0
    cpu1 = read_cpu_s(pid)
    delivered = sent - errors["n"] - remaining
    res = {"idempotent": idempotent, "sent": sent, "delivered": delivered, "errors": errors["n"],
           "undelivered": remaining, "elapsed_s": round(elapsed, 3), "mb_s": delivered * size / MB / elapsed,
           "msg_s": delivered / elapsed}
    if errors["first"]:
        res["first_error"] = errors["first"]
    if cpu0 is not None and cpu1 is not None:
        res["broker_cpu_s"] = round(cpu1 - cpu0, 2)
    return res


def txn_run(bootstrap: str, partitions: int, size: int, txn_size: int, seconds: float,
            pid: int | None) -> dict[str, Any]:
    topic = f"bench-txn-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic, partitions)
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"bench-{topic}", "linger.ms": 5,
                  "batch.size": 1_000_000, "compression.type": "none"})
    p.init_transactions(30)
    value = payload(size)
    txns = 0
    cpu0 = read_cpu_s(pid)
    t0 = time.perf_counter()
    deadline = t0 + seconds
    latencies = []
    while time.perf_counter() < deadline:
        t_begin = time.perf_counter()
        p.begin_transaction()
        for i in range(txn_size):
            p.produce(topic, value, partition=i % partitions)
        p.commit_transaction(30)
        latencies.append(time.perf_counter() - t_begin)
        txns += 1
    elapsed = time.perf_counter() - t0
    cpu1 = read_cpu_s(pid)
    latencies.sort()
    res = {"transactions": txns, "txn_size": txn_size, "elapsed_s": round(elapsed, 3),
           "txn_s": txns / elapsed, "mb_s": txns * txn_size * size / MB / elapsed,
           "msg_s": txns * txn_size / elapsed,
           "txn_ms_p50": latencies[len(latencies) // 2] * 1000 if latencies else None,
           "txn_ms_p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000 if latencies else None}
    if cpu0 is not None and cpu1 is not None:
        res["broker_cpu_s"] = round(cpu1 - cpu0, 2)
    return res


def _percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


def cluster_run(args: argparse.Namespace) -> dict[str, Any]:
    """Two-topic transactions with offsets on a 3-broker cluster, with an acks=all bystander."""
    import threading

    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
    from replication_cluster import LocalCluster

    cluster = LocalCluster("txn", {"group.initial.rebalance.delay.ms": "0"}, args)
    try:
        cluster.up()
        bs = cluster.bootstrap
        run = uuid.uuid4().hex[:6]
        inp, out_a, out_b, side = (f"{n}-{run}" for n in ("in", "out-a", "out-b", "bystander"))
        admin = AdminClient({"bootstrap.servers": bs})
        for f in admin.create_topics([NewTopic(t, 3, 3) for t in (inp, out_a, out_b, side)]).values():
            f.result(30)
        assigned = threading.Event()
        consumer = Consumer({"bootstrap.servers": bs, "group.id": f"bench-{run}", "enable.auto.commit": False})
        consumer.subscribe([inp], on_assign=lambda _c, _p: assigned.set())
        deadline = time.monotonic() + 30
        while not assigned.is_set() and time.monotonic() < deadline:
            consumer.poll(0.05)
        p = Producer({"bootstrap.servers": bs, "transactional.id": f"bench-{run}", "linger.ms": 0})
        p.init_transactions(60)

        def one_txn(i: int) -> float:
            t0 = time.perf_counter()
            p.begin_transaction()
            p.produce(out_a, b"a", partition=i % 3)
            p.produce(out_b, b"b", partition=(i + 1) % 3)
            p.send_offsets_to_transaction([TopicPartition(inp, 0, i + 1)], consumer.consumer_group_metadata(), 120)
            p.commit_transaction(120)
            return time.perf_counter() - t0

        for i in range(2):  # first connections to every leader
            one_txn(i)
        stop = threading.Event()
        waits: list[float] = []

        def bystander() -> None:
            bp = Producer({"bootstrap.servers": bs, "acks": "all", "linger.ms": 0})
            while not stop.is_set():
                done: list[Any] = []
                t0 = time.perf_counter()
                bp.produce(side, b"x", on_delivery=lambda err, _m, done=done: done.append(err))
                while not done and time.perf_counter() - t0 < 120:
                    bp.poll(0.005)
                waits.append(time.perf_counter() - t0)
                stop.wait(0.01)
            bp.flush(10)

        thread = threading.Thread(target=bystander, daemon=True)
        thread.start()
        latencies = []
        for i in range(2, 2 + args.cluster_txns):
            latencies.append(one_txn(i))
            log(f"cluster: transaction {i - 1}: {latencies[-1] * 1000:.1f} ms")
        stop.set()
        thread.join(130)
        t0 = time.perf_counter()
        Producer({"bootstrap.servers": bs, "transactional.id": f"bench-other-{run}"}).init_transactions(120)
        other_init = time.perf_counter() - t0
        consumer.close()
        latencies.sort()
        waits.sort()
        return {"transactions": len(latencies), "txn_ms_p50": _percentile(latencies, 0.5) * 1000,
                "txn_ms_p99": _percentile(latencies, 0.99) * 1000, "txn_ms_max": latencies[-1] * 1000,
                "bystander_ms_p50": _percentile(waits, 0.5) * 1000 if waits else None,
                "bystander_ms_max": waits[-1] * 1000 if waits else None, "other_init_ms": other_init * 1000}
    finally:
        cluster.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", metavar="HOST:PORT")
    ap.add_argument("--suoi", action="store_true", help="start suoi on a free 127.0.0.1 port")
    ap.add_argument("--suoi-python", default=sys.executable)
    ap.add_argument("--suoi-cmd", default=None)
    ap.add_argument("--ready-timeout", type=float, default=30.0)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--size", type=int, default=1024, help="value size in bytes (default 1024)")
    ap.add_argument("--messages", type=int, default=1_000_000, help="cap per idempotence run")
    ap.add_argument("--seconds", type=float, default=8.0, help="time bound per idempotence run")
    ap.add_argument("--rounds", type=int, default=4, help="runs per idempotence mode (alternating)")
    ap.add_argument("--txn-size", type=int, default=100, help="records per transaction")
    ap.add_argument("--txn-seconds", type=float, default=10.0)
    ap.add_argument("--skip-idempotence", action="store_true")
    ap.add_argument("--skip-txn", action="store_true")
    ap.add_argument("--json", action="store_true", help="also print one JSON line with every run")
    ap.add_argument("--cluster", action="store_true", help="only the 3-broker cluster phase (starts its own)")
    ap.add_argument("--cluster-txns", type=int, default=50, help="measured transactions in the cluster phase")
    ap.add_argument("--keep-dir", action="store_true", help="cluster phase: keep the node logs")
    args = ap.parse_args(argv)
    if args.cluster:
        args.ready_timeout = max(args.ready_timeout, 60.0)
        t = cluster_run(args)
        print(f"\n{'figure (3 brokers, internal topics RF=3)':<56}{'value':>12}")
        print(f"{'two-topic txn + send_offsets p50 (ms)':<56}{t['txn_ms_p50']:>12.1f}")
        print(f"{'two-topic txn + send_offsets p99 (ms)':<56}{t['txn_ms_p99']:>12.1f}")
        print(f"{'two-topic txn + send_offsets max (ms)':<56}{t['txn_ms_max']:>12.1f}")
        if t["bystander_ms_max"] is not None:
            print(f"{'bystander acks=all delivery p50 (ms)':<56}{t['bystander_ms_p50']:>12.1f}")
            print(f"{'bystander acks=all delivery max (ms)':<56}{t['bystander_ms_max']:>12.1f}")
        print(f"{'init_transactions of another transactional.id (ms)':<56}{t['other_init_ms']:>12.1f}")
        if args.json:
            print(json.dumps({"cluster": t}))
        return 0
    if not args.suoi and not args.bootstrap:
        ap.error("give --suoi, --bootstrap or --cluster")

    target = start_suoi(args) if args.suoi else None
    bootstrap = target.bootstrap if target else args.bootstrap
    pid = target.pid if target else None
    out: dict[str, Any] = {"bootstrap": bootstrap}
    try:
        if not args.skip_idempotence:
            runs: list[dict[str, Any]] = []
            for r in range(args.rounds):
                for idem in ((False, True) if r % 2 == 0 else (True, False)):
                    res = produce_run(bootstrap, args.partitions, args.size, idem, args.messages, args.seconds, pid)
                    log(f"idempotence {'on ' if idem else 'off'}: {res['mb_s']:.1f} MB/s "
                        f"({res['delivered']} msgs in {res['elapsed_s']}s, errors {res['errors']})")
                    runs.append(res)
            off = statistics.median(r["mb_s"] for r in runs if not r["idempotent"])
            on = statistics.median(r["mb_s"] for r in runs if r["idempotent"])
            out["idempotence"] = {"runs": runs, "off_mb_s": off, "on_mb_s": on, "overhead_pct": (off - on) / off * 100}
        if not args.skip_txn:
            res = txn_run(bootstrap, args.partitions, args.size, args.txn_size, args.txn_seconds, pid)
            log(f"transactions: {res['txn_s']:.1f} txn/s, {res['mb_s']:.1f} MB/s")
            out["txn"] = res
    finally:
        if target is not None:
            target.stop()

    print(f"\n{'figure':<48}{'value':>12}")
    if "idempotence" in out:
        i = out["idempotence"]
        print(f"{'produce 1KB acks=all idempotence off (MB/s)':<48}{i['off_mb_s']:>12.1f}")
        print(f"{'produce 1KB acks=all idempotence on  (MB/s)':<48}{i['on_mb_s']:>12.1f}")
        print(f"{'idempotence overhead (%, target <= 10)':<48}{i['overhead_pct']:>12.1f}")
    if "txn" in out:
        t = out["txn"]
        label = f"transactions of {t['txn_size']} x 1KB (txn/s)"
        print(f"{label:<48}{t['txn_s']:>12.1f}")
        print(f"{'transactional throughput (MB/s)':<48}{t['mb_s']:>12.2f}")
        print(f"{'transaction begin->commit p50 (ms)':<48}{t['txn_ms_p50']:>12.1f}")
        print(f"{'transaction begin->commit p99 (ms)':<48}{t['txn_ms_p99']:>12.1f}")
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
