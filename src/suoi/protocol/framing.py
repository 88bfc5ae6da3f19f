"""Size-prefixed frame decoding, sans-IO (in the style of h11).

Kafka frames every request and response as a big-endian int32 size followed by that many
bytes. The decoder is fed whatever the socket produced and yields whole frames; it never
touches a socket, so its edge cases (split sizes, oversize frames, many frames in one
read) are tested with plain bytes.
"""

from __future__ import annotations

import struct
from typing import ClassVar

_SIZE = struct.Struct(">i")
#: `BufferedFrameReader`'s scratch buffer (a module constant: mypyc's compiled default arguments
#: cannot name a class attribute)
_SCRATCH = 64 * 1024


def _unshared(buf: bytearray) -> bool:
    """No view of `buf` is alive: a bytearray with exports refuses to resize (BufferError), so a
    one-byte append tells, and is undone (within its spare capacity after the first time: no copy).
    Not `sys.getrefcount`, whose count of a local differs once mypyc compiles this module."""
    try:
        buf.append(0)
    except BufferError:
        return False
    del buf[-1]
    return True


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

    __slots__ = ("_buf", "_have", "_max", "_need", "_pieces")

    def __init__(self, max_frame_size: int) -> None:
        self._buf = bytearray()  # a size prefix split across reads
        self._max = max_frame_size
        self._need = -1  # size of the frame being assembled, -1 while reading the prefix
        self._pieces: list[bytes] = []  # the received parts of that frame
        self._have = 0  # their total length

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Add received bytes and return every frame completed by them, in order.

        Each frame is copied once: sliced out of `data` when it lies within it, else joined
        from the pieces it arrived in (held by reference until the last one comes).
        """
        if not isinstance(data, bytes):
            data = bytes(data)
        end = len(data)
        if self._need < 0 and not self._buf and end >= 4:  # the usual read: exactly one whole frame
            (size,) = _SIZE.unpack_from(data, 0)
            if size == end - 4 and size <= self._max:
                return [data[4:]]
        frames: list[bytes] = []
        pos = 0
        while True:
            if self._need < 0:  # reading the 4-byte size (perhaps split across reads)
                if pos >= end:
                    break
                if self._buf or end - pos < 4:
                    take = min(4 - len(self._buf), end - pos)
                    self._buf += data[pos:pos + take]
                    pos += take
                    if len(self._buf) < 4:
                        break
                    (size,) = _SIZE.unpack_from(self._buf, 0)
                    self._buf.clear()
                else:
                    (size,) = _SIZE.unpack_from(data, pos)
                    pos += 4
                if size < 0:
                    raise FrameError(f"negative frame size {size}")
                if size > self._max:
                    raise FrameTooLarge(size, self._max)
                self._need = size
                self._pieces = []
                self._have = 0
            missing = self._need - self._have
            if not self._pieces and end - pos >= missing:  # the whole frame is in this read
                frames.append(data[pos:pos + missing])
                pos += missing
            else:
                take = min(missing, end - pos)
                if take == 0:
                    break
                self._pieces.append(data if (pos == 0 and take == end) else data[pos:pos + take])
                self._have += take
                pos += take
                if self._have < self._need:
                    break
                frames.append(b"".join(self._pieces))
                self._pieces = []
            self._need = -1
        return frames

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame."""
        return len(self._buf) + (self._have if self._need >= 0 else 0)


def frame(payload_parts: list[bytes | bytearray | memoryview]) -> list[bytes | bytearray | memoryview]:
    """Prefix the parts of one message with their total size (for a gathered write)."""
    total = 0
    for part in payload_parts:
        total += len(part)
    return [_SIZE.pack(total), *payload_parts]


class BufferedFrameReader:
    """Frames for an `asyncio.BufferedProtocol`: the socket reads into buffers this hands out,
    so a large frame (a follower's Fetch answer) is received straight into its own buffer - no
    bytes object per read and no join of the pieces (two copies of every replicated byte).

    `get_buffer()` gives where the next read goes; `buffer_updated(n)` returns the frames
    completed by those n bytes. Frames that fit the scratch buffer come back as `bytes` (copied
    out of it); a larger one as a read-only memoryview of the large-frame buffer (kio reads it
    as is). That buffer is kept and reused for the next large frame (up to `KEEP_LARGE` bytes),
    so a follower's every Fetch answer is not a fresh multi-megabyte allocation that CPython
    zero-fills before the socket overwrites it (6 % of a follower's CPU) - but only once no view
    of it is alive: views of an answer's records (`codec.decode_response_views`) live until
    the follower has appended them, and the next answer then goes into a buffer of its own.
    Sizes are checked as `FrameDecoder` checks them, before anything is allocated for them.
    """

    __slots__ = ("_end", "_frame", "_have", "_keep", "_large", "_max", "_scratch", "_size", "_start", "_view")
    SCRATCH: ClassVar[int] = _SCRATCH
    #: the largest large-frame buffer kept for reuse (above it, one is allocated per frame)
    KEEP_LARGE: ClassVar[int] = 16 * 1024 * 1024

    def __init__(self, max_frame_size: int, scratch_size: int = _SCRATCH, keep_large: int = KEEP_LARGE) -> None:
        self._max = max_frame_size
        self._keep = keep_large  # (an argument, not a subclass's ClassVar: mypyc compiles this class)
        self._scratch = bytearray(scratch_size)
        self._view = memoryview(self._scratch)
        self._start = 0  # first byte in the scratch buffer not yet returned as (part of) a frame
        self._end = 0  # end of the bytes received into it
        self._frame: bytearray | None = None  # the buffer a large frame is being received into
        self._size = 0  # that frame's size (the buffer may be larger: it is reused)
        self._have = 0  # its bytes received so far
        self._large: bytearray | None = None  # kept for the next large frame

    def get_buffer(self) -> memoryview:
        if self._frame is not None:
            return memoryview(self._frame)[self._have:self._size]
        if self._start and len(self._scratch) - self._end < 4096:  # the start of a frame: move it to the front
            tail = bytes(self._view[self._start:self._end])
            self._scratch[:len(tail)] = tail
            self._start, self._end = 0, len(tail)
        return self._view[self._end:]

    def buffer_updated(self, nbytes: int) -> list[bytes | memoryview]:
        if self._frame is not None:
            self._have += nbytes
            if self._have < self._size:
                return []
            done = memoryview(self._frame)[:self._size].toreadonly()
            self._frame = None
            return [done]
        self._end += nbytes
        frames: list[bytes | memoryview] = []
        view = self._view
        while self._end - self._start >= 4:
            start = self._start
            (size,) = _SIZE.unpack_from(view, start)
            if size < 0:
                raise FrameError(f"negative frame size {size}")
            if size > self._max:
                raise FrameTooLarge(size, self._max)
            if self._end - start - 4 >= size:  # whole in the scratch buffer
                frames.append(bytes(view[start + 4:start + 4 + size]))
                self._start = start + 4 + size
            elif size + 4 > len(self._scratch):  # too large for it: the rest goes into its own buffer
                got = self._end - start - 4
                frame = self._large
                # reused only when no view of an earlier frame lives (records being appended)
                if frame is None or len(frame) < size or not _unshared(frame):
                    frame = bytearray(size)
                    if size <= self._keep:
                        self._large = frame
                frame[:got] = view[start + 4:self._end]
                self._frame, self._size, self._have = frame, size, got
                self._start = self._end = 0
                break
            else:
                break
        if self._start == self._end:
            self._start = self._end = 0
        return frames

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame."""
        return self._have if self._frame is not None else self._end - self._start
