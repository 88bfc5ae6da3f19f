"""`suoi leader-election`: kafka-leader-election.sh -- preferred or unclean leader elections.

Exactly one of --all-topic-partitions, --topic with --partition, or --path-to-json-file
(`{"partitions": [{"topic": "foo", "partition": 1}]}`). The output is Kafka's: the partitions
elected, those that needed no election ("Valid replica already elected"), and one line per
failure; any failure makes the exit code 1. The ElectLeaders request goes through
`admin_requests` (any broker forwards it to the active controller).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from suoi.cli.admin_requests import check_top_level, error_name, partitions_text, send
from suoi.cli.common import CliError, add_common_args, guarded, print_json

ELECTION_TYPES = {"PREFERRED": 0, "UNCLEAN": 1}


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "leader-election", help="elect preferred or unclean partition leaders (kafka-leader-election)",
        description="Elect the preferred leader (first replica) of partitions, or an unclean leader for "
        "partitions without one. Same flags as Kafka's kafka-leader-election.sh.",
        epilog="examples: suoi leader-election --election-type PREFERRED --all-topic-partitions "
        "--bootstrap-server localhost:9092\n"
        "  suoi leader-election --election-type UNCLEAN --topic orders --partition 0 --bootstrap-server localhost:9092",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_args(p)
    p.add_argument("--election-type", type=str.upper, choices=sorted(ELECTION_TYPES), metavar="PREFERRED|UNCLEAN",
                   help="REQUIRED: preferred (only where the leader is not the first replica) or unclean "
                   "(only where there is no leader)")
    p.add_argument("--all-topic-partitions", action="store_true", help="every partition that needs the election")
    p.add_argument("--topic", help="the topic of the one partition (with --partition)")
    p.add_argument("--partition", type=int, metavar="N", help="the partition (with --topic)")
    p.add_argument("--path-to-json-file", type=Path, metavar="FILE",
                   help='{"partitions": [{"topic": "foo", "partition": 1}, ...]}')
    p.set_defaults(func=guarded("leader-election")(run))


def _targets(args: argparse.Namespace) -> list[tuple[str, int]] | None:
    """The partitions to elect for (None: all)."""
    if args.election_type is None:
        raise CliError("Missing required option(s) [election-type]")
    chosen = [args.all_topic_partitions, args.topic is not None, args.path_to_json_file is not None]
    if sum(chosen) != 1:
        raise CliError("One and only one of the following options is required: "
                       "all-topic-partitions, topic, path-to-json-file")
    if args.partition is not None and args.topic is None:
        raise CliError("--partition needs --topic")
    if args.all_topic_partitions:
        return None
    if args.topic is not None:
        if args.partition is None:
            raise CliError("Missing required option(s) [partition]")
        return [(args.topic, args.partition)]
    return _read_json(args.path_to_json_file)


def _read_json(path: Path) -> list[tuple[str, int]]:
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise CliError(f"{path} is not JSON: {exc}") from None
    if not isinstance(doc, dict) or "partitions" not in doc:
        raise CliError('Replica election data is missing "partitions" field')
    try:
        items = [(str(x["topic"]), int(x["partition"])) for x in doc["partitions"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise CliError(f'{path}: each partition is {{"topic": "foo", "partition": 1}}: {exc!r}') from None
    dups = sorted({x for x in items if items.count(x) > 1})
    if dups:
        raise CliError(f"Replica election data contains duplicate partitions: {partitions_text(dups)}")
    return items


def _request(election_type: int, targets: list[tuple[str, int]] | None) -> Any:
    from kio.schema.elect_leaders.v2.request import ElectLeadersRequest, TopicPartitions
    from kio.schema.types import TopicName
    from kio.static.primitive import i8, i32

    by_topic: dict[str, list[int]] = {}
    for t, p in targets or []:
        by_topic.setdefault(t, []).append(p)
    return ElectLeadersRequest(election_type=i8(election_type), topic_partitions=None if targets is None else tuple(
        TopicPartitions(topic=TopicName(t), partitions=tuple(i32(p) for p in ps)) for t, ps in by_topic.items()))


def run(args: argparse.Namespace) -> int:
    targets = _targets(args)
    kind = args.election_type
    response = send(args, _request(ELECTION_TYPES[kind], targets), "leader-election")
    check_top_level(response, f"Leader election ({kind})")
    rows = sorted(({"topic": str(r.topic), "partition": int(p.partition_id), "error": error_name(p.error_code)
                    if p.error_code.value else None, "message": p.error_message}
                   for r in response.replica_election_results for p in r.partition_result),
                  key=lambda r: (r["topic"], r["partition"]))
    elected = [(r["topic"], r["partition"]) for r in rows if r["error"] is None]
    noop = [(r["topic"], r["partition"]) for r in rows if r["error"] == "ELECTION_NOT_NEEDED"]
    failed = [r for r in rows if r["error"] not in (None, "ELECTION_NOT_NEEDED")]
    if args.output == "json":
        print_json({"election_type": kind, "partitions": [
            {**r, "result": "elected" if r["error"] is None else "not_needed" if r["error"] == "ELECTION_NOT_NEEDED"
             else "failed"} for r in rows]})
    else:
        if elected:
            print(f"Successfully completed leader election ({kind}) for partitions {partitions_text(elected, ', ')}")
        if noop:
            print(f"Valid replica already elected for partitions {partitions_text(noop, ', ')}")
        for r in failed:
            print(f"Error completing leader election ({kind}) for partition: {r['topic']}-{r['partition']}: "
                  f"{r['error']}: {r['message']}")
    if failed:
        first = failed[0]
        raise CliError(f"{len(failed)} replica(s) could not be elected; first: {first['topic']}-{first['partition']}: "
                       f"{first['error']}: {first['message']}")
    return 0
