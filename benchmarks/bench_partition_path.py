"""CPU time of Produce and Fetch through `dispatch` on an in-process single-node KRaft broker.

The throughput phases of `bench.py` share a 2-core machine with their client and anything
else running, so a few percent in the broker's produce/fetch path drown in noise. This
measures that path alone: requests are encoded once, then dispatched N times per round on a
real broker (one-voter quorum, RF=1 topic, temp log dir), timing CPU time of this thread
(time.thread_time), best of several rounds. Run it against two source trees (PYTHONPATH) to
compare them:

    python benchmarks/bench_partition_path.py [--rounds 7] [--per-round 2000]
    PYTHONPATH=/path/to/other/src python benchmarks/bench_partition_path.py
    python benchmarks/bench_partition_path.py --profile 3000   # + Python calls per request (cProfile)

A script, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime
import inspect
import os
import pstats
import socket
import tempfile
import time
from typing import Any

from bench_request_bounds import _dispatch_us  # CPU µs per dispatched request
from kio.schema.create_topics.v5.request import CreatableTopic, CreateTopicsRequest
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData
from kio.static.primitive import i16, i32

import suoi
from suoi.api.dispatch import dispatch
from suoi.broker import Broker
from suoi.config import load_config
from suoi.protocol.codec import encode_request
from suoi.protocol.records import build_batch

TOPIC = "bench"
PARTITIONS = 6


def produce(acks: int, records: int, size: int, partitions: int = 1) -> ProduceRequest:
    batch = build_batch([(None, b"x" * size)] * records)
    return ProduceRequest(transactional_id=None, acks=i16(acks), timeout=datetime.timedelta(seconds=30), topic_data=(
        TopicProduceData(name=TOPIC, partition_data=tuple(
            PartitionProduceData(index=i32(i), records=batch) for i in range(partitions))),))


def fetch(partitions: int, max_bytes: int) -> FetchRequest:
    """A consumer's Fetch from offset 0 (min_bytes 1: answered at once, data is there)."""
    return FetchRequest(cluster_id=None, replica_id=-1, max_wait=datetime.timedelta(milliseconds=500), min_bytes=1,
                        max_bytes=max_bytes, isolation_level=0, session_id=0, session_epoch=-1, topics=(
                            FetchTopic(topic=TOPIC, partitions=tuple(
                                FetchPartition(partition=i, current_leader_epoch=-1, fetch_offset=0,
                                               last_fetched_epoch=-1, log_start_offset=-1,
                                               partition_max_bytes=1 << 20) for i in range(partitions))),),
                        forgotten_topics_data=(), rack_id="")


async def call(broker: Broker, frame: bytes) -> Any:
    out = dispatch(broker, frame, "bench")
    return await out if inspect.isawaitable(out) else out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def single_node(data: str) -> Broker:
    port, cport = free_port(), free_port()
    broker = Broker(load_config({}, {
        "process.roles": "broker,controller", "node.id": "1", "log.dirs": data,
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
        "controller.listener.names": "CONTROLLER", "controller.quorum.voters": f"1@127.0.0.1:{cport}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "offsets.topic.replication.factor": "1"}))
    await broker.start()
    create = CreateTopicsRequest(topics=(CreatableTopic(name=TOPIC, num_partitions=i32(PARTITIONS),
                                                        replication_factor=i16(1), assignments=(), configs=()),),
                                 timeout=datetime.timedelta(seconds=10), validate_only=False)
    deadline = time.monotonic() + 60
    frame = encode_request(3, "bench", create)[4:]
    while time.monotonic() < deadline:  # (again) until every partition is led here
        replicas = broker.kraft.replicas if broker.kraft is not None else None
        if replicas is not None and sum(tp.topic == TOPIC for tp in replicas.leaders) == PARTITIONS:
            return broker
        await call(broker, frame)  # refused until the quorum has elected itself; then TOPIC_ALREADY_EXISTS
        await asyncio.sleep(0.2)
    raise SystemExit("the topic got no leaders within 60 s")


async def profile(broker: Broker, frames: list[tuple[str, bytes]], n: int, top: int) -> None:
    """cProfile (by this thread's CPU time) of `n` dispatches of each request: Python function
    calls per request (the figure that does not swing with the machine's load) and own times."""
    for name, frame in frames:
        await _dispatch_us(broker, frame, 50)  # warm
        profiler = cProfile.Profile(time.thread_time)
        profiler.enable()
        await _dispatch_us(broker, frame, n)
        profiler.disable()
        stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
        calls = sum(v[1] for v in stats.values())
        print(f"  {name}: {calls / n:.1f} Python calls per request (cProfile, {n} requests)")
        rows = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)
        for (file, line, func), (_cc, ncalls, tottime, cumtime, _) in rows[:top]:
            where = f"{os.path.basename(file)}:{line}({func})" if line else func
            print(f"    {tottime / n * 1e6:7.2f} µs  {ncalls / n:5.1f} calls  cum {cumtime / n * 1e6:7.1f}  {where}")


async def main(rounds: int, per_round: int, profile_n: int = 0, top: int = 25) -> None:
    with tempfile.TemporaryDirectory(prefix="suoi-bench-") as data:
        broker = await single_node(data)
        try:
            cases = [
                ("Produce acks=0, 1 partition, 1 x 100 B", produce(0, 1, 100)),
                ("Produce acks=1, 1 partition, 1 x 100 B", produce(1, 1, 100)),
                ("Produce acks=-1, 1 partition, 1 x 100 B", produce(-1, 1, 100)),
                ("Produce acks=1, 1 partition, 100 x 100 B", produce(1, 100, 100)),
                ("Produce acks=-1, 1 partition, 100 x 100 B", produce(-1, 100, 100)),
                ("Produce acks=1, 6 partitions, 10 x 1 KB", produce(1, 10, 1024, PARTITIONS)),
                ("Fetch, 6 partitions, 64 KB", fetch(PARTITIONS, 64 << 10)),
            ]
            frames = [(name, encode_request(7, "bench", req)[4:]) for name, req in cases]
            if profile_n:
                await profile(broker, frames, profile_n, top)
                return
            best = dict.fromkeys([name for name, _ in frames], float("inf"))
            for _ in range(rounds):
                for name, frame in frames:
                    best[name] = min(best[name], await _dispatch_us(broker, frame, per_round))
            print(f"suoi from {suoi.__file__}; best of {rounds} rounds x {per_round}, CPU µs per request")
            for name, us in best.items():
                print(f"  {name:45} {us:8.1f} µs")
        finally:
            await broker.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--per-round", type=int, default=2000)
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="instead: cProfile N dispatches of each request (calls per request, own times)")
    ap.add_argument("--top", type=int, default=25, help="profile rows to print")
    args = ap.parse_args()
    asyncio.run(main(args.rounds, args.per_round, args.profile, args.top))
