"""CPU time to encode typical answers: kio's `entity_writer` vs `protocol.compiled_writer`.

Builds (once) the kio entities of a one-partition Produce answer, a 6-partition Fetch answer
and a Metadata answer of 3 brokers x 5 topics x 6 partitions, then encodes each with
`codec.encode_response`'s machinery (size prefix, header, body into a GatherBuffer) using
kio's writers and the compiled ones, alternating in rounds; CPU time of this thread
(`time.thread_time`), median and spread over the rounds. A script, not a test:

    python benchmarks/bench_response_encoding.py [--rounds 9] [--per-round 3000]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from kio.serial import entity_writer

from suoi.protocol.codec import GatherBuffer, build_response
from suoi.protocol.codec_responses import _INT32
from suoi.protocol.compiled_writer import compiled_writer

RECORDS = b"r" * 1000


def answers() -> list[tuple[str, Any]]:
    produce = {"throttle_time": 0, "responses": [{"name": "bench", "partition_responses": [
        {"index": 0, "error_code": 0, "base_offset": 12345, "log_append_time": -1, "log_start_offset": 0,
         "record_errors": [], "error_message": None}]}]}
    fetch = {"throttle_time": 0, "error_code": 0, "session_id": 0, "responses": [{"topic": "bench", "partitions": [
        {"partition_index": p, "error_code": 0, "high_watermark": 5000, "last_stable_offset": 5000,
         "log_start_offset": 0, "aborted_transactions": None, "preferred_read_replica": -1, "records": RECORDS}
        for p in range(6)]}]}
    metadata = {"throttle_time": 0, "brokers": [{"node_id": n, "host": "127.0.0.1", "port": 9092 + n, "rack": None}
                                                for n in range(3)],
                "cluster_id": "suoi-cluster", "controller_id": 1, "topics": [
                    {"error_code": 0, "name": f"topic-{t}", "topic_id": uuid.uuid4(), "is_internal": False,
                     "partitions": [{"error_code": 0, "partition_index": p, "leader_id": p % 3, "leader_epoch": 0,
                                     "replica_nodes": [0, 1, 2], "isr_nodes": [0, 1, 2], "offline_replicas": []}
                                    for p in range(6)], "topic_authorized_operations": -2147483648}
                    for t in range(5)]}
    return [("Produce v9, 1 partition", build_response(0, 9, produce)),
            ("Produce v3, 1 partition", build_response(0, 3, produce)),
            ("Fetch v12, 6 partitions x 1 KB", build_response(1, 12, fetch)),
            ("Fetch v4, 6 partitions x 1 KB", build_response(1, 4, fetch)),
            ("Metadata v12, 3 brokers, 5 x 6 partitions", build_response(3, 12, metadata))]


def encoder(make_writer: Callable[[type], Any], response: Any) -> Callable[[], Any]:
    header_cls = type(response).__header_schema__
    write_header, write_body = make_writer(header_cls), make_writer(type(response))

    def encode() -> Any:
        buf = GatherBuffer()
        buf.write(_INT32.pack(0))
        write_header(buf, header_cls(correlation_id=7))
        write_body(buf, response)
        return buf.finish()

    return encode


def cpu_us(encode: Callable[[], Any], n: int) -> float:
    start = time.thread_time()
    for _ in range(n):
        encode()
    return (time.thread_time() - start) / n * 1e6


def main(rounds: int, per_round: int) -> None:
    print(f"CPU µs per encoded answer, median [min-max] of {rounds} alternating rounds x {per_round}")
    for name, response in answers():
        kio, compiled = encoder(entity_writer, response), encoder(compiled_writer, response)
        assert b"".join(kio()) == b"".join(compiled())
        k, c = [], []
        for _ in range(rounds):
            k.append(cpu_us(kio, per_round))
            c.append(cpu_us(compiled, per_round))
        print(f"  {name:42} kio {statistics.median(k):6.1f} [{min(k):.1f}-{max(k):.1f}]"
              f"  compiled {statistics.median(c):6.1f} [{min(c):.1f}-{max(c):.1f}]"
              f"  x{statistics.median(k) / statistics.median(c):.1f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--per-round", type=int, default=3000)
    args = ap.parse_args()
    main(args.rounds, args.per_round)
