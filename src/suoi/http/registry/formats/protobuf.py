"""Protobuf: schemas as serialized ``FileDescriptorProto`` (base64), checked by the protobuf runtime's
``DescriptorPool``, and compared by Confluent's documented Protobuf rules.

Two forms: confluent-kafka's ``ProtobufSerializer`` registers (and with ``format=serialized`` reads
back) the base64 of the message's ``FileDescriptorProto``; Java clients and people send ``.proto``
text, read by ``proto_text`` (the runtime has no compiler). Imports are references whose names are
the import paths (Google's well-known types resolve without one). ``serialized()`` gives the base64
form of either, for ``format=serialized``.

Rules (reader = new, writer = old): the package may not change; no message may be removed; a field
(by number) may change its scalar type only within a wire-compatible group (int32/uint32/int64/
uint64/bool, sint32/sint64, string/bytes, fixed32/sfixed32, fixed64/sfixed64); a message or enum
field may not change type, nor become scalar or the reverse; proto2 ``required`` fields may be
neither added nor removed; several existing fields may not move into one oneof. Adding or removing
optional fields and enum values is compatible.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from google.protobuf import (  # noqa: F401  (imported: registers Google's well-known types in the default pool)
    any_pb2,
    api_pb2,
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    empty_pb2,
    field_mask_pb2,
    source_context_pb2,
    struct_pb2,
    timestamp_pb2,
    type_pb2,
    wrappers_pb2,
)
from google.protobuf.message import DecodeError

from suoi.http.registry.formats import ParsedSchema, Reference, SchemaParseError
from suoi.http.registry.formats.proto_text import parse_proto_text

__all__ = ["ProtobufSchema", "build", "parse"]

F = descriptor_pb2.FieldDescriptorProto
_NAMED = {F.TYPE_MESSAGE, F.TYPE_ENUM, F.TYPE_GROUP}
_GROUPS = [{F.TYPE_INT32, F.TYPE_UINT32, F.TYPE_INT64, F.TYPE_UINT64, F.TYPE_BOOL}, {F.TYPE_SINT32, F.TYPE_SINT64},
           {F.TYPE_STRING, F.TYPE_BYTES}, {F.TYPE_FIXED32, F.TYPE_SFIXED32}, {F.TYPE_FIXED64, F.TYPE_SFIXED64}]


@dataclass(eq=False)
class ProtobufSchema:
    text: str
    file: descriptor_pb2.FileDescriptorProto
    schema_type: str = "PROTOBUF"

    def normalized(self) -> str:
        return self.serialized()

    def serialized(self) -> str:
        """The base64 FileDescriptorProto (types resolved), whatever form was registered."""
        return base64.standard_b64encode(self.file.SerializeToString(deterministic=True)).decode()

    def compatibility_errors(self, writer: ParsedSchema) -> list[str]:
        if not isinstance(writer, ProtobufSchema):
            return [f"TYPE_MISMATCH: the old schema is {writer.schema_type}, not PROTOBUF"]
        errors: list[str] = []
        if self.file.package != writer.file.package:
            errors.append(f"{{errorType:'PACKAGE_CHANGED', description:'package {writer.file.package!r} "
                          f"became {self.file.package!r}'}}")
        mine = _messages(self.file.package, self.file.message_type)
        for name, old in _messages(writer.file.package, writer.file.message_type).items():
            new = mine.get(name)
            if new is None:
                errors.append(f"{{errorType:'MESSAGE_REMOVED', description:'message {name} was removed'}}")
            else:
                _compare_message(name, new, old, errors)
        return errors


def _decode(name: str, text: str) -> descriptor_pb2.FileDescriptorProto:
    """Either form: base64 of a serialized FileDescriptorProto, or .proto text."""
    stripped = text.strip()
    if re.fullmatch(r"[A-Za-z0-9+/=\s]+", stripped) and stripped:
        try:
            fdp = descriptor_pb2.FileDescriptorProto.FromString(base64.standard_b64decode(stripped.encode("ascii")))
        except (binascii.Error, ValueError, DecodeError):
            raise SchemaParseError("neither .proto text nor a base64 serialized FileDescriptorProto") from None
    else:
        fdp = parse_proto_text(text, name)
    if not fdp.name:
        fdp.name = name
    return fdp


def parse(text: str, references: list[Reference]) -> ProtobufSchema:
    resolved = descriptor_pb2.FileDescriptorProto()
    build(text, references).CopyToProto(resolved)  # type names fully qualified, field types filled in
    return ProtobufSchema(text, resolved)


def build(text: str, references: list[Reference]) -> Any:
    """The schema as the runtime's built ``FileDescriptor``, in a pool of its own with its references
    (and the well-known types it imports): what a dynamic message class is made from (the
    console's message browser decodes values with it)."""
    pool = descriptor_pool.DescriptorPool()
    default = descriptor_pool.Default()
    main = _decode("schema.proto", text)
    try:
        added = set()
        deps = [(name, _decode(name, ref_text)) for name, ref_text in references]
        wanted = {d for _, f in deps for d in f.dependency} | set(main.dependency)
        for dep in sorted(wanted - {f.name for _, f in deps}):
            if not dep.startswith("google/protobuf/"):
                raise SchemaParseError(f"import {dep!r} is not among the schema's references")
            known = default.FindFileByName(dep)
            proto = descriptor_pb2.FileDescriptorProto()
            known.CopyToProto(proto)
            pool.Add(proto)
        for _, fdp in deps:
            if fdp.name not in added:
                pool.Add(fdp)
                added.add(fdp.name)
        pool.Add(main)
        return pool.FindFileByName(main.name)  # builds it: unknown types, duplicate numbers, ... fail here
    except SchemaParseError:
        raise
    except (TypeError, KeyError, ValueError) as exc:
        raise SchemaParseError(str(exc)) from None


def _messages(prefix: str, messages: Any) -> dict[str, descriptor_pb2.DescriptorProto]:
    out: dict[str, descriptor_pb2.DescriptorProto] = {}
    for m in messages:
        full = f"{prefix}.{m.name}" if prefix else m.name
        out[full] = m
        out.update(_messages(full, m.nested_type))
    return out


def _compare_message(name: str, new: descriptor_pb2.DescriptorProto, old: descriptor_pb2.DescriptorProto,
                     errors: list[str]) -> None:
    new_fields = {f.number: f for f in new.field}
    old_fields = {f.number: f for f in old.field}
    for number, of in old_fields.items():
        nf = new_fields.get(number)
        where = f"message {name} field {number}"
        if nf is None:
            if of.label == F.LABEL_REQUIRED:
                errors.append(f"{{errorType:'REQUIRED_FIELD_REMOVED', description:'{where}'}}")
            continue
        if (of.type in _NAMED) != (nf.type in _NAMED):
            errors.append(f"{{errorType:'FIELD_KIND_CHANGED', description:'{where}'}}")
        elif of.type in _NAMED:
            if of.type_name.lstrip(".") != nf.type_name.lstrip("."):
                errors.append(f"{{errorType:'FIELD_NAMED_TYPE_CHANGED', description:'{where}: "
                              f"{of.type_name.lstrip('.')} became {nf.type_name.lstrip('.')}'}}")
        elif of.type != nf.type and not any(of.type in g and nf.type in g for g in _GROUPS):
            errors.append(f"{{errorType:'FIELD_SCALAR_KIND_CHANGED', description:'{where}'}}")
    for number, nf in new_fields.items():
        if number not in old_fields and nf.label == F.LABEL_REQUIRED:
            errors.append(f"{{errorType:'REQUIRED_FIELD_ADDED', description:'message {name} field {number}'}}")
    moved: dict[int, int] = {}
    for number, nf in new_fields.items():
        of = old_fields.get(number)
        if (of is not None and nf.HasField("oneof_index") and not nf.proto3_optional
                and not of.HasField("oneof_index")):
            moved[nf.oneof_index] = moved.get(nf.oneof_index, 0) + 1
    if any(count > 1 for count in moved.values()):
        errors.append(f"{{errorType:'MULTIPLE_FIELDS_MOVED_TO_ONEOF', description:'message {name}'}}")
