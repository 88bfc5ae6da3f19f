"""Request/response (de)serialisation through kio, plus version-agnostic building.

kio generates one frozen dataclass per (API, version). Handlers stay version-agnostic by
describing a response as plain dicts/lists; `build()` turns that into the class of the
version the client asked for, dropping fields that version lacks and converting plain
ints to the few richer types kio uses (ErrorCode, timedelta, datetime). This is the only
place that knows those details.
"""

from __future__ import annotations

import dataclasses
import datetime
import struct
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import MISSING
from functools import cache, lru_cache
from typing import Any, NamedTuple, TypeAlias

from kio.index import load_request_schema, load_response_schema
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader, entity_writer

from suoi.protocol.bounds import LengthOutOfBounds, Spanner, check_body, records_spanner, request_skippers
from suoi.protocol.compiled_writer import compiled_writer
from suoi.protocol.file_records import FileRecords, FileRegion

_HEADER_PREFIX = struct.Struct(">hhi")
_INT32 = struct.Struct(">i")
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)

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
#: an empty records field, by flexibility (compact: length + 1 as a varint; classic: an int32)
_EMPTY_RECORDS = {True: b"\x01", False: b"\x00\x00\x00\x00"}


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
    empty = _EMPTY_RECORDS[bool(getattr(schema, "__flexible__", False))]

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
            body, _size = read_body(_without_records(frame, spans, empty), used)
        except Exception as exc:  # kio raises several types for short/garbled input
            raise DecodeError(f"cannot decode api_key={api_key} v{api_version}: {exc!r}") from exc
        put_views(body, iter(_views(frame, spans)))
        return _new_tuple(Request, (api_key, api_version, correlation_id, header.client_id, body,
                                    tuple(nulls) if nulls else ()))

    return decode


def _without_records(frame: bytes | memoryview, spans: list[tuple[int, int, int]], empty: bytes) -> bytes:
    """`frame` with each records field (`spans`: length prefix at, data at, length) made empty:
    what kio decodes, a few hundred bytes however large the records (a bytearray grown in place:
    then one copy, kio reading read-only buffers only: faster than a join of slices)."""
    out = bytearray()
    at = 0
    for prefix, start, size in spans:
        out += frame[at:prefix]
        out += empty
        at = start + size if size > 0 else start
    out += frame[at:]
    return bytes(out)


def _views(frame: bytes | memoryview, spans: list[tuple[int, int, int]]) -> list[memoryview | None]:
    """A read-only view of `frame` per records field in `spans` (None for a null one)."""
    view = memoryview(frame).toreadonly()
    return [view[start:start + size] if size >= 0 else None for _, start, size in spans]


_ViewsSetter: TypeAlias = Callable[[Any, Iterator[Any]], None]


@cache
def views_setter(cls: type) -> _ViewsSetter:
    """`put(entity, views)`: set each records field of a decoded kio `cls` entity (nested ones
    included) to the next of `views`, in wire order (the order `bounds.records_spanner` notes
    them: the regular fields' declaration order; records in tagged fields have no spanner).
    kio's entities are frozen dataclasses; the decoded request is the decoder's own."""
    steps: list[tuple[str, str, _ViewsSetter | None]] = []
    for f in dataclasses.fields(cls):
        if "tag" in f.metadata:
            continue
        tp = typing.get_args(f.type)[0] if typing.get_origin(f.type) is tuple else f.type
        for arg in typing.get_args(tp) or (tp,):  # X | None: X
            if isinstance(arg, type) and dataclasses.is_dataclass(arg) and records_spanner(arg) is not None:
                kind = "entities" if typing.get_origin(f.type) is tuple else "entity"
                steps.append((f.name, kind, views_setter(arg)))
                break
        else:
            if f.metadata.get("kafka_type") == "records":
                steps.append((f.name, "records", None))
    put_attr = object.__setattr__

    def put(entity: Any, views: Iterator[Any]) -> None:
        for name, kind, nested in steps:
            if nested is None:
                put_attr(entity, name, next(views))
            elif kind == "entity":
                value = getattr(entity, name)
                if value is not None:
                    nested(value, views)
            else:
                for item in getattr(entity, name):
                    nested(item, views)

    return put


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


# --- client side: requests out, responses in ---------------------------------------


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
        stripped = _without_records(frame, spans, _EMPTY_RECORDS[bool(getattr(cls, "__flexible__", False))])
        body, size = read_body(stripped, used)
    except Exception as exc:  # kio raises several types for short/garbled input
        raise DecodeError(f"cannot decode {cls.__name__} v{cls.__version__}: {exc!r}") from exc
    if used + size != len(stripped):
        raise DecodeError(f"{cls.__name__} v{cls.__version__}: {len(stripped) - used - size} trailing bytes")
    return body, _views(frame, spans)


