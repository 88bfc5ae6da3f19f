"""kio entity writers compiled once per class into one straight-line Python function.

kio's `entity_writer` walks a dict of per-field closures and makes one `write()` call (and one
`struct.pack`) per primitive: about half of the broker's CPU for a one-record Produce went
into encoding its answer. This module reads the same schema metadata kio reads (each
dataclass field's `kafka_type`, nullability, array-ness, tag, the class's `__flexible__`)
and generates, per entity class, one function that packs each run of adjacent fixed-width
fields (ints, error codes, durations, booleans, uuids, and the empty tagged-field count)
with one precompiled `struct.Struct`, joins short strings into the same `write()`, writes
byte payloads (records) by reference, calls the compiled writer of nested entities, and
hands anything else to kio's own writer for that field (primitive arrays, nullable structs,
tagged fields' values). The choice is made when the class is compiled, never by catching an
error while encoding; a class this cannot compile at all (kio's RequestHeader special case,
a type kio has no writer for) gets kio's `entity_writer` unchanged.

tests/unit/protocol/test_compiled_writer.py checks the output byte for byte against kio's
for every version of every response class kio has, with Hypothesis-built entities.
"""

from __future__ import annotations

import dataclasses
import io
import struct
from collections.abc import Callable
from typing import Any

from kio.serial import entity_writer
from kio.serial._implicit_defaults import get_tagged_field_default
from kio.serial._introspect import (
    EntityField,
    EntityTupleField,
    PrimitiveField,
    PrimitiveTupleField,
    classify_field,
    get_field_tag,
    get_schema_field_type,
    is_optional,
)
from kio.serial._serialize import get_field_writer
from kio.static.constants import uuid_zero

Writer = Callable[[Any, Any], None]

#: struct format and value expression (of `v`, the field's value) per fixed-width kafka type.
_FIXED: dict[str, tuple[str, str]] = {
    "int8": ("b", "{v}"), "int16": ("h", "{v}"), "int32": ("i", "{v}"), "int64": ("q", "{v}"),
    "uint8": ("B", "{v}"), "uint16": ("H", "{v}"), "uint32": ("I", "{v}"), "uint64": ("Q", "{v}"),
    "float64": ("d", "{v}"), "bool": ("?", "{v}"), "error_code": ("h", "{v}.value"),
    "timedelta_i32": ("i", "round({v}.total_seconds() * 1000)"),
    "timedelta_i64": ("q", "round({v}.total_seconds() * 1000)"),
    "datetime_i64": ("q", "round({v}.timestamp() * 1000)"),
    "uuid": ("16s", "_uuid({v})"),
}
_NULLABLE_FIXED: dict[str, tuple[str, str]] = {
    "datetime_i64": ("q", "_nullable_ms({v})"),
    "uuid": ("16s", "_uuid({v})"),
}
_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")


#: Array lengths and other unsigned varints below 128 are one byte.
_SMALL_UVARINTS = [bytes([n]) for n in range(128)]


def _uvarint(n: int) -> bytes:
    """Kafka's unsigned varint; a record set's length (>= 128) is common in a Fetch answer."""
    if n < 128:
        return _SMALL_UVARINTS[n]
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _uuid(value: Any) -> bytes:
    # `UUID.bytes` is a Python property over the same int.to_bytes (one call fewer per topic id)
    return uuid_zero.bytes if value is None else value.int.to_bytes(16, "big")


def _nullable_ms(value: Any) -> int:
    return -1 if value is None else round(value.timestamp() * 1000)


def _compact_string(value: str | bytes) -> bytes:
    if not value:  # "" (a follower's rack id, an empty client id): no encode, no varint
        return b"\x01"
    data = value.encode() if isinstance(value, str) else value  # kio takes bytes here too
    return _uvarint(len(data) + 1) + data


def _nullable_compact_string(value: str | bytes | None) -> bytes:
    return b"\x00" if value is None else _compact_string(value)


def _legacy_string(value: str) -> bytes:
    data = value.encode()
    return _INT16.pack(len(data)) + data


def _nullable_legacy_string(value: str | None) -> bytes:
    return b"\xff\xff" if value is None else _legacy_string(value)


def _compact_length(value: Any) -> bytes:
    """The length of an array/bytes in flexible versions (0 for null), KIP-482."""
    return b"\x00" if value is None else _uvarint(len(value) + 1)


def _legacy_length(value: Any) -> bytes:
    return b"\xff\xff\xff\xff" if value is None else _INT32.pack(len(value))


_LENGTH = {True: "_compact_length", False: "_legacy_length"}
#: The same, inline in the generated code (no call for the usual short array), of an expression {v}.
_INLINE_LENGTH = {
    True: "(b'\\x00' if (_x := {v}) is None else _CL[len(_x)] if len(_x) < 127 else _compact_length(_x))",
    False: "(b'\\xff\\xff\\xff\\xff' if (_x := {v}) is None else _i32.pack(len(_x)))",
}
#: Compact (KIP-482) lengths of 0..126 items: uvarint(n + 1), one byte.
_COMPACT_LENGTHS = [bytes([n + 1]) for n in range(127)]


