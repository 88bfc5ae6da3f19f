"""`suoi consumer-groups`: kafka-consumer-groups.sh -- list, describe (offsets and lag,
members, state), delete groups, delete offsets and reset offsets.

Everything goes through confluent-kafka's AdminClient except OffsetDelete
(--delete-offsets), which confluent-kafka's Python API lacks: that one request is written
with kio (the codec library suoi already depends on) and sent to the group's coordinator.

Lag is the partition's log end offset (high watermark) minus the committed offset. As in
Kafka, `-` marks a value that does not exist (no committed offset, no member owning the
partition), and offsets to reset to are clamped to [log start, log end].
"""

from __future__ import annotations

import argparse
import datetime
import re
import sys
import time
from collections.abc import Iterable
from typing import Any

from suoi.cli.common import (
    TIMEOUT_S,
    CliError,
    add_common_args,
    admin_client,
    cluster_metadata,
    guarded,
    kafka_error_text,
    print_json,
    result,
)

MISSING = "-"
STATE_NAMES = {"UNKNOWN": "Unknown", "PREPARING_REBALANCING": "PreparingRebalance",
               "COMPLETING_REBALANCING": "CompletingRebalance", "STABLE": "Stable", "DEAD": "Dead",
               "EMPTY": "Empty"}
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
        return _describe(admin, args)
    if args.delete:
        return _delete(admin, args)
    if args.delete_offsets:
        return _delete_offsets(admin, md, args)
    return _reset(admin, md, args)


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


# --------------------------------------------------------------------------- reading groups


def _state(value: Any) -> str:
    name = getattr(value, "name", None)
    if name is None:
        return str(value)
    return STATE_NAMES.get(name, name.title())


def _describe_groups(admin: Any, groups: list[str]) -> dict[str, Any]:
    if not groups:
        return {}
    futures = admin.describe_consumer_groups(groups, request_timeout=TIMEOUT_S)
    return {g: result(futures[g]) for g in groups}


def _committed(admin: Any, group: str) -> dict[tuple[str, int], int]:
    """The group's committed offsets (only partitions that have one)."""
    from confluent_kafka import ConsumerGroupTopicPartitions

    futures = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=TIMEOUT_S)
    res = result(futures[group])
    out = {}
    for tp in res.topic_partitions or []:
        if tp.error is None and tp.offset >= 0:
            out[(tp.topic, tp.partition)] = tp.offset
    return out


def _list_offsets(admin: Any, partitions: Iterable[tuple[str, int]], spec: Any) -> dict[tuple[str, int], int | None]:
    """ListOffsets for `spec` per partition; None where the broker has no answer (e.g. deleted topic)."""
    from confluent_kafka import KafkaException, TopicPartition

    wanted = sorted(set(partitions))
    if not wanted:
        return {}
    futures = admin.list_offsets({TopicPartition(t, p): spec for t, p in wanted}, request_timeout=TIMEOUT_S)
    out: dict[tuple[str, int], int | None] = {}
    for tp, fut in futures.items():
        try:
            offset = result(fut).offset
        except KafkaException:
            offset = -1
        out[(tp.topic, tp.partition)] = offset if offset >= 0 else None
    return out


def _log_end_offsets(admin: Any, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int | None]:
    from confluent_kafka.admin import OffsetSpec

    return _list_offsets(admin, partitions, OffsetSpec.latest())


def _all_group_ids(admin: Any) -> list[str]:
    res = result(admin.list_consumer_groups(request_timeout=TIMEOUT_S))
    if res.errors:
        raise CliError(f"listing groups failed: {_err_text(res.errors[0])}")
    return sorted(g.group_id for g in res.valid)


def _err_text(err: Any) -> str:
    from confluent_kafka import KafkaError, KafkaException

    if isinstance(err, KafkaException) and err.args and isinstance(err.args[0], KafkaError):
        return kafka_error_text(err.args[0])
    if isinstance(err, KafkaError):
        return kafka_error_text(err)
    return str(err)


def _group_ids(admin: Any, args: argparse.Namespace) -> list[str]:
    return _all_group_ids(admin) if args.all_groups else list(dict.fromkeys(args.group))


def _group_state(desc: Any, committed: dict[tuple[str, int], int]) -> str:
    state = _state(desc.state)
    # A group that only has committed offsets (simple consumers) exists, with no members: Empty.
    if state == "Dead" and committed:
        return "Empty"
    return state


