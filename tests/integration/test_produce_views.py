"""The leader appends a Produce's records as views of the received frame (`codec.request_decoder`
with `bounds.records_spanner`, no copy by kio): the bytes in the segment file must be the bytes
sent, batch for batch, whatever the frames' sizes and however they arrive. Several Produces are
written back to back on one connection (pipelined, one `sendall`): frames larger than a socket
read and small ones sharing a read, acks=0/1/all, two partitions in one request, and a batch
with a corrupt CRC in the middle, which is still refused with CORRUPT_MESSAGE and appends nothing.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator

import pytest
from kio.schema.errors import ErrorCode
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData

from suoi.protocol.records import build_batch
from suoi.testing import EmbeddedBroker
from tests.integration.support import create_topic, module_broker, ms, segment_files, unique
from tests.rawclient import RawClient

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    yield from module_broker(tmp_path_factory)


def _batch(n: int, size: int, tag: bytes) -> bytes:
    return build_batch([(tag + b"%d" % i, bytes([i % 251]) * size) for i in range(n)],
                       timestamp_ms=int(time.time() * 1000))


def _request(topic: str, acks: int, parts: dict[int, bytes]) -> ProduceRequest:
    return ProduceRequest(transactional_id=None, acks=acks, timeout=ms(10_000), topic_data=(
        TopicProduceData(name=topic, partition_data=tuple(
            PartitionProduceData(index=p, records=r) for p, r in parts.items())),))


def _disk_batches(broker: EmbeddedBroker, topic: str, partition: int) -> list[tuple[int, bytes]]:
    """(base offset, the batch without the fields the leader stamps: base offset, leader epoch)."""
    data = b"".join(path.read_bytes() for path in segment_files(broker, topic, partition))
    out, pos = [], 0
    while pos + 12 <= len(data):
        base, length = struct.unpack_from(">qi", data, pos)
        if length == 0:  # preallocated tail
            break
        batch = data[pos:pos + 12 + length]
        out.append((base, _unstamped(batch)))
        pos += 12 + length
    return out


def _unstamped(batch: bytes) -> bytes:
    return batch[8:12] + batch[16:]


def test_pipelined_produces_land_on_disk_as_sent(broker: EmbeddedBroker) -> None:
    topic = unique("views")
    create_topic(broker.bootstrap, topic, partitions=2)
    large = _batch(300, 1024, b"L")  # ~300 KB: longer than one socket read
    small = _batch(3, 10, b"s")
    medium = _batch(60, 1024, b"m")
    tail = _batch(5, 100, b"t")
    corrupt = bytearray(_batch(2, 50, b"c"))
    corrupt[-3] ^= 0x5A  # in the records: the CRC32C no longer matches
    sends = [  # (acks, {partition: records}); acks=0 gets no answer
        (1, {0: large}),
        (0, {0: small}),
        (-1, {1: small, 0: medium}),
        (1, {0: bytes(corrupt)}),
        (0, {1: large}),
        (-1, {0: large}),
        (1, {0: tail, 1: tail}),
    ]
    with RawClient(broker.bootstrap) as c:
        requests = [_request(topic, acks, parts) for acks, parts in sends]
        frames = [c.encode(r) for r in requests]
        c.send_bytes(b"".join(frames))
        answers = [c.decode(r, c.recv_frame()) for r, (acks, _) in zip(requests, sends, strict=True) if acks]
    got = [(cid, [(p.index, p.error_code, p.base_offset) for t in body.responses for p in t.partition_responses])
           for cid, body in answers]
    assert got == [
        (1, [(0, ErrorCode.none, 0)]),
        (3, [(1, ErrorCode.none, 0), (0, ErrorCode.none, 303)]),
        (4, [(0, ErrorCode.corrupt_message, -1)]),
        (6, [(0, ErrorCode.none, 363)]),
        (7, [(0, ErrorCode.none, 663), (1, ErrorCode.none, 303)]),
    ]
    assert _disk_batches(broker, topic, 0) == [
        (0, _unstamped(large)), (300, _unstamped(small)), (303, _unstamped(medium)),
        (363, _unstamped(large)), (663, _unstamped(tail))]
    assert _disk_batches(broker, topic, 1) == [
        (0, _unstamped(small)), (3, _unstamped(large)), (303, _unstamped(tail))]


@pytest.mark.parametrize("acks", [1, -1])
def test_the_leader_reuses_its_large_frame_buffer(acks: int) -> None:
    """Nothing keeps a view of a handled Produce's records (the log, producer state, the acks=all
    wait: `_clear_partition_records`): each large Produce after the first is received into the
    same buffer, not a new zero-filled one. (A view kept anywhere would only cost a new buffer,
    never overwritten bytes: `framing._unshared`. An in-process node, to look at its connection.)"""
    from suoi.testing import InProcessNode

    batch = _batch(100, 1024, b"r")  # ~100 KB: over the 64 KiB scratch buffer
    node = InProcessNode().start()
    try:
        create_topic(node.bootstrap, "reuse", partitions=1)
        with RawClient(node.bootstrap) as c:
            offsets, buffers = [], []
            for _ in range(8):
                answer = c.request(_request("reuse", acks, {0: batch}))
                offsets.append(answer.responses[0].partition_responses[0].base_offset)
                # (a reference, not a view: it does not stop the reuse)
                buffers += [conn._reader._large for conn in list(node.broker.connections)
                            if getattr(conn, "_reader", None) is not None and conn._reader._large is not None]
    finally:
        node.stop()
    assert offsets == [i * 100 for i in range(8)]
    assert len(buffers) == 8 and all(b is buffers[0] for b in buffers)