def _compact_array(code: str, values: Any) -> bytes:
    """An array of plain numbers (replica lists, ...) as one pack: compact length + items."""
    if values is None:
        return b"\x00"
    n = len(values)
    return _uvarint(n + 1) + struct.pack(f">{n}{code}", *values)


def _legacy_array(code: str, values: Any) -> bytes:
    if values is None:
        return b"\xff\xff\xff\xff"
    n = len(values)
    return struct.pack(f">i{n}{code}", n, *values)


#: Helper per (flexible, nullable) for `string` fields: one bytes object, joined with its neighbours.
_STRING = {(True, False): "_compact_string", (True, True): "_nullable_compact_string",
           (False, False): "_legacy_string", (False, True): "_nullable_legacy_string"}


def _tagged(tag: int, write: Writer, value: Any) -> bytes:
    """One tagged field (KIP-482): tag, size, value as written by `write`."""
    out = io.BytesIO()
    write(out, value)
    data = out.getvalue()
    return _uvarint(tag) + _uvarint(len(data)) + data


class Encoded(bytes):
    """An array element already written by this array's element writer (`compiled_dict_writer`'s
    for its class, from a dict): written as is. A handler that answers the same element again
    and again (a Fetch's caught-up partition: `api.fetch`) keeps its bytes instead of the dict;
    it must key them by the element class (the API version) they were written for."""

    __slots__ = ()


_HELPERS: dict[str, Any] = {
    "_uuid": _uuid, "_nullable_ms": _nullable_ms, "_compact_string": _compact_string,
    "_nullable_compact_string": _nullable_compact_string, "_legacy_string": _legacy_string,
    "_nullable_legacy_string": _nullable_legacy_string, "_tagged": _tagged, "_uv": _uvarint,
    "_i32": _INT32, "_compact_length": _compact_length, "_legacy_length": _legacy_length,
    "_compact_array": _compact_array, "_legacy_array": _legacy_array, "_CL": _COMPACT_LENGTHS,
    "_UV": _SMALL_UVARINTS, "_ENC": Encoded,
}

_compiled: dict[type, Writer] = {}


class _Unsupported(Exception):
    """A field this compiler has no plan for: the class keeps kio's writer."""


def compiled_writer(cls: type) -> Writer:
    """The writer of kio entity class `cls`: `writer(buffer, entity)` as kio's `entity_writer`."""
    writer = _compiled.get(cls)
    if writer is None:
        try:
            writer = _compile(cls)
        except _Unsupported:
            writer = entity_writer(cls)
        _compiled[cls] = writer
    return writer


class _Source:
    """The body of one generated function: `w(piece + piece ...)` lines, with adjacent
    fixed-width fields packed by one Struct and adjacent small pieces joined into one write."""

    def __init__(self, ns: dict[str, Any]) -> None:
        self.ns = ns
        self.lines: list[str] = []
        self.pieces: list[str] = []
        self.fmt: list[str] = []
        self.args: list[str] = []

    def name(self, prefix: str, value: Any) -> str:
        key = f"{prefix}{len(self.ns)}"
        self.ns[key] = value
        return key

    def fixed(self, fmt: str, expr: str | None) -> None:
        self.fmt.append(fmt)
        if expr is not None:
            self.args.append(expr)

    def piece(self, expr: str) -> None:
        self._close_run()
        self.pieces.append(expr)

    def line(self, code: str) -> None:
        self.flush()
        self.lines.append(code)

    def _close_run(self) -> None:
        if self.fmt:
            packer = struct.Struct(">" + "".join(self.fmt))
            if self.args:
                self.pieces.append(f"{self.name('S', packer)}.pack({', '.join(self.args)})")
            else:
                self.pieces.append(repr(packer.pack()))
            self.fmt, self.args = [], []

    def flush(self) -> None:
        self._close_run()
        if self.pieces:
            self.lines.append(f"w({' + '.join(self.pieces)})")
            self.pieces = []


def _compile(cls: type) -> Writer:
    if cls.__name__ == "RequestHeader":
        raise _Unsupported("RequestHeader.client_id has a special encoding")  # and it is never a response
    flexible = bool(cls.__flexible__)  # type: ignore[attr-defined]
    ns: dict[str, Any] = dict(_HELPERS)
    src = _Source(ns)
    tagged = []
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        tag = get_field_tag(field)
        if tag is not None:
            tagged.append((tag, field))
        else:
            _field(src, field, flexible, f"e.{field.name}")
    if flexible:
        _tagged_fields(src, sorted(tagged, key=lambda t: t[0]), flexible)
    elif tagged:
        raise _Unsupported("tagged fields in a non-flexible class")
    src.flush()
    body = "\n    ".join(["w = buf.write", *src.lines]) if src.lines else "pass"
    code = f"def write_entity(buf, e):\n    {body}\n"
    ns["__source__"] = code  # for a reader of tracebacks and profiles
    exec(compile(code, f"<compiled writer {cls.__module__}.{cls.__qualname__}>", "exec"), ns)
    writer: Writer = ns["write_entity"]
    return writer


