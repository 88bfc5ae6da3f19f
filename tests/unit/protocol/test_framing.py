"""Frame decoding edge cases, with plain bytes (no sockets)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from suoi.protocol.framing import FrameDecoder, FrameError, FrameTooLarge


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
