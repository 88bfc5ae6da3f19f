"""What a KIP-227 fetch session saves a broker: a caught-up consumer of many partitions polling.

An in-process single-node KRaft broker with one topic of `--partitions` partitions, one record
in each. A consumer that has read everything polls with max_wait 0 (nothing new anywhere):
  sessionless   every Fetch names every partition and every answer carries every partition
  session       one full Fetch opens a session, then incremental Fetches name nothing and
                the answers carry nothing
Requests are encoded beforehand (one frame per session epoch), then dispatched; CPU time of
this thread (time.thread_time) per request, best of `--rounds`, and the request/response
sizes. Run it against two source trees (PYTHONPATH) to compare them. A script, not a test:

    python benchmarks/bench_fetch_sessions.py [--partitions 1000] [--rounds 5] [--per-round 300]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import tempfile
import time

from bench_partition_path import call, free_port
from kio.schema.create_topics.v5.request import CreatableTopic, CreateTopicsRequest
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.fetch.v12.response import FetchResponse
from kio.static.primitive import i16, i32

import suoi
from suoi.broker import Broker
from suoi.config import load_config
from suoi.protocol.codec import decode_response, encode_request
from suoi.protocol.records import build_batch

TOPIC = "sessions"


def fetch(partitions: int, session_id: int, epoch: int, offset: int = 1) -> FetchRequest:
    named = () if epoch > 0 else (FetchTopic(topic=TOPIC, partitions=tuple(
        FetchPartition(partition=i, current_leader_epoch=-1, fetch_offset=offset, last_fetched_epoch=-1,
                       log_start_offset=-1, partition_max_bytes=1 << 20) for i in range(partitions))),)
    return FetchRequest(cluster_id=None, replica_id=-1, max_wait=datetime.timedelta(0), min_bytes=1,
                        max_bytes=50 << 20, isolation_level=0, session_id=session_id, session_epoch=epoch,
                        topics=named, forgotten_topics_data=(), rack_id="")


async def node(data: str, partitions: int) -> Broker:
    port, cport = free_port(), free_port()
    broker = Broker(load_config({}, {
        "process.roles": "broker,controller", "node.id": "1", "log.dirs": data,
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
        "controller.listener.names": "CONTROLLER", "controller.quorum.voters": f"1@127.0.0.1:{cport}",
        "offsets.topic.replication.factor": "1"}))
    await broker.start()
    create = encode_request(3, "bench", CreateTopicsRequest(topics=(CreatableTopic(
        name=TOPIC, num_partitions=i32(partitions), replication_factor=i16(1), assignments=(), configs=()),),
        timeout=datetime.timedelta(seconds=30), validate_only=False))[4:]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        replicas = broker.kraft.replicas if broker.kraft is not None else None
        if replicas is not None and sum(tp.topic == TOPIC for tp in replicas.leaders) == partitions:
            break
        await call(broker, create)
        await asyncio.sleep(0.2)
    else:
        raise SystemExit("the topic got no leaders in time")
    record = build_batch([(None, b"x" * 100)])
    for p in range(partitions):
        broker.kraft.replicas.append_records(TOPIC, p, record, 1)
    return broker


def _size(frames: object) -> int:
    return sum(len(f) for f in frames) if isinstance(frames, list) else len(frames)  # type: ignore[arg-type]


async def main(partitions: int, rounds: int, per_round: int) -> None:
    with tempfile.TemporaryDirectory(prefix="suoi-bench-") as data:
        broker = await node(data, partitions)
        try:
            full = encode_request(7, "bench", fetch(partitions, 0, -1))[4:]
            answer = await call(broker, full)
            results = {"sessionless": [float("inf"), len(full), _size(answer)],
                       "session": [float("inf"), 0, 0]}
            for _ in range(rounds):
                start = time.thread_time()
                for _ in range(per_round):
                    await call(broker, full)
                results["sessionless"][0] = min(results["sessionless"][0], (time.thread_time() - start) / per_round * 1e6)
                opened = await call(broker, encode_request(7, "bench", fetch(partitions, 0, 0))[4:])
                session_id = decode_response(b"".join(bytes(f) for f in opened)[4:], FetchResponse).session_id
                if session_id == 0:  # a tree without fetch sessions: every fetch stays sessionless
                    results.pop("session", None)
                    continue
                frames = [encode_request(7, "bench", fetch(partitions, session_id, e))[4:] for e in range(1, per_round + 1)]
                start = time.thread_time()
                for frame in frames:
                    last = await call(broker, frame)
                results["session"][0] = min(results["session"][0], (time.thread_time() - start) / per_round * 1e6)
                results["session"][1:] = [len(frames[-1]), _size(last)]
            print(f"suoi from {suoi.__file__}; {partitions} partitions, nothing new; best of {rounds} x {per_round}")
            print(f"  {'':12} {'CPU µs/fetch':>13} {'request B':>10} {'response B':>11}")
            for name, (us, req, resp) in results.items():
                print(f"  {name:12} {us:13.1f} {req:10d} {resp:11d}")
        finally:
            await broker.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--partitions", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--per-round", type=int, default=300)
    args = ap.parse_args()
    asyncio.run(main(args.partitions, args.rounds, args.per_round))
