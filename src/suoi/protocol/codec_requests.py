"""Requests in (the broker's side): the fixed header prefix, and a decoder per api key and version
that bounds every length before kio decodes (`bounds`), a large Produce's records handed back as
views of the frame (`codec_views`)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from functools import cache
from typing import Any, NamedTuple

from kio.index import load_request_schema
from kio.serial import entity_reader

from suoi.protocol.bounds import LengthOutOfBounds, Spanner, records_spanner, request_skippers
from suoi.protocol.codec_views import EMPTY_RECORDS, record_views, views_setter, without_records

_HEADER_PREFIX = struct.Struct(">hhi")

API_VERSIONS_KEY = 18


class DecodeError(Exception):
    """A frame whose header or body does not parse: the peer broke the protocol."""


class UnsupportedApi(Exception):
    """The api key or version has no schema; the caller answers UNSUPPORTED_VERSION."""

    def __init__(self, api_key: int, api_version: int, correlation_id: int) -> None:
        super().__init__(f"unsupported api_key={api_key} api_version={api_version}")
        self.api_key = api_key
        self.api_version = api_version
        self.correlation_id = correlation_id


class RequestPrefix(NamedTuple):
    """The fixed first 8 bytes of every request header, readable for any api/version."""

    api_key: int
    api_version: int
    correlation_id: int


class Request(NamedTuple):
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    body: Any
    #: Non-nullable fields the client sent as null (kio decodes them as None): the request is
    #: well-formed but invalid, and is answered INVALID_REQUEST instead of reaching a handler.
    null_fields: tuple[str, ...] = ()


def read_prefix(frame: bytes | memoryview) -> RequestPrefix:
    if len(frame) < _HEADER_PREFIX.size:
        raise DecodeError(f"request of {len(frame)} bytes is shorter than a request header")
    return RequestPrefix(*_HEADER_PREFIX.unpack_from(frame, 0))


@cache
def _request_readers(api_key: int, api_version: int) -> tuple[Any, Any, Any]:
    schema = load_request_schema(api_key, api_version)
    return entity_reader(schema.__header_schema__), entity_reader(schema), request_skippers(schema)


def decode_request(frame: bytes, prefix: RequestPrefix) -> Request:
    """Parse header and body of a request whose api key/version we have a schema for.

    Raises UnsupportedApi when kio knows no such schema, DecodeError when bytes are bad.
    """
    try:
        decode = request_decoder(prefix.api_key, prefix.api_version)
    except Exception:
        raise UnsupportedApi(*prefix) from None
    return decode(frame, prefix.correlation_id)


_new_tuple = tuple.__new__


@cache
def request_decoder(api_key: int, api_version: int) -> Callable[[bytes | memoryview, int], Request]:
    """`decode(frame, correlation_id) -> Request` for one api key and version, its readers and
    bounds walk found once (`dispatch` keeps it per api key and version: one call a request).
    Raises (here) when kio has no schema for them; `decode` raises DecodeError for bad bytes."""
    read_header, read_body, (skip_header, skip_body) = _request_readers(api_key, api_version)

    def decode(frame: bytes | memoryview, correlation_id: int) -> Request:
        try:
            # kio would reserve memory for whatever length the peer claims (and abort on 2^34):
            # every length is checked against the frame first (`bounds.request_checker`'s walk,
            # its two steps called here directly; trailing bytes are ignored, as by kio).
            end = len(frame)
            nulls: list[str] = []
            skip_body(frame, skip_header(frame, 0, end, nulls), end, nulls)
        except LengthOutOfBounds as exc:
            raise DecodeError(f"api_key={api_key} v{api_version}: {exc}") from None
        try:
            header, used = read_header(frame, 0)
            body, _size = read_body(frame, used)
        except Exception as exc:  # kio raises several types for short/garbled input
            raise DecodeError(f"cannot decode api_key={api_key} v{api_version}: {exc!r}") from exc
        # tuple.__new__: a NamedTuple's own __new__ is a Python-level function (a call per request)
        return _new_tuple(Request, (api_key, api_version, correlation_id, header.client_id, body,
                                    tuple(nulls) if nulls else ()))

    schema = load_request_schema(api_key, api_version)
    spanner = records_spanner(schema)
    return decode if spanner is None else _request_decoder_views(api_key, api_version, schema, spanner, decode)


#: the frame size from which `request_decoder` hands a Produce's records back as views of the
#: frame rather than kio's copies: the views' Python costs ~4 µs more per request than kio's
#: decode of a hot 60 KB frame, and saves ~28 µs of copies on a 388 KB one just received
#: (`bench_produce_receive.py`). Also the size above which `net` receives a frame into a
#: buffer of its own (`framing.BufferedFrameReader`'s scratch): smaller frames come as `bytes`.
VIEWS_FROM = 64 * 1024


def _request_decoder_views(api_key: int, api_version: int, schema: Any, spanner: Spanner,
                           plain: Callable[[bytes | memoryview, int], Request]) -> Callable[[bytes | memoryview, int], Request]:
    """`request_decoder` for a request with records fields (Produce): each records field of the
    decoded body is a read-only view of the frame, not kio's copy of it. A Produce carries
    hundreds of KB of batches that kio would copy into new `bytes` only for them to be checked
    and written (one of the three user-space copies of every produced byte). The bounds walk is
    the one `request_checker` runs, noting where each records field is (`bounds.records_spanner`);
    kio decodes the frame with those fields emptied, and the views go back in wire order. A
    frame under `VIEWS_FROM` bytes is decoded by `plain` (kio's copies): for a one-record Produce
    the copy is cheaper than the views' Python."""
    read_header, read_body, (skip_header, _skip_body) = _request_readers(api_key, api_version)
    put_views = views_setter(schema)
    empty = EMPTY_RECORDS[bool(getattr(schema, "__flexible__", False))]

    def decode(frame: bytes | memoryview, correlation_id: int) -> Request:
        end = len(frame)
        if end < VIEWS_FROM:
            return plain(frame, correlation_id)
        spans: list[tuple[int, int, int]] = []
        try:
            nulls: list[str] = []
            spanner(frame, skip_header(frame, 0, end, nulls), end, nulls, spans)  # type: ignore[arg-type]  # a memoryview reads as bytes
        except LengthOutOfBounds as exc:
            raise DecodeError(f"api_key={api_key} v{api_version}: {exc}") from None
        try:
            header, used = read_header(frame, 0)
            body, _size = read_body(without_records(frame, spans, empty), used)
        except Exception as exc:  # kio raises several types for short/garbled input
            raise DecodeError(f"cannot decode api_key={api_key} v{api_version}: {exc!r}") from exc
        put_views(body, iter(record_views(frame, spans)))
        return _new_tuple(Request, (api_key, api_version, correlation_id, header.client_id, body,
                                    tuple(nulls) if nulls else ()))

    return decode