def encode_raw(correlation_id: int, body: bytes) -> bytes:
    """A response with a v0 header and a hand-made body (for requests with no schema)."""
    return _INT32.pack(4 + len(body)) + _INT32.pack(correlation_id) + body


@cache
def response_class(api_key: int, api_version: int) -> type:
    """The kio response class of a request (cached: kio resolves it by module name each time)."""
    return load_response_schema(api_key, api_version)


# --- version-agnostic building -------------------------------------------------------


class _FieldPlan(NamedTuple):
    name: str
    kind: str  # "plain" | "entity" | "entities" | "error" | "ms" | "datetime"
    nested: type | None
    default: Any  # MISSING when required
    null_as: Any  # what None becomes where this version's field is not nullable
    nullable: bool


def _entity_type(tp: Any) -> tuple[str, type | None]:
    """Classify a field type: a nested entity, a tuple of entities, or a plain value."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(members) == 1:
            return _entity_type(members[0])
        return "plain", None
    if origin is tuple:
        args = typing.get_args(tp)
        if args and isinstance(args[0], type) and dataclasses.is_dataclass(args[0]):
            return "entities", args[0]
        return "plain", None
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return "entity", tp
    return "plain", None


@cache
def _plan(cls: type) -> tuple[_FieldPlan, ...]:
    plans = []
    for f in dataclasses.fields(cls):
        kind, nested = _entity_type(f.type)
        kafka_type = f.metadata.get("kafka_type")
        if kind == "plain":
            if kafka_type == "error_code":
                kind = "error"
            elif kafka_type in ("timedelta_i32", "timedelta_i64"):
                kind = "ms"
            elif kafka_type == "datetime_i64":
                kind = "datetime"
        if f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            default = MISSING
        nullable = type(None) in typing.get_args(f.type)
        null_as: Any = None
        if not nullable:
            # Older versions make some fields non-nullable (e.g. JoinGroup's protocol
            # name before v7); Kafka writes the empty value there.
            if kind == "entities":
                null_as = ()
            elif kafka_type == "string":
                null_as = ""
            elif kafka_type == "bytes":
                null_as = b""
        plans.append(_FieldPlan(f.name, kind, nested, default, null_as, nullable))
    return tuple(plans)


def build(cls: type, data: Mapping[str, Any]) -> Any:
    """Build `cls` (any kio entity) from a dict, recursively.

    Keys the class lacks are ignored (older/newer versions have fewer/more fields);
    fields missing from the dict take the schema default. Nested entities are given as
    dicts, arrays of them as lists of dicts. A required field with no value is a bug in a
    handler, so it raises.
    """
    kwargs: dict[str, Any] = {}
    for p in _plan(cls):
        if p.name in data:
            value = data[p.name]
        elif p.default is not MISSING:
            continue
        elif p.kind == "entities":
            value = ()
        else:
            raise TypeError(f"{cls.__module__}.{cls.__qualname__}: missing required field {p.name!r}")
        kwargs[p.name] = _convert(p, value)
    return cls(**kwargs)


def _convert(p: _FieldPlan, value: Any) -> Any:
    kind = p.kind
    if value is None:
        return p.null_as
    if kind == "plain":
        return value
    if kind == "entities":
        nested = p.nested
        assert nested is not None
        return tuple(v if not isinstance(v, Mapping) else build(nested, v) for v in value)
    if kind == "entity":
        assert p.nested is not None
        return value if not isinstance(value, Mapping) else build(p.nested, value)
    if kind == "error":
        return value if isinstance(value, ErrorCode) else ErrorCode(value)
    if kind == "ms":
        return value if isinstance(value, datetime.timedelta) else datetime.timedelta(milliseconds=value)
    if kind == "datetime":
        if isinstance(value, datetime.datetime):
            return value
        if value < 0 and p.nullable:
            return None  # -1 means "no time" where the field may be null...
        return _EPOCH + datetime.timedelta(milliseconds=value)  # ...and is written as -1 where not
    return value


def build_response(api_key: int, api_version: int, data: Mapping[str, Any]) -> Any:
    return build(response_class(api_key, api_version), data)


def ms(value: datetime.timedelta | int | None) -> int:
    """A kio duration (timedelta) or plain int as integer milliseconds."""
    if value is None:
        return 0
    if isinstance(value, datetime.timedelta):
        # kio decodes whole milliseconds: `//` gives them back exactly, without a float
        if not value.microseconds % 1000:
            return value // _ONE_MS
        return round(value.total_seconds() * 1000)
    return int(value)


_ONE_MS = datetime.timedelta(milliseconds=1)
