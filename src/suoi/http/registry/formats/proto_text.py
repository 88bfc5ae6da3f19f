"""A ``.proto`` file's text -> an unresolved ``FileDescriptorProto`` (the form Java clients and ``curl``
users register). The protobuf runtime has no ``.proto`` compiler; this reads the declarations a
schema needs (syntax, package, imports, messages with fields, maps, oneofs, proto3 ``optional``,
nested types, enums) and skips what does not change the data's shape (options, reserved ranges,
extensions, services). Type names are left as written: the runtime's ``DescriptorPool`` resolves
them by protobuf's scoping rules and fails on unknown ones, as protoc would.
"""

from __future__ import annotations

import re

from google.protobuf import descriptor_pb2

from suoi.http.registry.formats import SchemaParseError

__all__ = ["parse_proto_text"]

F = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    "double": F.TYPE_DOUBLE, "float": F.TYPE_FLOAT, "int64": F.TYPE_INT64, "uint64": F.TYPE_UINT64,
    "int32": F.TYPE_INT32, "fixed64": F.TYPE_FIXED64, "fixed32": F.TYPE_FIXED32, "bool": F.TYPE_BOOL,
    "string": F.TYPE_STRING, "bytes": F.TYPE_BYTES, "uint32": F.TYPE_UINT32, "sfixed32": F.TYPE_SFIXED32,
    "sfixed64": F.TYPE_SFIXED64, "sint32": F.TYPE_SINT32, "sint64": F.TYPE_SINT64,
}
_LABELS = {"optional": F.LABEL_OPTIONAL, "required": F.LABEL_REQUIRED, "repeated": F.LABEL_REPEATED}
_TOKEN = re.compile(r"""
    \s+ | //[^\n]* | /\*.*?\*/                               # space and comments: skipped
  | (?P<tok>
      "(?:[^"\\]|\\.)*" | '(?:[^'\\]|\\.)*'                    # strings
    | \.?[A-Za-z_][\w.]*                                      # names, dotted and fully qualified
    | -?(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)    # numbers
    | [{}\[\]()<>;=,:-] )                                     # punctuation
""", re.S | re.X)


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise SchemaParseError(f"unexpected character {text[pos]!r} at offset {pos}")
        if m.group("tok") is not None:
            out.append(m.group("tok"))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str, name: str) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.file = descriptor_pb2.FileDescriptorProto(name=name)
        self.proto3 = False

    def peek(self) -> str:
        return self.toks[self.i] if self.i < len(self.toks) else ""

    def next(self) -> str:
        if self.i >= len(self.toks):
            raise SchemaParseError("unexpected end of the .proto text")
        self.i += 1
        return self.toks[self.i - 1]

    def expect(self, tok: str) -> None:
        got = self.next()
        if got != tok:
            raise SchemaParseError(f"expected {tok!r}, found {got!r}")

    def ident(self) -> str:
        tok = self.next()
        if not re.fullmatch(r"\.?[A-Za-z_][\w.]*", tok):
            raise SchemaParseError(f"expected a name, found {tok!r}")
        return tok

    def number(self) -> int:
        tok = self.next()
        try:
            return int(tok, 0)
        except ValueError:
            raise SchemaParseError(f"expected a number, found {tok!r}") from None

    def string(self) -> str:
        tok = self.next()
        if tok[:1] not in ("'", '"'):
            raise SchemaParseError(f"expected a string, found {tok!r}")
        return tok[1:-1]

    def skip_statement(self) -> None:
        """Up to and including the next ';' at this depth, or a balanced {...} block."""
        depth = 0
        while True:
            tok = self.next()
            if tok in ("{", "[", "("):
                depth += 1
            elif tok in ("}", "]", ")"):
                depth -= 1
                if depth == 0 and tok == "}":
                    if self.peek() == ";":
                        self.next()
                    return
            elif tok == ";" and depth == 0:
                return

    # ------------------------------------------------------------------ file
    def parse(self) -> descriptor_pb2.FileDescriptorProto:
        while self.peek():
            tok = self.next()
            if tok in ("syntax", "edition"):
                self.expect("=")
                value = self.string()
                self.expect(";")
                self.proto3 = value == "proto3"
                if tok == "syntax":
                    self.file.syntax = value
            elif tok == "package":
                self.file.package = self.ident()
                self.expect(";")
            elif tok == "import":
                if self.peek() in ("public", "weak"):
                    self.next()
                self.file.dependency.append(self.string())
                self.expect(";")
            elif tok == "message":
                self.message(self.file.message_type.add())
            elif tok == "enum":
                self.enum(self.file.enum_type.add())
            elif tok in ("option", "service", "extend"):
                self.skip_statement()
            elif tok != ";":
                raise SchemaParseError(f"unexpected {tok!r} at the top of the .proto text")
        return self.file

    def message(self, msg: descriptor_pb2.DescriptorProto) -> None:
        msg.name = self.ident()
        self.expect("{")
        while (tok := self.peek()) != "}":
            if tok == "message":
                self.next()
                self.message(msg.nested_type.add())
            elif tok == "enum":
                self.next()
                self.enum(msg.enum_type.add())
            elif tok == "oneof":
                self.next()
                index = len(msg.oneof_decl)
                msg.oneof_decl.add(name=self.ident())
                self.expect("{")
                while self.peek() != "}":
                    if self.peek() == "option":
                        self.skip_statement()
                    else:
                        self.field(msg, oneof=index)
                self.expect("}")
            elif tok in ("option", "reserved", "extensions", "extend"):
                self.skip_statement()
            elif tok == ";":
                self.next()
            elif tok == "":
                raise SchemaParseError(f"message {msg.name} is not closed")
            else:
                self.field(msg)
        self.expect("}")
        for f in msg.field:  # synthetic oneofs come after every real one
            if f.proto3_optional:
                f.oneof_index = len(msg.oneof_decl)
                msg.oneof_decl.add(name=f"_{f.name}")

    def field(self, msg: descriptor_pb2.DescriptorProto, oneof: int | None = None) -> None:
        label = _LABELS.get(self.peek())
        explicit_optional = self.peek() == "optional"
        if label is not None:
            self.next()
        kind = self.ident() if self.peek() != "map" else self.next()
        f = msg.field.add()
        if kind == "map":
            self.expect("<")
            key = self.ident()
            self.expect(",")
            value = self.ident()
            self.expect(">")
            f.name = self.ident()
            entry = msg.nested_type.add(name="".join(p[:1].upper() + p[1:] for p in f.name.split("_")) + "Entry")
            entry.options.map_entry = True
            for name, number, t in (("key", 1, key), ("value", 2, value)):
                self._set_type(entry.field.add(name=name, number=number, label=F.LABEL_OPTIONAL), t)
            f.label = F.LABEL_REPEATED
            f.type_name = entry.name
        else:
            f.name = self.ident()
            f.label = label if label is not None else F.LABEL_OPTIONAL
            self._set_type(f, kind)
        self.expect("=")
        f.number = self.number()
        if self.peek() == "[":
            self._field_options(f)
        self.expect(";")
        if oneof is not None:
            f.oneof_index = oneof
        elif explicit_optional and self.proto3:  # proto3 `optional`: a synthetic oneof (added last, see message)
            f.proto3_optional = True

    @staticmethod
    def _set_type(f: descriptor_pb2.FieldDescriptorProto, kind: str) -> None:
        if kind in _SCALARS:
            f.type = _SCALARS[kind]
        else:
            f.type_name = kind  # resolved by the DescriptorPool

    def _field_options(self, f: descriptor_pb2.FieldDescriptorProto) -> None:
        self.expect("[")
        depth = 1
        while depth:
            tok = self.next()
            if tok == "[":
                depth += 1
            elif tok == "]":
                depth -= 1
            elif tok == "packed" and self.peek() == "=":
                self.next()
                f.options.packed = self.next() == "true"
            elif tok == "deprecated" and self.peek() == "=":
                self.next()
                f.options.deprecated = self.next() == "true"
            elif tok == "default" and self.peek() == "=":
                self.next()
                value = self.next()
                f.default_value = value[1:-1] if value[:1] in ("'", '"') else value

    def enum(self, enum: descriptor_pb2.EnumDescriptorProto) -> None:
        enum.name = self.ident()
        self.expect("{")
        while (tok := self.peek()) != "}":
            if tok in ("option", "reserved"):
                self.skip_statement()
            elif tok == ";":
                self.next()
            elif tok == "":
                raise SchemaParseError(f"enum {enum.name} is not closed")
            else:
                value = enum.value.add(name=self.ident())
                self.expect("=")
                value.number = self.number()
                if self.peek() == "[":
                    self.skip_statement_options()
                self.expect(";")
        self.expect("}")

    def skip_statement_options(self) -> None:
        self.expect("[")
        depth = 1
        while depth:
            tok = self.next()
            depth += {"[": 1, "]": -1}.get(tok, 0)


def parse_proto_text(text: str, name: str = "schema.proto") -> descriptor_pb2.FileDescriptorProto:
    return _Parser(text, name).parse()
