"""Frame decoding edge cases, with plain bytes (no sockets)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from suoi.protocol.framing import BufferedFrameReader, FrameDecoder, FrameError, FrameTooLarge


def framed(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def test_many_frames_in_one_read() -> None:
    d = FrameDecoder(1024)
    assert d.feed(framed(b"a") + framed(b"bb") + framed(b"")) == [b"a", b"bb", b""]
    assert d.buffered == 0


def test_frame_split_byte_by_byte() -> None:
    d = FrameDecoder(1024)
    data = framed(b"hello") + framed(b"world!")
    out: list[bytes] = []
    for i in range(len(data)):
        out += d.feed(data[i : i + 1])
    assert out == [b"hello", b"world!"]


def test_oversize_frame_rejected_before_buffering() -> None:
    d = FrameDecoder(100)
    with pytest.raises(FrameTooLarge) as info:
        d.feed(struct.pack(">i", 101))
    assert info.value.size == 101 and info.value.limit == 100


def test_negative_size_is_a_protocol_error() -> None:
    with pytest.raises(FrameError):
        FrameDecoder(100).feed(struct.pack(">i", -5))


def test_partial_frame_waits_for_more() -> None:
    d = FrameDecoder(100)
    assert d.feed(framed(b"abcdef")[:7]) == []
    assert d.buffered == 3  # the size prefix is consumed; 3 payload bytes wait
    assert d.feed(b"def") == [b"abcdef"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8), st.lists(st.integers(1, 400), min_size=1, max_size=20))
def test_any_split_of_any_frames_gives_the_frames(payloads: list[bytes], cuts: list[int]) -> None:
    """Frames (empty ones too) come out whole and in order however the stream is cut: within
    one read, across reads, with the size prefix itself split."""
    stream = b"".join(len(p).to_bytes(4, "big") + p for p in payloads)
    dec = FrameDecoder(1 << 20)
    out: list[bytes] = []
    pos, i = 0, 0
    while pos < len(stream):
        step = cuts[i % len(cuts)]
        out += dec.feed(stream[pos:pos + step])
        pos += step
        i += 1
    assert out == payloads
    assert dec.buffered == 0


def _read_all(reader: BufferedFrameReader, stream: bytes, cuts: list[int],
              kinds: list[type] | None = None) -> list[bytes]:
    """Feed `stream` as a socket would: each read fills at most the buffer handed out. Each frame
    is copied as it comes out (a large frame's view is valid until the next read, as a caller
    decodes it at once); `kinds` gets the type each came as."""
    out: list[bytes] = []
    pos, i = 0, 0
    while pos < len(stream):
        buf = reader.get_buffer()
        assert len(buf) > 0
        n = min(cuts[i % len(cuts)], len(buf), len(stream) - pos)
        buf[:n] = stream[pos:pos + n]
        pos += n
        i += 1
        for f in reader.buffer_updated(n):
            if kinds is not None:
                kinds.append(type(f))
                assert not isinstance(f, memoryview) or f.readonly
            out.append(bytes(f))
    return out


def _frames_of(reader: BufferedFrameReader, stream: bytes, step: int) -> list[bytes | memoryview]:
    """The frames of `stream`, received `step` bytes at a time, as they come out (views kept)."""
    frames: list[bytes | memoryview] = []
    pos = 0
    while pos < len(stream):
        buf = reader.get_buffer()
        n = min(len(buf), step, len(stream) - pos)
        buf[:n] = stream[pos:pos + n]
        pos += n
        frames += reader.buffer_updated(n)
    return frames


def test_buffered_reader_large_frame_goes_into_its_own_buffer() -> None:
    r = BufferedFrameReader(1 << 20, scratch_size=64)
    big = bytes(range(256)) * 4
    kinds: list[type] = []
    frames = _read_all(r, framed(b"a") + framed(big) + framed(b"bc"), [50], kinds)
    assert frames == [b"a", big, b"bc"] and r.buffered == 0
    # small frames are copied out of the scratch buffer; the large one is a read-only view of its own
    assert kinds == [bytes, memoryview, bytes]


def test_buffered_reader_reuses_its_large_frame_buffer() -> None:
    """Large frames after the first are received into the same buffer (no new zero-filled
    allocation per follower Fetch answer); a smaller one uses its front, a larger one grows it,
    and each comes out exactly as sent, never with the tail of an earlier one."""
    r = BufferedFrameReader(1 << 20, scratch_size=64)
    sizes = [1000, 300, 5000, 4999, 200]
    payloads = [bytes([i + 1]) * n for i, n in enumerate(sizes)]
    buffers = []  # (ids: holding the buffers would make them referenced, and not reused)
    for p in payloads:
        kinds: list[type] = []
        assert _read_all(r, framed(p), [77], kinds) == [p] and kinds == [memoryview]
        buffers.append(id(r._large))
    assert buffers[0] == buffers[1] and buffers[2] == buffers[3] == buffers[4] and buffers[1] != buffers[2]
    assert r._large is not None and len(r._large) == 5000


def test_buffered_reader_never_overwrites_a_frame_still_referenced() -> None:
    """A view of a large frame kept past the next read (a follower's records views, until its
    append) keeps its bytes: the next large frame goes into a new buffer; once the view is gone,
    the buffer is reused again."""
    r = BufferedFrameReader(1 << 20, scratch_size=64)

    def receive(payload: bytes) -> memoryview:
        frames = _frames_of(r, framed(payload), 500)
        assert len(frames) == 1 and isinstance(frames[0], memoryview)
        return frames[0]

    first = receive(b"a" * 3000)[100:2000]  # a slice of it, as the records views are
    kept = id(r._large)
    assert bytes(receive(b"b" * 3000)) == b"b" * 3000
    assert bytes(first) == b"a" * 1900 and id(r._large) != kept
    second = id(r._large)
    del first
    assert bytes(receive(b"c" * 2500)) == b"c" * 2500 and id(r._large) == second


def test_buffered_reader_does_not_keep_huge_buffers() -> None:
    """A frame above KEEP_LARGE gets a buffer of its own, not kept; the kept one stays for the next."""

    r = BufferedFrameReader(1 << 20, scratch_size=64, keep_large=500)
    assert _read_all(r, framed(b"x" * 400), [100]) == [b"x" * 400]
    kept = id(r._large)  # (an id: a reference would make it not reusable)
    assert _read_all(r, framed(b"y" * 900), [100]) == [b"y" * 900]
    assert id(r._large) == kept and r._large is not None and len(r._large) == 400
    assert _read_all(r, framed(b"z" * 300), [100]) == [b"z" * 300] and id(r._large) == kept


def test_buffered_reader_checks_sizes_before_allocating() -> None:
    r = BufferedFrameReader(100, scratch_size=64)
    r.get_buffer()[:4] = struct.pack(">i", 101)
    with pytest.raises(FrameTooLarge):
        r.buffer_updated(4)
    r = BufferedFrameReader(100, scratch_size=64)
    r.get_buffer()[:4] = struct.pack(">i", -1)
    with pytest.raises(FrameError):
        r.buffer_updated(4)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8), st.lists(st.integers(1, 400), min_size=1, max_size=20),
       st.integers(8, 200))
def test_buffered_reader_any_split_gives_the_frames(payloads: list[bytes], cuts: list[int], scratch: int) -> None:
    """Frames small and larger than the scratch buffer come out whole and in order however the
    reads are cut, the size prefix split too."""
    stream = b"".join(framed(p) for p in payloads)
    r = BufferedFrameReader(1 << 20, scratch_size=scratch)
    assert _read_all(r, stream, cuts) == payloads
    assert r.buffered == 0


def test_a_decoded_fetch_answer_outlives_the_reused_buffer() -> None:
    """What makes the reuse safe for the inter-broker client: kio's decode copies the records out
    of the frame, so a follower's appended batches are not overwritten by the next answer."""
    import uuid

    from kio.schema.fetch.v13.response import FetchResponse

    from suoi.protocol.codec import build_response, decode_response, encode_response

    def answer(fill: bytes) -> bytes:
        body = build_response(1, 13, {"throttle_time": 0, "error_code": 0, "session_id": 0, "responses": [
            {"topic_id": uuid.UUID(int=7), "partitions": [
                {"partition_index": 0, "error_code": 0, "high_watermark": 5, "last_stable_offset": 5,
                 "log_start_offset": 0, "aborted_transactions": None, "preferred_read_replica": -1,
                 "records": fill * 3000}]}]})
        return b"".join(bytes(p) for p in encode_response(9, body))

    r = BufferedFrameReader(1 << 20, scratch_size=64)
    decoded = []
    for fill in (b"a", b"b"):
        decoded += [decode_response(frame, FetchResponse) for frame in _frames_of(r, answer(fill), 1000)]
    assert [d.responses[0].partitions[0].records for d in decoded] == [b"a" * 3000, b"b" * 3000]


