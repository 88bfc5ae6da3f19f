"""Values in Confluent's schema-registry wire format, decoded for the message browser.

A serialized value is magic byte 0, a 4-byte schema id, then the payload; a Protobuf payload
starts with the message indexes (a zigzag-varint count, then each index: the path to the message
type in the .proto file, [1, 0] = the first nested type of the second message; a lone 0 byte
means [0]). With `suoi console --schema-registry URL`, the browser asks the registry for the
schema (`GET /schemas/ids/ID`, and `GET /subjects/S/versions/V` for each schema it references:
Confluent's REST API, which suoi's own registry serves too; schemas are cached by id, they never
change) and decodes: Avro with fastavro, JSON Schema payloads as the JSON they are, Protobuf as a
dynamic message of the schema (built by the registry's own parser, `formats.protobuf.build`)
shown as JSON. Anything that does not decode stays as the plain text/base64 the browser shows
without a registry.
"""

from __future__ import annotations

import functools
import io
import json
import struct
from typing import Any

__all__ = ["SchemaDecoder", "message_indexes"]

_HEADER = struct.Struct(">bI")
MAX_CACHED = 1000
MAX_REFERENCE_DEPTH = 8
MAX_INDEXES = 32


def _zigzag_varint(data: bytes, pos: int) -> tuple[int, int]:
    """One zigzag varint (Kafka's `ByteUtils.readVarint`) at `pos`: (value, next position)."""
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 28:
            raise ValueError("bad varint in the message indexes")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (value >> 1) ^ -(value & 1), pos
        shift += 7


def message_indexes(payload: bytes) -> tuple[list[int], bytes]:
    """A Protobuf payload's message indexes and the message bytes after them."""
    count, pos = _zigzag_varint(payload, 0)
    if not 0 <= count <= MAX_INDEXES:
        raise ValueError(f"{count} message indexes")
    indexes = []
    for _ in range(count):
        index, pos = _zigzag_varint(payload, pos)
        indexes.append(index)
    return indexes or [0], payload[pos:]


def _protobuf(file: Any, payload: bytes) -> tuple[str, str]:
    """(full message name, the message as JSON) of a Protobuf payload written with `file`'s schema."""
    from google.protobuf import json_format, message_factory

    indexes, body = message_indexes(payload)
    descriptor = file.message_types_by_name[_top_level_names(file)[indexes[0]]]
    for i in indexes[1:]:
        descriptor = descriptor.nested_types[i]
    message = message_factory.GetMessageClass(descriptor).FromString(body)
    return descriptor.full_name, json_format.MessageToJson(message, preserving_proto_field_name=True, indent=None)


@functools.lru_cache(maxsize=64)
def _top_level_names(file: Any) -> list[str]:
    """A file's messages in declaration order (the order message indexes count in)."""
    from google.protobuf import descriptor_pb2

    declared = descriptor_pb2.FileDescriptorProto()
    file.CopyToProto(declared)
    return [m.name for m in declared.message_type]


class SchemaDecoder:
    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._schemas: dict[int, tuple[str, Any]] = {}
        self._session: Any = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def decode(self, data: bytes | None) -> dict[str, Any] | None:
        """The decoded value ({"encoding": "avro"|"json-schema"|"protobuf", "data", "schema_id",
        and "message" for Protobuf}), or None when `data` is not in the wire format or its schema
        cannot be had."""
        if data is None or len(data) < _HEADER.size or data[0] != 0:
            return None
        _, schema_id = _HEADER.unpack_from(data)
        try:
            kind, parsed = await self._schema(schema_id)
            payload = data[_HEADER.size:]
            if kind == "AVRO":
                import fastavro

                record = fastavro.schemaless_reader(io.BytesIO(payload), parsed, None)
                return {"encoding": "avro", "schema_id": schema_id, "data": json.dumps(record, default=str)}
            if kind == "JSON":
                return {"encoding": "json-schema", "schema_id": schema_id, "data": json.dumps(json.loads(payload))}
            if kind == "PROTOBUF":
                name, text = _protobuf(parsed, payload)
                return {"encoding": "protobuf", "schema_id": schema_id, "message": name, "data": text}
            return None
        except Exception:  # not this format after all, or a schema the registry lacks: show the raw bytes
            return None

    async def _get(self, path: str) -> dict[str, Any]:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        async with self._session.get(f"{self.url}{path}") as r:
            r.raise_for_status()
            body = await r.json(content_type=None)
        if not isinstance(body, dict):
            raise ValueError(f"{path}: not a schema")
        return body

    async def _references(self, body: dict[str, Any], depth: int = 0) -> list[tuple[str, str]]:
        """The (name, text) of every schema `body` references, a reference's own before it."""
        from urllib.parse import quote

        if depth > MAX_REFERENCE_DEPTH:
            raise ValueError("references nest too deep")
        out: list[tuple[str, str]] = []
        for ref in body.get("references") or []:
            found = await self._get(f"/subjects/{quote(str(ref['subject']), safe='')}/versions/{int(ref['version'])}")
            out += [r for r in await self._references(found, depth + 1) if r not in out]
            out.append((str(ref["name"]), str(found["schema"])))
        return out

    async def _schema(self, schema_id: int) -> tuple[str, Any]:
        if schema_id not in self._schemas:
            body = await self._get(f"/schemas/ids/{schema_id}")
            kind = str(body.get("schemaType") or "AVRO").upper()
            parsed: Any = None
            if kind == "AVRO":
                import fastavro

                parsed = fastavro.parse_schema(json.loads(body["schema"]))
            elif kind == "PROTOBUF":
                from suoi.http.registry.formats.protobuf import build

                parsed = build(str(body["schema"]), await self._references(body))
            if len(self._schemas) >= MAX_CACHED:
                self._schemas.pop(next(iter(self._schemas)))
            self._schemas[schema_id] = (kind, parsed)
        return self._schemas[schema_id]