# --------------------------------------------------------------------------- --list


def _list(admin: Any, args: argparse.Namespace) -> int:
    from confluent_kafka import ConsumerGroupState

    kwargs: dict[str, Any] = {"request_timeout": TIMEOUT_S}
    if args.state:
        by_name = {v.lower(): k for k, v in STATE_NAMES.items() if k != "UNKNOWN"}
        states = set()
        for name in filter(None, (s.strip() for s in args.state.split(","))):
            if name.lower() not in by_name:
                raise CliError(f"--state {name!r} is not one of Stable, Empty, PreparingRebalance, "
                               "CompletingRebalance, Dead")
            states.add(ConsumerGroupState[by_name[name.lower()]])
        kwargs["states"] = states
    res = result(admin.list_consumer_groups(**kwargs))
    if res.errors:
        raise CliError(f"listing groups failed: {_err_text(res.errors[0])}")
    rows = sorted((g.group_id, _state(g.state)) for g in res.valid)
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


# --------------------------------------------------------------------------- --describe


def _describe(admin: Any, args: argparse.Namespace) -> int:
    groups = _group_ids(admin, args)
    descs = _describe_groups(admin, groups)
    committed = {g: _committed(admin, g) for g in groups}
    states = {g: _group_state(descs[g], committed[g]) for g in groups}
    missing = [g for g in groups if states[g] == "Dead"]
    if missing and not args.all_groups:
        raise CliError(f"Consumer group '{missing[0]}' does not exist.")
    groups = [g for g in groups if g not in missing]
    if args.members:
        docs = [_members_doc(g, descs[g], states[g]) for g in groups]
        _print_members(docs, args)
    elif args.state is not None:
        docs = [_state_doc(g, descs[g], states[g]) for g in groups]
        _print_states(docs, args)
    else:
        docs = _offsets_docs(admin, groups, descs, committed, states)
        _print_offsets(docs, args)
    return 0


def _assigned(member: Any) -> list[tuple[str, int]]:
    assignment = getattr(member, "assignment", None)
    return sorted((tp.topic, tp.partition) for tp in (getattr(assignment, "topic_partitions", None) or []))


def _offsets_docs(admin: Any, groups: list[str], descs: dict[str, Any], committed: dict[str, dict[tuple[str, int], int]],
                  states: dict[str, str]) -> list[dict[str, Any]]:
    every = {tp for g in groups for tp in committed[g]}
    every |= {tp for g in groups for m in descs[g].members for tp in _assigned(m)}
    leo = _log_end_offsets(admin, every)
    docs = []
    for g in groups:
        rows: list[dict[str, Any]] = []
        seen: set[tuple[str, int]] = set()

        def row(topic: str | None, partition: int | None, member: Any | None, _g: str = g) -> dict[str, Any]:
            cur = committed[_g].get((topic, partition)) if topic is not None else None  # type: ignore[arg-type]
            end = leo.get((topic, partition)) if topic is not None else None  # type: ignore[arg-type]
            return {"topic": topic, "partition": partition, "current_offset": cur, "log_end_offset": end,
                    "lag": end - cur if end is not None and cur is not None else None,
                    "consumer_id": member.member_id if member is not None else None,
                    "host": member.host if member is not None else None,
                    "client_id": member.client_id if member is not None else None}

        members = sorted(descs[g].members, key=lambda m: (-len(_assigned(m)), m.member_id))
        for m in members:
            parts = _assigned(m)
            seen.update(parts)
            rows += [row(t, p, m) for t, p in parts] if parts else [row(None, None, m)]
        rows += [row(t, p, None) for t, p in sorted(committed[g]) if (t, p) not in seen]
        docs.append({"group": g, "state": states[g], "offsets": rows})
    return docs


def _cell(value: Any) -> str:
    return MISSING if value is None else str(value)


def _notice(group: str, state: str, has_rows: bool) -> None:
    if state == "Empty":
        print(f"\nConsumer group '{group}' has no active members.", file=sys.stderr)
    elif state in ("PreparingRebalance", "CompletingRebalance"):
        print(f"\nWarning: Consumer group '{group}' is rebalancing.", file=sys.stderr)


