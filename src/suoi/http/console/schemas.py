"""Values in Confluent's schema-registry wire format, decoded for the message browser.

A serialized value is magic byte 0, a 4-byte schema id, then the payload. With
`suoi console --schema-registry URL`, the browser asks the registry for the schema
(`GET /schemas/ids/ID`, Confluent's REST API, which suoi's own registry serves too; schemas are
cached by id, they never change) and decodes: Avro with fastavro, JSON Schema payloads as the
JSON they are. Protobuf needs the schema compiled: shown as its schema id and the raw bytes.
Anything that does not decode stays as the plain text/base64 the browser shows without a registry.
"""

from __future__ import annotations

import base64
import io
import json
import struct
from typing import Any

__all__ = ["SchemaDecoder"]

_HEADER = struct.Struct(">bI")
MAX_CACHED = 1000


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
        """The decoded value ({"encoding": "avro"|"json-schema"|"protobuf", "data", "schema_id"}),
        or None when `data` is not in the wire format or its schema cannot be had."""
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
            return {"encoding": "protobuf", "schema_id": schema_id, "data": base64.b64encode(payload).decode()}
        except Exception:  # not this format after all, or a schema the registry lacks: show the raw bytes
            return None

    async def _schema(self, schema_id: int) -> tuple[str, Any]:
        if schema_id not in self._schemas:
            import aiohttp

            if self._session is None:
                self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
            async with self._session.get(f"{self.url}/schemas/ids/{schema_id}") as r:
                r.raise_for_status()
                body = await r.json(content_type=None)
            kind = str(body.get("schemaType") or "AVRO").upper()
            parsed: Any = None
            if kind == "AVRO":
                import fastavro

                parsed = fastavro.parse_schema(json.loads(body["schema"]))
            if len(self._schemas) >= MAX_CACHED:
                self._schemas.pop(next(iter(self._schemas)))
            self._schemas[schema_id] = (kind, parsed)
        return self._schemas[schema_id]
