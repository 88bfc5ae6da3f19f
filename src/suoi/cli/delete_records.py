"""`suoi delete-records`: kafka-delete-records.sh -- advance partitions' log start offsets.

Either Kafka's --offset-json-file, `{"partitions": [{"topic": "t", "partition": 0, "offset": 3}],
"version": 1}`, or --topic/--partition/--offset for one partition. Offset -1 means the
high watermark (delete everything).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from suoi.cli.common import (
    CliError,
    add_common_args,
    admin_client,
    cluster_metadata,
    describe_error,
    guarded,
    is_retriable,
    print_json,
    result,
    retrying,
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "delete-records", help="delete records below an offset (kafka-delete-records)",
        description="Delete the records of partitions below the given offsets (the log start offset moves up). "
        "Same flags as Kafka's kafka-delete-records.sh, plus --topic/--partition/--offset for one partition.",
        epilog="example: suoi delete-records --topic orders --partition 0 --offset 100 "
        "--bootstrap-server localhost:9092",
    )
    add_common_args(p)
    p.add_argument("--offset-json-file", type=Path, metavar="FILE",
                   help='{"partitions": [{"topic": "t", "partition": 0, "offset": 3}], "version": 1}')
    p.add_argument("--topic", help="instead of the JSON file: the topic")
    p.add_argument("--partition", type=int, metavar="N", help="instead of the JSON file: the partition")
    p.add_argument("--offset", type=int, metavar="OFFSET", help="instead of the JSON file: delete below this "
                   "offset (-1: everything up to the high watermark)")
    p.set_defaults(func=guarded("delete-records")(run))


def _targets(args: argparse.Namespace) -> list[tuple[str, int, int]]:
    single = (args.topic, args.partition, args.offset)
    if args.offset_json_file is not None:
        if any(x is not None for x in single):
            raise CliError("give --offset-json-file or --topic/--partition/--offset, not both")
        try:
            doc = json.loads(args.offset_json_file.read_text())
            items = [(str(x["topic"]), int(x["partition"]), int(x["offset"])) for x in doc["partitions"]]
        except OSError as exc:
            raise CliError(f"cannot read {args.offset_json_file}: {exc.strerror or exc}") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise CliError(f"{args.offset_json_file} is not like "
                           f'{{"partitions": [{{"topic": "t", "partition": 0, "offset": 3}}]}}: {exc!r}') from None
        if not items:
            raise CliError(f"{args.offset_json_file} lists no partitions")
    else:
        if any(x is None for x in single):
            raise CliError("give --offset-json-file, or all of --topic, --partition and --offset")
        items = [single]  # type: ignore[list-item]
    keys = [(t, p) for t, p, _ in items]
    if len(set(keys)) != len(keys):
        raise CliError("a partition is listed more than once")
    return items


def run(args: argparse.Namespace) -> int:
    from confluent_kafka import KafkaException, TopicPartition

    targets = _targets(args)
    admin = admin_client(args)
    md = cluster_metadata(admin, args.bootstrap_server)
    for topic, partition, _ in targets:
        if topic not in md.topics:
            raise CliError(f"Topic '{topic}' does not exist")
        if partition not in md.topics[topic].partitions:
            raise CliError(f"Topic '{topic}' has no partition {partition}")
    if args.output != "json":
        print("Executing records delete operation")

    def attempt(left: float) -> list[dict[str, Any]]:
        """One try at every partition; a retriable error (a leader moving) retries them all
        (deleting up to an offset again is harmless), any other is that partition's result."""
        futures = admin.delete_records([TopicPartition(t, p, o) for t, p, o in targets],
                                       request_timeout=left, operation_timeout=left)
        rows = []
        for tp, fut in sorted(futures.items(), key=lambda kv: (kv[0].topic, kv[0].partition)):
            try:
                rows.append({"topic": tp.topic, "partition": tp.partition,
                             "low_watermark": result(fut, left).low_watermark, "error": None})
            except KafkaException as exc:
                if is_retriable(exc):
                    raise
                rows.append({"topic": tp.topic, "partition": tp.partition, "low_watermark": None,
                             "error": describe_error(exc)})
        return rows

    rows = retrying(attempt)
    failed = [r for r in rows if r["error"]]
    if args.output == "json":
        print_json({"partitions": rows})
    else:
        print("Records delete operation completed:")
        for r in rows:
            what = f"error: {r['error']}" if r["error"] else f"low_watermark: {r['low_watermark']}"
            print(f"partition: {r['topic']}-{r['partition']}\t{what}")
    if failed:
        raise CliError(f"{len(failed)} of {len(rows)} partitions failed; first: "
                       f"{failed[0]['topic']}-{failed[0]['partition']}: {failed[0]['error']}")
    return 0
