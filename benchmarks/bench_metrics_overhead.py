"""What the admin endpoint's hot-path counters (suoi.metrics_recorder) cost per request, in one run.

Produce and Fetch requests go through `dispatch` on a real, in-process broker (decode, append or
read, response) with the node's `MetricsRecorder` and with a recorder whose methods do nothing,
in alternating rounds (best of each), so that noise from other processes hits both alike. The
difference is what counting messages/bytes in and out and timing every request costs.

Times are CPU time of this thread (time.thread_time). A script, not a test:

    python benchmarks/bench_metrics_overhead.py [--rounds 15] [--per-round 200]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import sys
import tempfile
from pathlib import Path
from typing import Any

from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_request_bounds import _dispatch_us, produce  # noqa: E402  (a sibling script)

from suoi.broker import Broker  # noqa: E402
from suoi.config import load_config  # noqa: E402
from suoi.http.admin import MetricsRecorder  # noqa: E402
from suoi.protocol.codec import encode_request  # noqa: E402


class NullRecorder(MetricsRecorder):
    """The recorder's interface, doing nothing: the baseline."""

    def produced(self, topic: str, messages: int, nbytes: int) -> None:
        pass

    def produce_failed(self, topic: str) -> None:
        pass

    def fetched(self, responses: Any, replica: bool) -> None:
        pass

    def request_done(self, api: str, started: float, handled: float | None = None, failed: bool = False) -> None:
        pass


def consumer_fetch(partitions: int) -> FetchRequest:
    return FetchRequest(cluster_id=None, replica_id=-1, max_wait=datetime.timedelta(milliseconds=0), min_bytes=1,
                        max_bytes=50 << 20, isolation_level=0, session_id=0, session_epoch=-1, topics=(
                            FetchTopic(topic="bench", partitions=tuple(
                                FetchPartition(partition=i, current_leader_epoch=-1, fetch_offset=0,
                                               last_fetched_epoch=-1, log_start_offset=-1,
                                               partition_max_bytes=16 << 10) for i in range(partitions))),),
                        forgotten_topics_data=(), rack_id="")


async def main(rounds: int, per_round: int) -> None:
    with tempfile.TemporaryDirectory(prefix="suoi-bench-") as data:
        broker = Broker(load_config({}, {"listeners": "PLAINTEXT://127.0.0.1:0", "log.dirs": data,
                                         "num.partitions": "50"}))
        await broker.start()
        real, null = broker.metrics, NullRecorder()
        try:
            print(f"dispatch with the metrics recorder vs a no-op recorder, best of {rounds} rounds x {per_round}")
            cases = [("Produce, 1 partition, 1 x 100 B", produce(1, 100, 1)),
                     ("Produce, 1 partition, 100 x 100 B", produce(1, 100, 100)),
                     ("Produce, 50 partitions, 10 x 100 B", produce(50, 100, 10)),
                     ("Fetch (consumer), 50 partitions x 16 KiB", consumer_fetch(50))]
            for name, request in cases:
                frame = encode_request(1, "bench", request)[4:]
                best = {"no-op": float("inf"), "recorder": float("inf")}
                for _ in range(rounds):
                    for variant in best:
                        broker.metrics = real if variant == "recorder" else null
                        best[variant] = min(best[variant], await _dispatch_us(broker, frame, per_round))
                on, off = best["recorder"], best["no-op"]
                print(f"  {name:44} no-op {off:8.1f} µs   recorder {on:8.1f} µs   overhead {(on - off) / off:6.2%}")
        finally:
            broker.metrics = real
            await broker.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15, help="alternating rounds per variant (default 15)")
    ap.add_argument("--per-round", type=int, default=200, help="requests per round (default 200)")
    args = ap.parse_args()
    asyncio.run(main(args.rounds, args.per_round))
