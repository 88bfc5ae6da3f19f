"""Schema-registry record formats for `suoi console-producer` / `console-consumer` (Confluent's
kafka-avro-console-producer and friends): `--value-format avro|json-schema|protobuf` (and
`--key-format`), `--schema-registry URL` or `--property schema.registry.url=URL`, and the schema as
`--property value.schema=...` / `value.schema.file=FILE` (`key.schema...` for keys).

The producer reads each key/value as JSON and writes Confluent's framing (magic byte, schema id,
payload) with confluent-kafka's serializers, registering the schema under the topic's subject
(TopicNameStrategy); the consumer decodes with the writer's schema (fetched by id) and prints JSON.
Protobuf schemas are .proto text (read by `suoi.http.registry.formats.proto_text`); the first
message of the file is the record's type.
"""

from __future__ import annotations

import argparse
import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from suoi.cli.common import CliError

FORMATS = ("string", "avro", "json-schema", "protobuf")
SCHEMA_PROPS = {"schema.registry.url", "value.schema", "key.schema", "value.schema.file", "key.schema.file"}


def add_format_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--value-format", choices=FORMATS, default="string",
                   help="string (bytes as given, the default) or a schema registry format")
    p.add_argument("--key-format", choices=FORMATS, default="string", help="as --value-format, for keys")
    p.add_argument("--schema-registry", metavar="URL", help="the schema registry (or --property schema.registry.url)")


