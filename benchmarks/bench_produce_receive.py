"""CPU of receiving and decoding Produce requests on the leader: socket reads, framing and the
request decode, measured with `time.thread_time` of the receiving thread (no event loop, no log).

The broker's user-space copies of each produced byte before the log write are here: uvloop's read
into a new `bytes` and `FrameDecoder`'s frame (a `data_received` protocol), or none of those with a
`BufferedProtocol` (`BufferedFrameReader`: the socket reads into the frame's own buffer), and
kio's copy of each records field (none when `codec.request_decoder` hands back views). Which
reader a tree uses is read from its `suoi.net.server`; run once per tree, alternating:

    git archive 4e7a029 src | tar -x -C /tmp/before
    for i in 1 2 3; do for t in /tmp/before/src src; do
        PYTHONPATH=$t python benchmarks/bench_produce_receive.py; done; done

A thread writes pre-encoded Produce v9 frames (6 partitions x a 64 KiB batch, as
`bench_produce_wire.py`'s 1k phase, and 1-partition 2 KiB ones) into a socketpair; the main
thread receives and decodes them. Prints CPU µs per request and per MB, best and median of runs.
"""

from __future__ import annotations

import argparse
import datetime
import socket
import statistics
import threading
import time

from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData
from kio.static.primitive import i16, i32

import suoi.net.server as server
from suoi.protocol import framing
from suoi.protocol.codec import encode_request, request_decoder
from suoi.protocol.records import build_batch

UVLOOP_READ = 256 * 1024  # uvloop's read size for a data_received protocol


def produce_frame(partitions: int, records: int, size: int) -> bytes:
    batch = build_batch([(None, bytes([i % 251]) * size) for i in range(records)], timestamp_ms=0)
    return encode_request(1, "bench", ProduceRequest(
        transactional_id=None, acks=i16(1), timeout=datetime.timedelta(seconds=30), topic_data=(TopicProduceData(
            name="t", partition_data=tuple(PartitionProduceData(index=i32(p), records=batch)
                                           for p in range(partitions))),)))


def receive(frame: bytes, count: int, buffered: bool) -> float:
    """CPU seconds of this thread to receive and decode `count` copies of `frame`."""
    a, b = socket.socketpair()
    for s in (a, b):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    writer = threading.Thread(target=lambda: [a.sendall(frame) for _ in range(count)], daemon=True)
    decode = request_decoder(0, 9)
    got = 0
    start = time.thread_time()
    writer.start()
    if buffered:
        reader = framing.BufferedFrameReader(1 << 27)
        while got < count:
            for f in reader.buffer_updated(b.recv_into(reader.get_buffer())):
                decode(f, 1)
                got += 1
    else:
        decoder = framing.FrameDecoder(1 << 27)
        buf = bytearray(UVLOOP_READ)
        view = memoryview(buf)
        while got < count:
            n = b.recv_into(buf)
            for f in decoder.feed(bytes(view[:n])):  # uvloop copies its read into a new bytes
                decode(f, 1)
                got += 1
    spent = time.thread_time() - start
    writer.join()
    a.close()
    b.close()
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    buffered = hasattr(server.KafkaConnection, "buffer_updated")
    cases = {"6 x 64 KiB": produce_frame(6, 64, 1000), "1 x 2 KiB": produce_frame(1, 2, 1000)}
    print(f"reader: {'BufferedFrameReader' if buffered else 'FrameDecoder'} ({framing.__file__})")
    for name, frame in cases.items():
        receive(frame, 20, buffered)  # warm-up
        per = [receive(frame, args.requests, buffered) / args.requests * 1e6 for _ in range(args.runs)]
        mb = len(frame) / 1e6
        print(f"{name} ({len(frame)} B): CPU µs/request best {min(per):.1f} median {statistics.median(per):.1f}"
              f" (max {max(per):.1f}); µs/MB best {min(per) / mb:.0f} median {statistics.median(per) / mb:.0f}")


if __name__ == "__main__":
    main()
