"""Records of the internal `__consumer_offsets` topic: our own, documented format.

Every record has a key that compaction deduplicates on and a JSON value (null value =
tombstone). Keys are canonical JSON arrays, so the same logical key is always the same
bytes:

- committed offset: key `["offset", group, topic, partition]`,
  value `{"v": 1, "offset": int, "leader_epoch": int, "metadata": str|null,
  "commit_ts": ms, "expire_ts": ms|-1}`
- group metadata:   key `["group", group]`, value `{"v": 1, ...GroupSnapshot fields}`

Kafka's own binary schema is not used: these records are only read back by suoi, and
JSON keeps them inspectable with any console consumer.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

OFFSETS_TOPIC = "__consumer_offsets"


@dataclass(frozen=True, slots=True)
class OffsetAndMetadata:
    offset: int
    leader_epoch: int
    metadata: str | None
    commit_timestamp: int
    expire_timestamp: int = -1


def _key(*parts: object) -> bytes:
    return json.dumps(list(parts), separators=(",", ":"), ensure_ascii=False).encode()


def offset_key(group: str, topic: str, partition: int) -> bytes:
    return _key("offset", group, topic, partition)


def group_key(group: str) -> bytes:
    return _key("group", group)


def offset_value(o: OffsetAndMetadata) -> bytes:
    return json.dumps({"v": 1, "offset": o.offset, "leader_epoch": o.leader_epoch, "metadata": o.metadata,
                       "commit_ts": o.commit_timestamp, "expire_ts": o.expire_timestamp},
                      separators=(",", ":")).encode()


def group_value(snapshot: dict[str, Any]) -> bytes:
    return json.dumps({"v": 1, **snapshot}, separators=(",", ":"), default=_encode_bytes).encode()


def _encode_bytes(value: object) -> object:
    if isinstance(value, bytes | bytearray):
        return {"__b64__": base64.b64encode(value).decode()}
    raise TypeError(f"cannot encode {type(value).__name__}")


def _decode_bytes(obj: dict[str, Any]) -> object:
    if len(obj) == 1 and "__b64__" in obj:
        return base64.b64decode(obj["__b64__"])
    return obj


@dataclass(frozen=True, slots=True)
class ParsedRecord:
    kind: str  # "offset" | "group"
    group: str
    topic: str | None
    partition: int | None
    offset: OffsetAndMetadata | None  # for kind=offset; None = tombstone
    group_snapshot: dict[str, Any] | None  # for kind=group; None = tombstone


def parse(key: bytes | None, value: bytes | None) -> ParsedRecord | None:
    """Decode one record; None for anything that is not ours (logged by the caller)."""
    if key is None:
        return None
    try:
        parts = json.loads(key)
        if parts[0] == "offset":
            _, group, topic, partition = parts
            oam = None
            if value is not None:
                v = json.loads(value)
                oam = OffsetAndMetadata(int(v["offset"]), int(v["leader_epoch"]), v["metadata"],
                                        int(v["commit_ts"]), int(v.get("expire_ts", -1)))
            return ParsedRecord("offset", str(group), str(topic), int(partition), oam, None)
        if parts[0] == "group":
            snapshot = None
            if value is not None:
                snapshot = json.loads(value, object_hook=_decode_bytes)
                snapshot.pop("v", None)
            return ParsedRecord("group", str(parts[1]), None, None, None, snapshot)
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return None


def java_string_hash(s: str) -> int:
    """Java's String.hashCode (UTF-16 code units), so groups map to the same
    __consumer_offsets partition as in Apache Kafka."""
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def partition_for(group: str, partitions: int) -> int:
    """Kafka's Utils.abs(groupId.hashCode) % offsets.topic.num.partitions."""
    h = java_string_hash(group)
    return 0 if h == -(1 << 31) else abs(h) % partitions


# -- __transaction_state ---------------------------------------------------------------
# key `["txn", transactional_id]`, value `{"v": 1, ...TxnSnapshot fields}` (null = tombstone)


def txn_key(transactional_id: str) -> bytes:
    return _key("txn", transactional_id)


def txn_value(snapshot: dict[str, Any]) -> bytes:
    return json.dumps({"v": 1, **snapshot}, separators=(",", ":")).encode()


def parse_txn(key: bytes | None, value: bytes | None) -> tuple[str, dict[str, Any] | None] | None:
    """(transactional id, snapshot dict or None for a tombstone), or None if not ours."""
    if key is None:
        return None
    try:
        parts = json.loads(key)
        if parts[0] != "txn":
            return None
        snapshot = None
        if value is not None:
            snapshot = json.loads(value)
            snapshot.pop("v", None)
        return str(parts[1]), snapshot
    except (ValueError, KeyError, IndexError, TypeError):
        return None