def test_a_produce_decoded_as_views_keeps_its_records_across_the_next_frame() -> None:
    """The leader's side: a Produce's records are views of the large-frame buffer
    (`codec.request_decoder`); a request still holding them (an acks=all wait, before its records
    are dropped) keeps its bytes while the next Produce is received, which goes into a new buffer;
    once no request holds them, the buffer is reused."""
    import datetime

    from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData

    from suoi.protocol.codec import encode_request, request_decoder

    def produce(fill: bytes) -> bytes:
        return encode_request(5, "c", ProduceRequest(
            transactional_id=None, acks=-1, timeout=datetime.timedelta(seconds=1), topic_data=(TopicProduceData(
                name="t", partition_data=(PartitionProduceData(index=0, records=fill * 70_000),)),)))

    r = BufferedFrameReader(1 << 20, scratch_size=64)
    decode = request_decoder(0, 9)

    def receive(fill: bytes) -> memoryview:
        (frame,) = _frames_of(r, produce(fill), 5000)
        assert isinstance(frame, memoryview)
        records = decode(frame, 5).body.topic_data[0].partition_data[0].records
        assert isinstance(records, memoryview) and records.obj is frame.obj
        return records

    first = receive(b"a")
    kept = id(r._large)
    second = receive(b"b")
    assert (bytes(first), bytes(second)) == (b"a" * 70_000, b"b" * 70_000) and id(r._large) != kept
    del first, second
    reused = id(r._large)
    assert bytes(receive(b"c")) == b"c" * 70_000 and id(r._large) == reused