def _print_offsets(docs: list[dict[str, Any]], args: argparse.Namespace) -> None:
    if args.output == "json":
        print_json({"groups": docs})
        return
    for d in docs:
        _notice(d["group"], d["state"], bool(d["offsets"]))
        if not d["offsets"]:
            continue
        rows = d["offsets"]
        wg = max(15, len(d["group"]))
        wt = max([15] + [len(_cell(r["topic"])) for r in rows])
        wc = max([15] + [len(_cell(r["consumer_id"])) for r in rows])
        wh = max([15] + [len(_cell(r["host"])) for r in rows])

        fmt = f"{{:<{wg}}} {{:<{wt}}} {{:<10}} {{:<15}} {{:<15}} {{:<15}} {{:<{wc}}} {{:<{wh}}} {{}}"

        def line(*cells: Any, fmt: str = fmt) -> str:
            return fmt.format(*cells).rstrip()

        print()
        print(line("GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST",
                   "CLIENT-ID"))
        for r in rows:
            print(line(d["group"], *(_cell(r[k]) for k in ("topic", "partition", "current_offset", "log_end_offset",
                                                            "lag", "consumer_id", "host", "client_id"))))


def _members_doc(group: str, desc: Any, state: str) -> dict[str, Any]:
    members = []
    for m in sorted(desc.members, key=lambda m: m.member_id):
        parts = _assigned(m)
        members.append({"consumer_id": m.member_id, "group_instance_id": m.group_instance_id, "host": m.host,
                        "client_id": m.client_id, "partitions": len(parts),
                        "assignment": [{"topic": t, "partition": p} for t, p in parts]})
    return {"group": group, "state": state, "members": members}


def _assignment_text(assignment: list[dict[str, Any]]) -> str:
    by_topic: dict[str, list[int]] = {}
    for a in assignment:
        by_topic.setdefault(a["topic"], []).append(a["partition"])
    return ",".join(f"{t}({','.join(map(str, ps))})" for t, ps in sorted(by_topic.items())) or MISSING


def _print_members(docs: list[dict[str, Any]], args: argparse.Namespace) -> None:
    if args.output == "json":
        print_json({"groups": docs})
        return
    for d in docs:
        _notice(d["group"], d["state"], bool(d["members"]))
        if not d["members"]:
            continue
        ms = d["members"]
        wg = max(15, len(d["group"]))
        wc = max([15] + [len(m["consumer_id"]) for m in ms])
        wi = max([17] + [len(_cell(m["group_instance_id"])) for m in ms])
        wh = max([15] + [len(m["host"]) for m in ms])
        wl = max([15] + [len(m["client_id"]) for m in ms])
        cols = ["GROUP", "CONSUMER-ID", "GROUP-INSTANCE-ID", "HOST", "CLIENT-ID", "#PARTITIONS"]
        fmt = f"{{:<{wg}}} {{:<{wc}}} {{:<{wi}}} {{:<{wh}}} {{:<{wl}}} {{:<11}}"
        if args.verbose:
            cols.append("ASSIGNMENT")
            fmt += " {}"
        print()
        print(fmt.format(*cols).rstrip())
        for m in ms:
            cells = [d["group"], m["consumer_id"], _cell(m["group_instance_id"]), m["host"], m["client_id"],
                     str(m["partitions"])]
            if args.verbose:
                cells.append(_assignment_text(m["assignment"]))
            print(fmt.format(*cells).rstrip())


def _state_doc(group: str, desc: Any, state: str) -> dict[str, Any]:
    node = desc.coordinator
    return {"group": group,
            "coordinator": {"id": node.id, "host": node.host, "port": node.port} if node is not None else None,
            "assignment_strategy": desc.partition_assignor or "", "state": state, "members": len(desc.members)}


def _print_states(docs: list[dict[str, Any]], args: argparse.Namespace) -> None:
    if args.output == "json":
        print_json({"groups": docs})
        return
    for d in docs:
        c = d["coordinator"]
        coordinator = f"{c['host']}:{c['port']}  ({c['id']})" if c else MISSING
        wg = max(15, len(d["group"]))
        wc = max(25, len(coordinator))
        fmt = f"{{:<{wg}}} {{:<{wc}}} {{:<25}} {{:<20}} {{}}"
        print()
        print(fmt.format("GROUP", "COORDINATOR (ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS"))
        print(fmt.format(d["group"], coordinator, d["assignment_strategy"] or MISSING, d["state"], d["members"]))


