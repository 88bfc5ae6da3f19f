"""Size-prefixed frame decoding, sans-IO (in the style of h11).

Kafka frames every request and response as a big-endian int32 size followed by that many
bytes. The decoder is fed whatever the socket produced and yields whole frames; it never
touches a socket, so its edge cases (split sizes, oversize frames, many frames in one
read) are tested with plain bytes.
"""

from __future__ import annotations

import struct

_SIZE = struct.Struct(">i")


class FrameError(Exception):
    """The peer broke the framing; the connection cannot be resynchronised and must close."""


class FrameTooLarge(FrameError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame of {size} bytes exceeds socket.request.max.bytes={limit}")
        self.size = size
        self.limit = limit


class FrameDecoder:
    """Turns a byte stream into frames (without their size prefix).

    `max_frame_size` mirrors Kafka's socket.request.max.bytes: a larger declared size is
    rejected *before* buffering it, so a hostile peer cannot make us allocate gigabytes.
    """

    __slots__ = ("_buf", "_max", "_need")

    def __init__(self, max_frame_size: int) -> None:
        self._buf = bytearray()
        self._max = max_frame_size
        self._need = -1  # size of the frame being assembled, -1 while reading the prefix

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Add received bytes and return every frame completed by them, in order."""
        buf = self._buf
        buf += data
        frames: list[bytes] = []
        pos = 0
        end = len(buf)
        while True:
            if self._need < 0:
                if end - pos < 4:
                    break
                (size,) = _SIZE.unpack_from(buf, pos)
                if size < 0:
                    raise FrameError(f"negative frame size {size}")
                if size > self._max:
                    raise FrameTooLarge(size, self._max)
                pos += 4
                self._need = size
            if end - pos < self._need:
                break
            with memoryview(buf) as view:  # one copy (a bytearray slice would be a second)
                frames.append(bytes(view[pos : pos + self._need]))
            pos += self._need
            self._need = -1
        if pos:
            del buf[:pos]
        return frames

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame."""
        return len(self._buf)


def frame(payload_parts: list[bytes | bytearray | memoryview]) -> list[bytes | bytearray | memoryview]:
    """Prefix the parts of one message with their total size (for a gathered write)."""
    total = 0
    for part in payload_parts:
        total += len(part)
    return [_SIZE.pack(total), *payload_parts]
