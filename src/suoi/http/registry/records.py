"""The records of the ``_schemas`` topic, in Confluent Schema Registry's layout.

Keys and values are JSON. Keys are written with Confluent's field order and no spaces, so that a
key we write and the same key written by Confluent's registry or Karapace are the same bytes and
compaction keeps only the newest of them:

  SCHEMA  {"keytype":"SCHEMA","subject":"s","version":1,"magic":1}
          -> {"subject":"s","version":1,"id":1,"schema":"...","deleted":false[,"schemaType":"JSON"]
              [,"references":[{"name":..,"subject":..,"version":..}]]}   (null: hard-deleted)
  CONFIG  {"keytype":"CONFIG","subject":null|"s","magic":0} -> {"compatibilityLevel":"BACKWARD"} | null
  MODE    {"keytype":"MODE","subject":null|"s","magic":0}   -> {"mode":"READONLY"} | null
  DELETE_SUBJECT / CLEAR_SUBJECT {"keytype":..,"subject":"s","magic":0} -> {"subject":"s","version":N}
  NOOP    {"keytype":"NOOP","magic":0}  (written by a new primary and read back: "I have read everything")

Pure functions: no I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["Record", "config_key", "decode", "mode_key", "noop_key", "schema_key", "schema_value"]


@dataclass(frozen=True, slots=True)
class Record:
    """One ``_schemas`` record, decoded. ``value`` None is a tombstone."""

    keytype: str
    key: dict[str, Any]
    value: dict[str, Any] | None


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def schema_key(subject: str, version: int) -> bytes:
    return _dumps({"keytype": "SCHEMA", "subject": subject, "version": version, "magic": 1})


def config_key(subject: str | None) -> bytes:
    return _dumps({"keytype": "CONFIG", "subject": subject, "magic": 0})


def mode_key(subject: str | None) -> bytes:
    return _dumps({"keytype": "MODE", "subject": subject, "magic": 0})


def noop_key() -> bytes:
    return _dumps({"keytype": "NOOP", "magic": 0})


def schema_value(*, subject: str, version: int, schema_id: int, schema: str, schema_type: str,
                 references: list[dict[str, Any]], deleted: bool) -> bytes:
    value: dict[str, Any] = {"subject": subject, "version": version, "id": schema_id, "schema": schema,
                             "deleted": deleted}
    if schema_type != "AVRO":
        value["schemaType"] = schema_type
    if references:
        value["references"] = references
    return _dumps(value)


def encode_value(value: dict[str, Any] | None) -> bytes | None:
    return None if value is None else _dumps(value)


def decode(key: bytes | None, value: bytes | None) -> Record | None:
    """A record of the topic, or None for one we do not understand (logged by the caller, skipped:
    a newer registry may write key types we do not know, as Confluent's skips them)."""
    if not key:
        return None
    try:
        k = json.loads(key)
        v = None if value is None else json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(k, dict) or not isinstance(k.get("keytype"), str):
        return None
    if v is not None and not isinstance(v, dict):
        return None
    return Record(k["keytype"], k, v)
