"""Version-agnostic building: a handler describes a response as plain dicts and lists, `build()`
turns that into the kio class of the version the client asked for, dropping fields that version
lacks and converting plain ints to the few richer types kio uses (ErrorCode, timedelta,
datetime)."""

from __future__ import annotations

import dataclasses
import datetime
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING
from functools import cache
from typing import Any, NamedTuple

from kio.index import load_response_schema
from kio.schema.errors import ErrorCode

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


@cache
def response_class(api_key: int, api_version: int) -> type:
    """The kio response class of a request (cached: kio resolves it by module name each time)."""
    return load_response_schema(api_key, api_version)


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
