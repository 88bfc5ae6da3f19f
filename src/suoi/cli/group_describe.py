"""`suoi consumer-groups --describe`: offsets and lag per partition (default), --members
or --state, as tables or JSON. `-` marks a value that does not exist."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from suoi.cli.common import CliError, print_json
from suoi.cli.group_lookup import committed_offsets, describe_groups, group_ids, group_state, log_end_offsets

MISSING = "-"


def describe(admin: Any, args: argparse.Namespace) -> int:
    groups = group_ids(admin, args)
    descs = describe_groups(admin, groups)
    committed = {g: committed_offsets(admin, g) for g in groups}
    states = {g: group_state(descs[g], committed[g]) for g in groups}
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
    leo = log_end_offsets(admin, every)
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

