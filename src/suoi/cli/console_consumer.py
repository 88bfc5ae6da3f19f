"""`suoi console-consumer`: kafka-console-consumer.sh -- print records to stdout.

Without --group the tool assigns partitions itself (every partition of the topic, or
--partition) and commits nothing. With --group it subscribes as a member of that group,
commits automatically and once more on exit (this needs the broker's group coordinator).
SIGINT/SIGTERM stop it cleanly: the consumer is closed (offsets committed in a group) and
"Processed a total of N messages" goes to stderr, as Kafka's tool does.
`--value-format avro|json-schema|protobuf` (and `--key-format`) decode a schema registry's framing
with the writer's schema and print JSON (Confluent's kafka-avro-console-consumer; see `schema_formats`).
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from suoi.cli.common import (
    CliError,
    add_common_args,
    client_config,
    cluster_metadata,
    guarded,
    is_internal,
    kafka_error_text,
    make_client,
    parse_kv,
    read_client_props,
)
from suoi.cli.schema_formats import Codec, add_format_args, split_props

FORMAT_PROPS = {"print.key", "print.value", "print.timestamp", "print.partition", "print.offset",
                "print.headers", "key.separator", "line.separator", "headers.separator",
                "headers.key.separator", "null.literal"}
# Accepted for compatibility with Kafka command lines; records are printed as raw bytes.
IGNORED_PROPS = {"key.deserializer", "value.deserializer", "headers.deserializer", "print.delivery"}


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "console-consumer", help="print records of a topic to stdout (kafka-console-consumer)",
        description="Read records and print them to stdout, one per line. Same flags as Kafka's "
        "kafka-console-consumer.sh.",
        epilog="example: suoi console-consumer --topic orders --from-beginning --bootstrap-server "
        "localhost:9092 --property print.key=true --max-messages 10",
    )
    add_common_args(p, command_config=False)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--topic", help="the topic to consume")
    src.add_argument("--include", "--whitelist", dest="include", metavar="REGEX",
                     help="consume every topic whose name matches this regular expression")
    p.add_argument("--partition", type=int, metavar="N", help="consume only this partition")
    p.add_argument("--offset", default=None, metavar="OFFSET",
                   help="with --partition: earliest, latest (default) or a non-negative offset")
    p.add_argument("--from-beginning", action="store_true",
                   help="start at the earliest offset (with --group: when the group has no committed offset)")
    p.add_argument("--group", metavar="GROUP", help="consumer group id (offsets are committed)")
    p.add_argument("--max-messages", type=int, metavar="N", help="exit after N records")
    p.add_argument("--timeout-ms", type=int, metavar="MS", help="exit when no record arrives for MS milliseconds")
    p.add_argument("--isolation-level", choices=("read_uncommitted", "read_committed"),
                   default="read_uncommitted", help="default read_uncommitted")
    p.add_argument("--property", action="append", default=[], metavar="KEY=VALUE",
                   help="formatter property, repeatable: print.key, print.value, print.timestamp, "
                   "print.partition, print.offset, print.headers, key.separator, line.separator, "
                   "headers.separator, headers.key.separator, null.literal")
    p.add_argument("--consumer-property", action="append", default=[], metavar="KEY=VALUE",
                   help="consumer config, repeatable (librdkafka names; wins over --consumer.config)")
    p.add_argument("--consumer.config", dest="consumer_config", metavar="FILE", help="consumer config file")
    p.add_argument("--skip-message-on-error", action="store_true", help="accepted for compatibility")
    add_format_args(p)
    p.set_defaults(func=guarded("console-consumer")(run))


class Formatter:
    """Kafka's DefaultMessageFormatter: [timestamp] [partition] [offset] [headers] [key] value."""

    def __init__(self, props: dict[str, str], codec: Codec | None = None) -> None:
        self.codec = codec
        unknown = sorted(set(props) - FORMAT_PROPS - IGNORED_PROPS)
        if unknown:
            raise CliError(f"unknown --property {unknown[0]} (known: {', '.join(sorted(FORMAT_PROPS))})")

        def flag(name: str, default: bool = False) -> bool:
            return props.get(name, str(default)).strip().lower() == "true"

        self.print_key = flag("print.key")
        self.print_value = flag("print.value", True)
        self.print_timestamp = flag("print.timestamp")
        self.print_partition = flag("print.partition")
        self.print_offset = flag("print.offset")
        self.print_headers = flag("print.headers")
        self.key_sep = _unescape(props.get("key.separator", "\t")).encode()
        self.line_sep = _unescape(props.get("line.separator", "\n")).encode()
        self.headers_sep = _unescape(props.get("headers.separator", ",")).encode()
        self.header_key_sep = _unescape(props.get("headers.key.separator", ":")).encode()
        self.null = props.get("null.literal", "null").encode()

    def format(self, msg: Any) -> bytes:
        fields: list[bytes] = []
        if self.print_timestamp:
            ts_type, ts = msg.timestamp()
            fields.append(f"{_TS_NAMES.get(ts_type, 'CreateTime')}:{ts}".encode() if ts_type else b"NO_TIMESTAMP")
        if self.print_partition:
            fields.append(b"Partition:%d" % msg.partition())
        if self.print_offset:
            fields.append(b"Offset:%d" % msg.offset())
        if self.print_headers:
            headers = msg.headers() or []
            fields.append(self.headers_sep.join(k.encode() + self.header_key_sep + (self.null if v is None else v)
                                                for k, v in headers) if headers else b"NO_HEADERS")
        if self.print_key:
            key = msg.key() if self.codec is None else self.codec.decode("key", msg.topic(), msg.key())
            fields.append(self.null if key is None else key)
        if self.print_value:
            value = msg.value() if self.codec is None else self.codec.decode("value", msg.topic(), msg.value())
            fields.append(self.null if value is None else value)
        return self.key_sep.join(fields) + self.line_sep


