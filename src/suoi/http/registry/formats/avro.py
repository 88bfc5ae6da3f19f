"""Avro: parsing with fastavro, and compatibility by the Avro specification's schema resolution.

``compatibility_errors(writer)`` answers "can a reader with this schema read data written with
``writer``?" by the resolution rules of the Avro spec (the rules Java's ``SchemaCompatibility``,
and so Confluent's registry, implement): same primitive or a promotion (int -> long/float/double,
long -> float/double, float -> double, string <-> bytes); records matched by name (or alias),
fields by name (or alias), a reader field absent from the writer needs a default; enums by name,
with every writer symbol known to the reader unless the reader has a default; fixed by name and
size; arrays and maps by their items/values; a writer union needs each branch readable, a reader
union needs one branch that reads the writer. Logical types do not change the verdict (Java's
checker ignores them too).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import fastavro
from fastavro.schema import SchemaParseException, UnknownType

from suoi.http.registry.formats import ParsedSchema, Reference, SchemaParseError

__all__ = ["AvroSchema", "parse"]

_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
_PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}


@dataclass(eq=False)
class AvroSchema:
    text: str
    parsed: Any
    names: dict[str, Any] = field(default_factory=dict)
    schema_type: str = "AVRO"

    def normalized(self) -> str:
        """Full names, fastavro's attribute order: two spellings of one schema normalize alike."""
        return json.dumps(self.parsed, separators=(",", ":"), sort_keys=True)

    def compatibility_errors(self, writer: ParsedSchema) -> list[str]:
        if not isinstance(writer, AvroSchema):
            return [f"TYPE_MISMATCH: the old schema is {writer.schema_type}, not AVRO"]
        errors: list[str] = []
        _Checker(self.names, writer.names, errors).check(self.parsed, writer.parsed, "")
        return errors


def parse(text: str, references: list[Reference]) -> AvroSchema:
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise SchemaParseError(f"not JSON: {exc}") from None
    _require_fields(raw)
    names: dict[str, Any] = {}
    try:
        for _name, ref_text in references:
            fastavro.parse_schema(json.loads(ref_text), named_schemas=names, _write_hint=False)
        parsed = fastavro.parse_schema(raw, named_schemas=names, _write_hint=False)
    except KeyError as exc:
        raise SchemaParseError(f"a type lacks its required attribute {exc}") from None
    except (SchemaParseException, UnknownType, ValueError, TypeError, AttributeError) as exc:
        raise SchemaParseError(str(exc) or type(exc).__name__) from None
    return AvroSchema(json.dumps(raw, separators=(",", ":")), parsed, names)


def _require_fields(raw: Any, depth: int = 0) -> None:
    """fastavro takes a record without "fields" as an empty record; the spec (and Java) require them."""
    if depth > 64:
        raise SchemaParseError("schema nested too deep")
    if isinstance(raw, list):
        for branch in raw:
            _require_fields(branch, depth + 1)
    elif isinstance(raw, dict):
        if raw.get("type") in ("record", "error"):
            if not isinstance(raw.get("fields"), list):
                raise SchemaParseError(f"record {raw.get('name')!r} has no \"fields\" array")
            for f in raw["fields"]:
                if isinstance(f, dict):
                    _require_fields(f.get("type"), depth + 1)
        for key in ("items", "values"):
            if key in raw:
                _require_fields(raw[key], depth + 1)
        if isinstance(raw.get("type"), (dict, list)):
            _require_fields(raw["type"], depth + 1)


def _kind(schema: Any) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, dict):
        return str(schema["type"])
    return str(schema)


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


