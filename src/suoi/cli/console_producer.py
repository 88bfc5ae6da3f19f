"""`suoi console-producer`: kafka-console-producer.sh -- one record per line of stdin.

Line format with --property parse.headers=true and parse.key=true (Kafka's LineMessageReader):

    h1:v1,h2:v2<TAB>key<TAB>value

headers.delimiter (tab), headers.separator (,), headers.key.separator (:) and key.separator
(tab) are properties; null.marker turns a key, value or header value into null.
`--value-format avro|json-schema|protobuf` (and `--key-format`) read JSON and write it with a schema
registry's framing (Confluent's kafka-avro-console-producer; see `schema_formats`).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any

from suoi.cli.common import (
    CONNECT_TIMEOUT_S,
    CliError,
    add_common_args,
    client_config,
    cluster_metadata,
    describe_error,
    guarded,
    kafka_error_text,
    make_client,
    parse_kv,
    read_client_props,
    retrying,
)
from suoi.cli.schema_formats import Codec, add_format_args, split_props

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
READER_PROPS = {"parse.key", "key.separator", "parse.headers", "headers.delimiter", "headers.separator",
                "headers.key.separator", "null.marker", "ignore.error"}


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "console-producer", help="send lines of stdin as records (kafka-console-producer)",
        description="Read lines from stdin and send each as a record. Same flags as Kafka's "
        "kafka-console-producer.sh.",
        epilog="example: printf 'k1:v1\\nk2:v2\\n' | suoi console-producer --topic orders "
        "--bootstrap-server localhost:9092 --property parse.key=true --property key.separator=:",
    )
    add_common_args(p, command_config=False)
    p.add_argument("--topic", required=True, help="REQUIRED: the topic to produce to")
    p.add_argument("--property", action="append", default=[], metavar="KEY=VALUE",
                   help="line reader property, repeatable: parse.key, key.separator, parse.headers, "
                   "headers.delimiter, headers.separator, headers.key.separator, null.marker, ignore.error")
    p.add_argument("--compression-codec", nargs="?", const="gzip", choices=CODECS, metavar="CODEC",
                   help="none, gzip (the default when the flag has no value), snappy, lz4 or zstd")
    p.add_argument("--producer-property", action="append", default=[], metavar="KEY=VALUE",
                   help="producer config, repeatable (librdkafka names; wins over --producer.config)")
    p.add_argument("--producer.config", dest="producer_config", metavar="FILE", help="producer config file")
    p.add_argument("--request-required-acks", default="-1", metavar="ACKS",
                   help="0, 1 or -1/all (default -1)")
    p.add_argument("--sync", action="store_true", help="wait for each record to be acknowledged")
    p.add_argument("--batch-size", type=int, metavar="BYTES", help="batch.size")
    p.add_argument("--timeout", type=int, default=1000, metavar="MS",
                   help="linger.ms: how long to wait to fill a batch (default 1000)")
    p.add_argument("--request-timeout-ms", type=int, default=1500, metavar="MS", help="default 1500")
    p.add_argument("--message-send-max-retries", type=int, metavar="N", help="retries")
    p.add_argument("--max-block-ms", type=int, default=60000, metavar="MS",
                   help="how long a record may wait for delivery (message.timeout.ms, default 60000)")
    add_format_args(p)
    p.set_defaults(func=guarded("console-producer")(run))


class LineReader:
    """Kafka's LineMessageReader: a line -> (headers, key, value)."""

    def __init__(self, props: dict[str, str]) -> None:
        unknown = sorted(set(props) - READER_PROPS)
        if unknown:
            raise CliError(f"unknown --property {unknown[0]} (known: {', '.join(sorted(READER_PROPS))})")
        self.parse_key = props.get("parse.key", "false").lower() == "true"
        self.key_sep = props.get("key.separator", "\t").encode()
        self.parse_headers = props.get("parse.headers", "false").lower() == "true"
        self.headers_delim = props.get("headers.delimiter", "\t").encode()
        self.headers_sep = props.get("headers.separator", ",").encode()
        self.header_key_sep = props.get("headers.key.separator", ":").encode()
        marker = props.get("null.marker")
        self.null_marker = marker.encode() if marker is not None else None
        self.ignore_error = props.get("ignore.error", "false").lower() == "true"
        for name, sep in (("key.separator", self.key_sep), ("headers.delimiter", self.headers_delim),
                          ("headers.separator", self.headers_sep), ("headers.key.separator", self.header_key_sep)):
            if not sep:
                raise CliError(f"--property {name} must not be empty")

    def _null(self, b: bytes) -> bytes | None:
        return None if self.null_marker is not None and b == self.null_marker else b

    def parse(self, line: bytes, number: int) -> tuple[list[tuple[str, bytes | None]] | None, bytes | None, bytes | None]:
        rest = line
        headers = None
        if self.parse_headers:
            head, sep, tail = rest.partition(self.headers_delim)
            if not sep:
                if not self.ignore_error:
                    raise CliError(f"No headers delimiter found on line number {number}: '{_show(line)}'")
            else:
                rest = tail
                headers = []
                if head and head != self.null_marker:
                    for pair in head.split(self.headers_sep):
                        k, s, v = pair.partition(self.header_key_sep)
                        if not s:
                            raise CliError(f"No header key separator found in pair '{_show(pair)}' "
                                           f"on line number {number}")
                        headers.append((k.decode("utf-8", "replace"), self._null(v)))
        key = None
        if self.parse_key:
            k, sep, tail = rest.partition(self.key_sep)
            if not sep:
                if not self.ignore_error:
                    raise CliError(f"No key separator found on line number {number}: '{_show(line)}'")
            else:
                key, rest = self._null(k), tail
        return headers, key, self._null(rest)


