"""Check every length in a request against the bytes left in its frame, before kio decodes it.

kio's native decoder reserves memory for an array from the length the peer claims: a 24-byte
DescribeProducers request whose nested partition-index array claims 2^34 entries makes it ask
for 128 GiB and abort the process (kio 0.6.5, docs/upstream/kio-nested-array-oom.md). kio has
no option to bound that, so each request is walked here first, following kio's own schema
(the field metadata of its entity classes): an array of n elements must have room for n
times its smallest element, a string or bytes field for its length, a tagged field for its
size, and nothing may claim more than its frame holds. Known tagged fields are walked inside
their declared size, as kio decodes them too.

The walk only steps over data (record batches are skipped by their length, never read). To
keep it to a fraction of kio's own decode, each entity's walk is generated once as one
straight-line Python function (runs of fixed-size fields become one addition; one-byte
varints, the common case, are read inline). Sans-IO and pure: `check_request(frame, cls)`
returns where the body ends or raises `LengthOutOfBounds`.
"""

from __future__ import annotations

import dataclasses
import struct
import types
import typing
from collections.abc import Callable
from functools import cache
from typing import Any, NamedTuple, TypeAlias

#: skip(buf, pos, end, nulls) -> new pos; raises LengthOutOfBounds when a length does not fit,
#: appends to `nulls` the name of each non-nullable field that was sent as null.
Skip: TypeAlias = Callable[[bytes, int, int, list[str]], int]

#: Wire size of fixed-size kafka types (kio's names); a nullable uuid is 16 bytes as well.
_FIXED = {
    "bool": 1, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "error_code": 2, "int32": 4,
    "uint32": 4, "timedelta_i32": 4, "int64": 8, "uint64": 8, "timedelta_i64": 8,
    "datetime_i64": 8, "float64": 8, "uuid": 16,
}
_BLOBS = frozenset({"string", "bytes", "records"})


class LengthOutOfBounds(ValueError):
    """A length (array, string, bytes, tagged field) claims more than the frame holds."""


def _fail(what: str, claimed: int, pos: int, end: int) -> LengthOutOfBounds:
    return LengthOutOfBounds(f"{what} claims {claimed} at byte {pos} with {max(end - pos, 0)} bytes left")


def _uvarint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """An unsigned varint of at most 5 bytes (Kafka's readUnsignedVarint)."""
    value = 0
    shift = 0
    while True:
        if pos >= end:
            raise LengthOutOfBounds(f"varint runs past the end of the frame at byte {pos}")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
        if shift > 28:
            raise LengthOutOfBounds(f"varint longer than 5 bytes at byte {pos - 5}")


def _skip_tagged(name: str, known: dict[int, Skip], buf: bytes, pos: int, end: int, nulls: list[str]) -> int:
    """A tagged-field section: count, then (tag, size, bytes) each; known tags walked within size."""
    count, pos = _uvarint(buf, pos, end)
    if count * 2 > end - pos:  # each tagged field takes at least a tag byte and a size byte
        raise _fail(f"{name} tagged fields", count, pos, end)
    for _ in range(count):
        tag, pos = _uvarint(buf, pos, end)
        size, pos = _uvarint(buf, pos, end)
        if size > end - pos:
            raise _fail(f"{name} tagged field {tag}", size, pos, end)
        field = known.get(tag)
        if field is not None:
            field(buf, pos, pos + size, nulls)
        pos += size
    return pos


# -- code generation ----------------------------------------------------------------------

class _Shape(NamedTuple):
    """What one field (or array element) looks like on the wire."""

    kind: str  # "fixed" | "blob" | "entity" | "array"
    size: int  # fixed: its size; otherwise its smallest wire size
    wide: bool = False  # blob: int32 (bytes/records) rather than int16 (string) length when classic
    nullable: bool = False
    entity: type | None = None
    element: _Shape | None = None  # array: the element's shape
    records: bool = False  # blob: a records field (`records_spanner` notes where each one is)


