"""`suoi producer-perf-test` (kafka-producer-perf-test.sh): produce N records as fast as allowed
and report throughput and latency in Kafka's words:

    50000 records sent, 41666.666667 records/sec (3.97 MB/sec), 12.31 ms avg latency, 98.00 ms max latency,
    9 ms 50th, 40 ms 95th, 60 ms 99th, 90 ms 99.9th.

(one line; a line per 5 s window before it on long runs). The producer is confluent-kafka's
(librdkafka): `--producer-props`/`--producer.config` take Kafka's property names, which
librdkafka shares for everything that matters here (bootstrap.servers, acks, linger.ms,
batch.size, compression.type, ...); Java-only serializer classes are dropped. A record's latency
is the time from `produce()` to its delivery report, as Kafka's callback measures it.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from suoi.cli.common import CliError, guarded, make_client, quiet_logger, read_client_props

TOOL = "producer-perf-test"
#: Kafka's client id and transactional id defaults.
CLIENT_ID = "perf-producer-client"
TRANSACTION_ID_PREFIX = "performance-producer-"
DEFAULT_TRANSACTION_DURATION_MS = 3000
REPORTING_INTERVAL_MS = 5000
#: Kafka keeps at most this many latency samples (every n-th record beyond).
MAX_SAMPLES = 500_000
#: Java client settings with no meaning for librdkafka (records are bytes already).
JAVA_ONLY = ("key.serializer", "value.serializer")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(TOOL, help="measure producer throughput and latency (kafka-producer-perf-test.sh)",
                       description="This tool is used to verify the producer performance.")
    p.add_argument("--topic", required=True, metavar="TOPIC", help="produce messages to this topic")
    p.add_argument("--num-records", type=int, required=True, metavar="NUM-RECORDS", help="number of messages to produce")
    payload = p.add_mutually_exclusive_group(required=True)
    payload.add_argument("--record-size", type=int, metavar="RECORD-SIZE", help="message size in bytes")
    payload.add_argument("--payload-file", type=Path, metavar="PAYLOAD-FILE",
                         help="file to read the message payloads from (UTF-8 text, one payload per delimiter)")
    payload.add_argument("--payload-monotonic", action="store_true",
                         help="payload is a monotonically increasing integer")
    p.add_argument("--payload-delimiter", default="\\n", metavar="PAYLOAD-DELIMITER",
                   help="delimiter of --payload-file (default: new line)")
    p.add_argument("--throughput", type=float, required=True, metavar="THROUGHPUT",
                   help="throttle maximum message throughput to *approximately* THROUGHPUT messages/sec; -1: no limit")
    p.add_argument("--producer-props", nargs="+", metavar="PROP-NAME=PROP-VALUE",
                   help="producer configs (bootstrap.servers, acks, linger.ms, ...); win over --producer.config")
    p.add_argument("--producer.config", dest="producer_config", type=Path, metavar="CONFIG-FILE",
                   help="producer config properties file")
    p.add_argument("--bootstrap-server", metavar="HOST:PORT", help="bootstrap.servers (or give it in the props)")
    p.add_argument("--print-metrics", action="store_true", help="print librdkafka's statistics at the end")
    p.add_argument("--transactional-id", metavar="TRANSACTIONAL-ID", help="produce in transactions with this id")
    p.add_argument("--transaction-duration-ms", type=int, metavar="TRANSACTION-DURATION",
                   help="commit every this many ms (default 3000 when transactions are on)")
    p.add_argument("--warmup-records", type=int, default=0, metavar="WARMUP-RECORDS",
                   help="records left out of the steady-state summary line (default 0)")
    p.set_defaults(func=guarded(TOOL)(run))


class Stats:
    """Kafka's ProducerPerformance.Stats: totals, sampled latencies and 5 s windows."""

    def __init__(self, num_records: int, steady_state: bool = False) -> None:
        self.start = self.window_start = now_ms()
        self.sampling = max(1, num_records // min(num_records, MAX_SAMPLES))
        self.latencies: list[int] = []
        self.iteration = self.count = self.bytes = self.total_latency = self.max_latency = 0
        self.window_count = self.window_bytes = self.window_total = self.window_max = 0
        self.steady_state = steady_state
        self.quiet = False

    def record(self, latency: int, size: int, at_ms: int) -> None:
        self.count += 1
        self.bytes += size
        self.total_latency += latency
        self.max_latency = max(self.max_latency, latency)
        self.window_count += 1
        self.window_bytes += size
        self.window_total += latency
        self.window_max = max(self.window_max, latency)
        if self.iteration % self.sampling == 0:
            self.latencies.append(latency)
        if at_ms - self.window_start >= REPORTING_INTERVAL_MS:
            if not self.quiet:
                self.print_window()
            self.window_start = now_ms()
            self.window_count = self.window_bytes = self.window_total = self.window_max = 0
        self.iteration += 1

    def print_window(self) -> None:
        elapsed = max(1, now_ms() - self.window_start)
        print(f"{self.window_count} records sent, {1000.0 * self.window_count / elapsed:.1f} records/sec "
              f"({1000.0 * self.window_bytes / elapsed / (1024 * 1024):.2f} MB/sec), "
              f"{self.window_total / max(1, self.window_count):.1f} ms avg latency, "
              f"{float(self.window_max):.1f} ms max latency.", flush=True)

    def total_line(self) -> str:
        elapsed = max(1, now_ms() - self.start)
        ordered = sorted(self.latencies)
        pct = [ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0 for q in (0.5, 0.95, 0.99, 0.999)]
        return (f"{self.count}{' steady state' if self.steady_state else ''} records sent, "
                f"{1000.0 * self.count / elapsed:f} records/sec ({1000.0 * self.bytes / elapsed / (1024 * 1024):.2f} MB/sec), "
                f"{self.total_latency / max(1, self.count):.2f} ms avg latency, {float(self.max_latency):.2f} ms max latency, "
                f"{pct[0]} ms 50th, {pct[1]} ms 95th, {pct[2]} ms 99th, {pct[3]} ms 99.9th.")


def now_ms() -> int:
    return time.monotonic_ns() // 1_000_000


def producer_config(args: argparse.Namespace) -> dict[str, Any]:
    if not args.producer_props and args.producer_config is None and not args.bootstrap_server:
        raise CliError("Either --producer-props or --producer.config must be specified.")
    conf: dict[str, Any] = dict(read_client_props(args.producer_config))
    for prop in args.producer_props or []:
        key, sep, value = prop.partition("=")
        if not sep or not key or "=" in value:
            raise CliError(f"Invalid property: {prop}")
        conf[key] = value
    if args.bootstrap_server:
        conf["bootstrap.servers"] = args.bootstrap_server
    if "bootstrap.servers" not in conf:
        raise CliError("no bootstrap.servers: give --bootstrap-server or bootstrap.servers=HOST:PORT in --producer-props")
    for key in JAVA_ONLY:
        conf.pop(key, None)
    conf.setdefault("client.id", CLIENT_ID)
    if args.transactional_id or args.transaction_duration_ms is not None or "transactional.id" in conf:
        conf["transactional.id"] = (args.transactional_id or conf.get("transactional.id")
                                    or f"{TRANSACTION_ID_PREFIX}{uuid.uuid4()}")
    if args.print_metrics:
        conf["statistics.interval.ms"] = 1000
    conf["logger"] = quiet_logger()
    return conf


def payloads(args: argparse.Namespace) -> list[bytes] | None:
    """The payloads to choose from (None: --record-size or --payload-monotonic)."""
    if args.payload_file is None:
        return None
    delimiter = "\n" if args.payload_delimiter == "\\n" else args.payload_delimiter
    try:
        text = args.payload_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {args.payload_file}: {exc.strerror or exc}") from None
    found = [p.encode() for p in text.split(delimiter) if p]
    if not found:
        raise CliError("File does not exist or empty file provided.")
    print(f"Reading payloads from: {args.payload_file.resolve()}")
    print(f"Number of messages read: {len(found)}")
    return found


def check(args: argparse.Namespace) -> None:
    if args.num_records <= 0:
        raise CliError("--num-records should be greater than zero")
    if args.warmup_records >= args.num_records:
        raise CliError("The value for --warmup-records must be strictly fewer than the number of records in the "
                       "test, --num-records.")
    if args.record_size is not None and args.record_size <= 0:
        raise CliError("--record-size should be greater than zero")
    if args.transaction_duration_ms is not None and args.transaction_duration_ms <= 0:
        raise CliError("--transaction-duration-ms should be greater than zero")


def run(args: argparse.Namespace) -> int:
    from confluent_kafka import KafkaException, Producer

    check(args)
    conf = producer_config(args)
    statistics: list[str] = []
    if args.print_metrics:
        conf["stats_cb"] = statistics.append
    choices = payloads(args)
    producer = make_client(Producer, conf)
    transactional = "transactional.id" in conf
    txn_duration = args.transaction_duration_ms or DEFAULT_TRANSACTION_DURATION_MS
    try:
        if transactional:
            producer.init_transactions(30)
        rng = random.Random(0)
        fixed = bytes(rng.randrange(65, 91) for _ in range(args.record_size)) if args.record_size else b""
        if args.warmup_records > 0:
            print(f"Warmup first {args.warmup_records} records. Steady state results will print after the "
                  "complete test summary.")
        stats = Stats(args.num_records)
        steady: list[Stats] = []
        failures: list[str] = []

        def delivered(sent_ms: int, size: int) -> Any:
            def on_delivery(err: Any, _msg: Any) -> None:
                at = now_ms()
                if err is not None:
                    failures.append(str(err))
                    return
                stats.record(at - sent_ms, size, at)
                if steady:
                    steady[0].record(at - sent_ms, size, at)
            return on_delivery

        start = now_ms()
        in_txn = 0
        txn_start = 0
        for i in range(args.num_records):
            if choices is not None:
                payload = choices[rng.randrange(len(choices))]
            elif args.record_size:
                payload = fixed
            else:
                payload = str(i).encode()
            if transactional and in_txn == 0:
                producer.begin_transaction()
                txn_start = now_ms()
            if args.warmup_records and i == args.warmup_records:
                steady.append(Stats(args.num_records - args.warmup_records, steady_state=True))
                stats.quiet = True
            sent = now_ms()
            while True:
                try:
                    producer.produce(args.topic, payload, on_delivery=delivered(sent, len(payload)))
                    break
                except BufferError:  # the local queue is full: let deliveries drain it
                    producer.poll(0.05)
            producer.poll(0)
            in_txn += 1
            if transactional and txn_duration <= sent - txn_start:
                producer.commit_transaction(60)
                in_txn = 0
            if args.throughput > 0:
                ahead_ms = start + 1000.0 * (i + 1) / args.throughput - now_ms()
                if ahead_ms > 0:
                    producer.poll(ahead_ms / 1000)
        if transactional and in_txn:
            producer.commit_transaction(60)
        left = producer.flush(60)
    except KafkaException as exc:
        raise CliError(f"producer failed: {exc.args[0].str() if exc.args else exc}") from None
    print(stats.total_line())
    if steady:
        print(steady[0].total_line())
    if args.print_metrics and statistics:
        print(statistics[-1])
    if failures or left:
        print(f"suoi {TOOL}: error: {len(failures) + left} of {args.num_records} records were not delivered"
              + (f" ({failures[0]})" if failures else ""), file=sys.stderr)
        return 1
    return 0
