#!/usr/bin/env python3
"""Consumer-group benchmark: rebalance after a clean leave, and commit throughput.

Prints figures; it is not a test.  Client: confluent-kafka (librdkafka) with its DEFAULT
group settings (session.timeout.ms 45000, heartbeat.interval.ms 3000, range assignor);
the broker keeps its defaults too (group.initial.rebalance.delay.ms 3000).

  --bootstrap HOST:PORT   an already running broker
  --suoi                  start suoi on a free loopback port (as benchmarks/bench.py does)

Phases:
  leave    a group of 4 consumers on a 12-partition topic with a steady trickle of
           records; one member calls close() (a LeaveGroup).  Measured from the start
           of close(): close() returning, the last survivor's on_assign (rebalance done),
           and "consuming again" = every survivor has received a record after its new
           assignment and every partition of the leaver has delivered a record again.
           Repeated --trials times, each with a fresh group, closing at a random point of
           the heartbeat cycle (survivors hear of a rebalance from their next Heartbeat).
  commit   one consumer owning all 12 partitions: synchronous commits/s (1 partition per
           commit and all 12 per commit), and asynchronous commits/s (fire --async-commits,
           wait for every on_commit callback).

  python benchmarks/bench_groups.py --suoi
  python benchmarks/bench_groups.py --bootstrap 127.0.0.1:9092 --trials 5 --commit-seconds 5
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import create_topic, log, start_suoi  # noqa: E402  (shared benchmark helpers)
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402

PARTITIONS = 12
MEMBERS = 4


class Member:
    """A default-settings group consumer polled by its own thread; timestamps its callbacks."""

    def __init__(self, bootstrap: str, group: str, topic: str, name: str, extra: dict[str, Any]) -> None:
        self.name = name
        self.conf = {"bootstrap.servers": bootstrap, "group.id": group, "client.id": name, **extra}
        self.topic = topic
        self.lock = threading.Lock()
        self.assigned: set[int] = set()
        self.assign_times: list[float] = []
        self.first_record_after: dict[float, float] = {}  # assign time -> first record time
        self.partition_first: dict[int, float] = {}  # first record per partition since the last assign
        self.stop = threading.Event()
        self.closed = threading.Event()
        self.close_requested = threading.Event()
        self.close_started = 0.0
        self.close_done = 0.0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _on_assign(self, _c: Consumer, parts: list[TopicPartition]) -> None:
        with self.lock:
            self.assigned = {tp.partition for tp in parts}
            self.assign_times.append(time.monotonic())
            self.partition_first = {}

    def _on_revoke(self, _c: Consumer, _parts: list[TopicPartition]) -> None:
        with self.lock:
            self.assigned = set()

    def _run(self) -> None:
        c = Consumer(self.conf)
        c.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        try:
            while not self.stop.is_set() and not self.close_requested.is_set():
                m = c.poll(0.01)
                if m is None or m.error():
                    continue
                now = time.monotonic()
                with self.lock:
                    self.partition_first.setdefault(m.partition() or 0, now)
                    if self.assign_times and self.assign_times[-1] not in self.first_record_after:
                        self.first_record_after[self.assign_times[-1]] = now
        finally:
            self.close_started = time.monotonic()
            c.close()
            self.close_done = time.monotonic()
            self.closed.set()

    def state(self) -> tuple[set[int], list[float], dict[float, float]]:
        with self.lock:
            return set(self.assigned), list(self.assign_times), dict(self.first_record_after)


def trickle(bootstrap: str, topic: str, stop: threading.Event, per_second: int) -> None:
    """Round-robin records to every partition at a steady rate, so consumption is visible."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    i = 0
    interval = 1.0 / per_second
    next_at = time.monotonic()
    while not stop.is_set():
        p.produce(topic, value=b"x", partition=i % PARTITIONS)
        p.poll(0)
        i += 1
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            stop.wait(delay)
    p.flush(10)


