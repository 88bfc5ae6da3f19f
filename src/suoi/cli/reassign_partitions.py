"""`suoi reassign-partitions`: kafka-reassign-partitions.sh -- move partitions between brokers.

Actions (exactly one), with Kafka's JSON formats and messages:

* ``--generate --topics-to-move-json-file F --broker-list 1,2,3``: prints the current assignment
  of the topics in F (``{"topics": [{"topic": "foo"}], "version": 1}``) and a proposal that
  spreads them over the listed brokers (same replication factor; deterministic: partition p of
  the k-th topic starts at broker k+p of the list ordered by id, alternating racks unless
  --disable-rack-aware; Kafka's own placement starts at a random broker);
* ``--execute --reassignment-json-file F``: starts the reassignments in F
  (``{"version": 1, "partitions": [{"topic": "foo", "partition": 0, "replicas": [1, 2]}]}``),
  after printing the current assignment to save for a rollback. Refused while other
  reassignments are running unless --additional;
* ``--verify --reassignment-json-file F``: for each partition in F, still in progress, completed,
  or not reassigning but with other replicas than asked;
* ``--cancel --reassignment-json-file F``: cancels those of F that are in progress (their
  replicas go back to what they were before);
* ``--list``: every reassignment in progress, with the replicas being added and removed.

suoi has no replication throttles, so Kafka's --throttle options do not exist and
--preserve-throttles is accepted and changes nothing; ``log_dirs`` entries must be "any".
The three reassignment requests are sent with `admin_requests`; metadata and brokers come from
confluent-kafka's AdminClient.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from suoi.cli.admin_requests import check_top_level, error_name, partitions_text, send
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

ACTIONS = ("generate", "execute", "verify", "cancel", "list")
REQUIRED = {"generate": ("topics_to_move_json_file", "broker_list"), "execute": ("reassignment_json_file",),
            "verify": ("reassignment_json_file",), "cancel": ("reassignment_json_file",), "list": ()}
ALLOWED = {"generate": {"disable_rack_aware"}, "execute": {"additional"}, "verify": {"preserve_throttles"},
           "cancel": {"preserve_throttles"}, "list": set()}
OPTIONS = ("reassignment_json_file", "topics_to_move_json_file", "broker_list", "disable_rack_aware", "additional",
           "preserve_throttles")
EXISTING = ("Cannot execute because there is an existing partition assignment.  Use --additional to override this "
            "and create a new partition assignment in addition to the existing one.")

Assignment = dict[tuple[str, int], list[int]]


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "reassign-partitions", help="move partitions between brokers (kafka-reassign-partitions)",
        description="Generate, execute, verify, cancel and list partition reassignments. Same flags and JSON "
        "files as Kafka's kafka-reassign-partitions.sh.",
        epilog="examples: suoi reassign-partitions --generate --topics-to-move-json-file topics.json "
        "--broker-list 1,2,3 --bootstrap-server localhost:9092\n"
        "  suoi reassign-partitions --execute --reassignment-json-file plan.json --bootstrap-server localhost:9092\n"
        "  suoi reassign-partitions --verify --reassignment-json-file plan.json --bootstrap-server localhost:9092",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_args(p)
    for name in ACTIONS:
        p.add_argument(f"--{name}", action="store_true", help=_ACTION_HELP[name])
    p.add_argument("--reassignment-json-file", type=Path, metavar="FILE",
                   help='--execute/--verify/--cancel: {"version": 1, "partitions": [{"topic": "foo", '
                   '"partition": 0, "replicas": [1, 2]}]}')
    p.add_argument("--topics-to-move-json-file", type=Path, metavar="FILE",
                   help='--generate: {"topics": [{"topic": "foo"}], "version": 1}')
    p.add_argument("--broker-list", metavar="1,2,3", help="--generate: the brokers to spread the topics over")
    p.add_argument("--disable-rack-aware", action="store_true", help="--generate: ignore the brokers' racks")
    p.add_argument("--additional", action="store_true",
                   help="--execute: start even while other reassignments are in progress")
    p.add_argument("--preserve-throttles", action="store_true",
                   help="--verify/--cancel: accepted for compatibility (suoi has no replication throttles)")
    p.set_defaults(func=guarded("reassign-partitions")(run))


_ACTION_HELP = {
    "generate": "propose an assignment of the topics in --topics-to-move-json-file over --broker-list",
    "execute": "start the reassignments in --reassignment-json-file",
    "verify": "show whether the reassignments in --reassignment-json-file are done",
    "cancel": "cancel the reassignments in --reassignment-json-file that are in progress",
    "list": "list the reassignments in progress",
}


def _action(args: argparse.Namespace) -> str:
    chosen = [a for a in ACTIONS if getattr(args, a)]
    if len(chosen) != 1:
        raise CliError("Command must include exactly one action: " + ", ".join(f"--{a}" for a in ACTIONS))
    action = chosen[0]
    for name in REQUIRED[action]:
        if getattr(args, name) is None:
            raise CliError(f'Missing required argument "[{name.replace("_", "-")}]"')
    for name in OPTIONS:
        if getattr(args, name) not in (None, False) and name not in REQUIRED[action] and name not in ALLOWED[action]:
            raise CliError(f'Option "[{name.replace("_", "-")}]" can\'t be used with action "[{action}]"')
    return action


def run(args: argparse.Namespace) -> int:
    handlers = {"generate": _generate, "execute": _execute, "verify": _verify, "cancel": _cancel, "list": _list}
    return handlers[_action(args)](args)


# ---------------------------------------------------------------------------- JSON files


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise CliError(f"{path} is not valid JSON: {exc}") from None


def _version(doc: Any, path: Path) -> None:
    if not isinstance(doc, dict):
        raise CliError(f"{path}: expected a JSON object")
    if doc.get("version", 1) != 1:
        raise CliError(f"Not supported version field value {doc['version']}")


def _read_reassignment(path: Path) -> list[tuple[str, int, list[int]]]:
    doc = _load(path)
    _version(doc, path)
    out = []
    try:
        for x in doc.get("partitions", []):
            topic, partition = str(x["topic"]), int(x["partition"])
            replicas = [int(b) for b in x["replicas"]]
            log_dirs = x.get("log_dirs", ["any"] * len(replicas))
            if len(log_dirs) != len(replicas):
                raise CliError(f"Size of replicas list {replicas} is different from size of log dirs list "
                               f"{log_dirs} for partition {topic}-{partition}")
            if any(d != "any" for d in log_dirs):
                raise CliError(f'{topic}-{partition}: log_dirs other than "any" are not supported '
                               "(suoi moves partitions between brokers, not between log dirs)")
            out.append((topic, partition, replicas))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CliError(f'{path}: each partition is {{"topic": "foo", "partition": 0, "replicas": [1, 2]}}: '
                       f"{exc!r}") from None
    return out


def _check_execute(parts: list[tuple[str, int, list[int]]]) -> None:
    """Kafka's checks of an --execute file."""
    if not parts:
        raise CliError("Partition reassignment list cannot be empty")
    if any(not replicas for _, _, replicas in parts):
        raise CliError("Partition replica list cannot be empty")
    keys = [(t, p) for t, p, _ in parts]
    dups = sorted({k for k in keys if keys.count(k) > 1})
    if dups:
        raise CliError(f"Partition reassignment contains duplicate topic partitions: {partitions_text(dups)}")
    multiple = [f"{t}-{p} contains multiple entries for {','.join(str(b) for b in sorted({b for b in rs if rs.count(b) > 1}))}"
                for t, p, rs in parts if len(set(rs)) != len(rs)]
    if multiple:
        raise CliError(f"Partition replica lists may not contain duplicate entries: {'. '.join(multiple)}")


