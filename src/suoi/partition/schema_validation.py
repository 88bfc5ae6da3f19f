"""Broker-side schema id validation: what Confluent Server (`confluent.value.schema.validation`) and
Redpanda (`redpanda.value.schema.id.validation`) add to Kafka.

A topic with key and/or value validation on accepts a batch only if every record's key/value is
in Confluent's wire format -- magic byte 0, then a 4-byte big-endian schema id -- and the id is one
of the live (not soft-deleted) versions of the topic's subject (TopicNameStrategy: `<topic>-key`,
`<topic>-value`). A null key/value passes (tombstones of compacted topics carry no schema). Any
other record refuses the whole batch with INVALID_RECORD and a message naming the record.

Only these topics decode records (decompress, then `key_value_prefixes`: the first 5 bytes of each
key/value, no record objects; ~2.3 µs a record); every other topic's produce path reads one
boolean (`LogConfig.schema_validation`). The ids come from the node's own schema registry
(`schema.registry.listeners`): its store, replayed from `_schemas`, read in-process (`SchemaIds`),
so the produce path never waits on HTTP. A node without a registry refuses such topics' batches
(INVALID_RECORD, saying so); one whose registry has not finished replaying answers
REQUEST_TIMED_OUT, which producers retry. A schema registered on another node's registry is seen
here once this node's replay has read it (milliseconds, usually).
"""

from __future__ import annotations

from typing import Protocol

from suoi.model import ErrorCode
from suoi.protocol.records import RecordValidationError, iter_batches, key_value_prefixes

__all__ = ["SchemaIds", "check_schema_ids"]

MAGIC_BYTE = 0
_PREFIX = 5  # magic byte + 4-byte schema id


class SchemaIds(Protocol):
    """The registered ids, as the node's registry knows them (`suoi.http.registry.node.NodeRegistry`)."""

    def registered_ids(self, subject: str) -> frozenset[int] | None:
        """Ids of the live versions of `subject`; None while the registry is not ready."""


def check_schema_ids(records: bytes | memoryview, topic: str, keys: bool, values: bool,
                     registry: SchemaIds | None) -> tuple[ErrorCode, str] | None:
    """None if every record passes, else (error, message) for the whole batch (module doc)."""
    if registry is None:
        return ErrorCode.invalid_record, (f"topic {topic} has schema id validation on but this node runs no "
                                          "schema registry (schema.registry.listeners)")
    checks: list[tuple[str, str, frozenset[int]]] = []
    for wanted, part in ((keys, "key"), (values, "value")):
        if wanted:
            subject = f"{topic}-{part}"
            ids = registry.registered_ids(subject)
            if ids is None:
                return ErrorCode.request_timed_out, "the schema registry of this node is still reading _schemas"
            checks.append((part, subject, ids))
    view = memoryview(records)
    try:
        for pos, header in iter_batches(view):
            if header.is_control:
                continue
            for index, (key, value) in enumerate(key_value_prefixes(view, pos, header, _PREFIX)):
                for part, subject, ids in checks:
                    problem = _problem(key if part == "key" else value, ids, subject)
                    if problem is not None:
                        return ErrorCode.invalid_record, f"schema id validation: record {index}: {part} {problem}"
    except (RecordValidationError, IndexError, ValueError) as exc:
        return ErrorCode.invalid_record, f"records cannot be decoded for schema id validation: {exc}"
    return None


def _problem(data: bytes | None, ids: frozenset[int], subject: str) -> str | None:
    if data is None:
        return None
    if len(data) < _PREFIX or data[0] != MAGIC_BYTE:
        return "does not start with magic byte 0 and a 4-byte schema id"
    schema_id = int.from_bytes(data[1:_PREFIX], "big")
    if schema_id not in ids:
        return f"has schema id {schema_id}, not registered under subject {subject}"
    return None