def wait_for(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.005)


def leave_trial(bootstrap: str, topic: str, extra: dict[str, Any], jitter_s: float) -> dict[str, float]:
    group = f"bench-leave-{uuid.uuid4().hex[:8]}"
    members = [Member(bootstrap, group, topic, f"m{i}", extra) for i in range(MEMBERS)]
    try:
        def balanced() -> bool:
            owned = [m.state()[0] for m in members]
            return sorted(len(o) for o in owned) == [3] * MEMBERS and set().union(*owned) == set(range(PARTITIONS))

        t_form = time.monotonic()
        wait_for(balanced, 60, "the group to form")
        formed_s = time.monotonic() - t_form
        wait_for(lambda: all(m.state()[2] for m in members), 30, "every member consuming")
        leaver, survivors = members[0], members[1:]
        moved = leaver.state()[0]
        n_assigns = {m.name: len(m.state()[1]) for m in survivors}
        # survivors only learn about the rebalance from their next Heartbeat: close at a random
        # point of the heartbeat cycle, so the trials sample it instead of hitting one phase
        time.sleep(random.uniform(0, jitter_s))

        t0 = time.monotonic()
        leaver.close_requested.set()

        def rebalanced() -> bool:
            return all(len(m.state()[1]) > n_assigns[m.name] and m.state()[0] for m in survivors) and \
                set().union(*(m.state()[0] for m in survivors)) == set(range(PARTITIONS))

        wait_for(rebalanced, 60, "survivors reassigned")
        wait_for(lambda: all(m.state()[1][-1] in m.state()[2] for m in survivors), 30, "survivors consuming")

        def moved_first() -> list[float]:
            with_seen = []
            for m in survivors:
                with m.lock:
                    with_seen += [m.partition_first[p] for p in moved if p in m.assigned and p in m.partition_first]
            return with_seen if len(with_seen) == len(moved) else []

        wait_for(moved_first, 30, "the leaver's partitions flowing again")
        leaver.closed.wait(30)
        last_assign = max(m.state()[1][-1] for m in survivors)
        all_consuming = max(m.state()[2][m.state()[1][-1]] for m in survivors)
        return {"group_formed_s": formed_s,
                "close_returned_ms": (leaver.close_done - t0) * 1000,
                "rebalanced_ms": (last_assign - t0) * 1000,
                "all_survivors_consuming_ms": (all_consuming - t0) * 1000,
                "moved_partitions_flowing_ms": (max(moved_first()) - t0) * 1000}
    finally:
        for m in members:
            m.stop.set()
        for m in members:
            m.thread.join(60)


