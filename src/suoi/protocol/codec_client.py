"""The client side (suoi's own client, inter-broker requests): requests out, responses in."""

from __future__ import annotations

import dataclasses
from functools import cache, lru_cache
from typing import Any

from kio.serial import entity_reader, entity_writer

from suoi.protocol.bounds import check_body, records_spanner
from suoi.protocol.codec_requests import DecodeError
from suoi.protocol.codec_responses import _INT32, GatherBuffer
from suoi.protocol.codec_views import EMPTY_RECORDS, record_views, without_records
from suoi.protocol.compiled_writer import compiled_writer


@cache
def _request_writers(cls: Any) -> Any:
    return compiled_writer(cls)


@lru_cache(maxsize=1024)  # client ids come from peers too (forwarded requests): bounded
def _request_header(cls: Any, client_id: str | None) -> bytes:
    """A 0 size and the request header kio writes for `cls` and `client_id` with correlation id 0: the same
    bytes for every request of that class but for the correlation id, which `encode_request`
    puts in place (the fixed int16 api key, int16 version, int32 correlation id that start
    every request header, as `read_prefix` reads them)."""
    header_cls = cls.__header_schema__
    names = frozenset(f.name for f in dataclasses.fields(header_cls))
    fields: dict[str, Any] = {"request_api_key": cls.__api_key__, "request_api_version": cls.__version__,
                              "correlation_id": 0}
    if "client_id" in names:  # kio's RequestHeader: client_id is special (a nullable legacy string)
        fields["client_id"] = client_id
    buf = GatherBuffer()
    buf.write(_INT32.pack(0))  # the size, put in place by `encode_request`
    write_header: Any = entity_writer(header_cls)
    write_header(buf, header_cls(**fields))
    return bytes(bytearray().join(buf.finish()))  # type: ignore[arg-type]  # (a header holds no file regions)


def encode_request(correlation_id: int, client_id: str | None, request: Any) -> bytes:
    """Serialise a kio request entity (of one specific version) with the request header its
    schema names (v1, or v2 for flexible versions), size-prefixed, ready to write."""
    cls = type(request)
    buf = _RequestBuffer(_request_header(cls, client_id))  # type: ignore[arg-type]  # (size placeholder + header)
    _request_writers(cls)(buf, request)  # type: ignore[arg-type]
    _INT32.pack_into(buf, 0, len(buf) - 4)
    _INT32.pack_into(buf, 8, correlation_id)  # after the size, api key and version
    return bytes(buf)


class _RequestBuffer(bytearray):
    """The write target of a request's writer: a bytearray whose `write` is `extend` (C), not
    `GatherBuffer.write` (Python, a call and a `len` per field run). A request holds no file
    regions and no record set worth keeping apart (this runs once per inter-broker request,
    a follower's Fetch above all)."""

    write = bytearray.extend


def response_correlation_id(frame: bytes | memoryview) -> int:
    """The correlation id every response header starts with (any version)."""
    if len(frame) < 4:
        raise DecodeError(f"response of {len(frame)} bytes is shorter than a response header")
    return int(_INT32.unpack_from(frame, 0)[0])


@cache
def _response_readers(cls: Any) -> tuple[Any, Any]:
    return entity_reader(cls.__header_schema__), entity_reader(cls)


def decode_response(frame: bytes | memoryview, cls: Any) -> Any:
    """Parse a response frame (without its size prefix) as kio class ``cls``."""
    read_header, read_body = _response_readers(cls)
    try:
        _header, used = read_header(frame, 0)
        check_body(frame, cls, used)  # a peer's lengths are bounded as a client's are
        body, size = read_body(frame, used)
    except Exception as exc:  # kio raises several types for short/garbled input
        raise DecodeError(f"cannot decode {cls.__name__} v{cls.__version__}: {exc!r}") from exc
    if used + size != len(frame):
        raise DecodeError(f"{cls.__name__} v{cls.__version__}: {len(frame) - used - size} trailing bytes")
    return body


def decode_response_views(frame: bytes | memoryview, cls: Any) -> tuple[Any, list[memoryview | None] | None]:
    """`decode_response`, with each records field left out of kio's decode and handed back as a
    view of `frame` instead of a copy: (response, views in wire order, None for a null field),
    the response's records fields then empty. A follower's Fetch answer carries megabytes of
    records that kio would copy into new `bytes` only for them to be checked and written to the
    segment (0.1 ms of a follower's CPU per MB). The walk that bounds every length
    (`bounds.records_spanner`, from kio's schema, as `check_body`) notes where each records field
    is; kio decodes the answer with those fields emptied (a few hundred bytes). A class
    without records fields (or with one in a tagged field) is decoded as usual: (response, None)."""
    spanner = records_spanner(cls)
    if spanner is None:
        return decode_response(frame, cls), None
    read_header, read_body = _response_readers(cls)
    spans: list[tuple[int, int, int]] = []
    try:
        _header, used = read_header(frame, 0)
        spanner(frame, used, len(frame), [], spans)  # type: ignore[arg-type]  # a memoryview reads as bytes
        stripped = without_records(frame, spans, EMPTY_RECORDS[bool(getattr(cls, "__flexible__", False))])
        body, size = read_body(stripped, used)
    except Exception as exc:  # kio raises several types for short/garbled input
        raise DecodeError(f"cannot decode {cls.__name__} v{cls.__version__}: {exc!r}") from exc
    if used + size != len(stripped):
        raise DecodeError(f"{cls.__name__} v{cls.__version__}: {len(stripped) - used - size} trailing bytes")
    return body, record_views(frame, spans)
