"""Compatibility verdicts per format and level, from the Avro specification's schema resolution
rules and Confluent's documented JSON Schema and Protobuf rules (sans-IO: no registry, no topic)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from google.protobuf import descriptor_pb2

from suoi.http.registry.compatibility import check
from suoi.http.registry.formats import SchemaParseError, parse_schema


def avro(obj: Any) -> Any:
    return parse_schema("AVRO", json.dumps(obj), [])


def rec(*fields: dict[str, Any], name: str = "R", **extra: Any) -> dict[str, Any]:
    return {"type": "record", "name": name, "fields": list(fields), **extra}


A = {"name": "a", "type": "int"}
LINKED = rec({"name": "v", "type": "int"}, {"name": "next", "type": ["null", "R"], "default": None})

# (reader, writer, readable?): the reader is the schema that reads data the writer wrote
AVRO_CASES = [
    (rec(A, {"name": "b", "type": "string"}), rec(A), False),  # added without default
    (rec(A, {"name": "b", "type": "string", "default": ""}), rec(A), True),  # added with default
    (rec(A), rec(A, {"name": "b", "type": "string"}), True),  # removed: the reader skips it
    (rec({"name": "a", "type": "long"}), rec(A), True),  # int -> long promotion
    (rec(A), rec({"name": "a", "type": "long"}), False),  # long cannot shrink to int
    (rec({"name": "a", "type": "double"}), rec({"name": "a", "type": "float"}), True),
    (rec({"name": "a", "type": "bytes"}), rec({"name": "a", "type": "string"}), True),
    (rec({"name": "a", "type": "string"}), rec(A), False),
    (rec(A, name="Other"), rec(A), False),  # record renamed
    (rec(A, name="Other", aliases=["R"]), rec(A), True),  # ... unless aliased
    (rec({"name": "x", "type": "int", "aliases": ["a"]}), rec(A), True),  # field alias
    ({"type": "enum", "name": "E", "symbols": ["A", "B", "C"]}, {"type": "enum", "name": "E", "symbols": ["A", "B"]}, True),
    ({"type": "enum", "name": "E", "symbols": ["A"]}, {"type": "enum", "name": "E", "symbols": ["A", "B"]}, False),
    ({"type": "enum", "name": "E", "symbols": ["A"], "default": "A"}, {"type": "enum", "name": "E", "symbols": ["A", "B"]}, True),
    ({"type": "fixed", "name": "F", "size": 16}, {"type": "fixed", "name": "F", "size": 8}, False),
    (["null", "int", "string"], ["null", "int"], True),  # union widened
    (["null", "int"], ["null", "int", "string"], False),  # a writer branch the reader lacks
    (["null", "long"], "int", True),  # a reader union with a branch that reads the writer
    ("int", ["null", "int"], False),
    ({"type": "array", "items": "long"}, {"type": "array", "items": "int"}, True),
    ({"type": "map", "values": "int"}, {"type": "map", "values": "long"}, False),
    (LINKED, LINKED, True),  # recursive: terminates
    (rec({"name": "v", "type": "long"}, {"name": "next", "type": ["null", "R"], "default": None}), LINKED, True),
    ({"type": "long", "logicalType": "timestamp-millis"}, "long", True),  # logical types do not matter
]


@pytest.mark.parametrize(("reader", "writer", "readable"), AVRO_CASES)
def test_avro_schema_resolution(reader: Any, writer: Any, readable: bool) -> None:
    errors = avro(reader).compatibility_errors(avro(writer))
    assert (not errors) is readable, errors


def test_levels_and_transitivity() -> None:
    v1 = avro(rec(A))
    v2 = avro(rec(A, {"name": "b", "type": "int", "default": 0}))
    v3 = avro(rec({"name": "b", "type": "int", "default": 0}))  # drops a (no default in v1's reader)
    history = [(1, v1), (2, v2)]
    assert check("BACKWARD", v3, history) == []  # v3 reads v2's data
    assert check("FORWARD", v3, history)  # v2 cannot read v3's data: its field a has no default
    new_without_default = avro(rec(A, {"name": "c", "type": "int"}))
    assert check("BACKWARD", new_without_default, history)  # cannot read v2's data
    assert check("FORWARD", new_without_default, history) == []  # v2 reads it (skips c)
    assert check("FULL", new_without_default, history)
    assert check("NONE", new_without_default, history) == []
    # transitive: compatible with the latest, not with the first
    w1 = avro(rec({"name": "a", "type": "int"}))
    w2 = avro(rec({"name": "a", "type": "long"}))
    w3 = avro(rec({"name": "a", "type": "long"}, {"name": "z", "type": "int", "default": 1}))
    assert check("FORWARD", w3, [(1, w1), (2, w2)]) == []  # w2 (long) reads w3
    assert check("FORWARD_TRANSITIVE", w3, [(1, w1), (2, w2)])  # w1 (int) cannot read a long
    assert "oldSchemaVersion: 1" in check("FORWARD_TRANSITIVE", w3, [(1, w1), (2, w2)])[-1]


def test_forward_with_missing_field_without_default() -> None:
    old = avro(rec(A, {"name": "b", "type": "int"}))
    new = avro(rec({"name": "b", "type": "int"}))  # drops a, which the old reader needs (no default)
    assert check("BACKWARD", new, [(1, old)]) == []
    assert check("FORWARD", new, [(1, old)])


@pytest.mark.parametrize("text", ["{", '{"type": "record", "name": "R"}', '{"type": "enum", "name": "E"}',
                                  '"nosuchtype"', '{"type": "record", "name": "R", "fields": [{"name": "a"}]}',
                                  '{"type": "record", "name": "R", "fields": [{"name": "a", "type": "int", "default": "x"}]}'])
def test_avro_invalid_schemas_are_refused(text: str) -> None:
    with pytest.raises(SchemaParseError):
        parse_schema("AVRO", text, [])


def test_avro_references_resolve_named_types() -> None:
    address = json.dumps({"type": "record", "name": "Address", "namespace": "shop",
                          "fields": [{"name": "city", "type": "string"}]})
    person = json.dumps({"type": "record", "name": "Person", "namespace": "shop",
                         "fields": [{"name": "home", "type": "shop.Address"}]})
    with pytest.raises(SchemaParseError):
        parse_schema("AVRO", person, [])
    parsed = parse_schema("AVRO", person, [("shop.Address", address)])
    assert parsed.compatibility_errors(parsed) == []


def js(obj: Any) -> Any:
    return parse_schema("JSON", json.dumps(obj), [])


OBJ = {"type": "object", "properties": {"id": {"type": "integer"}}}
CLOSED = {**OBJ, "additionalProperties": False}
JSON_CASES = [  # (reader, writer, readable?)
    ({"type": "number"}, {"type": "integer"}, True),
    ({"type": "integer"}, {"type": "number"}, False),
    ({"type": ["string", "null"]}, {"type": "string"}, True),
    ({"type": "string"}, {"type": ["string", "null"]}, False),
    ({"enum": ["a", "b", "c"]}, {"enum": ["a", "b"]}, True),
    ({"enum": ["a"]}, {"enum": ["a", "b"]}, False),
    ({"type": "string", "maxLength": 5}, {"type": "string", "maxLength": 10}, False),
    ({"type": "string", "maxLength": 10}, {"type": "string", "maxLength": 5}, True),
    ({**OBJ, "required": ["id"]}, OBJ, False),  # required added
    (OBJ, {**OBJ, "required": ["id"]}, True),
    ({**OBJ, "properties": {**OBJ["properties"], "n": {"type": "string"}}}, OBJ, False),  # added to an open model
    ({**CLOSED, "properties": {**OBJ["properties"], "n": {"type": "string"}}}, CLOSED, True),  # ... to a closed one
    ({**CLOSED, "properties": {}}, CLOSED, False),  # removed from a closed reader
    ({**OBJ, "properties": {}}, OBJ, True),  # removed from an open reader
    (CLOSED, OBJ, False),  # additionalProperties closed
    (OBJ, CLOSED, True),
    ({"type": "array", "items": {"type": "number"}}, {"type": "array", "items": {"type": "integer"}}, True),
    ({"oneOf": [{"type": "string"}, {"type": "integer"}]}, {"type": "string"}, True),
    ({"type": "string"}, {"oneOf": [{"type": "string"}, {"type": "integer"}]}, False),
]


@pytest.mark.parametrize(("reader", "writer", "readable"), JSON_CASES)
def test_json_schema_rules(reader: Any, writer: Any, readable: bool) -> None:
    errors = js(reader).compatibility_errors(js(writer))
    assert (not errors) is readable, errors


def test_json_schema_invalid_is_refused() -> None:
    for text in ('{"type": "banana"}', "[1]", "nope", '{"minLength": -1}'):
        with pytest.raises(SchemaParseError):
            parse_schema("JSON", text, [])


F = descriptor_pb2.FieldDescriptorProto


def proto(fields: list[tuple[str, int, int]], *, package: str = "p", extra_message: bool = False,
          type_name: str = "") -> Any:
    fdp = descriptor_pb2.FileDescriptorProto(name="x.proto", package=package, syntax="proto3")
    m = fdp.message_type.add(name="M")
    for name, number, kind in fields:
        f = m.field.add(name=name, number=number, type=kind, label=F.LABEL_OPTIONAL)
        if kind == F.TYPE_MESSAGE:
            f.type_name = type_name or ".p.N"
    if extra_message or type_name or any(k == F.TYPE_MESSAGE for _, _, k in fields):
        fdp.message_type.add(name="N").field.add(name="z", number=1, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
        fdp.message_type.add(name="O")
    return parse_schema("PROTOBUF", base64.b64encode(fdp.SerializeToString()).decode(), [])


PROTO_CASES = [
    (proto([("a", 1, F.TYPE_INT32), ("b", 2, F.TYPE_STRING)]), proto([("a", 1, F.TYPE_INT32)]), True),  # added
    (proto([("a", 1, F.TYPE_INT32)]), proto([("a", 1, F.TYPE_INT32), ("b", 2, F.TYPE_STRING)]), True),  # removed
    (proto([("renamed", 1, F.TYPE_INT32)]), proto([("a", 1, F.TYPE_INT32)]), True),  # numbers matter, not names
    (proto([("a", 1, F.TYPE_INT64)]), proto([("a", 1, F.TYPE_INT32)]), True),  # same wire group
    (proto([("a", 1, F.TYPE_STRING)]), proto([("a", 1, F.TYPE_INT32)]), False),
    (proto([("a", 1, F.TYPE_MESSAGE)]), proto([("a", 1, F.TYPE_INT32)]), False),
    (proto([("a", 1, F.TYPE_MESSAGE)], type_name=".p.O"), proto([("a", 1, F.TYPE_MESSAGE)]), False),
    (proto([("a", 1, F.TYPE_INT32)]), proto([("a", 1, F.TYPE_INT32)], extra_message=True), False),  # message removed
    (proto([("a", 1, F.TYPE_INT32)], package="q"), proto([("a", 1, F.TYPE_INT32)]), False),
]


@pytest.mark.parametrize(("reader", "writer", "readable"), PROTO_CASES)
def test_protobuf_rules(reader: Any, writer: Any, readable: bool) -> None:
    errors = reader.compatibility_errors(writer)
    assert (not errors) is readable, errors


def test_protobuf_text_form_reads_like_the_descriptor_form() -> None:
    text = """
        syntax = "proto3";
        package p;
        import "google/protobuf/timestamp.proto";
        message M {            // comments, options, reserved ranges and services are skipped
          option deprecated = false;
          int32 a = 1;
          optional string b = 2 [deprecated = true];
          map<string, N> by_name = 3;
          oneof choice { int64 c = 4; E e = 5; }
          google.protobuf.Timestamp at = 6;
          reserved 7, 9 to 11;
          message N { repeated bytes z = 1; }
          enum E { E0 = 0; E1 = 1; }
        }
        service S { rpc Get(M) returns (M); }
    """
    parsed = parse_schema("PROTOBUF", text, [])
    m = parsed.file.message_type[0]
    assert [(f.name, f.number) for f in m.field] == [("a", 1), ("b", 2), ("by_name", 3), ("c", 4), ("e", 5), ("at", 6)]
    assert [f.type_name for f in m.field if f.type_name] == [".p.M.ByNameEntry", ".p.M.E", ".google.protobuf.Timestamp"]
    assert [o.name for o in m.oneof_decl] == ["choice", "_b"] and m.field[1].proto3_optional
    again = parse_schema("PROTOBUF", parsed.serialized(), [])  # base64 form of the same file
    assert again.file == parsed.file and again.compatibility_errors(parsed) == []
    changed = parse_schema("PROTOBUF", text.replace("int32 a = 1", "string a = 1"), [])
    assert changed.compatibility_errors(parsed)


@pytest.mark.parametrize("text", ['syntax = "proto3"; message M { int32 a = ; }', "message M { Unknown u = 1; }",
                                  "message M { int32 a = 1;", "enum E { A = 0; } garbage", "c3ludGF4"])
def test_protobuf_invalid_schemas_are_refused(text: str) -> None:
    with pytest.raises(SchemaParseError):
        parse_schema("PROTOBUF", text, [])


def test_protobuf_imports_need_references() -> None:
    dep = 'syntax = "proto3"; package q; message Money { int64 units = 1; }'
    text = 'syntax = "proto3"; package p; import "money.proto"; message M { q.Money price = 1; }'
    with pytest.raises(SchemaParseError, match="money.proto"):
        parse_schema("PROTOBUF", text, [])
    parsed = parse_schema("PROTOBUF", text, [("money.proto", dep)])
    assert parsed.file.message_type[0].field[0].type_name == ".q.Money"
