"""Response writers that encode a handler's dict directly, compiled once per kio class.

Handlers describe a response as plain dicts (`codec.build` documents the contract: keys the
version lacks are ignored, a missing key takes the schema default, plain ints stand for error
codes, durations and timestamps). Turning that dict into kio's frozen dataclasses and then
writing them cost twice the writing itself: for a one-record Produce or a one-partition Fetch
answer, `build` was ~2/3 of the answer's encoding (a timedelta and a datetime made from ints
only to be turned back into ints, an object per nested entity). The writer generated here
reads each field straight from the dict, converts only what is not already the wire's int,
and writes with the code `compiled_writer` generates (the same fixed-width runs packed by
one `struct.Struct`, the same helpers, record sets by reference).

Same semantics as `build` followed by `compiled_writer`, field by field: the value is taken
the way `build` takes it (missing -> the schema default, or an empty array, or TypeError for a
required field; None -> the field's null form where the version has no null), and anything the
compiled writer hands to kio's own field writer (nullable structs, primitive arrays that need
conversion, tagged fields) is converted with `codec`'s `_convert` first, exactly as `build`
would. A nested entity may be given as a dict or as a kio entity. A class `compiled_writer`
cannot compile keeps `build` + kio's writer. tests/unit/protocol/test_compiled_dict_writer.py
checks the bytes against `build` + `compiled_writer` for every response class kio has.
"""

from __future__ import annotations

import dataclasses
import datetime
import struct
from collections.abc import Mapping
from typing import Any

from kio.schema.errors import ErrorCode
from kio.serial._introspect import get_field_tag

from suoi.protocol.codec_build import _convert, _FieldPlan, _plan, build, response_class
from suoi.protocol.codec_responses import GatherBuffer
from suoi.protocol.compiled_writer import _FIXED, _HELPERS, _NULLABLE_FIXED, Writer, _field, _Source, _tagged_fields
from suoi.protocol.compiled_writer import compiled_writer as _entity_writer
from suoi.protocol.file_records import FileRegion

__all__ = ["EncodedOnce", "dict_writer", "encode_response_data"]

#: Values already converted to the wire's int by the code before the write (see `_take`).
_INT_FIXED = {**_FIXED, **{k: (fmt, "{v}") for k, (fmt, _) in _FIXED.items()
                           if k in ("error_code", "timedelta_i32", "timedelta_i64", "datetime_i64")}}
_INT_NULLABLE_FIXED = {**_NULLABLE_FIXED, "datetime_i64": ("q", "{v}")}


def _error_code(value: Any) -> int:
    return int(value if type(value) is ErrorCode else ErrorCode(value))  # an unknown code raises, as in build


#: Every error code kio knows: a plain int among them is written as it is (`build` would raise on any other).
_CODES = frozenset(int(code) for code in ErrorCode)


def _duration_ms(value: Any) -> int:
    """A timedelta (or a number of ms) as the ms kio writes (`round(total_seconds() * 1000)`)."""
    if not hasattr(value, "total_seconds"):
        return value if type(value) is int else _duration_ms(_convert_ms(value))
    return round(value.total_seconds() * 1000)


def _convert_ms(value: Any) -> datetime.timedelta:
    return datetime.timedelta(milliseconds=value)


def _timestamp_ms(value: Any) -> int:
    return value if type(value) is int else round(value.timestamp() * 1000)


def _nullable_timestamp_ms(value: Any) -> int:
    """build: a negative int is null (-1 on the wire), a datetime its ms."""
    if value is None:
        return -1
    if type(value) is int:
        return value if value >= 0 else -1
    return round(value.timestamp() * 1000)


def _missing(cls: type, name: str) -> None:
    raise TypeError(f"{cls.__module__}.{cls.__qualname__}: missing required field {name!r}")


def _any_writer(cls: type) -> Writer:
    """Writes one nested entity given as a dict (this module's writer) or as a kio entity."""
    from_dict, from_entity = dict_writer(cls), _entity_writer(cls)

    def write(buf: Any, value: Any) -> None:
        if type(value) is dict or isinstance(value, Mapping):
            from_dict(buf, value)
        else:
            from_entity(buf, value)
    return write