# --------------------------------------------------------------------------- --delete


def _delete(admin: Any, args: argparse.Namespace) -> int:
    from confluent_kafka import KafkaError, KafkaException

    groups = _group_ids(admin, args)
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
                failed.append(f"Deletion of consumer group '{g}' failed: {_err_text(exc)}")
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


def _parse_topics(md: Any, specs: list[str]) -> list[tuple[str, int]]:
    """--topic T or T:0,2 -> partitions (all of T's when none are given)."""
    out: list[tuple[str, int]] = []
    for spec in specs:
        topic, sep, parts = spec.partition(":")
        topic = topic.strip()
        if topic not in md.topics:
            raise CliError(f"Topic '{topic}' does not exist")
        known = sorted(md.topics[topic].partitions)
        if not sep:
            out += [(topic, p) for p in known]
            continue
        for part in filter(None, (x.strip() for x in parts.split(","))):
            try:
                p = int(part)
            except ValueError:
                raise CliError(f"--topic {spec!r}: {part!r} is not a partition number") from None
            if p not in known:
                raise CliError(f"Partition {topic}-{p} does not exist (the topic has {len(known)} partitions)")
            out.append((topic, p))
    return sorted(set(out))


def _delete_offsets(admin: Any, md: Any, args: argparse.Namespace) -> int:
    group = args.group[0]
    wanted = _parse_topics(md, args.topic)
    desc = _describe_groups(admin, [group])[group]
    committed = _committed(admin, group)
    if _group_state(desc, committed) == "Dead":
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
    import io
    import socket
    import struct

    from kio.schema.offset_delete.v0.request import (
        OffsetDeleteRequest,
        OffsetDeleteRequestPartition,
        OffsetDeleteRequestTopic,
    )
    from kio.schema.offset_delete.v0.response import OffsetDeleteResponse
    from kio.schema.types import GroupId, TopicName
    from kio.serial import entity_reader, entity_writer
    from kio.static.primitive import i16, i32

    by_topic: dict[str, list[int]] = {}
    for t, p in partitions:
        by_topic.setdefault(t, []).append(p)
    request = OffsetDeleteRequest(group_id=GroupId(group), topics=tuple(
        OffsetDeleteRequestTopic(name=TopicName(t), partitions=tuple(
            OffsetDeleteRequestPartition(partition_index=i32(p)) for p in ps)) for t, ps in by_topic.items()))
    header = OffsetDeleteRequest.__header_schema__(request_api_key=i16(47), request_api_version=i16(0),
                                                   correlation_id=i32(1), client_id="suoi-consumer-groups")

    buf = io.BytesIO()
    entity_writer(type(header))(buf, header)
    entity_writer(OffsetDeleteRequest)(buf, request)
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT_S) as sock:
            payload = buf.getvalue()
            sock.sendall(struct.pack(">i", len(payload)) + payload)
            size = struct.unpack(">i", _recv_exact(sock, 4))[0]
            frame = _recv_exact(sock, size)
    except OSError as exc:
        raise CliError(f"cannot reach the group coordinator at {host}:{port}: {exc.strerror or exc}") from None
    response, _ = entity_reader(OffsetDeleteResponse)(frame, 4)  # after the correlation id
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


def _recv_exact(sock: Any, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the coordinator closed the connection")
        data += chunk
    return bytes(data)


# --------------------------------------------------------------------------- --reset-offsets

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


def _reset(admin: Any, md: Any, args: argparse.Namespace) -> int:
    from confluent_kafka.admin import OffsetSpec

    groups = _group_ids(admin, args)
    descs = _describe_groups(admin, groups)
    plans = []
    for g in groups:
        state = _state(descs[g].state)
        if state not in ("Empty", "Dead"):
            raise CliError(f"Assignments can only be reset if the group '{g}' is inactive, but the current state "
                           f"is {state}.")
        committed = _committed(admin, g)
        partitions = sorted(committed) if args.all_topics else _parse_topics(md, args.topic)
        starts = _list_offsets(admin, partitions, OffsetSpec.earliest())
        ends = _log_end_offsets(admin, partitions)
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
            found = _list_offsets(admin, partitions, OffsetSpec.for_timestamp(ts))
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
                           f"{_err_text(tp.error)}")
