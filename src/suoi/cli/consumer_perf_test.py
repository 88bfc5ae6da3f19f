"""`suoi consumer-perf-test` (kafka-consumer-perf-test.sh): consume N messages in a consumer
group and report throughput in Kafka's CSV layout (two lines, wrapped here):

    start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
        rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
    2026-01-01 10:00:00:000, 2026-01-01 10:00:01:250, 9.5367, 7.6294, 100000, 80000.0000,
        210, 1040, 9.1699, 96153.8462

The consumer is confluent-kafka's (librdkafka); rebalance time is from subscribing until the
first assignment, fetch time the rest, as Kafka's tool counts them. Bytes are key + value.
"""

from __future__ import annotations

import argparse
import random
import re
import time
from pathlib import Path
from typing import Any

from suoi.cli.common import CliError, guarded, make_client, quiet_logger, read_client_props

TOOL = "consumer-perf-test"
CLIENT_ID = "perf-consumer-client"
HEADER_TAIL = ", rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec"
#: java.text.SimpleDateFormat letters -> strftime (what perf scripts use); SSS is milliseconds.
DATE_TOKENS = {"yyyy": "%Y", "yy": "%y", "MM": "%m", "dd": "%d", "HH": "%H", "hh": "%I", "mm": "%M", "ss": "%S",
               "a": "%p", "EEE": "%a", "Z": "%z"}
MB = 1024 * 1024


def add_parser(sub: Any) -> None:
    p = sub.add_parser(TOOL, help="measure consumer throughput (kafka-consumer-perf-test.sh)",
                       description="This tool is used to verify the consumer performance.")
    p.add_argument("--bootstrap-server", required=True, metavar="HOST:PORT", help="REQUIRED: The server(s) to connect to.")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--topic", help="The topic to consume from.")
    which.add_argument("--include", metavar="REGEX", help="Regular expression specifying list of topics to include")
    p.add_argument("--group", default=f"perf-consumer-{random.randrange(100_000)}", help="The group id to consume on.")
    p.add_argument("--fetch-size", type=int, default=1024 * 1024, help="The amount of data to fetch in a single request.")
    p.add_argument("--from-latest", action="store_true",
                   help="start with the latest message when the group has no committed offset")
    p.add_argument("--socket-buffer-size", type=int, default=2 * 1024 * 1024, help="The size of the tcp RECV size.")
    p.add_argument("--consumer.config", dest="consumer_config", type=Path, help="Consumer config properties file.")
    p.add_argument("--print-metrics", action="store_true", help="Print out librdkafka's statistics.")
    p.add_argument("--show-detailed-stats", action="store_true",
                   help="report stats for each reporting interval as configured by reporting-interval")
    p.add_argument("--timeout", type=int, default=10_000, metavar="MS",
                   help="The maximum allowed time in milliseconds between returned records (default 10000).")
    p.add_argument("--messages", type=int, required=True, help="REQUIRED: The number of messages to consume.")
    p.add_argument("--reporting-interval", type=int, default=5000, metavar="MS",
                   help="Interval in milliseconds at which to print progress info (default 5000).")
    p.add_argument("--date-format", default="yyyy-MM-dd HH:mm:ss:SSS",
                   help="The date format to use for formatting the time field (java.text.SimpleDateFormat letters).")
    p.add_argument("--hide-header", action="store_true", help="If set, skips printing the header for the stats")
    p.set_defaults(func=guarded(TOOL)(run))


def date_formatter(pattern: str) -> Any:
    """A SimpleDateFormat pattern as a function of epoch milliseconds (local time, as Java's)."""
    tokens = re.findall(r"'[^']*'|S+|y+|M+|d+|H+|h+|m+|s+|a+|E+|Z+|[^a-zA-Z']+|[a-zA-Z]", pattern)

    def fmt(ms: int) -> str:
        t = time.localtime(ms / 1000)
        out = []
        for tok in tokens:
            if tok.startswith("'"):
                out.append(tok.strip("'") or "'")
            elif tok[0] == "S":
                out.append(f"{ms % 1000:03d}"[: len(tok)] if len(tok) <= 3 else f"{ms % 1000:0{len(tok)}d}")
            elif tok in DATE_TOKENS:
                out.append(time.strftime(DATE_TOKENS[tok], t))
            elif tok[0].isalpha():
                raise CliError(f"--date-format: unsupported pattern letters {tok!r}")
            else:
                out.append(tok)
        return "".join(out)

    return fmt


