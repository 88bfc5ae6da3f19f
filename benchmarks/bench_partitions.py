#!/usr/bin/env python3
"""Partition-scale benchmark: how fast topics with many partitions become usable, and
whether the node keeps serving other clients while it creates them.

Prints figures; it is not a test.  Client: confluent-kafka (librdkafka).

  --bootstrap HOST:PORT   an already running broker (add --broker-pid PID for RSS)
  (default)               start a KRaft combined node (config/server.properties, `make run`'s
                          config) on free loopback ports in a temp dir
  --standalone            start a standalone node instead (no process.roles)
  --suoi-src DIR          run that node from another tree's src/ (e.g. `git archive` of an older commit)

Phases (each on fresh topics; "ready" = every partition has a leader in Metadata AND a
ListOffsets(latest) for every partition is answered without error by its leader, i.e. the
leader's log exists):
  one-topic   CreateTopics of one --partitions (1,000) partition topic: answered, all ready
  many        --topics (100) topics x --per-topic (10) partitions in one CreateTopics
  big         one --big (10,000) partition topic while a probe thread sends Metadata for a
              small topic every --probe-interval-ms and another produces to it (acks=1):
              p50/p99/max of both (a probe that times out after --probe-timeout counts as
              its timeout), then the node's RSS
  huge        CreateTopics of 2^31-1 partitions: the time to the refusal and its error

  python benchmarks/bench_partitions.py
  python benchmarks/bench_partitions.py --standalone --big 5000 --json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402  (shared benchmark helpers)
    REPO_ROOT,
    Target,
    _spawn,
    clean_json,
    create_topic,
    free_port,
    log,
    percentile,
    read_cpu_s,
    read_rss_mb,
)
from confluent_kafka import KafkaException, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec  # noqa: E402


def start_node(standalone: bool, ready_timeout: float, src: Path | None = None) -> Target:
    """A suoi node on free loopback ports: make run's KRaft combined config, or standalone.
    `src`: run the suoi package from another source tree (e.g. an older commit, for before/after)."""
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="bench-partitions-")
    data = os.path.join(workdir, "data")
    argv = [sys.executable, "-m", "suoi", "broker", "--log-dirs", data]
    if standalone:
        argv += ["--listeners", f"PLAINTEXT://127.0.0.1:{port}"]
    else:
        cport = free_port()
        text = (REPO_ROOT / "config" / "server.properties").read_text()
        text = text.replace("9092", str(port)).replace("9093", str(cport))
        text = text.replace("console.listeners=", "#console.listeners=")  # the broker alone (and no fixed :8080)
        conf = os.path.join(workdir, "server.properties")
        Path(conf).write_text(text)
        argv += ["--config", conf]
    env = dict(os.environ)
    path = str(src or REPO_ROOT / "src")
    env["PYTHONPATH"] = path + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return _spawn("suoi", argv, port, env=env, workdir=workdir, ready_timeout=ready_timeout, is_peer=False)


#: When the last poll of `wait_all_ready` saw the last partitions answer (the creation was
#: done): probes after it measure the full check's own big Metadata/ListOffsets, not the creation.
CREATED_AT: list[float] = []


def wait_all_ready(admin: AdminClient, bootstrap: str, counts: dict[str, int], deadline: float) -> bool:
    """Until every partition of every topic has a leader and answers ListOffsets. Polls cheaply
    (ListOffsets of each topic's last partition: logs are created in partition order) and checks
    everything once that answers: a Metadata of thousands of partitions costs the node enough to
    slow down what it measures."""
    for name, n in counts.items():
        while not _last_partition_answers(bootstrap, name, n - 1):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
    CREATED_AT[:] = [time.monotonic()]
    pending = dict(counts)
    while pending:
        if time.monotonic() > deadline:
            return False
        try:
            md = admin.list_topics(topic=next(iter(pending)) if len(pending) == 1 else None, timeout=10)
        except KafkaException:
            continue
        for name in list(pending):
            tm = md.topics.get(name)
            if (tm is not None and tm.error is None and len(tm.partitions) == pending[name]
                    and all(p.leader >= 0 and p.error is None for p in tm.partitions.values())
                    and _offsets_answered(admin, name, range(pending[name]))):
                del pending[name]
        if pending:
            time.sleep(0.5)
    return True


def _last_partition_answers(bootstrap: str, topic: str, partition: int) -> bool:
    """ListOffsets of one partition, sent raw: librdkafka's list_offsets first asks for the
    topic's whole Metadata, which for 10,000 partitions costs the node more than the check."""
    from kio.schema.list_offsets.v7.request import ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic
    from kio.schema.types import TopicName
    from kio.static.primitive import i32, i64

    request = ListOffsetsRequest(replica_id=i32(-1), isolation_level=0, topics=(ListOffsetsTopic(
        name=TopicName(topic), partitions=(ListOffsetsPartition(partition_index=i32(partition),
                                                                current_leader_epoch=i32(-1),
                                                                timestamp=i64(-1)),)),))
    try:
        answer = _raw_request(bootstrap, request)
    except Exception:
        return False
    return bool(answer.topics) and answer.topics[0].partitions[0].error_code == 0


def _raw_request(bootstrap: str, request: Any) -> Any:
    """One request with suoi's own client (no Metadata round trip first)."""
    import asyncio

    from suoi.client import NodeClient

    async def ask() -> Any:
        client = NodeClient(client_id="bench-partitions")
        host, _, port = bootstrap.rpartition(":")
        client.register(0, host, int(port))
        try:
            return await client.request(0, request, timeout=30)
        finally:
            await client.close()

    return asyncio.run(ask())


def _offsets_answered(admin: AdminClient, topic: str, partitions: Iterable[int]) -> bool:
    req = {TopicPartition(topic, p): OffsetSpec.latest() for p in partitions}
    try:
        futures = admin.list_offsets(req, request_timeout=10)
        for f in futures.values():
            f.result(timeout=15)
    except KafkaException:
        return False
    return True


def create(admin: AdminClient, bootstrap: str, topics: dict[str, int], timeout: float) -> tuple[float, float | None, str | None]:
    """CreateTopics of `topics` (name -> partitions) in one request: (seconds to the answer,
    seconds to all ready or None, error)."""
    t0 = time.monotonic()
    futures = admin.create_topics([NewTopic(n, num_partitions=p, replication_factor=1) for n, p in topics.items()],
                                  operation_timeout=timeout, request_timeout=timeout)
    error = None
    for f in futures.values():
        try:
            f.result(timeout=timeout)
        except KafkaException as exc:
            error = str(exc.args[0])
    answered = time.monotonic() - t0
    if error is not None:
        return answered, None, error
    ready = wait_all_ready(admin, bootstrap, topics, t0 + timeout)
    return answered, (time.monotonic() - t0) if ready else None, None


class Probe(threading.Thread):
    """Measures one kind of request to a small topic every `interval` seconds."""

    def __init__(self, name: str, bootstrap: str, topic: str, interval: float, timeout: float) -> None:
        super().__init__(name=name, daemon=True)
        self.kind, self.topic, self.interval, self.timeout = name, topic, interval, timeout
        self.bootstrap = bootstrap
        self.latencies: list[float] = []
        self.started: list[float] = []  # when each probe was sent
        self.failures = 0
        self.stop = threading.Event()

    def run(self) -> None:
        if self.kind == "metadata":
            admin = AdminClient({"bootstrap.servers": self.bootstrap})
            call = lambda: admin.list_topics(topic=self.topic, timeout=self.timeout)  # noqa: E731
        else:
            producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 0, "acks": 1,
                                 "message.timeout.ms": int(self.timeout * 1000)})
            call = lambda: self._produce(producer)  # noqa: E731
        while not self.stop.is_set():
            t0 = time.monotonic()
            self.started.append(t0)
            try:
                call()
                self.latencies.append(time.monotonic() - t0)
            except (KafkaException, RuntimeError):
                self.failures += 1
                self.latencies.append(max(time.monotonic() - t0, self.timeout))
            self.stop.wait(self.interval)
        if self.kind != "metadata":
            producer.flush(5)

    def _produce(self, producer: Producer) -> None:
        errors: list[Any] = []
        producer.produce(self.topic, b"probe", on_delivery=lambda err, _msg: errors.append(err))
        producer.flush(self.timeout)
        if not errors or errors[0] is not None:
            raise RuntimeError(f"produce probe failed: {errors}")

    def figures(self, since: float = 0.0, until: float = float("inf")) -> dict[str, Any]:
        """p50/p99/max of the probes sent in [since, until)."""
        lat = sorted(x * 1000 for t, x in zip(self.started, self.latencies, strict=False) if since <= t < until)
        return {"count": len(lat), "failures": self.failures, "p50_ms": percentile(lat, 50),
                "p99_ms": percentile(lat, 99), "max_ms": lat[-1] if lat else None,
                "mean_ms": statistics.fmean(lat) if lat else None}


