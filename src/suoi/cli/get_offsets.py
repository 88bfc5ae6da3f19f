"""`suoi get-offsets`: kafka-get-offsets.sh -- earliest, latest or by-timestamp offsets.

Prints `topic:partition:offset` per partition, as Kafka's GetOffsetShell does. For a
timestamp with no record at or after it the offset column is empty (JSON: null).
"""

from __future__ import annotations

import argparse
from typing import Any

from suoi.cli.common import (
    CliError,
    add_common_args,
    admin_client,
    cluster_metadata,
    guarded,
    match_topics,
    print_json,
    result,
    retrying,
)

TIME_NAMES = {"latest": -1, "earliest": -2, "max-timestamp": -3}


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "get-offsets", help="earliest, latest or by-timestamp offsets per partition (kafka-get-offsets)",
        description="Print the offset of each partition for a point in time. Same flags as Kafka's "
        "kafka-get-offsets.sh.",
        epilog="example: suoi get-offsets --topic orders --time earliest --bootstrap-server localhost:9092",
    )
    add_common_args(p)
    p.add_argument("--topic", metavar="REGEX", help="topics to include (a regular expression; all if left out)")
    p.add_argument("--partitions", metavar="N[,N...]", help="partition ids to include (all if left out)")
    p.add_argument("--topic-partitions", metavar="T:N[-M],...",
                   help="topic:partitions list, e.g. orders:0-2,payments (instead of --topic/--partitions)")
    p.add_argument("--time", default="latest", metavar="TIME",
                   help="latest (-1, default), earliest (-2), max-timestamp (-3) or a timestamp in ms")
    p.add_argument("--exclude-internal-topics", action="store_true", help="leave out internal topics (__*)")
    p.set_defaults(func=guarded("get-offsets")(run))


def _time(text: str) -> int:
    value = TIME_NAMES.get(text.strip().lower())
    if value is not None:
        return value
    try:
        t = int(text)
    except ValueError:
        raise CliError(f"--time must be latest, earliest, max-timestamp or a timestamp in ms, got {text!r}") from None
    if t < -3:
        raise CliError(f"--time {t} is not supported (use -1, -2, -3 or a timestamp)")
    return t


def _int_list(text: str, flag: str) -> set[int]:
    out: set[int] = set()
    for part in filter(None, (x.strip() for x in text.split(","))):
        try:
            if "-" in part:
                lo, hi = part.split("-", 1)
                out.update(range(int(lo), int(hi) + 1))
            else:
                out.add(int(part))
        except ValueError:
            raise CliError(f"{flag}: {part!r} is not a partition id or range") from None
    return out


def _select(md: Any, args: argparse.Namespace) -> list[tuple[str, int]]:
    if args.topic_partitions and (args.topic or args.partitions):
        raise CliError("--topic-partitions cannot be combined with --topic or --partitions")
    picked: list[tuple[str, int]] = []
    if args.topic_partitions:
        for spec in args.topic_partitions.split(","):
            topic, _, parts = spec.strip().partition(":")
            names = match_topics(md.topics, topic, exclude_internal=args.exclude_internal_topics)
            wanted = _int_list(parts, "--topic-partitions") if parts else None
            picked += [(t, p) for t in names for p in sorted(md.topics[t].partitions) if wanted is None or p in wanted]
    else:
        wanted = _int_list(args.partitions, "--partitions") if args.partitions else None
        names = match_topics(md.topics, args.topic, exclude_internal=args.exclude_internal_topics)
        picked = [(t, p) for t in names for p in sorted(md.topics[t].partitions) if wanted is None or p in wanted]
    if not picked:
        raise CliError("Could not match any topic-partitions with the specified filters")
    return sorted(set(picked))


def run(args: argparse.Namespace) -> int:
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import OffsetSpec

    when = _time(args.time)
    admin = admin_client(args)
    md = cluster_metadata(admin, args.bootstrap_server)
    picked = _select(md, args)
    spec = {-1: OffsetSpec.latest(), -2: OffsetSpec.earliest(), -3: OffsetSpec.max_timestamp()}.get(when)
    if spec is None:
        spec = OffsetSpec.for_timestamp(when)

    def attempt(left: float) -> dict[tuple[str, int], int]:
        futures = admin.list_offsets({TopicPartition(t, p): spec for t, p in picked}, request_timeout=left)
        return {(tp.topic, tp.partition): result(f, left).offset for tp, f in futures.items()}

    offsets = retrying(attempt)  # a leader moving (NOT_LEADER_OR_FOLLOWER) settles within the timeout
    rows = []
    for t, p in picked:
        offset = offsets[(t, p)]
        rows.append({"topic": t, "partition": p, "offset": offset if offset >= 0 else None})
    if args.output == "json":
        print_json({"offsets": rows})
    else:
        for r in rows:
            print(f"{r['topic']}:{r['partition']}:{'' if r['offset'] is None else r['offset']}")
    return 0