class _Gen:
    """Emits the lines of one entity's skip function; `env` collects the names they use."""

    def __init__(self, env: dict[str, Any], flexible: bool, spans: bool = False) -> None:
        self.env = env
        self.flexible = flexible
        self.spans = spans  # note (length prefix at, data at, length) of each records field in `spans`
        self.lines: list[str] = []
        self.nm = ""  # the constant naming the field being walked, for error messages

    def field(self, name: str) -> None:
        self.nm = self.const(name)

    def const(self, value: Any) -> str:
        name = f"k{len(self.env)}"
        self.env[name] = value
        return name

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def length(self, indent: int, wide: bool, var: str) -> None:
        """Read a length prefix into `var` (-1: null); compact ones are a varint of n + 1."""
        if self.flexible:
            self.emit(indent, f"if pos >= end: raise _fail({self.nm}, 1, pos, end)")
            self.emit(indent, f"{var} = buf[pos]")
            self.emit(indent, f"if {var} < 128: pos += 1")
            self.emit(indent, f"elif pos + 1 < end and buf[pos + 1] < 128: {var} = ({var} & 127) | (buf[pos + 1] << 7); pos += 2")
            self.emit(indent, f"else: {var}, pos = _uvarint(buf, pos, end)")
            self.emit(indent, f"{var} -= 1")
        else:
            size = 4 if wide else 2
            self.emit(indent, f"if pos + {size} > end: raise _fail({self.nm}, {size}, pos, end)")
            self.emit(indent, f"{var} = {'_I32' if wide else '_I16'}(buf, pos)[0]")
            self.emit(indent, f"pos += {size}")

    def value(self, indent: int, shape: _Shape, depth: int = 0) -> None:
        """Step over one value of `shape` (fixed-size ones are summed by the caller)."""
        n = f"n{depth}"
        if shape.kind == "fixed":
            self.emit(indent, f"pos += {shape.size}")
        elif shape.kind == "blob":
            noted = self.spans and shape.records
            if noted:
                self.emit(indent, f"s{depth} = pos")
            self.length(indent, shape.wide, n)
            self.null_check(indent, shape, n)
            self.emit(indent, f"if {n} > end - pos or {n} < -1: raise _fail({self.nm}, {n}, pos, end)")
            if noted:
                self.emit(indent, f"spans.append((s{depth}, pos, {n}))")
            self.emit(indent, f"if {n} > 0: pos += {n}")
        elif shape.kind == "entity":
            assert shape.entity is not None
            if shape.nullable:  # Kafka's nullable struct: an int8 marker, -1 for null
                self.emit(indent, f"if pos >= end: raise _fail({self.nm}, 1, pos, end)")
                self.emit(indent, "pos += 1")
                self.emit(indent, "if buf[pos - 1] != 255:")
                self.entity(indent + 1, shape.entity, depth + 1)
            else:
                self.entity(indent, shape.entity, depth + 1)
        else:
            element = shape.element
            assert element is not None
            self.length(indent, True, n)
            self.null_check(indent, shape, n)
            self.emit(indent, f"if {n} < -1 or {n} * {max(element.size, 1)} > end - pos: raise _fail({self.nm}, {n}, pos, end)")
            if element.kind == "fixed":
                self.emit(indent, f"if {n} > 0: pos += {n} * {element.size}")
            else:
                self.emit(indent, f"for _ in range({n}):")
                self.value(indent + 1, element, depth + 1)  # leaves pos <= end, or raises

    def entity(self, indent: int, cls: type, depth: int) -> None:
        """Step over one `cls`, inline (no call per element of an array of entities): its
        regular fields in order, runs of fixed-size ones as one addition, then its tagged fields."""
        assert bool(getattr(cls, "__flexible__", False)) == self.flexible, cls
        entity = self.const(cls.__qualname__)
        fixed_run = 0
        for f in _regular_fields(cls):
            shape = _shape(f, self.flexible)
            if shape.kind == "fixed":
                fixed_run += shape.size
                continue
            if fixed_run:
                self.emit(indent, f"pos += {fixed_run}")
                fixed_run = 0
            self.field(f"{cls.__qualname__}.{f.name}")
            self.value(indent, shape, depth)
        if fixed_run:
            self.emit(indent, f"pos += {fixed_run}")
        if not self.flexible:
            self.emit(indent, f"if pos > end: raise _fail({entity}, pos - end, end, end)")
            return
        known = {int(f.metadata["tag"]): _field_skipper(cls, f) for f in dataclasses.fields(cls) if "tag" in f.metadata}
        table = self.const(known)
        self.emit(indent, f"if pos >= end: raise _fail({entity}, 1, pos, end)")  # also catches pos > end
        self.emit(indent, "if buf[pos] == 0: pos += 1")  # no tagged fields: the common case
        self.emit(indent, f"else: pos = _skip_tagged({entity}, {table}, buf, pos, end, nulls)")

    def null_check(self, indent: int, shape: _Shape, n: str) -> None:
        """kio decodes null where the schema forbids it (handlers would then fail on None):
        note the field, so the request is answered INVALID_REQUEST after decoding."""
        if not shape.nullable:
            self.emit(indent, f"if {n} == -1: nulls.append({self.nm})")


