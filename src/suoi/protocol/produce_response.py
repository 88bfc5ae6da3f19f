"""The Produce answer, encoded without kio.

kio builds an entity per partition and makes a dozen small writes for each: under cProfile
half the broker's CPU for a one-record Produce was spent there (build + encode ~40 µs of
~87 µs). A Produce answer is a topic name (or id) and, per partition, fixed-width fields, an
always-empty record_errors array and a nullable message, so `struct` does it in one call per
partition. tests/unit/protocol/test_produce_response.py checks it byte for byte against kio's
ProduceResponse for every version the broker serves (3-13).

Handlers return a `ProduceAnswer`, which `api.dispatch` asks to `encode` itself (with the
client quota's throttle time when there is one).
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

_INT32 = struct.Struct(">i")
_HEADER_FLEX = struct.Struct(">iib")  # size, correlation id, no tagged fields
_HEADER = struct.Struct(">ii")  # size, correlation id
_PARTITION = struct.Struct(">ihqq")  # index, error_code, base_offset, log_append_time (v2+)
_PARTITION_V5 = struct.Struct(">ihqqq")  # ... log_start_offset (v5+)
_INT16 = struct.Struct(">h")
_NULL_STRING = _INT16.pack(-1)
_SMALL_UVARINTS = [bytes([n]) for n in range(128)]

FIRST_FLEXIBLE = 9
FIRST_RECORD_ERRORS = 8
FIRST_TOPIC_ID = 13


class PartitionAnswer(NamedTuple):
    index: int
    error_code: int
    base_offset: int
    log_append_time: int
    log_start_offset: int
    error_message: str | None


class TopicAnswer(NamedTuple):
    name: str | None
    topic_id: uuid.UUID | None
    partitions: Sequence[PartitionAnswer]


def _uvarint(n: int) -> bytes:
    if n < 128:
        return _SMALL_UVARINTS[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _string(value: str, flexible: bool) -> bytes:
    raw = value.encode()
    return (_uvarint(len(raw) + 1) if flexible else _INT16.pack(len(raw))) + raw


def _count(n: int, flexible: bool) -> bytes:
    return _uvarint(n + 1) if flexible else _INT32.pack(n)


def encode_produce_response(correlation_id: int, version: int, topics: Sequence[TopicAnswer],
                            throttle_ms: int) -> bytes | None:
    """The size-prefixed Produce answer at `version` (3-13), or None for a shape this does not
    cover (a topic without the name/id its version needs): the caller asks kio then."""
    flexible = version >= FIRST_FLEXIBLE
    v5, v8, by_id = version >= 5, version >= FIRST_RECORD_ERRORS, version >= FIRST_TOPIC_ID
    pack = _PARTITION_V5.pack if v5 else _PARTITION.pack
    # record_errors (empty), then a null error_message and, when flexible, no tagged fields
    tail_null = (b"\x01\x00\x00" if flexible else b"\x00\x00\x00\x00" + _NULL_STRING) if v8 else b""
    out = [b"", _count(len(topics), flexible)]
    for topic in topics:
        if by_id:
            if topic.topic_id is None:
                return None
            out.append(topic.topic_id.bytes)
        else:
            if topic.name is None:
                return None
            out.append(_string(topic.name, flexible))
        out.append(_count(len(topic.partitions), flexible))
        for p in topic.partitions:
            out.append(pack(p.index, p.error_code, p.base_offset, p.log_append_time, p.log_start_offset) if v5
                       else pack(p.index, p.error_code, p.base_offset, p.log_append_time))
            if not v8:
                continue
            if p.error_message is None:
                out.append(tail_null)
            else:
                out.append(_count(0, flexible) + _string(p.error_message, flexible) + (b"\x00" if flexible else b""))
        if flexible:
            out.append(b"\x00")
    out.append(_INT32.pack(throttle_ms))
    if flexible:
        out.append(b"\x00")
    body_size = sum(len(part) for part in out)
    if flexible:
        out[0] = _HEADER_FLEX.pack(body_size + 5, correlation_id, 0)
    else:
        out[0] = _HEADER.pack(body_size + 4, correlation_id)
    return b"".join(out)


class ProduceAnswer:
    """A Produce handler's answer: encodes itself (`encode_produce_response`), or as a dict
    through kio for a shape the fast path does not cover."""

    __slots__ = ("topics",)

    def __init__(self, topics: Sequence[TopicAnswer]) -> None:
        self.topics = topics

    def encode(self, correlation_id: int, version: int, throttle_ms: int = 0) -> list[Any]:
        fast = encode_produce_response(correlation_id, version, self.topics, throttle_ms)
        if fast is not None:
            return [fast]
        from suoi.protocol.codec import build_response, encode_response

        return encode_response(correlation_id, build_response(0, version, self.as_dict(throttle_ms)))

    def as_dict(self, throttle_ms: int = 0) -> dict[str, Any]:
        """The answer as `codec.build` takes it (kio's field names)."""
        return {"throttle_time": throttle_ms, "responses": [
            {"name": t.name, "topic_id": t.topic_id, "partition_responses": [
                {"index": p.index, "error_code": p.error_code, "base_offset": p.base_offset,
                 "log_append_time": p.log_append_time, "log_start_offset": p.log_start_offset,
                 "record_errors": [], "error_message": p.error_message} for p in t.partitions]}
            for t in self.topics]}