def phase_big(bootstrap: str, admin: AdminClient, args: argparse.Namespace, pid: int | None) -> dict[str, Any]:
    create_topic(bootstrap, "bench-probe", 1)
    probes = [Probe(kind, bootstrap, "bench-probe", args.probe_interval_ms / 1000, args.probe_timeout)
              for kind in ("metadata", "produce")]
    for p in probes:
        p.start()
    time.sleep(1.0)  # a baseline before the creation starts
    CREATED_AT.clear()
    started = time.monotonic()
    answered, ready, error = create(admin, bootstrap, {"bench-big": args.big}, args.timeout)
    done = time.monotonic()
    created = CREATED_AT[0] if CREATED_AT else done
    time.sleep(0.5)
    for p in probes:
        p.stop.set()
    for p in probes:
        p.join(args.probe_timeout + 10)
    out: dict[str, Any] = {"partitions": args.big, "answered_s": answered, "ready_s": ready, "error": error,
                           "created_s": created - started, "full_check_s": done - created}
    for p in probes:
        out[p.kind] = p.figures(started, created)
        out[p.kind + "_full_check"] = p.figures(created, done)
    if pid is not None:
        out["rss_mb"] = read_rss_mb(pid)[0]
    return out


def phase_huge(bootstrap: str) -> dict[str, Any]:
    """librdkafka refuses more than 100,000 partitions before sending: suoi's own client sends it."""
    import datetime

    from kio.schema.create_topics.v7.request import CreatableTopic, CreateTopicsRequest
    from kio.schema.types import TopicName
    from kio.static.primitive import i16, i32, i32Timedelta

    request = CreateTopicsRequest(topics=(CreatableTopic(
        name=TopicName("bench-huge"), num_partitions=i32(2**31 - 1), replication_factor=i16(1),
        assignments=(), configs=()),), timeout=i32Timedelta.parse(datetime.timedelta(seconds=60)),
        validate_only=False)
    t0 = time.monotonic()
    try:
        topic = _raw_request(bootstrap, request).topics[0]
        error = f"error {int(topic.error_code)}: {topic.error_message}"
    except Exception as exc:  # a timeout is the figure
        error = f"no answer: {exc!r}"
    return {"seconds": time.monotonic() - t0, "error": error}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap")
    ap.add_argument("--broker-pid", type=int)
    ap.add_argument("--standalone", action="store_true")
    ap.add_argument("--suoi-src", type=Path, help="run the node from this source tree's src/ (before/after runs)")
    ap.add_argument("--partitions", type=int, default=1000)
    ap.add_argument("--topics", type=int, default=100)
    ap.add_argument("--per-topic", type=int, default=10)
    ap.add_argument("--big", type=int, default=10000)
    ap.add_argument("--probe-interval-ms", type=float, default=20)
    ap.add_argument("--probe-timeout", type=float, default=10.0)
    ap.add_argument("--timeout", type=float, default=180.0, help="per creation (answer + ready)")
    ap.add_argument("--ready-timeout", type=float, default=60.0)
    ap.add_argument("--skip", default="", help="comma-separated phases to skip: one-topic,many,big,huge")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    target = None
    if args.bootstrap:
        bootstrap, pid = args.bootstrap, args.broker_pid
    else:
        target = start_node(args.standalone, args.ready_timeout, args.suoi_src)
        bootstrap, pid = target.bootstrap, target.pid
    results: dict[str, Any] = {"mode": "bootstrap" if args.bootstrap else "standalone" if args.standalone else "kraft"}
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        if "one-topic" not in skip:
            log(f"one topic of {args.partitions} partitions")
            cpu0 = read_cpu_s(pid)
            a, r, e = create(admin, bootstrap, {"bench-one": args.partitions}, args.timeout)
            results["one_topic"] = {"partitions": args.partitions, "answered_s": a, "ready_s": r, "error": e,
                                    "cpu_s": _cpu_since(pid, cpu0)}
        if "many" not in skip:
            log(f"{args.topics} topics x {args.per_topic} partitions in one request")
            cpu0 = read_cpu_s(pid)
            a, r, e = create(admin, bootstrap, {f"bench-many-{i}": args.per_topic for i in range(args.topics)},
                             args.timeout)
            results["many_topics"] = {"topics": args.topics, "per_topic": args.per_topic, "answered_s": a,
                                      "ready_s": r, "error": e, "cpu_s": _cpu_since(pid, cpu0)}
        if "big" not in skip:
            log(f"one topic of {args.big} partitions with Metadata/Produce probes")
            cpu0 = read_cpu_s(pid)
            results["big"] = phase_big(bootstrap, admin, args, pid)
            results["big"]["cpu_s"] = _cpu_since(pid, cpu0)
        if "huge" not in skip:
            log("CreateTopics of 2^31-1 partitions")
            results["huge"] = phase_huge(bootstrap)
        if pid is not None:
            results["rss_end_mb"] = read_rss_mb(pid)[0]
    finally:
        if target is not None:
            started = time.monotonic()
            if target.proc is not None and target.proc.poll() is None:
                target.proc.terminate()  # SIGTERM -> exit, timed without the data dir's removal
                with contextlib.suppress(subprocess.TimeoutExpired):
                    target.proc.wait(60)
            results["stop_s"] = time.monotonic() - started
            target.stop()
    report(results)
    if args.json:
        print(json.dumps(clean_json(results)))