def unwrap_optional(tp: Any) -> tuple[bool, Any]:
    """(nullable, inner type) of a kio field type: `X | None` -> (True, X), `X` -> (False, X)."""
    if typing.get_origin(tp) in (types.UnionType, typing.Union):
        return True, next(a for a in typing.get_args(tp) if a is not type(None))
    return False, tp


def _shape(field: dataclasses.Field[Any], flexible: bool) -> _Shape:
    nullable, tp = unwrap_optional(field.type)
    if typing.get_origin(tp) is tuple:
        inner = typing.get_args(tp)[0]
        element = _entity_shape(inner, False) if isinstance(inner, type) and dataclasses.is_dataclass(inner) \
            else _scalar_shape(field.metadata["kafka_type"], False, flexible)
        return _Shape("array", 1 if flexible else 4, nullable=nullable, element=element)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _entity_shape(tp, nullable)
    return _scalar_shape(field.metadata["kafka_type"], nullable, flexible)


def _entity_shape(cls: type, nullable: bool) -> _Shape:
    return _Shape("entity", 1 if nullable else _min_size(cls), nullable=nullable, entity=cls)


def _scalar_shape(kafka_type: str, nullable: bool, flexible: bool) -> _Shape:
    if kafka_type in _FIXED:
        return _Shape("fixed", _FIXED[kafka_type])
    if kafka_type in _BLOBS:
        wide = kafka_type != "string"
        return _Shape("blob", 1 if flexible else (4 if wide else 2), wide=wide, nullable=nullable,
                      records=kafka_type == "records")
    raise TypeError(f"kafka type {kafka_type!r} has no bounds rule")


def _regular_fields(cls: type) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(cls) if "tag" not in f.metadata]


@cache
def _min_size(cls: type) -> int:
    """The fewest bytes one `cls` takes on the wire (empty arrays/strings, no tagged fields)."""
    flexible = bool(getattr(cls, "__flexible__", False))
    return sum(_shape(f, flexible).size for f in _regular_fields(cls)) + (1 if flexible else 0)


def _compile(name: str, flexible: bool, body: Callable[[_Gen], None], spans: bool = False) -> Any:
    env: dict[str, Any] = {"_fail": _fail, "_uvarint": _uvarint, "_skip_tagged": _skip_tagged,
                           "_I16": struct.Struct(">h").unpack_from, "_I32": struct.Struct(">i").unpack_from}
    gen = _Gen(env, flexible, spans)
    body(gen)
    params = "buf, pos, end, nulls, spans" if spans else "buf, pos, end, nulls"
    source = f"def skip({params}):\n" + "\n".join(gen.lines) + "\n    return pos\n"
    exec(compile(source, f"<bounds {name}>", "exec"), env)  # noqa: S102
    return env["skip"]


@cache
def _entity_skipper(cls: type) -> Skip:
    """Generate and compile the skip function of kio entity `cls` (nested entities inline)."""
    return _compile(f"{cls.__module__}.{cls.__qualname__}", bool(getattr(cls, "__flexible__", False)),
                    lambda gen: gen.entity(1, cls, 0))


#: spanner(buf, pos, end, nulls, spans) -> new pos: a `Skip` that also appends (where the length
#: prefix starts, where the bytes start, their length or -1 for null) of each records field to `spans`
Spanner: TypeAlias = Callable[[bytes, int, int, list[str], list[tuple[int, int, int]]], int]