_HELPERS_HERE: dict[str, Any] = {
    **_HELPERS, "_M": object(), "_err": _error_code, "_dms": _duration_ms, "_tms": _timestamp_ms,
    "_ntms": _nullable_timestamp_ms, "_convert": _convert, "_missing": _missing, "_tuple": tuple, "_list": list,
    "_int": int, "_CODES": _CODES, "_EC": ErrorCode,
}
_compiled: dict[type, Writer] = {}


def dict_writer(cls: type) -> Writer:
    """`writer(buffer, data)`: kio entity class `cls` as `build(cls, data)` + its compiled writer would write it."""
    writer = _compiled.get(cls)
    if writer is None:
        entity_writer = _entity_writer(cls)
        code = getattr(entity_writer, "__code__", None)
        if code is None or not code.co_filename.startswith("<compiled writer"):  # kio's own writer: keep build
            writer = _built(cls, entity_writer)
        else:
            writer = _compile(cls)
        _compiled[cls] = writer
    return writer


def _built(cls: type, entity_writer: Writer) -> Writer:
    return lambda buf, data: entity_writer(buf, build(cls, data))


def _compile(cls: type) -> Writer:
    flexible = bool(cls.__flexible__)  # type: ignore[attr-defined]
    ns: dict[str, Any] = dict(_HELPERS_HERE)
    ns["C"] = cls
    src = _Source(ns)
    plans = {p.name: p for p in _plan(cls)}
    take: list[str] = []
    tagged, names = [], {}
    for i, field in enumerate(dataclasses.fields(cls)):  # type: ignore[arg-type]
        local = names[field.name] = f"a{i}"
        take += _take(src, plans[field.name], field, local)
        tag = get_field_tag(field)
        if tag is not None:
            tagged.append((tag, field))
        else:
            _field(src, field, flexible, local, writer_of=_any_writer, fixed=_INT_FIXED,
                   nullable_fixed=_INT_NULLABLE_FIXED, dict_writer_of=dict_writer)
    if flexible:
        _tagged_fields(src, sorted(tagged, key=lambda t: t[0]), flexible, names.__getitem__)
    src.flush()
    body = "\n    ".join([*take, "w = buf.write", *src.lines])
    code = f"def write_dict(buf, d):\n    {body}\n"
    ns["__source__"] = code
    exec(compile(code, f"<compiled dict writer {cls.__module__}.{cls.__qualname__}>", "exec"), ns)
    writer: Writer = ns["write_dict"]
    return writer


def _take(src: _Source, p: _FieldPlan, field: dataclasses.Field[Any], a: str) -> list[str]:
    """Lines that put the field's value in local `a` as `build` would give it to the writer
    (converted to the wire's int for the fixed-width types `_INT_FIXED` writes as ints)."""
    kafka_type = str(field.metadata.get("kafka_type"))
    tagged = get_field_tag(field) is not None
    # `k in d` and `d[k]` (two lookups by opcode) rather than `d.get(k, _M)` (a method call): a
    # field given is taken (None -> its null form, else converted if the writer needs it), a
    # field left out gets the schema default, an empty array, or TypeError if it is required.
    key = repr(p.name)
    given = f"if {key} in d:\n        {a} = d[{key}]"
    if p.null_as is not None:
        given += f"\n        if {a} is None: {a} = {src.name('N', p.null_as)}"
    if p.default is not dataclasses.MISSING:
        missing = f"{a} = {src.name('D', p.default)}"
    elif p.kind == "entities":
        missing = f"{a} = ()"
    else:
        missing = f"_missing(C, {key})"
    # What the compiled writer hands to kio's own field writer gets build's conversion.
    to_int = not tagged and kafka_type in _INT_KINDS and (kafka_type == "datetime_i64" or not p.nullable)
    if not to_int and (tagged or (p.kind == "entity" and p.nullable) or p.kind not in ("plain", "entity", "entities")):
        given += (f"\n        {'elif' if p.null_as is not None else 'if'} {a} is not None: "
                  f"{a} = _convert({src.name('P', p)}, {a})")
        return [f"{given}\n    else: {missing}"]
    lines = [f"{given}\n    else: {missing}"]
    if p.kind == "entities":  # build makes a tuple of any iterable
        lines.append(f"if {a} is not None and type({a}) is not _list and type({a}) is not _tuple: {a} = _tuple({a})")
    elif to_int and kafka_type == "error_code":
        lines.append(f"if {a} not in _CODES or (type({a}) is not _int and type({a}) is not _EC): {a} = _err({a})")
    elif to_int and kafka_type == "datetime_i64" and p.nullable:
        lines.append(f"{a} = _ntms({a})")
    elif to_int:  # an int is what build's conversion would give back (checked by the tests)
        lines.append(f"if type({a}) is not _int: {a} = {_INT_KINDS[kafka_type]}({a})")
    return lines


