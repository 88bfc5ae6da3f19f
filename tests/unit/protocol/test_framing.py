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


def _read_all(reader: BufferedFrameReader, stream: bytes, cuts: list[int]) -> list[bytes | memoryview]:
    """Feed `stream` as a socket would: each read fills at most the buffer handed out."""
    out: list[bytes | memoryview] = []
    pos, i = 0, 0
    while pos < len(stream):
        buf = reader.get_buffer()
        assert len(buf) > 0
        n = min(cuts[i % len(cuts)], len(buf), len(stream) - pos)
        buf[:n] = stream[pos:pos + n]
        pos += n
        i += 1
        out += reader.buffer_updated(n)
    return out


def test_buffered_reader_large_frame_goes_into_its_own_buffer() -> None:
    r = BufferedFrameReader(1 << 20, scratch_size=64)
    big = bytes(range(256)) * 4
    frames = _read_all(r, framed(b"a") + framed(big) + framed(b"bc"), [50])
    assert frames == [b"a", big, b"bc"] and r.buffered == 0
    # small frames are copied out of the scratch buffer; the large one is a read-only view of its own
    assert [type(f) for f in frames] == [bytes, memoryview, bytes] and frames[1].readonly


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
    assert [bytes(f) for f in _read_all(r, stream, cuts)] == payloads
    assert r.buffered == 0