def _cpu_since(pid: int | None, before: float | None) -> float | None:
    """The node's CPU seconds since ``before`` (its polls for readiness included)."""
    now = read_cpu_s(pid)
    return None if now is None or before is None else now - before


def _cpu(x: dict[str, Any]) -> str:
    return f", node CPU {x['cpu_s']:.2f} s" if x.get("cpu_s") is not None else ""


def _s(v: float | None) -> str:
    return "timeout" if v is None else f"{v:.2f} s"


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def report(r: dict[str, Any]) -> None:
    print(f"\nsuoi partition scale ({r['mode']})")
    if "one_topic" in r:
        x = r["one_topic"]
        print(f"  1 topic x {x['partitions']} partitions: answered {_s(x['answered_s'])}, "
              f"all leaders ready {_s(x['ready_s'])}{_cpu(x)}" + (f"  error {x['error']}" if x["error"] else ""))
    if "many_topics" in r:
        x = r["many_topics"]
        print(f"  {x['topics']} topics x {x['per_topic']} partitions, one request: answered {_s(x['answered_s'])}, "
              f"all ready {_s(x['ready_s'])}{_cpu(x)}" + (f"  error {x['error']}" if x["error"] else ""))
    if "big" in r:
        x = r["big"]
        print(f"  1 topic x {x['partitions']} partitions: answered {_s(x['answered_s'])}, all ready "
              f"{_s(x['ready_s'])}" + (f"  error {x['error']}" if x["error"] else "")
              + (f", RSS after {x['rss_mb']:.0f} MB" if x.get("rss_mb") else "") + _cpu(x))
        print(f"    probes while it was created ({x['created_s']:.2f} s, to the last partition answering):")
        for kind in ("metadata", "produce"):
            p = x[kind]
            print(f"      {kind:8s}: n={p['count']} failed={p['failures']} p50 {_ms(p['p50_ms'])} ms, "
                  f"p99 {_ms(p['p99_ms'])} ms, max {_ms(p['max_ms'])} ms")
        p = x["metadata_full_check"]
        print(f"    metadata probes during the final check ({x['full_check_s']:.2f} s: Metadata + ListOffsets of all "
              f"{x['partitions']} partitions): n={p['count']} max {_ms(p['max_ms'])} ms")
    if "huge" in r:
        x = r["huge"]
        print(f"  2^31-1 partitions: answered after {x['seconds']:.3f} s with {x['error']}")
    if r.get("rss_end_mb"):
        print(f"  RSS at the end: {r['rss_end_mb']:.0f} MB")
    if "stop_s" in r:
        print(f"  SIGTERM -> exited: {r['stop_s']:.2f} s")


if __name__ == "__main__":
    main()
