"""Rejecting Produce v0-v2, which we advertise but do not implement (KAFKA-18659).

librdkafka decides whether compression is usable by checking that the broker's Produce
range starts at 0; a broker advertising 3+ silently gets uncompressed data. Apache
Kafka 4 therefore advertises Produce from v0 while answering v0-v2 with
UNSUPPORTED_VERSION per partition. kio has no v0-v2 schemas (Kafka removed them), so
this module reads just enough of that old request shape to answer in its own format.
"""

from __future__ import annotations

import struct

PRODUCE_KEY = 0
_UNSUPPORTED_VERSION = 35
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")


class _Reader:
    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf = buf
        self.pos = pos

    def i16(self) -> int:
        (v,) = _I16.unpack_from(self.buf, self.pos)
        self.pos += 2
        return int(v)

    def i32(self) -> int:
        (v,) = _I32.unpack_from(self.buf, self.pos)
        self.pos += 4
        return int(v)

    def string(self) -> bytes:
        n = self.i16()
        if n < 0:
            return b""
        v = self.buf[self.pos : self.pos + n]
        self.pos += n
        return v

    def skip_bytes(self) -> None:
        n = self.i32()
        if n > 0:
            self.pos += n


def reject(frame: bytes | memoryview, version: int, correlation_id: int) -> bytes | None:
    """Build the v0-v2 Produce response with UNSUPPORTED_VERSION for every partition.

    Returns None for acks=0 (the client reads no response) or an unparseable body.
    """
    try:
        r = _Reader(bytes(frame), 8)  # (a rare, refused request: a copy is fine)
        r.string()  # client id (request header v1)
        acks = r.i16()
        r.i32()  # timeout
        topics = []
        for _ in range(r.i32()):
            name = r.string()
            partitions = []
            for _ in range(r.i32()):
                partitions.append(r.i32())
                r.skip_bytes()
            topics.append((name, partitions))
    except struct.error:
        return None
    if acks == 0:
        return None
    body = bytearray(_I32.pack(correlation_id))
    body += _I32.pack(len(topics))
    for name, partitions in topics:
        body += _I16.pack(len(name)) + name + _I32.pack(len(partitions))
        for index in partitions:
            body += _I32.pack(index) + _I16.pack(_UNSUPPORTED_VERSION) + struct.pack(">q", -1)
            if version >= 2:
                body += struct.pack(">q", -1)  # log_append_time
    if version >= 1:
        body += _I32.pack(0)  # throttle_time_ms
    return _I32.pack(len(body)) + bytes(body)