def commit_phase(bootstrap: str, topic: str, seconds: float, async_commits: int) -> dict[str, float]:
    group = f"bench-commit-{uuid.uuid4().hex[:8]}"
    done = threading.Event()
    outcomes: list[Any] = []

    def on_commit(err: Any, _parts: Any) -> None:
        outcomes.append(err)

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                  "on_commit": on_commit})
    assigned: list[TopicPartition] = []
    c.subscribe([topic], on_assign=lambda _c, ps: assigned.extend(ps))
    try:
        deadline = time.monotonic() + 60
        while len(assigned) < PARTITIONS and time.monotonic() < deadline:
            c.poll(0.05)
        if len(assigned) < PARTITIONS:
            raise TimeoutError("commit consumer not assigned")
        results: dict[str, float] = {}
        for label, width in (("sync_commits_per_s_1_partition", 1), ("sync_commits_per_s_12_partitions", PARTITIONS)):
            n = 0
            start = time.monotonic()
            while time.monotonic() - start < seconds:
                offs = [TopicPartition(topic, (n + k) % PARTITIONS, n) for k in range(width)]
                res = c.commit(offsets=offs, asynchronous=False)
                assert all(tp.error is None for tp in res), res
                n += 1
            results[label] = n / (time.monotonic() - start)
        c.poll(0)
        outcomes.clear()
        start = time.monotonic()
        for n in range(async_commits):
            c.commit(offsets=[TopicPartition(topic, n % PARTITIONS, n)], asynchronous=True)
            c.poll(0)
        deadline = time.monotonic() + 120
        while len(outcomes) < async_commits and time.monotonic() < deadline:
            c.poll(0.01)
        elapsed = time.monotonic() - start
        errors = [e for e in outcomes if e is not None]
        results["async_commits_per_s_1_partition"] = len(outcomes) / elapsed
        results["async_commit_errors"] = len(errors)
        results["async_commits_completed"] = len(outcomes)
        done.set()
        return results
    finally:
        c.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = ap.add_mutually_exclusive_group(required=True)
    target.add_argument("--bootstrap")
    target.add_argument("--suoi", action="store_true")
    ap.add_argument("--suoi-cmd", default=None)
    ap.add_argument("--suoi-python", default=sys.executable)
    ap.add_argument("--ready-timeout", type=float, default=60.0)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--rate", type=int, default=200, help="records/s trickled during the leave phase")
    ap.add_argument("--heartbeat-ms", type=int, default=None,
                    help="override heartbeat.interval.ms (default: the client's default)")
    ap.add_argument("--commit-seconds", type=float, default=3.0)
    ap.add_argument("--async-commits", type=int, default=5000)
    ap.add_argument("--skip-leave", action="store_true")
    ap.add_argument("--skip-commit", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    t = start_suoi(args) if args.suoi else None
    bootstrap = t.bootstrap if t else args.bootstrap
    extra: dict[str, Any] = {}
    if args.heartbeat_ms is not None:
        extra["heartbeat.interval.ms"] = args.heartbeat_ms
    out: dict[str, Any] = {"bootstrap": bootstrap, "client_overrides": extra}
    try:
        if not args.skip_leave:
            topic = f"bench-groups-{uuid.uuid4().hex[:8]}"
            create_topic(bootstrap, topic, PARTITIONS)
            stop = threading.Event()
            producer = threading.Thread(target=trickle, args=(bootstrap, topic, stop, args.rate), daemon=True)
            producer.start()
            trials = []
            try:
                for i in range(args.trials):
                    r = leave_trial(bootstrap, topic, extra, (args.heartbeat_ms or 3000) / 1000)
                    log(f"leave trial {i + 1}: " + ", ".join(f"{k}={v:.0f}" for k, v in r.items()))
                    trials.append(r)
            finally:
                stop.set()
                producer.join(30)
            out["leave"] = trials
        if not args.skip_commit:
            topic = f"bench-commit-{uuid.uuid4().hex[:8]}"
            create_topic(bootstrap, topic, PARTITIONS)
            out["commit"] = commit_phase(bootstrap, topic, args.commit_seconds, args.async_commits)
    finally:
        if t is not None:
            t.stop()

    print(f"\nconsumer groups on {bootstrap} (confluent-kafka defaults{', ' + str(extra) if extra else ''})")
    if "leave" in out:
        print(f"  leave -> survivors consuming, {MEMBERS} members x {PARTITIONS} partitions, "
              f"{len(out['leave'])} trials (ms from close() start; median / min / max):")
        for key in ("close_returned_ms", "rebalanced_ms", "all_survivors_consuming_ms", "moved_partitions_flowing_ms"):
            vals = [r[key] for r in out["leave"]]
            print(f"    {key:32s} {statistics.median(vals):8.0f} {min(vals):8.0f} {max(vals):8.0f}")
        vals = [r["group_formed_s"] for r in out["leave"]]
        print(f"    {'group_formed_s (initial join)':32s} {statistics.median(vals):8.2f}")
    if "commit" in out:
        print("  commit throughput:")
        for k, v in out["commit"].items():
            print(f"    {k:36s} {v:10.0f}")
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