def _field(src: _Source, field: dataclasses.Field[Any], flexible: bool, value: str, *,
           writer_of: Callable[[type], Writer] = compiled_writer,
           fixed: dict[str, tuple[str, str]] = _FIXED, nullable_fixed: dict[str, tuple[str, str]] = _NULLABLE_FIXED,
           dict_writer_of: Callable[[type], Writer] | None = None) -> None:
    """The code writing one field whose value is the expression `value`. `writer_of` gives the
    writer of a nested entity, `fixed`/`nullable_fixed` the struct format and value expression
    per fixed-width type (`compiled_dict_writer` passes its own: it writes from dicts), and
    `dict_writer_of` the writer an array's plain-dict elements go to straight (no call to
    `writer_of`'s dispatch per element: one per partition of a Fetch answer)."""
    kind = classify_field(field)
    optional = is_optional(field)
    if isinstance(kind, EntityTupleField):
        sub = src.name("E", writer_of(kind.type_))
        src.piece(_INLINE_LENGTH[flexible].format(v=value))  # joined with the pieces before it
        src.line(f"v = {value}")
        if dict_writer_of is None:
            src.lines.append(f"if v:\n        for x in v: {sub}(buf, x)")
        else:
            plain, direct = src.name("T", dict), src.name("E", dict_writer_of(kind.type_))
            src.lines.append(f"if v:\n        for x in v:\n            if type(x) is {plain}: {direct}(buf, x)"
                             f"\n            elif type(x) is _ENC: buf.write(x)\n            else: {sub}(buf, x)")
        return
    if isinstance(kind, EntityField) and not optional:
        src.line(f"{src.name('E', writer_of(kind.type_))}(buf, {value})")
        return
    if isinstance(kind, PrimitiveField):
        kafka_type = get_schema_field_type(field)
        plan = (nullable_fixed if optional else fixed).get(kafka_type)
        if plan is not None:
            src.fixed(plan[0], plan[1].format(v=value))
            return
        if kafka_type == "string":
            src.piece(f"{_STRING[(flexible, optional)]}({value})")
            return
        if kafka_type in ("bytes", "records"):
            if optional:
                src.piece(_INLINE_LENGTH[flexible].format(v=value))
            else:  # len(None) raises, as kio does for a null in a non-nullable field
                src.piece(f"_uv(len({value}) + 1)" if flexible else f"_i32.pack(len({value}))")
            _byte_payload(src, value)
            return
    if isinstance(kind, PrimitiveTupleField):
        plan = _FIXED.get(get_schema_field_type(field))
        if plan is not None and plan[1] == "{v}":  # plain numbers: no per-item conversion
            src.piece(f"{'_compact_array' if flexible else '_legacy_array'}({plan[0]!r}, {value})")
            return
    # other primitive arrays, nullable structs, anything else: kio's own writer for this field
    try:
        writer = get_field_writer(field, flexible=flexible, is_request_header=False, is_tag=False)
    except NotImplementedError as exc:
        raise _Unsupported(str(exc)) from exc
    src.line(f"{src.name('W', writer)}(buf, {value})")


def _byte_payload(src: _Source, value: str) -> None:
    """bytes/records: the length joins the pieces before it, the data is written by
    reference (a fetched record set is not copied here)."""
    src.line(f"v = {value}")
    src.lines.append("if v is not None: w(v)")


def _tagged_fields(src: _Source, tagged: list[tuple[int, dataclasses.Field[Any]]], flexible: bool,
                   value_of: Callable[[str], str] = "e.{}".format) -> None:
    """The tagged-field section: a field equal to its default is left out (as kio does).
    `value_of(name)`: the expression of a field's value."""
    if not tagged:
        src.fixed("x", None)  # zero tagged fields: one 0 byte, packed with the run before it
        return
    # `t` stays the empty tuple while every tagged field is at its default (the usual answer: no
    # list, no join); the first one that is not makes it a list
    src.line("t = ()")
    for tag, field in tagged:
        try:
            default = get_tagged_field_default(field)
            writer = get_field_writer(field, flexible=flexible, is_request_header=False, is_tag=True)
        except (NotImplementedError, TypeError) as exc:
            raise _Unsupported(str(exc)) from exc
        # `v is D` first: a field left at its default is usually that very object (no __eq__ call)
        d, w = src.name("D", default), src.name("W", writer)
        src.lines += [f"v = {value_of(field.name)}",
                      f"if v is not {d} and not (v == {d}): t = [*t, _tagged({int(tag)}, {w}, v)]"]
    src.lines.append("w((_UV[len(t)] if len(t) < 128 else _uv(len(t))) + b''.join(t) if t else b'\\x00')")
