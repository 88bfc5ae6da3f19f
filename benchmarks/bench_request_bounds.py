"""What the length check before decoding (suoi.protocol.bounds) costs, in one run.

1. Decoding alone: for typical requests (Produce with one or many partitions, a follower's
   Fetch over many partitions, Metadata) kio's decode vs the bounds walk + kio's decode.
2. A whole Produce through `dispatch` on an in-process broker (decode, append to the log,
   response), with the walk and with it switched off, in alternating rounds (best of each),
   so that noise from other processes hits both alike.

Times are CPU time of this thread (time.thread_time), so that other processes competing for
the cores do not count. A script, not a test:

    python benchmarks/bench_request_bounds.py [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import inspect
import tempfile
import time
import uuid
from collections.abc import Callable

from kio.index import load_request_schema
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData
from kio.serial import entity_reader

import suoi.api.dispatch
import suoi.protocol.codec_requests
from suoi.api.dispatch import dispatch
from suoi.broker import Broker
from suoi.config import load_config
from suoi.protocol.bounds import check_request, request_skippers
from suoi.protocol.codec import encode_request
from suoi.protocol.records import build_batch


def produce(partitions: int, record_bytes: int, records: int) -> ProduceRequest:
    batch = build_batch([(None, b"x" * record_bytes)] * records)
    return ProduceRequest(transactional_id=None, acks=-1, timeout=datetime.timedelta(seconds=30), topic_data=(
        TopicProduceData(name="bench", partition_data=tuple(
            PartitionProduceData(index=i, records=batch) for i in range(partitions))),))


def fetch(partitions: int) -> FetchRequest:
    return FetchRequest(cluster_id=None, replica_id=2, max_wait=datetime.timedelta(milliseconds=500), min_bytes=1,
                        max_bytes=50 << 20, isolation_level=0, session_id=0, session_epoch=-1, topics=(
                            FetchTopic(topic="bench", partitions=tuple(
                                FetchPartition(partition=i, current_leader_epoch=3, fetch_offset=1000 + i,
                                               last_fetched_epoch=3, log_start_offset=0,
                                               partition_max_bytes=1 << 20) for i in range(partitions))),),
                        forgotten_topics_data=(), rack_id="")


def metadata(topics: int) -> MetadataRequest:
    return MetadataRequest(topics=tuple(MetadataRequestTopic(topic_id=uuid.UUID(int=0), name=f"t{i}")
                                        for i in range(topics)),
                           allow_auto_topic_creation=True, include_topic_authorized_operations=False)


def per_call_us(fn: Callable[[], object], seconds: float) -> float:
    n = 0
    start = time.thread_time()
    deadline = start + seconds
    while True:
        for _ in range(100):
            fn()
        n += 100
        now = time.thread_time()
        if now >= deadline:
            return (now - start) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="time per measurement (default 1.0)")
    ap.add_argument("--rounds", type=int, default=5, help="alternating dispatch rounds per variant (default 5)")
    args = ap.parse_args()
    decode_phase(args.seconds)
    asyncio.run(dispatch_phase(args.rounds))


async def dispatch_phase(rounds: int, per_round: int = 1000) -> None:
    """Produce (acks=1) through dispatch on a real, in-process broker with a temp log dir."""
    with tempfile.TemporaryDirectory(prefix="suoi-bench-") as data:
        broker = Broker(load_config({}, {"listeners": "PLAINTEXT://127.0.0.1:0", "log.dirs": data}))
        await broker.start()
        try:
            print(f"\nProduce through dispatch (in-process broker, acks=1), best of {rounds} rounds x {per_round}")
            for name, request in [("1 partition, 100 x 100 B", produce(1, 100, 100)),
                                  ("50 partitions, 10 x 100 B", produce(50, 100, 10))]:
                frame = encode_request(1, "bench", request)[4:]
                best = {"with check": float("inf"), "without": float("inf")}
                for _ in range(rounds):
                    for variant in best:
                        _forget_decoders()
                        suoi.protocol.codec_requests.request_skippers = (request_skippers if variant == "with check"
                                                                else _no_check)
                        best[variant] = min(best[variant], await _dispatch_us(broker, frame, per_round))
                suoi.protocol.codec_requests.request_skippers = request_skippers
                _forget_decoders()
                on, off = best["with check"], best["without"]
                print(f"  {name:30} without {off:8.1f} µs   with {on:8.1f} µs   overhead {(on - off) / off:6.1%}")
        finally:
            await broker.stop()


def _no_check(cls: type) -> tuple[Callable[..., int], Callable[..., int]]:
    """`bounds.request_skippers` that walks nothing (the header and body steps return the end)."""
    return (lambda frame, pos, end, nulls: end), (lambda frame, pos, end, nulls: end)


def _forget_decoders() -> None:
    """Make the next dispatch build its decoder anew (codec's caches and dispatch's plans)."""
    suoi.protocol.codec_requests._request_readers.cache_clear()
    suoi.protocol.codec_requests.request_decoder.cache_clear()
    suoi.api.dispatch._PLANS.clear()


async def _dispatch_us(broker: Broker, frame: bytes, n: int) -> float:
    start = time.thread_time()
    for _ in range(n):
        out = dispatch(broker, frame, "bench")
        if inspect.isawaitable(out):
            await out
    return (time.thread_time() - start) / n * 1e6


def decode_phase(seconds: float) -> None:
    cases = [
        ("Produce v9, 1 partition, 100 x 100 B", produce(1, 100, 100)),
        ("Produce v9, 1 partition, 1 x 16 KiB", produce(1, 16384, 1)),
        ("Produce v9, 50 partitions, 10 x 100 B", produce(50, 100, 10)),
        ("Fetch v12, 200 partitions (follower)", fetch(200)),
        ("Metadata v12, 20 topics", metadata(20)),
    ]
    print(f"{'request':42} {'bytes':>8} {'kio µs':>9} {'walk+kio µs':>12} {'walk µs':>8} {'overhead':>9}")
    for name, request in cases:
        frame = encode_request(1, "bench", request)[4:]
        cls = load_request_schema(request.__api_key__, request.__version__)
        read_header, read_body = entity_reader(cls.__header_schema__), entity_reader(cls)

        def decode(frame: bytes = frame, rh: Callable = read_header, rb: Callable = read_body) -> None:
            _, used = rh(frame, 0)
            rb(frame, used)

        def walk_and_decode(frame: bytes = frame, cls: type = cls, decode: Callable = decode) -> None:
            check_request(frame, cls)
            decode()

        base = per_call_us(decode, seconds)
        both = per_call_us(walk_and_decode, seconds)
        walk = per_call_us(lambda frame=frame, cls=cls: check_request(frame, cls), seconds)
        print(f"{name:42} {len(frame):8d} {base:9.2f} {both:12.2f} {walk:8.2f} {(both - base) / base:9.0%}")


if __name__ == "__main__":
    main()
