"""The JSON encoding of metadata records: one Raft entry of ``__cluster_metadata`` is one batch.

One Raft entry carries one *batch*: ``{"v": 1, "records": [record, ...]}`` as compact UTF-8
JSON. A batch is the unit of atomicity: the controller writes every record of one decision
(a topic with its partitions and configs, a fenced broker with the leader elections it causes)
as one entry, so a replaying broker never sees half of it. Each record is a JSON object
``{"type": <name>, "v": <version>, ...fields}``; unknown fields are ignored (forward
compatibility), an unknown type or a newer version than this code knows is an error, because
skipping a record would silently diverge the image.

Kept apart from the record types (``record_types.py``) because it is the one place that knows
the wire form: per-field decoders that check JSON types strictly (a bool is not an int), the
version-2 rule for reassignment fields, and a per-type field plan worked out once, since
replaying a 10,000-partition topic decodes 10,000 records.
"""

from __future__ import annotations

import base64
import functools
import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any

from suoi.controller.record_types import (
    RECORD_TYPES,
    Listener,
    MetadataRecordError,
    Partition,
    PartitionChange,
    Record,
)

__all__ = [
    "BATCH_VERSION",
    "decode_batch",
    "decode_record",
    "encode_batch",
    "encode_record",
    "record_from_dict",
    "record_to_dict",
]

BATCH_VERSION = 1

# ---------------------------------------------------------------------------- field codecs


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"expected an integer, got {v!r}")
    return v


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError(f"expected a string, got {v!r}")
    return v


def _opt_str(v: Any) -> str | None:
    return None if v is None else _str(v)


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise TypeError(f"expected a boolean, got {v!r}")
    return v


def _ints(v: Any) -> tuple[int, ...]:
    if not isinstance(v, list):
        raise TypeError(f"expected a list of integers, got {v!r}")
    return tuple(_int(x) for x in v)


def _opt_ints(v: Any) -> tuple[int, ...] | None:
    return None if v is None else _ints(v)


def _opt_int(v: Any) -> int | None:
    return None if v is None else _int(v)


def _uuid(v: Any) -> uuid.UUID:
    return _parse_uuid(_str(v))


@functools.lru_cache(maxsize=256)
def _parse_uuid(text: str) -> uuid.UUID:
    """The partitions of a topic repeat its id: parse each id once (10,000-partition topics)."""
    return uuid.UUID(text)


@functools.lru_cache(maxsize=256)
def _uuid_text(value: uuid.UUID) -> str:
    return str(value)


def _bytes(v: Any) -> bytes:
    if not isinstance(v, str):
        raise TypeError(f"expected base64 text, got {v!r}")
    return base64.b64decode(v, validate=True)


def _b64(v: bytes) -> str:
    return base64.b64encode(v).decode()


def _listeners(v: Any) -> tuple[Listener, ...]:
    if not isinstance(v, list):
        raise TypeError(f"expected a list of listeners, got {v!r}")
    out = []
    for item in v:
        if not isinstance(item, list) or len(item) not in (3, 4):
            raise TypeError(f"a listener is [name, host, port(, security protocol)], got {item!r}")
        out.append(Listener(_str(item[0]), _str(item[1]), _int(item[2]), _int(item[3]) if len(item) == 4 else 0))
    return tuple(out)


def _entity(v: Any) -> tuple[tuple[str, str | None], ...]:
    if not isinstance(v, list) or not v:
        raise TypeError(f"expected a non-empty list of [type, name] pairs, got {v!r}")
    out = []
    for item in v:
        if not isinstance(item, list) or len(item) != 2:
            raise TypeError(f"an entity part is [type, name], got {item!r}")
        out.append((_str(item[0]), _opt_str(item[1])))
    return tuple(out)


def _opt_float(v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise TypeError(f"expected a number, got {v!r}")
    return float(v)


# (decoder, encoder); the encoder turns the dataclass value into JSON-able data
_FIELD_CODECS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "broker_id": (_int, int),
    "broker_epoch": (_int, int),
    "incarnation_id": (_uuid, _uuid_text),
    "listeners": (_listeners, lambda ls: [[x.name, x.host, x.port, *([x.security_protocol] if x.security_protocol else [])]
                                          for x in ls]),
    "rack": (_opt_str, lambda v: v),
    "fenced": (_bool, bool),
    "in_controlled_shutdown": (_bool, bool),
    "name": (_str, str),
    "topic_id": (_uuid, _uuid_text),
    "partition": (_int, int),
    "replicas": (_ints, list),
    "isr": (_ints, list),
    "leader": (_int, int),
    "leader_epoch": (_int, int),
    "partition_epoch": (_int, int),
    "resource_type": (_int, int),
    "resource_name": (_str, str),
    "value": (_opt_str, lambda v: v),
    "next_producer_id": (_int, int),
    "level": (_int, int),
    "adding_replicas": (_ints, list),
    "removing_replicas": (_ints, list),
    "mechanism": (_int, int),
    "iterations": (_int, int),
    "salt": (_bytes, _b64),
    "stored_key": (_bytes, _b64),
    "server_key": (_bytes, _b64),
    "id": (_uuid, _uuid_text),
    "pattern_type": (_int, int),
    "principal": (_str, str),
    "host": (_str, str),
    "operation": (_int, int),
    "permission_type": (_int, int),
    "entity": (_entity, lambda e: [[t, n] for t, n in e]),
    "key": (_str, str),
    "quota_value": (_opt_float, lambda v: v),
}
# PartitionChange's optional fields
_OPTIONAL_CODECS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "isr": (_opt_ints, list),
    "leader": (_opt_int, int),
    "replicas": (_opt_ints, list),
    "adding_replicas": (_opt_ints, list),
    "removing_replicas": (_opt_ints, list),
}
# Version-2 fields of Partition / PartitionChange. Written only when they say something (and
# then the record is version 2), so a node that predates reassignment refuses such a record
# instead of silently dropping the state, and reads every other partition record unchanged.
_REASSIGNMENT_FIELDS = ("adding_replicas", "removing_replicas")