def _reassignment_doc(assignment: Assignment) -> dict[str, Any]:
    return {"version": 1, "partitions": [
        {"topic": t, "partition": p, "replicas": rs, "log_dirs": ["any"] * len(rs)}
        for (t, p), rs in sorted(assignment.items())]}


def _compact(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"))


# ---------------------------------------------------------------------------- cluster state


def _metadata(args: argparse.Namespace) -> tuple[Any, Any]:
    admin = admin_client(args)
    return admin, cluster_metadata(admin, args.bootstrap_server)


def _current(md: Any, keys: list[tuple[str, int]]) -> Assignment:
    """Current replicas of ``keys``; Kafka's error when one does not exist."""
    out: Assignment = {}
    missing = []
    for t, p in keys:
        topic = md.topics.get(t)
        part = None if topic is None or topic.error is not None else topic.partitions.get(p)
        if part is None:
            missing.append((t, p))
        else:
            out[(t, p)] = list(part.replicas)
    if missing:
        raise CliError(f"Unable to find partition: {partitions_text(missing, ', ')}")
    return out


def _ongoing(args: argparse.Namespace, keys: list[tuple[str, int]] | None = None) -> dict[tuple[str, int], Any]:
    """(topic, partition) -> (replicas, adding, removing) of the reassignments in progress."""
    from kio.schema.list_partition_reassignments.v0.request import (
        ListPartitionReassignmentsRequest,
        ListPartitionReassignmentsTopics,
    )
    from kio.schema.types import TopicName
    from kio.static.primitive import i32

    topics = None
    if keys is not None:
        by_topic: dict[str, list[int]] = {}
        for t, p in keys:
            by_topic.setdefault(t, []).append(p)
        topics = tuple(ListPartitionReassignmentsTopics(name=TopicName(t), partition_indexes=tuple(i32(p) for p in ps))
                       for t, ps in by_topic.items())
    response = send(args, ListPartitionReassignmentsRequest(topics=topics), "reassign-partitions")
    check_top_level(response, "Listing partition reassignments")
    return {(str(t.name), int(p.partition_index)): ([int(b) for b in p.replicas], [int(b) for b in p.adding_replicas],
                                                     [int(b) for b in p.removing_replicas])
            for t in response.topics for p in t.partitions}


def _alter(args: argparse.Namespace, targets: list[tuple[str, int, list[int] | None]]) -> dict[tuple[str, int], str]:
    """AlterPartitionReassignments; the partitions that failed, with their error."""
    from kio.schema.alter_partition_reassignments.v0.request import (
        AlterPartitionReassignmentsRequest,
        ReassignablePartition,
        ReassignableTopic,
    )
    from kio.schema.types import BrokerId, TopicName
    from kio.static.primitive import i32

    by_topic: dict[str, list[tuple[int, list[int] | None]]] = {}
    for t, p, rs in targets:
        by_topic.setdefault(t, []).append((p, rs))
    request = AlterPartitionReassignmentsRequest(topics=tuple(ReassignableTopic(name=TopicName(t), partitions=tuple(
        ReassignablePartition(partition_index=i32(p), replicas=None if rs is None else tuple(BrokerId(b) for b in rs))
        for p, rs in ps)) for t, ps in by_topic.items()))
    response = send(args, request, "reassign-partitions")
    check_top_level(response, "Partition reassignment")
    return {(str(t.name), int(p.partition_index)): f"{error_name(p.error_code)}: {p.error_message}"
            for t in response.responses for p in t.partitions if p.error_code.value}


def _errors_text(errors: dict[tuple[str, int], str]) -> str:
    return "; ".join(f"{t}-{p}: {e}" for (t, p), e in sorted(errors.items()))


# ---------------------------------------------------------------------------- actions


def _execute(args: argparse.Namespace) -> int:
    parts = _read_reassignment(args.reassignment_json_file)
    _check_execute(parts)
    _, md = _metadata(args)
    if not args.additional and _ongoing(args):
        raise CliError(EXISTING)
    live = set(md.brokers)
    unknown = next((b for _, _, rs in parts for b in rs if b not in live), None)
    if unknown is not None:
        raise CliError(f"Unknown broker id {unknown}")
    current = _current(md, [(t, p) for t, p, _ in parts])
    if args.output != "json":
        print(f"Current partition replica assignment\n\n{_compact(_reassignment_doc(current))}\n\n"
              "Save this to use as the --reassignment-json-file option during rollback")
    errors = _alter(args, [(t, p, rs) for t, p, rs in parts])
    started = sorted((t, p) for t, p, _ in parts if (t, p) not in errors)
    if args.output == "json":
        print_json({"current": _reassignment_doc(current), "partitions": [
            {"topic": t, "partition": p, "replicas": rs, "error": errors.get((t, p))} for t, p, rs in sorted(parts)]})
    if errors:
        raise CliError(f"Error reassigning partition(s): {_errors_text(errors)}")
    if args.output != "json":
        print(f"Successfully started partition reassignment{'' if len(started) == 1 else 's'} for "
              f"{partitions_text(started)}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    parts = _read_reassignment(args.reassignment_json_file)
    _, md = _metadata(args)
    ongoing = _ongoing(args)
    rows = []
    for t, p, target in sorted(parts):
        if (t, p) in ongoing:
            current, state = ongoing[(t, p)][0], "in_progress"
        else:
            topic = md.topics.get(t)
            part = None if topic is None or topic.error is not None else topic.partitions.get(p)
            current = [] if part is None else list(part.replicas)
            state = "completed" if current == target else "mismatch"
        rows.append({"topic": t, "partition": p, "state": state, "current_replicas": current,
                     "target_replicas": target})
    if args.output == "json":
        print_json({"partitions": rows, "in_progress": bool(ongoing)})
        return 0
    print("Status of partition reassignment:")
    for r in rows:
        name = f"{r['topic']}-{r['partition']}"
        if r["state"] == "in_progress":
            print(f"Reassignment of partition {name} is still in progress.")
        elif r["state"] == "completed":
            print(f"Reassignment of partition {name} is completed.")
        else:
            print(f"There is no active reassignment of partition {name}, but replica set is "
                  f"{','.join(map(str, r['current_replicas']))} rather than {','.join(map(str, r['target_replicas']))}.")
    return 0


def _cancel(args: argparse.Namespace) -> int:
    parts = _read_reassignment(args.reassignment_json_file)
    ongoing = sorted(_ongoing(args, sorted({(t, p) for t, p, _ in parts})))
    errors = _alter(args, [(t, p, None) for t, p in ongoing]) if ongoing else {}
    cancelled = [k for k in ongoing if k not in errors]
    if args.output == "json":
        print_json({"cancelled": [{"topic": t, "partition": p} for t, p in cancelled],
                    "errors": [{"topic": t, "partition": p, "error": e} for (t, p), e in sorted(errors.items())]})
    if errors:
        raise CliError(f"Error cancelling partition reassignment{'' if len(errors) == 1 else 's'} for: "
                       f"{_errors_text(errors)}")
    if args.output != "json":
        if cancelled:
            print(f"Successfully cancelled partition reassignment{'' if len(cancelled) == 1 else 's'} for: "
                  f"{partitions_text(cancelled)}")
        else:
            print("None of the specified partition reassignments are active.")
    return 0


def _list(args: argparse.Namespace) -> int:
    ongoing = _ongoing(args)
    if args.output == "json":
        print_json({"reassignments": [{"topic": t, "partition": p, "replicas": rs, "adding_replicas": add,
                                       "removing_replicas": rem} for (t, p), (rs, add, rem) in sorted(ongoing.items())]})
        return 0
    if not ongoing:
        print("No partition reassignments found.")
        return 0
    print("Current partition reassignments:")
    for (t, p), (rs, add, rem) in sorted(ongoing.items()):
        line = f"{t}-{p}: replicas: {','.join(map(str, rs))}."
        if add:
            line += f" adding: {','.join(map(str, add))}."
        if rem:
            line += f" removing: {','.join(map(str, rem))}."
        print(line)
    return 0


def _generate(args: argparse.Namespace) -> int:
    brokers = _broker_list(args.broker_list)
    doc = _load(args.topics_to_move_json_file)
    _version(doc, args.topics_to_move_json_file)
    try:
        topics = [str(x["topic"]) for x in doc.get("topics", [])]
    except (KeyError, TypeError, AttributeError) as exc:
        raise CliError(f'{args.topics_to_move_json_file}: each topic is {{"topic": "foo"}}: {exc!r}') from None
    dups = sorted({t for t in topics if topics.count(t) > 1})
    if dups:
        raise CliError(f"List of topics to reassign contains duplicate entries: {', '.join(dups)}")
    admin, md = _metadata(args)
    for t in topics:
        if t not in md.topics or md.topics[t].error is not None:
            raise CliError(f"Topic {t} not found.")
    current = _current(md, [(t, p) for t in topics for p in md.topics[t].partitions])
    racks = _racks(admin, brokers, not args.disable_rack_aware)
    proposed = propose(current, racks)
    if args.output == "json":
        print_json({"current": _reassignment_doc(current), "proposed": _reassignment_doc(proposed)})
    else:
        print(f"Current partition replica assignment\n{_compact(_reassignment_doc(current))}\n")
        print(f"Proposed partition reassignment configuration\n{_compact(_reassignment_doc(proposed))}")
    return 0


def _broker_list(text: str) -> list[int]:
    try:
        brokers = [int(x) for x in text.split(",")]
    except ValueError:
        raise CliError(f"--broker-list expects broker ids like 1,2,3, got {text!r}") from None
    dups = sorted({b for b in brokers if brokers.count(b) > 1})
    if dups:
        raise CliError(f"Broker list contains duplicate entries: {','.join(map(str, dups))}")
    return brokers


def _racks(admin: Any, brokers: list[int], rack_aware: bool) -> dict[int, str | None]:
    """The listed brokers that exist (live), with their racks (None without rack awareness)."""
    nodes = result(admin.describe_cluster(request_timeout=TIMEOUT_S)).nodes
    found = {n.id: (n.rack or None) if rack_aware else None for n in nodes if n.id in set(brokers)}
    rackless = sum(1 for r in found.values() if r is None)
    if rack_aware and rackless not in (0, len(found)):
        raise CliError("Not all brokers have rack information. Add --disable-rack-aware in command line to make "
                       "replica assignment without rack information.")
    return found


def propose(current: Assignment, brokers: dict[int, str | None]) -> Assignment:
    """Spread every topic of ``current`` over ``brokers`` (id -> rack) with its replication factor
    (that of its first partition): brokers ordered by id, alternating racks; partition p of the
    k-th topic (by name) takes the replication-factor brokers from position k + p on."""
    by_rack: dict[str | None, list[int]] = {}
    for b in sorted(brokers):
        by_rack.setdefault(brokers[b], []).append(b)
    columns = [by_rack[r] for r in sorted(by_rack, key=lambda r: (r is None, r or ""))]
    ordered = [col[i] for i in range(max((len(c) for c in columns), default=0)) for col in columns if i < len(col)]
    out: Assignment = {}
    for k, topic in enumerate(sorted({t for t, _ in current})):
        parts = sorted(p for t, p in current if t == topic)
        rf = len(current[(topic, parts[0])])
        if rf > len(ordered):
            raise CliError(f"Replication factor: {rf} larger than available brokers: {len(ordered)}.")
        for p in parts:
            out[(topic, p)] = [ordered[(k + p + j) % len(ordered)] for j in range(rf)]
    return out
