"""`suoi consumer-groups`: kafka-consumer-groups.sh -- list, describe (offsets and lag,
members, state), delete groups, delete offsets and reset offsets.

Everything goes through confluent-kafka's AdminClient except OffsetDelete
(--delete-offsets), which confluent-kafka's Python API lacks: that one request is written
with kio (the codec library suoi already depends on) and sent to the group's coordinator
through suoi's internal client (`suoi.client`).

Lag is the partition's log end offset (high watermark) minus the committed offset. As in
Kafka, `-` marks a value that does not exist (no committed offset, no member owning the
partition), and offsets to reset to are clamped to [log start, log end].

This module holds the flags, --list, --delete and --delete-offsets; `group_lookup` reads
groups and offsets, `group_describe` renders --describe, `group_reset` plans --reset-offsets.
"""

from __future__ import annotations

import argparse
from typing import Any

from suoi.cli.common import (
    TIMEOUT_S,
    CliError,
    add_common_args,
    admin_client,
    cluster_metadata,
    guarded,
    print_json,
    result,
)
from suoi.cli.group_describe import describe
from suoi.cli.group_lookup import (
    STATE_NAMES,
    committed_offsets,
    describe_groups,
    error_text,
    group_ids,
    group_state,
    listed_groups,
    parse_topics,
    state_name,
)
from suoi.cli.group_reset import parse_datetime, parse_duration, reset_offsets

__all__ = ["STATE_NAMES", "add_parser", "parse_datetime", "parse_duration", "run"]

RESET_SPECS = ("to_earliest", "to_latest", "to_current", "to_offset", "shift_by", "to_datetime", "by_duration")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "consumer-groups", help="list, describe, delete consumer groups and reset their offsets (kafka-consumer-groups)",
        description="List, describe (offsets and lag, members, state) and delete consumer groups, delete "
        "committed offsets and reset them. Same flags as Kafka's kafka-consumer-groups.sh.",
        epilog="examples: suoi consumer-groups --describe --group my-group --bootstrap-server localhost:9092\n"
        "  suoi consumer-groups --reset-offsets --group my-group --topic orders --to-earliest --execute "
        "--bootstrap-server localhost:9092",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_args(p)
    action = p.add_mutually_exclusive_group(required=True)
    action.add_argument("--list", action="store_true", help="list all consumer groups")
    action.add_argument("--describe", action="store_true",
                        help="offsets and lag per partition (default), or --members, or --state")
    action.add_argument("--delete", action="store_true", help="delete groups (only groups without members)")
    action.add_argument("--delete-offsets", action="store_true",
                        help="delete a group's committed offsets for --topic (not while it consumes the topic)")
    action.add_argument("--reset-offsets", action="store_true",
                        help="reset a group's offsets (the group must have no active members)")
    p.add_argument("--group", action="append", default=[], metavar="GROUP", help="the group (repeatable)")
    p.add_argument("--all-groups", action="store_true", help="--describe/--delete/--reset-offsets: every group")
    p.add_argument("--topic", action="append", default=[], metavar="TOPIC[:P,P...]",
                   help="--reset-offsets/--delete-offsets: topic, optionally with partitions (repeatable)")
    p.add_argument("--all-topics", action="store_true",
                   help="--reset-offsets: every topic the group has committed offsets for")
    p.add_argument("--members", action="store_true", help="--describe: the group's members")
    p.add_argument("--verbose", action="store_true", help="--describe --members: also each member's partitions")
    p.add_argument("--offsets", action="store_true", help="--describe: offsets and lag (the default)")
    p.add_argument("--state", nargs="?", const="", default=None, metavar="STATE[,STATE...]",
                   help="--describe: the group's state; --list: show states, optionally only these "
                   "(Stable, Empty, PreparingRebalance, CompletingRebalance, Dead)")
    spec = p.add_mutually_exclusive_group()
    spec.add_argument("--to-earliest", action="store_true", help="reset to the log start offset")
    spec.add_argument("--to-latest", action="store_true", help="reset to the log end offset")
    spec.add_argument("--to-current", action="store_true", help="reset to the committed offset")
    spec.add_argument("--to-offset", type=int, metavar="N", help="reset to offset N")
    spec.add_argument("--shift-by", type=int, metavar="N", help="move the committed offset by N (may be negative)")
    spec.add_argument("--to-datetime", metavar="YYYY-MM-DDTHH:mm:SS.sss",
                      help="reset to the first offset at or after this time (local time unless a zone is given)")
    spec.add_argument("--by-duration", metavar="PnDTnHnMnS", help="reset to the first offset this long ago")
    run_mode = p.add_mutually_exclusive_group()
    run_mode.add_argument("--dry-run", action="store_true", help="--reset-offsets: only print the plan (default)")
    run_mode.add_argument("--execute", action="store_true", help="--reset-offsets: commit the new offsets")
    p.set_defaults(func=guarded("consumer-groups")(run))


