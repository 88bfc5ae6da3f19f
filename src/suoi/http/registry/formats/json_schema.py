"""JSON Schema: checked with ``jsonschema`` (the draft the schema's ``$schema`` names, else 2020-12)
and compared by Confluent's documented JSON Schema rules.

A reader can read a writer's data when every document valid under the writer is valid under the
reader: the reader may only widen. Per Confluent's rules: types may widen (integer -> number) but
not narrow; enums may gain values, not lose them; numeric and length bounds may loosen, not
tighten; a property added to a writer with an *open* content model (``additionalProperties`` not
false) is incompatible unless its schema accepts anything (the writer may already have sent that
property with any value), and a property added as *required* is incompatible; a property removed
from a *closed* reader content model is incompatible; ``additionalProperties`` may open, not
close; ``required`` may shrink, not grow; array items and combined schemas (anyOf/oneOf) are
compared branch by branch. ``$ref`` values are compared as text (a referenced schema is its own
subject with its own checks).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jsonschema import validators
from jsonschema.exceptions import SchemaError

from suoi.http.registry.formats import ParsedSchema, Reference, SchemaParseError

__all__ = ["JsonSchema", "parse"]

_BOUNDS_LOWER = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_BOUNDS_UPPER = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")


@dataclass(eq=False)
class JsonSchema:
    text: str
    parsed: Any
    schema_type: str = "JSON"

    def normalized(self) -> str:
        return json.dumps(self.parsed, separators=(",", ":"), sort_keys=True)

    def compatibility_errors(self, writer: ParsedSchema) -> list[str]:
        if not isinstance(writer, JsonSchema):
            return [f"TYPE_MISMATCH: the old schema is {writer.schema_type}, not JSON"]
        errors: list[str] = []
        _compare(self.parsed, writer.parsed, "#", errors)
        return errors


def parse(text: str, references: list[Reference]) -> JsonSchema:
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise SchemaParseError(f"not JSON: {exc}") from None
    if not isinstance(raw, (dict, bool)):
        raise SchemaParseError("a JSON Schema is an object or a boolean")
    try:
        validators.validator_for(raw, default=validators.Draft202012Validator).check_schema(raw)
    except SchemaError as exc:
        raise SchemaParseError(exc.message) from None
    return JsonSchema(json.dumps(raw, separators=(",", ":")), raw)


def _types(schema: dict[str, Any]) -> set[str] | None:
    t = schema.get("type")
    if t is None:
        return None
    return {t} if isinstance(t, str) else set(t)


def _accepts_anything(schema: Any) -> bool:
    return schema is True or schema == {}


def _fail(errors: list[str], kind: str, path: str, detail: str = "") -> None:
    errors.append(f"{{errorType:'{kind}', description:'{detail or kind.lower().replace('_', ' ')}', path:'{path}'}}")


def _compare(reader: Any, writer: Any, path: str, errors: list[str]) -> None:
    if reader is True or writer is False or reader == writer:
        return
    if reader is False or writer is True:
        _fail(errors, "TYPE_NARROWED", path, "the new schema accepts less than the old one")
        return
    if not isinstance(reader, dict) or not isinstance(writer, dict):
        return
    if reader.get("$ref") != writer.get("$ref"):
        _fail(errors, "REFERENCE_CHANGED", path, f"$ref {writer.get('$ref')} became {reader.get('$ref')}")
    _compare_types(reader, writer, path, errors)
    if "enum" in reader and not set(map(json.dumps, writer.get("enum", [None, "*any*"]))) <= set(
            map(json.dumps, reader["enum"])):
        _fail(errors, "ENUM_ARRAY_NARROWED", f"{path}/enum")
    if "const" in reader and reader.get("const") != writer.get("const"):
        _fail(errors, "CONST_CHANGED", f"{path}/const")
    for key in _BOUNDS_LOWER + _BOUNDS_UPPER:
        if key in reader and isinstance(reader[key], (int, float)) and not isinstance(reader[key], bool):
            old = writer.get(key)
            tighter = old is None or (reader[key] > old if key in _BOUNDS_LOWER else reader[key] < old)
            if tighter:
                _fail(errors, f"{key.upper()}_ADDED" if old is None else f"{key.upper()}_CHANGED", f"{path}/{key}")
    if reader.get("pattern") not in (None, writer.get("pattern")):
        _fail(errors, "PATTERN_CHANGED", f"{path}/pattern")
    _compare_object(reader, writer, path, errors)
    if "items" in reader or "items" in writer:
        _compare(reader.get("items", True), writer.get("items", True), f"{path}/items", errors)
    for combiner in ("anyOf", "oneOf"):
        if combiner in writer or combiner in reader:
            r_branches = reader.get(combiner, [reader])
            for i, w_branch in enumerate(writer.get(combiner, [writer])):
                if not any(not _errors_of(r, w_branch, path) for r in r_branches):
                    _fail(errors, "COMBINED_TYPE_SUBSCHEMAS_CHANGED", f"{path}/{combiner}/{i}")


def _errors_of(reader: Any, writer: Any, path: str) -> list[str]:
    out: list[str] = []
    _compare(reader, writer, path, out)
    return out


def _compare_types(reader: dict[str, Any], writer: dict[str, Any], path: str, errors: list[str]) -> None:
    r_types, w_types = _types(reader), _types(writer)
    if r_types is None:
        return
    if w_types is None:
        _fail(errors, "TYPE_NARROWED", f"{path}/type", f"type {sorted(r_types)} added")
        return
    widened = r_types | ({"integer"} if "number" in r_types else set())
    if not w_types <= widened:
        _fail(errors, "TYPE_CHANGED" if not w_types & r_types else "TYPE_NARROWED", f"{path}/type",
              f"type {sorted(w_types)} became {sorted(r_types)}")


def _compare_object(reader: dict[str, Any], writer: dict[str, Any], path: str, errors: list[str]) -> None:
    r_props, w_props = reader.get("properties", {}), writer.get("properties", {})
    r_additional, w_additional = reader.get("additionalProperties", True), writer.get("additionalProperties", True)
    w_open = w_additional is not False
    r_required, w_required = set(reader.get("required", [])), set(writer.get("required", []))
    for name, r_prop in r_props.items():
        if name in w_props:
            _compare(r_prop, w_props[name], f"{path}/properties/{name}", errors)
        elif name in r_required:
            _fail(errors, "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL", f"{path}/properties/{name}")
        elif w_open and not _accepts_anything(r_prop) and not (isinstance(w_additional, dict)
                                                               and not _errors_of(r_prop, w_additional, path)):
            _fail(errors, "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL", f"{path}/properties/{name}")
    for name, w_prop in w_props.items():
        if name not in r_props:
            if r_additional is False:
                _fail(errors, "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL", f"{path}/properties/{name}")
            elif isinstance(r_additional, dict):
                _compare(r_additional, w_prop, f"{path}/properties/{name}", errors)
    if w_open and r_additional is False:
        _fail(errors, "ADDITIONAL_PROPERTIES_REMOVED", f"{path}/additionalProperties")
    elif isinstance(r_additional, dict) and w_open:
        _compare(r_additional, w_additional, f"{path}/additionalProperties", errors)
    for name in sorted(r_required - w_required):
        if name in w_props or name not in r_props:
            _fail(errors, "REQUIRED_ATTRIBUTE_ADDED", f"{path}/required/{name}")