_TS_NAMES = {1: "CreateTime", 2: "LogAppendTime"}


def _unescape(s: str) -> str:
    return s.replace("\\t", "\t").replace("\\n", "\n").replace("\\r", "\r")


def _text(b: bytes | None) -> str | None:
    if b is None:
        return None
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(b).decode()


def as_json(msg: Any) -> bytes:
    ts_type, ts = msg.timestamp()
    doc = {"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(),
           "timestamp": ts if ts_type else None, "timestamp_type": _TS_NAMES.get(ts_type),
           "key": _text(msg.key()), "value": _text(msg.value()),
           "headers": [[k, _text(v)] for k, v in (msg.headers() or [])]}
    return json.dumps(doc).encode() + b"\n"


def _check_flags(args: argparse.Namespace) -> None:
    if args.offset is not None and args.partition is None:
        raise CliError("The partition is required when offset is specified.")
    if args.offset is not None and args.from_beginning:
        raise CliError("Options from-beginning and offset cannot be specified together.")
    if args.group and args.partition is not None:
        raise CliError("Options group and partition cannot be specified together.")
    if args.partition is not None and args.include:
        raise CliError("--partition needs --topic, not --include")
    if args.max_messages is not None and args.max_messages < 1:
        raise CliError("--max-messages must be at least 1")


def _start_offset(args: argparse.Namespace) -> int:
    from confluent_kafka import OFFSET_BEGINNING, OFFSET_END

    if args.from_beginning:
        return OFFSET_BEGINNING
    value = (args.offset or "latest").strip().lower()
    if value == "earliest":
        return OFFSET_BEGINNING
    if value == "latest":
        return OFFSET_END
    try:
        offset = int(value)
    except ValueError:
        raise CliError(f"--offset must be earliest, latest or a non-negative number, got {args.offset!r}") from None
    if offset < 0:
        raise CliError(f"--offset must be earliest, latest or a non-negative number, got {args.offset!r}")
    return offset


def run(args: argparse.Namespace) -> int:
    from confluent_kafka import Consumer, TopicPartition

    _check_flags(args)
    props, schema_props = split_props(parse_kv(args.property, "--property"))
    formatter = Formatter(props, Codec(args, schema_props))
    start = _start_offset(args)
    conf: dict[str, Any] = {
        "group.id": args.group or f"suoi-console-consumer-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": bool(args.group),
        "enable.auto.offset.store": True,
        "auto.offset.reset": "earliest" if args.from_beginning else "latest",
        "isolation.level": args.isolation_level,
        "enable.partition.eof": False,
    }
    file_props = read_client_props(Path(args.consumer_config)) if args.consumer_config else {}
    consumer = make_client(Consumer, client_config(args, conf, file_props,
                                                   parse_kv(args.consumer_property, "--consumer-property")))
    try:
        md = cluster_metadata(consumer, args.bootstrap_server)
        topics = _topics(md, args)
        if args.group:
            consumer.subscribe(topics if args.topic else [f"^{args.include}"])
        else:
            if args.partition is not None:
                if args.partition not in md.topics[args.topic].partitions:
                    raise CliError(f"Topic '{args.topic}' has no partition {args.partition}")
                assignment = [TopicPartition(args.topic, args.partition, start)]
            else:
                assignment = [TopicPartition(t, p, start) for t in topics for p in sorted(md.topics[t].partitions)]
            consumer.assign(assignment)
        count = _consume(consumer, formatter, args)
    finally:
        consumer.close()  # commits the group's offsets when in a group
    print(f"Processed a total of {count} messages", file=sys.stderr)
    return 0


def _topics(md: Any, args: argparse.Namespace) -> list[str]:
    if args.topic:
        if args.topic not in md.topics:
            raise CliError(f"Topic '{args.topic}' does not exist")
        return [args.topic]
    try:
        regex = re.compile(args.include)
    except re.error as exc:
        raise CliError(f"--include {args.include!r} is not a valid regular expression: {exc}") from None
    names = sorted(t for t in md.topics if regex.fullmatch(t) and not is_internal(t))
    if not names and not args.group:
        raise CliError(f"no topic matches --include {args.include!r}")
    return names


def _consume(consumer: Any, formatter: Formatter, args: argparse.Namespace) -> int:
    from confluent_kafka import KafkaError

    stop: list[bool] = []

    def on_signal(_sig: int, _frame: Any) -> None:
        stop.append(True)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    out = sys.stdout.buffer
    emit = as_json if args.output == "json" else formatter.format
    count = 0
    last = time.monotonic()
    timeout = args.timeout_ms / 1000 if args.timeout_ms is not None else None
    while not stop:
        want = 500 if args.max_messages is None else min(500, args.max_messages - count)
        wait = 0.2 if timeout is None else max(0.0, min(0.2, last + timeout - time.monotonic()))
        msgs = consumer.consume(num_messages=want, timeout=wait)
        chunk = []
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                if err.fatal() or err.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC,
                                                 KafkaError.TOPIC_AUTHORIZATION_FAILED):
                    raise CliError(kafka_error_text(err))
                print(f"suoi console-consumer: warning: {kafka_error_text(err)}", file=sys.stderr)
                continue
            chunk.append(emit(m))
        if chunk:
            out.write(b"".join(chunk))
            out.flush()
            count += len(chunk)
            last = time.monotonic()
            if args.max_messages is not None and count >= args.max_messages:
                break
        elif timeout is not None and time.monotonic() - last >= timeout:
            break
    return count