def consumer_config(args: argparse.Namespace) -> dict[str, Any]:
    conf: dict[str, Any] = dict(read_client_props(args.consumer_config))
    for key in ("key.deserializer", "value.deserializer"):
        conf.pop(key, None)
    conf.update({"bootstrap.servers": args.bootstrap_server, "group.id": args.group,
                 "socket.receive.buffer.bytes": args.socket_buffer_size,
                 "max.partition.fetch.bytes": args.fetch_size,
                 "auto.offset.reset": "latest" if args.from_latest else "earliest", "check.crcs": False,
                 "logger": quiet_logger()})
    conf.setdefault("client.id", CLIENT_ID)
    return conf


def run(args: argparse.Namespace) -> int:
    from confluent_kafka import Consumer, KafkaError

    if args.reporting_interval <= 0:
        raise CliError("Reporting interval must be greater than 0.")
    fmt = date_formatter(args.date_format)
    statistics: list[str] = []
    conf = consumer_config(args)
    if args.print_metrics:
        conf.update({"statistics.interval.ms": 1000, "stats_cb": statistics.append})
    if not args.hide_header:
        first = "time, threadId" if args.show_detailed_stats else "start.time, end.time"
        print(f"{first}, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec{HEADER_TAIL}", flush=True)
    consumer = make_client(Consumer, conf)
    join = {"start": wall_ms(), "total": 0, "round": 0, "assigned": 0}

    def on_assign(_c: Any, partitions: list[Any]) -> None:
        if not join["assigned"]:
            elapsed = wall_ms() - join["start"]
            join["total"] += elapsed
            join["round"] += elapsed
        join["assigned"] += len(partitions)

    def on_revoke(_c: Any, partitions: list[Any]) -> None:
        join["assigned"] = max(0, join["assigned"] - len(partitions))
        if not join["assigned"]:
            join["start"] = wall_ms()

    start_ms = wall_ms()
    # librdkafka subscribes to names matching a regex that starts with ^; Kafka matches whole names
    topics = [args.topic] if args.topic else [f"^({args.include.removeprefix('^').removesuffix('$')})$"]
    consumer.subscribe(topics, on_assign=on_assign, on_revoke=on_revoke)
    read = nbytes = last_read = last_bytes = 0
    last_report = last_consumed = now = wall_ms()
    try:
        while read < args.messages and now - last_consumed <= args.timeout:
            batch = consumer.consume(num_messages=min(1000, args.messages - read), timeout=0.1)
            now = wall_ms()
            for m in batch:
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise CliError(f"consume failed: {m.error().str()}")
                last_consumed = now
                read += 1
                nbytes += len(m.key() or b"") + len(m.value() or b"")
                if now - last_report >= args.reporting_interval:
                    if args.show_detailed_stats:
                        print(progress_line(fmt, nbytes, last_bytes, read, last_read, last_report, now, join["round"]))
                    join["round"] = 0
                    last_report, last_read, last_bytes = now, read, nbytes
    finally:
        end_ms = wall_ms()
        consumer.close()
    if read < args.messages:
        print(f"WARNING: Exiting before consuming the expected number of messages: timeout ({args.timeout} ms) "
              "exceeded. You can use the --timeout option to increase the timeout.")
    if not args.show_detailed_stats:
        elapsed_s = max(1, end_ms - start_ms) / 1000
        fetch_ms = (end_ms - start_ms) - join["total"]
        mb = nbytes / MB
        fetch_s = fetch_ms / 1000 if fetch_ms > 0 else float("nan")
        print(f"{fmt(start_ms)}, {fmt(end_ms)}, {mb:.4f}, {mb / elapsed_s:.4f}, {read}, {read / elapsed_s:.4f}, "
              f"{join['total']}, {fetch_ms}, {mb / fetch_s:.4f}, {read / fetch_s:.4f}")
    if args.print_metrics and statistics:
        print(statistics[-1])
    return 0


def progress_line(fmt: Any, nbytes: int, last_bytes: int, read: int, last_read: int, start: int, end: int,
                  join_ms: int) -> str:
    elapsed = max(1, end - start)
    fetch_ms = end - start - join_ms
    interval_mb = (nbytes - last_bytes) / MB
    fetch_mb_s = 1000.0 * interval_mb / fetch_ms if fetch_ms > 0 else 0.0
    fetch_msg_s = 1000.0 * (read - last_read) / fetch_ms if fetch_ms > 0 else 0.0
    return (f"{fmt(end)}, 0, {nbytes / MB:.4f}, {1000.0 * interval_mb / elapsed:.4f}, {read}, "
            f"{1000.0 * (read - last_read) / elapsed:.4f}, {join_ms}, {fetch_ms}, {fetch_mb_s:.4f}, {fetch_msg_s:.4f}")


def wall_ms() -> int:
    return time.time_ns() // 1_000_000
