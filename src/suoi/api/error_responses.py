"""An error response for any request of any API, built from kio's schemas.

Kafka gives every request class a `getErrorResponse(e)`; suoi needs the same in three places
(a request with a null where the schema forbids one: INVALID_REQUEST; a handler that failed
unexpectedly: UNKNOWN_SERVER_ERROR; a version we do not serve: UNSUPPORTED_VERSION) and
derives it from the schemas instead of writing ~50 of them by hand:

- every `error_code` gets the code, every `error_message` the message;
- the response's one array whose elements carry error codes (per topic, partition, group,
  resource...) mirrors the request's first array element by element: fields of the same
  name and wire type are copied (topic names, partition indexes, resource names), and an
  element that is a bare value (a partition index, a group id, a coordinator key) fills the
  first response field of its type. So a client sees its own topics/partitions/groups, each
  with the error, as Kafka answers;
- everything else takes its zero value.
"""

from __future__ import annotations

import dataclasses
import typing
import uuid
from functools import cache
from typing import Any

from suoi.protocol.bounds import unwrap_optional
from suoi.protocol.codec import build_response, response_class


def error_response(api_key: int, api_version: int, request: Any, code: int, message: str | None = None) -> Any:
    """The kio response (of `api_version`) answering `request` (a decoded kio request, or None)
    with `code` everywhere it can carry one."""
    cls = response_class(api_key, api_version)
    return build_response(api_key, api_version, _mirror(cls, request, code, message))


def error_array(api_key: int, api_version: int) -> str | None:
    """The name of the response's one array whose elements carry error codes (None if not one)."""
    arrays = _error_arrays(response_class(api_key, api_version))
    return arrays[0][0] if len(arrays) == 1 else None


def _mirror(cls: type, request: Any, code: int, message: str | None) -> dict[str, Any]:
    out = zero_fields(cls)
    req_fields = _fields(type(request)) if dataclasses.is_dataclass(request) and not isinstance(request, type) else {}
    for f in dataclasses.fields(cls):
        kafka_type = f.metadata.get("kafka_type")
        if kafka_type == "error_code":
            out[f.name] = code
        elif f.name == "error_message":
            out[f.name] = message
        elif kafka_type is not None and not _is_array(f.type):
            source = _same_field(req_fields, f.name, kafka_type)
            if source is not None:
                out[f.name] = getattr(request, source)
    arrays = _error_arrays(cls)
    items = _first_array(request)
    if len(arrays) == 1 and items is not None:
        name, element = arrays[0]
        out[name] = [_element(element, item, code, message) for item in items]
    return out


def _element(cls: type, item: Any, code: int, message: str | None) -> dict[str, Any]:
    if dataclasses.is_dataclass(item):
        return _mirror(cls, item, code, message)
    out = _mirror(cls, None, code, message)
    for f in dataclasses.fields(cls):  # a bare value: the first field of its type
        inner = unwrap_optional(f.type)[1]
        if f.metadata.get("kafka_type") != "error_code" and isinstance(inner, type) and isinstance(item, inner):
            out[f.name] = item
            break
    return out


def _same_field(req_fields: dict[str, dataclasses.Field[Any]], name: str, kafka_type: str) -> str | None:
    """The request field a response field echoes: same name and wire type, allowing Kafka's
    one naming drift (Fetch's request `partition` is the response's `partition_index`)."""
    for candidate in (name, name.removesuffix("_index"), f"{name}_index"):
        f = req_fields.get(candidate)
        if f is not None and f.metadata.get("kafka_type") == kafka_type and not _is_array(f.type):
            return candidate
    return None


@cache
def _fields(cls: type) -> dict[str, dataclasses.Field[Any]]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _is_array(tp: Any) -> bool:
    return typing.get_origin(unwrap_optional(tp)[1]) is tuple


def _array_element(tp: Any) -> Any:
    return typing.get_args(unwrap_optional(tp)[1])[0]


def _first_array(request: Any) -> tuple[Any, ...] | None:
    """The first array of the request entity (null counts as empty), or None if it has none."""
    if not dataclasses.is_dataclass(request):
        return None
    for f in dataclasses.fields(request):
        if _is_array(f.type):
            return getattr(request, f.name) or ()
    return None


@cache
def _error_arrays(cls: type) -> list[tuple[str, type]]:
    """(field, element class) of the arrays of `cls` whose elements carry an error code somewhere."""
    out = []
    for f in dataclasses.fields(cls):
        if _is_array(f.type):
            element = _array_element(f.type)
            if isinstance(element, type) and dataclasses.is_dataclass(element) and _has_error_code(element):
                out.append((f.name, element))
    return out


@cache
def _has_error_code(cls: type) -> bool:
    for f in dataclasses.fields(cls):
        if f.metadata.get("kafka_type") == "error_code":
            return True
        if _is_array(f.type) and dataclasses.is_dataclass(_array_element(f.type)) and _has_error_code(_array_element(f.type)):
            return True
    return False


def zero_fields(cls: type) -> dict[str, Any]:
    """Zero values for every required field of kio entity `cls` (None where nullable)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
            continue
        nullable, tp = unwrap_optional(f.type)
        if nullable:
            out[f.name] = None
        elif typing.get_origin(tp) is tuple:
            out[f.name] = ()
        elif isinstance(tp, type) and issubclass(tp, str):
            out[f.name] = ""
        elif isinstance(tp, type) and issubclass(tp, bytes):
            out[f.name] = b""
        elif tp is uuid.UUID:
            out[f.name] = uuid.UUID(int=0)
        elif isinstance(tp, type) and dataclasses.is_dataclass(tp):
            out[f.name] = zero_fields(tp)
        else:
            out[f.name] = 0
    return out