@cache
def records_spanner(cls: type) -> Spanner | None:
    """The walk of kio entity `cls` that also notes where each of its records fields is, in wire
    order (a Fetch answer's records, for `codec.decode_response_views`); None when `cls` has no
    records field, or one inside a tagged field (walked by another function: not noted)."""
    if not _has_records(cls, tagged_only=False) or _has_records(cls, tagged_only=True):
        return None
    return _compile(f"{cls.__module__}.{cls.__qualname__} (records)", bool(getattr(cls, "__flexible__", False)),
                    lambda gen: gen.entity(1, cls, 0), spans=True)  # type: ignore[no-any-return]


def _has_records(cls: type, *, tagged_only: bool) -> bool:
    """`cls` has a records field (`tagged_only`: one in a tagged field), nested entities included."""
    for f in dataclasses.fields(cls):
        tagged = "tag" in f.metadata
        tp = unwrap_optional(f.type)[1]
        if typing.get_origin(tp) is tuple:
            tp = typing.get_args(tp)[0]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            if _has_records(tp, tagged_only=False) if (tagged and tagged_only) else _has_records(tp, tagged_only=tagged_only):
                return True
        elif f.metadata.get("kafka_type") == "records" and (tagged or not tagged_only):
            return True
    return False


def _field_skipper(cls: type, field: dataclasses.Field[Any]) -> Skip:
    """A standalone skip function for one tagged field of `cls` (walked within its size)."""
    name = f"{cls.__qualname__}.{field.name}"

    def body(gen: _Gen) -> None:
        gen.field(name)
        gen.value(1, _shape(field, True))
        gen.emit(1, f"if pos > end: raise _fail({gen.nm}, pos - end, end, end)")

    return _compile(name, True, body)


def _header_skipper(flexible: bool) -> Skip:
    """Request header v1 (v2 adds tagged fields): after api key, version and correlation id,
    the client id is a classic int16 string even in flexible versions."""
    read_int16 = struct.Struct(">h").unpack_from

    def skip(buf: bytes, pos: int, end: int, nulls: list[str]) -> int:
        if pos + 10 > end:
            raise _fail("RequestHeader.client_id", 2, pos + 8, end)
        n = read_int16(buf, pos + 8)[0]
        pos += 10
        if n > end - pos or n < -1:
            raise _fail("RequestHeader.client_id", n, pos, end)
        if n > 0:
            pos += n
        if not flexible:
            return pos
        if pos < end and buf[pos] == 0:
            return pos + 1
        return _skip_tagged("RequestHeader", {}, buf, pos, end, nulls)

    return skip


_HEADERS = {False: _header_skipper(False), True: _header_skipper(True)}


def request_skippers(cls: type) -> tuple[Skip, Skip]:
    """The header's and the body's walk of requests of kio class `cls` (`request_checker` runs
    both; `codec.request_decoder` calls them itself: one Python call less per request)."""
    return _HEADERS[bool(cls.__header_schema__.__flexible__)], _entity_skipper(cls)  # type: ignore[attr-defined]


@cache
def request_checker(cls: type) -> Callable[[bytes], list[str]]:
    """`check(frame) -> nulls` for requests of kio class `cls`: raises LengthOutOfBounds when a
    length exceeds the frame, returns the names of non-nullable fields sent as null (usually [])."""
    header, body = request_skippers(cls)

    def check(frame: bytes) -> list[str]:
        end = len(frame)
        nulls: list[str] = []
        body(frame, header(frame, 0, end, nulls), end, nulls)  # trailing bytes are ignored, as by kio
        return nulls

    return check


def check_request(frame: bytes, cls: type) -> int:
    """Walk header and body of `frame` (a request of kio class `cls`, size prefix removed);
    return where the body ends. Raises LengthOutOfBounds if any length exceeds the frame."""
    end = len(frame)
    nulls: list[str] = []
    header = _HEADERS[bool(cls.__header_schema__.__flexible__)]  # type: ignore[attr-defined]
    return _entity_skipper(cls)(frame, header(frame, 0, end, nulls), end, nulls)


def check_body(frame: bytes | memoryview, cls: type, offset: int) -> int:
    """Walk an entity of kio class `cls` (e.g. a response body from a peer) starting at
    `offset`; return where it ends. Raises LengthOutOfBounds as check_request does."""
    return _entity_skipper(cls)(frame, offset, len(frame), [])  # type: ignore[arg-type]  # a memoryview reads as bytes
