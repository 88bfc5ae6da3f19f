#!/usr/bin/env python3
"""How long a Metadata request for one topic of many partitions takes, per source tree.

Prints figures; it is not a test.  For each tree (`--src LABEL=DIR`, default this tree) a
KRaft combined node (`config/server.properties` on free ports, `bench_startup.Node`) gets a
topic of --partitions (1,000) partitions; then, on one socket, --requests (200) Metadata
v12 requests for that topic are sent one after the other and timed (request written ->
whole answer read; the client's decoding of 1,000 partitions is not counted): median, p99
and the first request on the connection (the readiness check before it already asked for
the topic once, so a node that keeps encoded answers has it).  Trees alternate in --rounds (3) rounds, so
load on the machine hits them alike; the figures are over all rounds.

  git archive <commit> src | tar -x -C /tmp/old
  python benchmarks/bench_metadata_answer.py --src before=/tmp/old/src --src after=src
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_startup import REPO_ROOT, TOPIC, Node, ask, metadata_answered, serving_partitions, wait_for  # noqa: E402
from common import log, percentile  # noqa: E402
from kio.schema.create_topics.v7.request import CreatableTopic, CreateTopicsRequest  # noqa: E402
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic  # noqa: E402
from kio.schema.types import TopicName  # noqa: E402
from kio.static.primitive import i16, i32  # noqa: E402

from suoi.protocol.codec import decode_response, encode_request, response_class  # noqa: E402


def prepare(src: Path, partitions: int, timeout: float) -> Node:
    """A running node of tree `src` with one topic of `partitions` partitions, all served."""
    node = Node(src)
    t0 = node.start()
    wait_for(lambda: metadata_answered(node), node, t0 + timeout, "first Metadata")
    answer = ask(node.port, CreateTopicsRequest(topics=(CreatableTopic(
        name=TopicName(TOPIC), num_partitions=i32(partitions), replication_factor=i16(1), assignments=(),
        configs=()),), validate_only=False), timeout=timeout)
    if answer.topics[0].error_code != 0:
        raise RuntimeError(f"CreateTopics failed: error {answer.topics[0].error_code}")
    wait_for(lambda: serving_partitions(node, partitions), node, time.monotonic() + timeout, "all partitions ready")
    return node


def timed_requests(port: int, partitions: int, n: int) -> list[float]:
    """`n` Metadata requests of the topic on one blocking socket, seconds each: request
    written -> whole answer frame read (the client's decoding is not counted; the first
    answer is decoded and checked)."""
    request = MetadataRequest(topics=(MetadataRequestTopic(topic_id=None, name=TopicName(TOPIC)),),
                              allow_auto_topic_creation=False, include_topic_authorized_operations=False)
    out = []
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(n):
            frame = encode_request(i, "bench-metadata-answer", request)
            t0 = time.perf_counter()
            sock.sendall(frame)
            answer = _read_frame(sock)
            out.append(time.perf_counter() - t0)
            if i == 0:
                topic = decode_response(answer, response_class(3, 12)).topics[0]
                if len(topic.partitions) != partitions:
                    raise RuntimeError(f"answer lists {len(topic.partitions)} partitions")
    return out


def _read_frame(sock: socket.socket) -> bytes:
    size = struct.unpack(">i", _read_exactly(sock, 4))[0]
    return _read_exactly(sock, size)


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed mid-answer")
        buf += chunk
    return bytes(buf)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", action="append", default=[], metavar="LABEL=DIR")
    ap.add_argument("--partitions", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    trees = [(s.split("=", 1)[0], Path(s.split("=", 1)[1]).resolve()) for s in args.src] or [("this", REPO_ROOT / "src")]
    times: dict[str, list[float]] = {label: [] for label, _ in trees}
    first: dict[str, list[float]] = {label: [] for label, _ in trees}
    for r in range(args.rounds):
        for label, src in trees:
            node = prepare(src, args.partitions, args.timeout)
            try:
                got = timed_requests(node.port, args.partitions, args.requests)
            finally:
                node.remove()
            first[label].append(got[0])
            times[label].extend(got[1:])
            log(f"round {r + 1} {label}: median {statistics.median(got[1:]) * 1000:.2f} ms")
    print(f"\nMetadata v12 of one topic of {args.partitions} partitions, one connection, "
          f"{args.rounds} rounds x {args.requests} requests (ms)")
    print(f"{'tree':<12}{'median':>10}{'p99':>10}{'first':>14}")
    figures = {}
    for label, _ in trees:
        lat = sorted(x * 1000 for x in times[label])
        row = {"median_ms": statistics.median(lat), "p99_ms": percentile(lat, 99),
               "first_ms": statistics.median(first[label]) * 1000}
        figures[label] = row
        print(f"{label:<12}{row['median_ms']:>10.2f}{row['p99_ms']:>10.2f}{row['first_ms']:>14.2f}")
    if args.json:
        print(json.dumps({"partitions": args.partitions, "figures": figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