def _show(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def run(args: argparse.Namespace) -> int:
    from confluent_kafka import Producer

    props, schema_props = split_props(parse_kv(args.property, "--property"))
    reader = LineReader(props)
    codec = Codec(args, schema_props)
    acks = "-1" if args.request_required_acks == "all" else args.request_required_acks
    if acks not in ("0", "1", "-1"):
        raise CliError(f"--request-required-acks must be 0, 1, -1 or all, got {args.request_required_acks!r}")
    conf: dict[str, str | int] = {
        "acks": acks, "linger.ms": args.timeout, "request.timeout.ms": args.request_timeout_ms,
        "message.timeout.ms": args.max_block_ms,
    }
    if args.compression_codec:
        conf["compression.type"] = args.compression_codec
    if args.batch_size is not None:
        conf["batch.size"] = args.batch_size
    if args.message_send_max_retries is not None:
        conf["retries"] = args.message_send_max_retries
    from pathlib import Path

    file_props = read_client_props(Path(args.producer_config)) if args.producer_config else {}
    producer = make_client(Producer, client_config(args, conf, file_props,
                                                   parse_kv(args.producer_property, "--producer-property")))
    md = cluster_metadata(producer, args.bootstrap_server)
    if args.topic not in md.topics:
        _check_topic(producer, args.topic)

    stats = {"sent": 0, "failed": 0}
    first_error: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is None:
            stats["sent"] += 1
        else:
            stats["failed"] += 1
            if not first_error:
                first_error.append(kafka_error_text(err))

    signal.signal(signal.SIGTERM, _interrupt)
    interactive = sys.stdin.isatty()
    number = 0
    try:
        while True:
            if interactive:
                print(">", end="", flush=True)
            raw = sys.stdin.buffer.readline()
            if not raw:
                break
            number += 1
            line = raw[:-1] if raw.endswith(b"\n") else raw
            if line.endswith(b"\r"):
                line = line[:-1]
            headers, key, value = reader.parse(line, number)
            key, value = codec.encode("key", args.topic, key), codec.encode("value", args.topic, value)
            _produce(producer, args.topic, key, value, headers, on_delivery)
            if args.sync:
                producer.flush(args.max_block_ms / 1000)
    except KeyboardInterrupt:
        pass
    except CliError:
        producer.flush(args.max_block_ms / 1000)  # what was read before the bad line is still sent
        raise
    remaining = producer.flush(args.max_block_ms / 1000)
    failed = stats["failed"] + remaining
    if args.output == "json":
        print(json.dumps({"topic": args.topic, "sent": stats["sent"], "failed": failed,
                          "error": first_error[0] if first_error else None}))
    if failed:
        why = first_error[0] if first_error else "not acknowledged in time"
        raise CliError(f"{failed} of {number} records were not delivered to {args.topic}: {why}")
    return 0


def _interrupt(_sig: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def _check_topic(producer: Any, topic: str) -> None:
    """Not in metadata yet: ask for it (the broker may auto-create it) and fail fast if unknown.
    LEADER_NOT_AVAILABLE is the broker's answer while it creates the topic: retriable, so ask
    again (within the tool's timeout), and if it persists let the producer retry the records
    within message.timeout.ms rather than fail before sending anything."""
    from confluent_kafka import KafkaError, KafkaException

    def attempt(left: float) -> Any:
        t = producer.list_topics(topic=topic, timeout=min(left, CONNECT_TIMEOUT_S)).topics.get(topic)
        if t is not None and t.error is not None and t.error.code() == KafkaError.LEADER_NOT_AVAILABLE:
            raise KafkaException(t.error)
        return t

    try:
        t = retrying(attempt)
    except KafkaException as exc:
        if exc.args and getattr(exc.args[0], "code", lambda: None)() == KafkaError.LEADER_NOT_AVAILABLE:
            return  # still being created: the producer waits for a leader and retries
        raise CliError(describe_error(exc)) from None
    if t is None or (t.error is not None and t.error.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART,
                                                                KafkaError._UNKNOWN_TOPIC)):
        raise CliError(f"Topic '{topic}' does not exist (and the broker does not create topics automatically)")
    if t.error is not None:
        raise CliError(f"topic {topic}: {kafka_error_text(t.error)}")


def _produce(producer: Any, topic: str, key: bytes | None, value: bytes | None,
             headers: list[tuple[str, bytes | None]] | None, on_delivery: Any) -> None:
    kwargs: dict[str, Any] = {"key": key, "value": value, "on_delivery": on_delivery}
    if headers:
        kwargs["headers"] = headers
    while True:
        try:
            producer.produce(topic, **kwargs)
            break
        except BufferError:  # local queue full: let deliveries drain
            producer.poll(0.1)
    producer.poll(0)
