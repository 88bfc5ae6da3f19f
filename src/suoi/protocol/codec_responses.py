"""Responses out (the broker's side): header and body written by the compiled writers into a
`GatherBuffer`, size-prefixed, as the parts `transport.writelines` gets (record data and file
regions kept by reference)."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from functools import cache
from typing import Any

from suoi.protocol.compiled_writer import compiled_writer
from suoi.protocol.file_records import FileRecords, FileRegion

_INT32 = struct.Struct(">i")


class GatherBuffer(list[Any]):
    """A write target for kio's writers and the compiled ones that keeps every piece by
    reference: `write` is `list.append` itself (no Python call per write).

    `finish` turns the pieces into the parts `transport.writelines` gets: runs of small pieces
    joined into one bytes object, large ones (record data read from segments) kept by reference,
    so a fetch response is never copied into one big buffer before reaching the socket. A
    `FileRecords` (records to send from a segment file) is taken apart: each `FileRegion` a part
    of its own, whatever its size, which ``net`` sends with ``sendfile``. The one place that does
    this for both encoders (`framed` and `compiled_dict_writer.encode_response_data`).
    """

    __slots__ = ()
    LARGE = 32 * 1024
    write = list.append

    def finish(self) -> list[bytes | bytearray | memoryview | FileRegion]:
        parts: list[bytes | bytearray | memoryview | FileRegion] = []
        small: list[Any] = []
        for piece in _flattened(self):
            if piece.__class__ is not FileRegion and len(piece) < _LARGE:
                small.append(piece)
                continue
            if small:
                parts.append(b"".join(small))
                small = []
            parts.append(piece)
        if small:
            parts.append(b"".join(small))
        return parts


_LARGE = GatherBuffer.LARGE


def _flattened(pieces: list[Any]) -> Iterator[Any]:
    for piece in pieces:
        if piece.__class__ is FileRecords:
            yield from piece.chunks
        else:
            yield piece


@cache
def _response_writers(cls: Any) -> tuple[Any, Any]:
    # compiled from kio's schema metadata (protocol.compiled_writer): same bytes, ~less CPU
    return compiled_writer(cls.__header_schema__), compiled_writer(cls)


def encode_response(correlation_id: int, response: Any) -> list[bytes | bytearray | memoryview | FileRegion]:
    """Serialise header + body as size-prefixed parts ready for `transport.writelines`."""
    header_cls = type(response).__header_schema__
    write_header, write_body = _response_writers(type(response))  # type: ignore[arg-type]
    return framed(write_header, header_cls(correlation_id=correlation_id), write_body, response)


def framed(write_header: Any, header: Any, write_body: Any, body: Any
           ) -> list[bytes | bytearray | memoryview | FileRegion]:
    """A header and a body, each written by its writer, as size-prefixed parts."""
    buf = GatherBuffer([b""])  # the size, set below
    write_header(buf, header)
    write_body(buf, body)
    buf[0] = _INT32.pack(sum(map(len, buf)))
    return buf.finish()


def encode_raw(correlation_id: int, body: bytes) -> bytes:
    """A response with a v0 header and a hand-made body (for requests with no schema)."""
    return _INT32.pack(4 + len(body)) + _INT32.pack(correlation_id) + body
