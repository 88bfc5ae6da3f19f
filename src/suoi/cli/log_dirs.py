"""`suoi log-dirs`: kafka-log-dirs.sh -- the log dirs of brokers and the replicas in them.

    suoi log-dirs --describe --bootstrap-server HOST:PORT [--broker-list 1,2] [--topic-list a,b]

Prints Kafka's three lines: "Querying brokers for log directories information", "Received log
directory information from brokers 1,2" and one JSON line
``{"version":1,"brokers":[{"broker":1,"logDirs":[{"logDir":..., "error":null, "partitions":[
{"partition":"t-0","size":N,"offsetLag":0,"isFuture":false}]}]}]}`` (error: the Java exception
class name Kafka prints, e.g. org.apache.kafka.common.errors.KafkaStorageException). Brokers come
from a Metadata request; DescribeLogDirs goes to each broker (`suoi.client`, PLAINTEXT).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from suoi.cli.admin_requests import send
from suoi.cli.common import TIMEOUT_S, CliError, add_common_args, guarded

#: Kafka's exception class per error code, as kafka-log-dirs.sh prints it.
_EXCEPTIONS = {56: "org.apache.kafka.common.errors.KafkaStorageException",
               57: "org.apache.kafka.common.errors.LogDirNotFoundException"}


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "log-dirs", help="describe brokers' log dirs and the replicas in them (kafka-log-dirs)",
        description="Describe the log dirs of brokers: the replicas each holds, their size and offset lag, "
        "and future replicas of moves in progress. Same flags and JSON as Kafka's kafka-log-dirs.sh.",
        epilog="example: suoi log-dirs --describe --bootstrap-server localhost:9092 --topic-list orders",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_args(p, output=False)
    p.add_argument("--describe", action="store_true", help="REQUIRED: describe the log dirs")
    p.add_argument("--broker-list", metavar="1,2", help="the brokers to ask (default: every broker)")
    p.add_argument("--topic-list", metavar="a,b", help="only the replicas of these topics (default: all)")
    p.set_defaults(func=guarded("log-dirs")(run))


def _ids(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise CliError(f"--broker-list expects comma-separated broker ids, got {text!r}") from None


def _brokers(args: argparse.Namespace) -> dict[int, tuple[str, int]]:
    from kio.schema.metadata.v12.request import MetadataRequest

    md = send(args, MetadataRequest(topics=(), allow_auto_topic_creation=False,
                                    include_topic_authorized_operations=False), "log-dirs")
    return {int(b.node_id): (str(b.host), int(b.port)) for b in md.brokers}


def _describe(host: str, port: int) -> Any:
    """Every log dir of one broker (Kafka's tool also asks for all and filters by --topic-list)."""
    from kio.schema.describe_log_dirs.v4.request import DescribeLogDirsRequest

    from suoi.client import request_sync

    return request_sync(host, port, DescribeLogDirsRequest(topics=None), client_id="suoi-log-dirs", timeout=TIMEOUT_S)


def run(args: argparse.Namespace) -> int:
    if not args.describe:
        raise CliError("Command must include exactly one action: --describe")
    topics = [t.strip() for t in args.topic_list.split(",") if t.strip()] if args.topic_list else None
    print("Querying brokers for log directories information")
    known = _brokers(args)
    wanted = _ids(args.broker_list) if args.broker_list else sorted(known)
    missing = [b for b in wanted if b not in known]
    if missing:
        raise CliError(f"ERROR: The given brokers do not exist from --broker-list: {','.join(map(str, missing))}. "
                       f"Current existent brokers: {','.join(map(str, sorted(known)))}")
    brokers = []
    for broker_id in wanted:
        response = _describe(*known[broker_id])
        log_dirs = []
        for result in response.results:
            code = int(result.error_code)
            partitions = [{"partition": f"{t.name}-{p.partition_index}", "size": int(p.partition_size),
                           "offsetLag": int(p.offset_lag), "isFuture": bool(p.is_future_key)}
                          for t in result.topics if topics is None or t.name in topics for p in t.partitions]
            log_dirs.append({"logDir": result.log_dir, "error": _EXCEPTIONS.get(code, f"error {code}") if code else None,
                             "partitions": partitions})
        brokers.append({"broker": broker_id, "logDirs": log_dirs})
    print(f"Received log directory information from brokers {','.join(map(str, wanted))}")
    print(json.dumps({"brokers": brokers, "version": 1}, separators=(",", ":")))
    return 0
