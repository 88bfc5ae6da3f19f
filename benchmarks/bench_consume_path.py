"""Broker CPU of a consumer's fetches on an in-process node, per fetched message.

`bench_consume.py` measures through real sockets and a librdkafka client on a shared machine;
this isolates the read path (Fetch decode, partition reads from the segment files, response
encoding): a single-node KRaft broker in this process gets `--mb` MB of 100-byte records in
`--records`-record batches over 6 partitions, then a consumer's sequence of Fetch requests
(4 MB per partition, each from where the previous answer ended; read_uncommitted unless
`--read-committed`, librdkafka's default) is dispatched and each answer is written to a
local socket (whose other end a second thread drains), timing this thread's CPU
(time.thread_time) around `dispatch` and the socket write: an answer's records may be file
regions sent with `os.sendfile` (issue 19), so the kernel's send is part of the cost compared.
Five passes; median and min printed. `--partition-max-bytes` sets the size of each
partition's answer (the sendfile size threshold, `log_reads.SENDFILE_MIN_BYTES`, can be set
with `--sendfile-min`). Run it against two source trees to compare them:

    python benchmarks/bench_consume_path.py
    PYTHONPATH=/tmp/before/src python benchmarks/bench_consume_path.py

A script, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import inspect
import os
import socket
import tempfile
import threading
import time

from bench_partition_path import PARTITIONS, TOPIC, call, produce, single_node
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.fetch.v12.response import FetchResponse

import suoi
from suoi.api.dispatch import dispatch
from suoi.log.transactions import next_offset_after
from suoi.protocol.codec import decode_response, encode_request


def fetch(offsets: list[int], isolation: int = 0, partition_max: int = 4 << 20) -> FetchRequest:
    return FetchRequest(cluster_id=None, replica_id=-1, max_wait=datetime.timedelta(0), min_bytes=1,
                        max_bytes=16 << 20, isolation_level=isolation, session_id=0, session_epoch=-1, topics=(
                            FetchTopic(topic=TOPIC, partitions=tuple(
                                FetchPartition(partition=i, current_leader_epoch=-1, fetch_offset=offsets[i],
                                               last_fetched_epoch=-1, log_start_offset=-1,
                                               partition_max_bytes=partition_max) for i in range(PARTITIONS))),),
                        forgotten_topics_data=(), rack_id="")


def _is_region(part: object) -> bool:
    return hasattr(part, "fd") and hasattr(part, "offset")


def send(sock: socket.socket, parts: list) -> None:
    """Write an answer as the connection does: bytes, and file regions with sendfile."""
    for p in parts:
        if _is_region(p):
            offset, left = p.offset, p.length
            while left:
                n = os.sendfile(sock.fileno(), p.fd, offset, left)
                offset, left = offset + n, left - n
        else:
            sock.sendall(p)


def drain(sock: socket.socket) -> None:
    while sock.recv(1 << 20):
        pass


def as_bytes(parts: list) -> bytes:
    return b"".join(p.read() if _is_region(p) else bytes(p) for p in parts)


async def main(records: int, mb: int, isolation: int, partition_max: int) -> None:
    out_sock, in_sock = socket.socketpair()
    threading.Thread(target=drain, args=(in_sock,), daemon=True).start()
    with tempfile.TemporaryDirectory(prefix="suoi-bench-") as data:
        broker = await single_node(data)
        try:
            frame = encode_request(7, "bench", produce(1, records, 100, PARTITIONS))[4:]
            batches = mb * 1_000_000 // PARTITIONS // (records * 110)
            for _ in range(batches):
                await call(broker, frame)
            total = batches * records
            per_msg = []
            for _ in range(5):
                offsets = [0] * PARTITIONS
                cpu, msgs = 0.0, 0
                while min(offsets) < total:
                    request = encode_request(7, "bench", fetch(offsets, isolation, partition_max))[4:]
                    t0 = time.thread_time()
                    out = dispatch(broker, request, "bench")
                    if inspect.isawaitable(out):
                        out = await out
                    assert out is not None
                    send(out_sock, out)
                    cpu += time.thread_time() - t0
                    response = decode_response(as_bytes(out)[4:], FetchResponse)
                    del out
                    for part in response.responses[0].partitions:
                        new = next_offset_after(part.records or b"", offsets[part.partition_index])
                        msgs += new - offsets[part.partition_index]
                        offsets[part.partition_index] = new
                per_msg.append(cpu / msgs * 1e6)
            per_msg.sort()
            print(f"suoi from {suoi.__file__}: {total:,} msgs per partition in {records}-record batches; "
                  f"broker CPU per fetched message: median {per_msg[2]:.4f} µs, min {per_msg[0]:.4f} µs")
        finally:
            await broker.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=300, help="records per batch")
    ap.add_argument("--mb", type=int, default=60, help="MB written over the 6 partitions")
    ap.add_argument("--read-committed", action="store_true", help="isolation_level=1 (librdkafka's default)")
    ap.add_argument("--partition-max-bytes", type=int, default=4 << 20, help="each partition's answer at most")
    ap.add_argument("--sendfile-min", type=int, default=None,
                    help="log_reads.SENDFILE_MIN_BYTES for this run (trees that have it)")
    args = ap.parse_args()
    if args.sendfile_min is not None:
        from suoi.log import log_reads
        log_reads.SENDFILE_MIN_BYTES = args.sendfile_min
    asyncio.run(main(args.records, args.mb, int(args.read_committed), args.partition_max_bytes))