def _codec(cls: type, name: str) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    if cls is PartitionChange and name in _OPTIONAL_CODECS:
        return _OPTIONAL_CODECS[name]
    return _FIELD_CODECS[name]


@dataclass(frozen=True, slots=True)
class _FieldPlan:
    name: str
    decode: Callable[[Any], Any]
    encode: Callable[[Any], Any]
    required: bool  # no default, and not one of PartitionChange's optional fields
    omit_none: bool  # left out when None (PartitionChange: absent = unchanged)
    omit_empty: bool  # left out when empty (Partition's reassignment fields: version 1 without them)
    version_2: bool  # present only in version-2 records


@functools.cache
def _plan(cls: type) -> tuple[_FieldPlan, ...]:
    """Each record type's fields with their codecs, worked out once (not per record)."""
    out = []
    for f in fields(cls):
        decode, encode = _codec(cls, f.name)
        optional = (cls is PartitionChange and f.name in _OPTIONAL_CODECS) or f.default is not MISSING
        out.append(_FieldPlan(f.name, decode, encode, not optional, omit_none=cls is PartitionChange,
                              omit_empty=cls is Partition and f.name in _REASSIGNMENT_FIELDS,
                              version_2=f.name in _REASSIGNMENT_FIELDS))
    return tuple(out)


def record_to_dict(record: Record) -> dict[str, Any]:
    out: dict[str, Any] = {"type": record.TYPE, "v": 1}
    cls: type = type(record)
    for f in _plan(cls):
        value = getattr(record, f.name)
        if (f.omit_none and value is None) or (f.omit_empty and not value):
            continue
        if f.version_2:
            out["v"] = 2
        out[f.name] = None if value is None else f.encode(value)
    return out


def record_from_dict(data: Mapping[str, Any]) -> Record:
    if type(data) is not dict and not isinstance(data, Mapping):  # JSON's dicts skip the ABC check
        raise MetadataRecordError(f"a record must be a JSON object, got {data!r}")
    kind = data.get("type")
    cls = RECORD_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise MetadataRecordError(f"unknown metadata record type {kind!r}")
    version = data.get("v", 1)
    if not isinstance(version, int) or version < 1 or version > cls.VERSION:  # type: ignore[attr-defined]
        raise MetadataRecordError(f"{kind} record version {version!r} is not supported")
    kwargs: dict[str, Any] = {}
    for f in _plan(cls):
        if f.name not in data:
            if not f.required:  # optional in the payload
                continue
            raise MetadataRecordError(f"{kind} record lacks field {f.name!r}")
        try:
            kwargs[f.name] = f.decode(data[f.name])
        except (TypeError, ValueError) as e:
            raise MetadataRecordError(f"{kind}.{f.name}: {e}") from None
    return cls(**kwargs)  # type: ignore[no-any-return]


def encode_record(record: Record) -> bytes:
    return json.dumps(record_to_dict(record), separators=(",", ":")).encode()


def decode_record(payload: bytes) -> Record:
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MetadataRecordError(f"metadata record is not JSON: {e}") from None
    return record_from_dict(data)


def encode_batch(records: Iterable[Record]) -> bytes:
    """One Raft entry payload holding ``records`` (applied atomically, in order)."""
    body = {"v": BATCH_VERSION, "records": [record_to_dict(r) for r in records]}
    return json.dumps(body, separators=(",", ":")).encode()


def decode_batch(payload: bytes) -> list[Record]:
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MetadataRecordError(f"metadata batch is not JSON: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("records"), list):
        raise MetadataRecordError("a metadata batch is an object with a 'records' list")
    version = data.get("v")
    if not isinstance(version, int) or not 1 <= version <= BATCH_VERSION:
        raise MetadataRecordError(f"metadata batch version {version!r} is not supported")
    return [record_from_dict(r) for r in data["records"]]

