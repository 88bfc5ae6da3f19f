"""The Fetch answer, encoded without kio (the common shape; anything else goes to kio).

A consumer woken by one produced record costs the node a Fetch answer, and kio's build and
encode of it (an entity per partition, a dozen small writes each) was as much CPU as the
rest of that Fetch. A partition is fixed-width fields, an aborted-transactions array of two
int64s each, and the record bytes, which stay a part of their own when large (as
`codec.GatherBuffer` keeps them: they are not copied before the socket).

`encode_fetch_response` takes the dict the Fetch handler answers with and returns None for
any field it does not know (a diverging epoch, a current leader, node endpoints...), so a
new field in the handler's answer goes through kio unchanged. tests/unit/protocol/
test_fetch_response.py checks it byte for byte against kio's FetchResponse for v4-18.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

from suoi.protocol.codec import GatherBuffer
from suoi.protocol.metadata_partitions import uvarint_bytes

_TOP = frozenset({"throttle_time", "error_code", "session_id", "responses"})
_TOPIC = frozenset({"topic", "topic_id", "partitions"})
_PARTITION = frozenset({"partition_index", "error_code", "high_watermark", "last_stable_offset", "log_start_offset",
                        "aborted_transactions", "preferred_read_replica", "records"})
_INT32 = struct.Struct(">i")
_INT16 = struct.Struct(">h")
_HEAD_V4 = struct.Struct(">ihqq")  # partition_index, error_code, high_watermark, last_stable_offset
_HEAD_V5 = struct.Struct(">ihqqq")  # ... log_start_offset
_ABORTED = struct.Struct(">qq")  # producer_id, first_offset
_TOP_V7 = struct.Struct(">ihi")  # throttle_time, error_code, session_id

FIRST_FLEXIBLE = 12
FIRST_TOPIC_ID = 13


def _count(n: int, flexible: bool) -> bytes:
    return uvarint_bytes(n + 1) if flexible else _INT32.pack(n)


def _null(flexible: bool) -> bytes:
    return b"\x00" if flexible else _INT32.pack(-1)


def encode_fetch_response(correlation_id: int, version: int, data: Mapping[str, Any]
                          ) -> list[bytes | bytearray | memoryview] | None:
    """The size-prefixed Fetch answer at `version` (4-18) as parts, or None when `data` has a
    field or shape this does not cover (the caller encodes it with kio)."""
    if not _TOP.issuperset(data):
        return None
    flexible, by_id = version >= FIRST_FLEXIBLE, version >= FIRST_TOPIC_ID
    v5, v11 = version >= 5, version >= 11
    buf = GatherBuffer()
    buf.write(_INT32.pack(0))  # the size, set at the end
    buf.write(_INT32.pack(correlation_id) + (b"\x00" if flexible else b""))
    throttle = int(data.get("throttle_time") or 0)
    if version >= 7:
        buf.write(_TOP_V7.pack(throttle, int(data.get("error_code") or 0), int(data.get("session_id") or 0)))
    else:
        buf.write(_INT32.pack(throttle))
    topics: Sequence[Mapping[str, Any]] = data.get("responses") or ()
    buf.write(_count(len(topics), flexible))
    head = _HEAD_V5 if v5 else _HEAD_V4
    for topic in topics:
        if not _TOPIC.issuperset(topic):
            return None
        if by_id:
            topic_id = topic.get("topic_id")
            if topic_id is None:
                return None
            buf.write(topic_id.bytes)
        else:
            name = topic.get("topic")
            if name is None:
                return None
            raw = name.encode()
            buf.write((uvarint_bytes(len(raw) + 1) if flexible else _INT16.pack(len(raw))) + raw)
        partitions: Sequence[Mapping[str, Any]] = topic.get("partitions") or ()
        buf.write(_count(len(partitions), flexible))
        for p in partitions:
            if not _PARTITION.issuperset(p):
                return None
            fixed = (int(p["partition_index"]), int(p["error_code"]), int(p["high_watermark"]),
                     int(p.get("last_stable_offset", -1)))
            buf.write(head.pack(*fixed, int(p.get("log_start_offset", -1))) if v5 else head.pack(*fixed))
            buf.write(_aborted(p.get("aborted_transactions"), flexible))
            if v11:
                buf.write(_INT32.pack(int(p.get("preferred_read_replica", -1))))
            records = p.get("records")
            if records is None:
                buf.write(_null(flexible))
            elif isinstance(records, bytes | bytearray | memoryview):
                buf.write(_count(len(records), flexible))
                buf.write(records)
            else:
                return None
            if flexible:
                buf.write(b"\x00")  # no tagged fields
        if flexible:
            buf.write(b"\x00")
    if flexible:
        buf.write(b"\x00")
    parts = buf.finish()
    first = parts[0]
    assert isinstance(first, bytearray)
    _INT32.pack_into(first, 0, buf.size - 4)
    return parts


def _aborted(aborted: Sequence[Any] | None, flexible: bool) -> bytes:
    if aborted is None:
        return _null(flexible)
    out = [_count(len(aborted), flexible)]
    for a in aborted:
        if isinstance(a, Mapping):
            producer_id, first_offset = a["producer_id"], a["first_offset"]
        else:
            producer_id, first_offset = a.producer_id, a.first_offset
        out.append(_ABORTED.pack(producer_id, first_offset) + (b"\x00" if flexible else b""))
    return b"".join(out)
