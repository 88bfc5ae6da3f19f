"""Frame decoding edge cases, with plain bytes (no sockets)."""

from __future__ import annotations

import struct

import pytest

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