# --------------------------------------------------------------------------- entry


def run(args: argparse.Namespace) -> int:
    _check_flags(args)
    admin = admin_client(args)
    md = cluster_metadata(admin, args.bootstrap_server)
    if args.list:
        return _list(admin, args)
    if args.describe:
        return describe(admin, args)
    if args.delete:
        return _delete(admin, args)
    if args.delete_offsets:
        return _delete_offsets(admin, md, args)
    return reset_offsets(admin, md, args)


def _check_flags(args: argparse.Namespace) -> None:
    needs_group = args.describe or args.delete or args.reset_offsets
    if needs_group and not args.group and not args.all_groups:
        raise CliError("--group or --all-groups is required")
    if args.delete_offsets and len(args.group) != 1:
        raise CliError("--delete-offsets takes exactly one --group")
    if args.all_groups and args.group:
        raise CliError("--group and --all-groups cannot be combined")
    if args.all_groups and args.delete_offsets:
        raise CliError("--all-groups is not valid with --delete-offsets")
    if args.list and (args.group or args.all_groups):
        raise CliError("--group and --all-groups are not valid with --list")
    if args.describe and sum(map(bool, (args.members, args.offsets, args.state is not None))) > 1:
        raise CliError("--describe takes only one of --members, --offsets, --state")
    if args.state and args.describe:
        raise CliError("--describe --state takes no value")
    if args.state is not None and not (args.list or args.describe):
        raise CliError("--state is only valid with --list or --describe")
    if (args.members or args.offsets) and not args.describe:
        raise CliError("--members and --offsets are only valid with --describe")
    if args.verbose and not args.members:
        raise CliError("--verbose is only valid with --describe --members")
    given = [s for s in RESET_SPECS if getattr(args, s) is not None and getattr(args, s) is not False]
    if given and not args.reset_offsets:
        raise CliError(f"--{given[0].replace('_', '-')} is only valid with --reset-offsets")
    if (args.dry_run or args.execute) and not args.reset_offsets:
        raise CliError("--dry-run and --execute are only valid with --reset-offsets")
    if args.all_topics and not args.reset_offsets:
        raise CliError("--all-topics is only valid with --reset-offsets")
    if args.topic and not (args.reset_offsets or args.delete_offsets):
        raise CliError("--topic is only valid with --reset-offsets or --delete-offsets")
    if args.reset_offsets:
        if not given:
            raise CliError("--reset-offsets needs one of --to-earliest, --to-latest, --to-current, --to-offset, "
                           "--shift-by, --to-datetime, --by-duration")
        if bool(args.topic) == bool(args.all_topics):
            raise CliError("--reset-offsets needs exactly one of --all-topics or --topic")
    if args.delete_offsets and not args.topic:
        raise CliError("--delete-offsets needs --topic")


# --------------------------------------------------------------------------- --list


def _list(admin: Any, args: argparse.Namespace) -> int:
    from confluent_kafka import ConsumerGroupState

    kwargs: dict[str, Any] = {}
    if args.state:
        by_name = {v.lower(): k for k, v in STATE_NAMES.items() if k != "UNKNOWN"}
        states = set()
        for name in filter(None, (s.strip() for s in args.state.split(","))):
            if name.lower() not in by_name:
                raise CliError(f"--state {name!r} is not one of Stable, Empty, PreparingRebalance, "
                               "CompletingRebalance, Dead")
            states.add(ConsumerGroupState[by_name[name.lower()]])
        kwargs["states"] = states
    rows = sorted((g.group_id, state_name(g.state)) for g in listed_groups(admin, **kwargs))
    if args.output == "json":
        print_json({"groups": [{"group": g, "state": s} for g, s in rows]})
    elif args.state is not None:
        width = max([15] + [len(g) for g, _ in rows])
        print(f"{'GROUP':<{width}} STATE")
        for g, s in rows:
            print(f"{g:<{width}} {s}")
    else:
        for g, _ in rows:
            print(g)
    return 0


# --------------------------------------------------------------------------- --delete