def split_props(props: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(the tool's own properties, the schema ones)."""
    return ({k: v for k, v in props.items() if k not in SCHEMA_PROPS},
            {k: v for k, v in props.items() if k in SCHEMA_PROPS})


class Codec:
    """Encoders (producer) or decoders (consumer) for a topic's keys and values."""

    def __init__(self, args: argparse.Namespace, schema_props: dict[str, str]) -> None:
        self.formats = {"key": args.key_format, "value": args.value_format}
        self.props = schema_props
        url = args.schema_registry or schema_props.get("schema.registry.url")
        self.client: Any = None
        if any(f != "string" for f in self.formats.values()):
            if not url:
                raise CliError("a schema format needs --schema-registry URL (or --property schema.registry.url=URL)")
            from confluent_kafka.schema_registry import SchemaRegistryClient

            self.client = SchemaRegistryClient({"url": url})
        self._encoders: dict[str, Callable[[Any, Any], bytes]] = {}
        self._decoders: dict[str, Callable[[bytes, Any], Any]] = {}

    def _schema(self, field: str) -> str:
        text = self.props.get(f"{field}.schema")
        path = self.props.get(f"{field}.schema.file")
        if text is None and path is not None:
            try:
                text = Path(path).read_text()
            except OSError as exc:
                raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
        if text is None:
            raise CliError(f"--{field}-format {self.formats[field]} needs --property {field}.schema=... "
                           f"(or {field}.schema.file=FILE)")
        return text

    # ------------------------------------------------------------------ producer
    def encode(self, field: str, topic: str, raw: bytes | None) -> bytes | None:
        fmt = self.formats[field]
        if fmt == "string" or raw is None:
            return raw
        from confluent_kafka.serialization import MessageField, SerializationContext

        try:
            obj = json.loads(raw)
        except ValueError as exc:
            raise CliError(f"the {field} is not JSON: {exc}: {raw[:80]!r}") from None
        encoder = self._encoders.get(field) or self._encoders.setdefault(field, self._encoder(field, fmt))
        try:
            return encoder(obj, SerializationContext(topic, MessageField.VALUE if field == "value" else MessageField.KEY))
        except CliError:
            raise
        except Exception as exc:  # the serializer's validation or the registry's refusal, in one line
            raise CliError(f"cannot serialize the {field}: {exc}") from None

    def _encoder(self, field: str, fmt: str) -> Callable[[Any, Any], bytes]:
        schema = self._schema(field)
        if fmt == "avro":
            from confluent_kafka.schema_registry.avro import AvroSerializer

            return AvroSerializer(self.client, schema)  # type: ignore[no-any-return]
        if fmt == "json-schema":
            from confluent_kafka.schema_registry.json_schema import JSONSerializer

            return JSONSerializer(schema, self.client)  # type: ignore[no-any-return]
        from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
        from google.protobuf import json_format

        cls = _first_message_class(_proto_from_text(schema), [])
        serializer = ProtobufSerializer(cls, self.client, {"use.deprecated.format": False})

        def encode(obj: Any, ctx: Any) -> bytes:
            try:
                message = json_format.ParseDict(obj, cls())
            except json_format.ParseError as exc:
                raise CliError(f"the {field} does not fit the protobuf message: {exc}") from None
            return serializer(message, ctx)  # type: ignore[no-any-return]
        return encode

    # ------------------------------------------------------------------ consumer
    def decode(self, field: str, topic: str, raw: bytes | None) -> bytes | None:
        fmt = self.formats[field]
        if fmt == "string" or raw is None:
            return raw
        from confluent_kafka.serialization import MessageField, SerializationContext

        ctx = SerializationContext(topic, MessageField.VALUE if field == "value" else MessageField.KEY)
        decoder = self._decoders.get(field) or self._decoders.setdefault(field, self._decoder(fmt))
        try:
            obj = decoder(raw, ctx)
        except Exception as exc:  # not framed, unknown id, ...: shown, not fatal
            return f"<cannot decode the {field}: {exc}>".encode()
        return json.dumps(obj, default=str).encode()

    def _decoder(self, fmt: str) -> Callable[[bytes, Any], Any]:
        if fmt == "avro":
            from confluent_kafka.schema_registry.avro import AvroDeserializer

            return AvroDeserializer(self.client)  # type: ignore[no-any-return]
        if fmt == "json-schema":
            from confluent_kafka.schema_registry.json_schema import JSONDeserializer

            return JSONDeserializer(None, schema_registry_client=self.client)  # type: ignore[no-any-return]
        return self._decode_protobuf

    def _decode_protobuf(self, raw: bytes, ctx: Any) -> Any:
        from google.protobuf import json_format

        if len(raw) < 6 or raw[0] != 0:
            raise ValueError("not Confluent's framing (magic byte 0, schema id)")
        schema_id = int.from_bytes(raw[1:5], "big")
        indexes, pos = _message_indexes(raw, 5)
        schema = self.client.get_schema(schema_id, fmt="serialized")
        deps = [self.client.get_version(r.subject, r.version, True, "serialized").schema.schema_str
                for r in schema.references or []]
        cls = _first_message_class(_proto_from_b64(schema.schema_str), [_proto_from_b64(d) for d in deps], indexes)
        message = cls()
        message.ParseFromString(raw[pos:])
        return json_format.MessageToDict(message)


def _zigzag(raw: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = raw[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return (value >> 1) ^ -(value & 1), pos


def _message_indexes(raw: bytes, pos: int) -> tuple[list[int], int]:
    """Confluent's message-index path after the schema id ([0]: the file's first message)."""
    count, pos = _zigzag(raw, pos)
    if count == 0:
        return [0], pos
    out = []
    for _ in range(count):
        index, pos = _zigzag(raw, pos)
        out.append(index)
    return out, pos


def _proto_from_text(text: str) -> Any:
    from suoi.http.registry.formats import SchemaParseError
    from suoi.http.registry.formats.proto_text import parse_proto_text

    try:
        return parse_proto_text(text, "console.proto")
    except SchemaParseError as exc:
        raise CliError(f"the protobuf schema: {exc}") from None


def _proto_from_b64(text: str) -> Any:
    from google.protobuf import descriptor_pb2

    return descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(text))


def _first_message_class(fdp: Any, deps: list[Any], indexes: list[int] | None = None) -> Any:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    import suoi.http.registry.formats.protobuf  # noqa: F401  (registers the well-known types)

    pool = descriptor_pool.DescriptorPool()
    default = descriptor_pool.Default()
    for name in {d for f in [fdp, *deps] for d in f.dependency} - {f.name for f in deps}:
        proto = descriptor_pb2.FileDescriptorProto()
        default.FindFileByName(name).CopyToProto(proto)
        pool.Add(proto)
    for dep in deps:
        pool.Add(dep)
    pool.Add(fdp)
    pool.FindFileByName(fdp.name)  # builds it: unknown types fail here
    path = indexes or [0]
    if not 0 <= path[0] < len(fdp.message_type):
        raise CliError("the protobuf schema declares no such message")
    name = fdp.message_type[path[0]].name
    desc = pool.FindMessageTypeByName(f"{fdp.package}.{name}" if fdp.package else name)
    for i in path[1:]:
        desc = desc.nested_types[i]
    return message_factory.GetMessageClass(desc)
