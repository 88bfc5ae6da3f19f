"""Schema formats: parse a schema's text (with the schemas it references) and compare two versions.

Each format module has ``parse(text, references) -> ParsedSchema`` raising ``SchemaParseError``;
a ``ParsedSchema`` knows its stored text, its normalized text (``normalize=true`` lookups) and
``compatibility_errors(writer)``: what would stop *this* schema (the reader) reading data written
with ``writer``. Compatibility levels (BACKWARD = new reads old, ...) are built on that one question
in ``suoi.http.registry.compatibility``. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

__all__ = ["SCHEMA_TYPES", "ParsedSchema", "Reference", "SchemaParseError", "parse_schema"]


class SchemaParseError(ValueError):
    """The schema text is not a valid schema of its type (answered with 42201)."""


class ParsedSchema(Protocol):
    schema_type: str
    #: the text stored and returned (the client's text, compacted for JSON-based formats)
    text: str

    def normalized(self) -> str: ...

    def compatibility_errors(self, writer: ParsedSchema) -> list[str]: ...


#: (reference name as the schema spells it, e.g. an Avro full name, a .proto import path or a
#: JSON Schema $ref URL; the referenced schema's text). In dependency order: a reference's own
#: references come before it.
Reference = tuple[str, str]


def _parsers() -> dict[str, Callable[[str, list[Reference]], ParsedSchema]]:
    from suoi.http.registry.formats import avro, json_schema, protobuf

    return {"AVRO": avro.parse, "JSON": json_schema.parse, "PROTOBUF": protobuf.parse}


SCHEMA_TYPES = ("JSON", "PROTOBUF", "AVRO")  # the order Confluent's /schemas/types lists them


def parse_schema(schema_type: str, text: str, references: list[Reference]) -> ParsedSchema:
    parser = _parsers().get(schema_type)
    if parser is None:
        raise SchemaParseError(f"unknown schema type {schema_type!r}; known: {', '.join(SCHEMA_TYPES)}")
    return parser(text, references)