def _delete(admin: Any, args: argparse.Namespace) -> int:
    from confluent_kafka import KafkaError, KafkaException

    groups = group_ids(admin, args)
    if not groups:
        raise CliError("no consumer groups to delete")
    futures = admin.delete_consumer_groups(groups, request_timeout=TIMEOUT_S)
    failed: list[str] = []
    for g in groups:
        try:
            result(futures[g])
        except KafkaException as exc:
            err = exc.args[0]
            code = err.name() if isinstance(err, KafkaError) else ""
            if code == "GROUP_ID_NOT_FOUND":
                failed.append(f"Consumer group '{g}' does not exist.")
            elif code == "NON_EMPTY_GROUP":
                failed.append(f"Deletion of consumer group '{g}' failed: the group has active members "
                              "(stop its consumers first).")
            else:
                failed.append(f"Deletion of consumer group '{g}' failed: {error_text(exc)}")
    deleted = [g for g in groups if not any(f"'{g}'" in f for f in failed)]
    if failed:
        if len(failed) > 1:
            raise CliError(f"{failed[0]} ({len(failed) - 1} more failed; deleted: {', '.join(deleted) or 'none'})")
        raise CliError(failed[0] + (f" (deleted: {', '.join(deleted)})" if deleted else ""))
    if args.output == "json":
        print_json({"deleted": deleted})
    else:
        print("Deletion of requested consumer groups (" + ", ".join(f"'{g}'" for g in deleted) + ") was successful.")
    return 0


# --------------------------------------------------------------------------- --delete-offsets


def _delete_offsets(admin: Any, md: Any, args: argparse.Namespace) -> int:
    group = args.group[0]
    wanted = parse_topics(md, args.topic)
    desc = describe_groups(admin, [group])[group]
    committed = committed_offsets(admin, group)
    if group_state(desc, committed) == "Dead":
        raise CliError(f"Consumer group '{group}' does not exist.")
    node = desc.coordinator
    if node is None:
        raise CliError(f"no coordinator known for group '{group}'")
    errors = _offset_delete_request(node.host, node.port, group, wanted)
    rows = [{"topic": t, "partition": p, "error": errors.get((t, p))} for t, p in wanted]
    failed = [r for r in rows if r["error"]]
    if args.output == "json":
        print_json({"group": group, "partitions": rows})
    else:
        topics = ", ".join(dict.fromkeys(t for t, _ in wanted))
        verb = "failed" if failed else "succeed"
        print(f"Request {verb} for deleting offsets with topic {topics} group {group}")
        wt = max([15] + [len(t) for t, _ in wanted])
        print()
        print(f"{'TOPIC':<{wt}} {'PARTITION':<10} STATUS")
        for r in rows:
            status = f"Error: {r['error']}" if r["error"] else "Successful"
            print(f"{r['topic']:<{wt}} {r['partition']:<10} {status}")
    if failed:
        r = failed[0]
        raise CliError(f"Deleting offsets of {r['topic']}-{r['partition']} for group '{group}' failed: {r['error']}")
    return 0


_OFFSET_DELETE_ERRORS = {
    "group_subscribed_to_topic": "the group is subscribed to the topic (stop its consumers first)",
    "group_id_not_found": "the group does not exist",
}


def _offset_delete_request(host: str, port: int, group: str,
                           partitions: list[tuple[str, int]]) -> dict[tuple[str, int], str | None]:
    """OffsetDelete v0 to the group's coordinator: the one request confluent-kafka's Python API lacks."""
    from kio.schema.offset_delete.v0.request import (
        OffsetDeleteRequest,
        OffsetDeleteRequestPartition,
        OffsetDeleteRequestTopic,
    )
    from kio.schema.types import GroupId, TopicName
    from kio.static.primitive import i32

    from suoi.client import request_sync

    by_topic: dict[str, list[int]] = {}
    for t, p in partitions:
        by_topic.setdefault(t, []).append(p)
    request = OffsetDeleteRequest(group_id=GroupId(group), topics=tuple(
        OffsetDeleteRequestTopic(name=TopicName(t), partitions=tuple(
            OffsetDeleteRequestPartition(partition_index=i32(p)) for p in ps)) for t, ps in by_topic.items()))
    try:
        response = request_sync(host, port, request, client_id="suoi-consumer-groups", timeout=TIMEOUT_S)
    except OSError as exc:  # ConnectionError and TimeoutError included
        reason = exc.strerror or str(exc) or "timed out"
        raise CliError(f"cannot reach the group coordinator at {host}:{port}: {reason}") from None
    if response.error_code.value != 0:
        name = response.error_code.name
        raise CliError(f"Deleting offsets for group '{group}' failed: {_OFFSET_DELETE_ERRORS.get(name, name)}")
    out: dict[tuple[str, int], str | None] = {}
    for topic in response.topics:
        for part in topic.partitions:
            name = part.error_code.name
            out[(str(topic.name), int(part.partition_index))] = (
                None if part.error_code.value == 0 else _OFFSET_DELETE_ERRORS.get(name, name))
    return out