class _Checker:
    def __init__(self, reader_names: dict[str, Any], writer_names: dict[str, Any], errors: list[str]) -> None:
        self.reader_names = reader_names
        self.writer_names = writer_names
        self.errors = errors
        self._seen: set[tuple[str, str]] = set()  # named pairs being checked: recursive types end here

    def _fail(self, error_type: str, path: str, description: str) -> None:
        self.errors.append(f"{{errorType:'{error_type}', description:'{description}', path:'{path or '/'}'}}")

    def readable(self, reader: Any, writer: Any, path: str) -> bool:
        """check() without recording errors (used to pick a union branch)."""
        saved, self.errors = self.errors, []
        try:
            self.check(reader, writer, path)
            return not self.errors
        finally:
            self.errors = saved

    def check(self, reader: Any, writer: Any, path: str) -> None:
        if isinstance(reader, str) and reader not in _PRIMITIVES:
            reader = self.reader_names.get(reader, reader)
        if isinstance(writer, str) and writer not in _PRIMITIVES:
            writer = self.writer_names.get(writer, writer)
        rk, wk = _kind(reader), _kind(writer)
        if wk == "union":
            for i, branch in enumerate(writer):
                self.check(reader, branch, f"{path}/{i}")
            return
        if rk == "union":
            if not any(self.readable(branch, writer, path) for branch in reader):
                self._fail("MISSING_UNION_BRANCH", path,
                           f"The new schema is missing a type inside a union field at path '{path or '/'}' "
                           f"in the old schema: {wk}")
            return
        if rk != wk:
            if rk not in _PROMOTIONS.get(wk, ()):
                self._fail("TYPE_MISMATCH", path,
                           f"The type (path '{path or '/'}') of a field in the new schema does not match "
                           f"with the old schema: reader type {rk} not compatible with writer type {wk}")
            return
        if rk in ("record", "enum", "fixed"):
            if not self._names_match(reader, writer):
                self._fail("NAME_MISMATCH", f"{path}/name",
                           f"The name of the schema has changed (path '{path}/name'): "
                           f"expected {writer['name']}, found {reader['name']}")
                return
            pair = (reader["name"], writer["name"])
            if pair in self._seen:
                return
            self._seen.add(pair)
            getattr(self, f"_check_{rk}")(reader, writer, path)
        elif rk == "array":
            self.check(reader["items"], writer["items"], f"{path}/items")
        elif rk == "map":
            self.check(reader["values"], writer["values"], f"{path}/values")

    @staticmethod
    def _names_match(reader: dict[str, Any], writer: dict[str, Any]) -> bool:
        aliases = {_short(a) for a in reader.get("aliases", ())}
        return _short(reader["name"]) == _short(writer["name"]) or _short(writer["name"]) in aliases

    def _check_record(self, reader: dict[str, Any], writer: dict[str, Any], path: str) -> None:
        writer_fields = {f["name"]: f for f in writer["fields"]}
        for i, rf in enumerate(reader["fields"]):
            wf = writer_fields.get(rf["name"])
            if wf is None:
                wf = next((writer_fields[a] for a in rf.get("aliases", ()) if a in writer_fields), None)
            if wf is None:
                if "default" not in rf:
                    self._fail("READER_FIELD_MISSING_DEFAULT_VALUE", f"{path}/fields/{i}",
                               f"The field '{rf['name']}' at path '{path}/fields/{i}' in the new schema has no "
                               "default value and is missing in the old schema")
                continue
            self.check(rf["type"], wf["type"], f"{path}/fields/{i}/type")

    def _check_enum(self, reader: dict[str, Any], writer: dict[str, Any], path: str) -> None:
        missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
        if missing and "default" not in reader:
            self._fail("MISSING_ENUM_SYMBOLS", f"{path}/symbols",
                       f"The new schema is missing enum symbols '{missing}' at path '{path}/symbols' in the old schema")

    def _check_fixed(self, reader: dict[str, Any], writer: dict[str, Any], path: str) -> None:
        if reader["size"] != writer["size"]:
            self._fail("FIXED_SIZE_MISMATCH", f"{path}/size",
                       f"The size of FIXED type field at path '{path}/size' in the old schema does not match "
                       f"with the new schema: expected {writer['size']}, found {reader['size']}")