#: Fixed-width types given to `_INT_FIXED` as ints: the conversion of each (of a default, too).
_INT_KINDS = {"error_code": "_err", "timedelta_i32": "_dms", "timedelta_i64": "_dms", "datetime_i64": "_tms"}


_LARGE = GatherBuffer.LARGE


class EncodedOnce(dict):  # type: ignore[type-arg]
    """A response dict answered unchanged to many requests (ApiVersions: the same ~65 entries
    until the node's finalized features change): `encode_response_data` writes its body once,
    on first use, and reuses those bytes for every later answer of the same api key and
    version (only the correlation id differs). Never change one after it was first answered
    (`api_versions` makes a new one when what it depends on changes); no record sets in it."""

    _body: tuple[int, int, bytes] | None = None

    def body(self, api_key: int, api_version: int, write_body: Writer) -> bytes:
        kept = self._body
        if kept is None or kept[0] != api_key or kept[1] != api_version:
            pieces = GatherBuffer()
            write_body(pieces, self)
            kept = self._body = (api_key, api_version, b"".join(pieces))
        return kept[2]


def encode_response_data(correlation_id: int, api_key: int, api_version: int,
                         data: Mapping[str, Any]) -> list[bytes | bytearray | memoryview | FileRegion]:
    """`codec.encode_response(correlation_id, build_response(api_key, api_version, data))`,
    without building the kio entities: size-prefixed parts ready for `transport.writelines`.
    A Fetch answer's `FileRecords` are taken apart by `codec.GatherBuffer.finish`: each
    `FileRegion` a part of its own (whatever its size), for `net` to send with `sendfile`."""
    header_rest, write_body = _WRITERS.get((api_key, api_version)) or _writers(api_key, api_version)
    if data.__class__ is EncodedOnce:
        body = data.body(api_key, api_version, write_body)  # type: ignore[attr-defined]
        return [b"".join((_SIZE_AND_ID.pack(len(header_rest) + len(body) + 4, correlation_id), header_rest, body))]
    pieces = GatherBuffer([b"", header_rest])  # the size prefix and correlation id, set below
    write_body(pieces, data)
    sizes = [*map(len, pieces)]
    pieces[0] = _SIZE_AND_ID.pack(sum(sizes) + 4, correlation_id)
    if max(sizes) < _LARGE:  # no file regions: they are never below _LARGE (log_reads checks)
        return [b"".join(pieces)]
    return pieces.finish()


_WRITERS: dict[tuple[int, int], tuple[bytes, Writer]] = {}
_SIZE_AND_ID = struct.Struct(">ii")


def _writers(api_key: int, api_version: int) -> tuple[bytes, Writer]:
    """The response header of (api_key, api_version) after its correlation id (the same bytes
    for every answer: the header's first field is the correlation id, `codec.response_correlation_id`;
    a flexible header adds its empty tagged fields), and the body's writer."""
    cls = response_class(api_key, api_version)
    header = GatherBuffer()
    dict_writer(cls.__header_schema__)(header, {"correlation_id": 0})  # type: ignore[attr-defined]
    head = b"".join(header)
    assert head[:4] == bytes(4), "a response header starts with its correlation id"
    found = _WRITERS[api_key, api_version] = (head[4:], dict_writer(cls))
    return found
