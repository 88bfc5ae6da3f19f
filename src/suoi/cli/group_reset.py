"""`suoi consumer-groups --reset-offsets`: the plan (new offset per partition of each
group, clamped to [log start, log end]), printed, and committed with --execute."""

from __future__ import annotations

import argparse
import datetime
import re
import sys
import time
from typing import Any

from suoi.cli.common import TIMEOUT_S, CliError, print_json, result
from suoi.cli.group_lookup import (
    committed_offsets,
    describe_groups,
    error_text,
    group_ids,
    list_offsets,
    log_end_offsets,
    parse_topics,
    state_name,
)

_DURATION = re.compile(
    r"([-+]?)P(?:([-+]?\d+)D)?(?:T(?:([-+]?\d+)H)?(?:([-+]?\d+)M)?(?:([-+]?\d+(?:[.,]\d{1,9})?)S)?)?", re.IGNORECASE)


def parse_duration(text: str) -> datetime.timedelta:
    """ISO-8601 duration as java.time.Duration.parse reads it: PnDTnHnMn.nS."""
    m = _DURATION.fullmatch(text.strip())
    if not m or not any(m.group(i) for i in range(2, 6)) or text.strip().upper().endswith("T"):
        raise CliError(f"--by-duration {text!r} is not a duration like PnDTnHnMnS (e.g. PT30M, P1DT2H)")
    sign, d, h, mi, s = m.groups()
    delta = datetime.timedelta(days=int(d or 0), hours=int(h or 0), minutes=int(mi or 0),
                               seconds=float((s or "0").replace(",", ".")))
    return -delta if sign == "-" else delta


def parse_datetime(text: str) -> int:
    """Kafka's YYYY-MM-DDTHH:mm:SS.sss (seconds/millis/zone optional, local time without a zone) -> ms."""
    t = text.strip()
    if "T" not in t:
        raise CliError(f"--to-datetime {text!r} is not a date-time like 2024-01-31T12:00:00.000")
    try:
        when = datetime.datetime.fromisoformat(t)
    except ValueError:
        raise CliError(f"--to-datetime {text!r} is not a date-time like 2024-01-31T12:00:00.000") from None
    if when.tzinfo is None:
        when = when.astimezone()  # local time, as Kafka's tool reads it
    return int(when.timestamp() * 1000)


def reset_offsets(admin: Any, md: Any, args: argparse.Namespace) -> int:
    from confluent_kafka.admin import OffsetSpec

    groups = group_ids(admin, args)
    descs = describe_groups(admin, groups)
    plans = []
    for g in groups:
        state = state_name(descs[g].state)
        if state not in ("Empty", "Dead"):
            raise CliError(f"Assignments can only be reset if the group '{g}' is inactive, but the current state "
                           f"is {state}.")
        committed = committed_offsets(admin, g)
        partitions = sorted(committed) if args.all_topics else parse_topics(md, args.topic)
        starts = list_offsets(admin, partitions, OffsetSpec.earliest())
        ends = log_end_offsets(admin, partitions)
        start: dict[tuple[str, int], int] = {}
        end: dict[tuple[str, int], int] = {}
        for tp in partitions:
            s, e = starts.get(tp), ends.get(tp)
            if s is None or e is None:
                raise CliError(f"cannot read the offsets of {tp[0]}-{tp[1]}")
            start[tp], end[tp] = s, e

        def clamp(tp: tuple[str, int], offset: int, start: dict = start, end: dict = end) -> int:
            return max(start[tp], min(end[tp], offset))

        if args.to_earliest:
            new = {tp: start[tp] for tp in partitions}
        elif args.to_latest:
            new = {tp: end[tp] for tp in partitions}
        elif args.to_current:
            new = {tp: committed.get(tp, end[tp]) for tp in partitions}
        elif args.to_offset is not None:
            new = {tp: clamp(tp, args.to_offset) for tp in partitions}
        elif args.shift_by is not None:
            new = {}
            for tp in partitions:
                if tp not in committed:
                    raise CliError(f"Cannot shift offset for partition {tp[0]}-{tp[1]} since there is no current "
                                   "committed offset")
                new[tp] = clamp(tp, committed[tp] + args.shift_by)
        else:
            if args.to_datetime is not None:
                ts = parse_datetime(args.to_datetime)
            else:
                ts = int((time.time() - parse_duration(args.by_duration).total_seconds()) * 1000)
            found = list_offsets(admin, partitions, OffsetSpec.for_timestamp(ts))
            new = {}
            for tp in partitions:
                at = found.get(tp)
                new[tp] = end[tp] if at is None else at
        plans.append((g, [(t, p, new[(t, p)]) for t, p in partitions]))

    if args.execute:
        for g, rows in plans:
            _commit(admin, g, rows)
    if args.output == "json":
        print_json({"executed": bool(args.execute), "groups": [
            {"group": g, "offsets": [{"topic": t, "partition": p, "new_offset": o} for t, p, o in rows]}
            for g, rows in plans]})
        return 0
    if not args.execute and not args.dry_run:
        print("WARN: No action will be performed as the --execute option is missing. Add --dry-run explicitly "
              "to keep this behaviour in scripts.", file=sys.stderr)
    fmt = "{:<30} {:<30} {:<10} {}"
    for g, rows in plans:
        if not rows:
            continue
        print()
        print(fmt.format("GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"))
        for t, p, o in rows:
            print(fmt.format(g, t, p, o))
    return 0


def _commit(admin: Any, group: str, rows: list[tuple[str, int, int]]) -> None:
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    if not rows:
        return
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(t, p, o) for t, p, o in rows])
    res = result(admin.alter_consumer_group_offsets([request], request_timeout=TIMEOUT_S)[group])
    for tp in res.topic_partitions or []:
        if tp.error is not None:
            raise CliError(f"Resetting the offset of {tp.topic}-{tp.partition} for group '{group}' failed: "
                           f"{error_text(tp.error)}")
