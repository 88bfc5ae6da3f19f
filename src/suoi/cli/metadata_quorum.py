"""`suoi metadata-quorum` (kafka-metadata-quorum.sh): the KRaft metadata quorum as its leader
sees it.

    suoi metadata-quorum --bootstrap-server HOST:PORT describe --status
    suoi metadata-quorum --bootstrap-controller HOST:PORT describe --replication [--human-readable]

Sends DescribeQuorum (v2, kio) to the first address that answers: a broker forwards it to the
active controller (`api/raft_apis.py`); a follower controller (`--bootstrap-controller`) names
the leader and its endpoint, which is asked next. `--status` also sends DescribeCluster for the cluster id. Output lines and
columns are Kafka's (`ClusterId:`, `LeaderId:`, ...; the `--replication` table with NodeId,
DirectoryId, LogEndOffset, Lag, LastFetchTimestamp, LastCaughtUpTimestamp, Status).
"""

from __future__ import annotations

import argparse
import base64
import time
import uuid
from typing import Any

from suoi.cli.admin_requests import at, error_name, send
from suoi.cli.common import CliError, guarded, print_json
from suoi.cli.tables import print_kafka_table

TOOL = "metadata-quorum"
METADATA_TOPIC = "__cluster_metadata"
REPLICATION_HEADERS = ("NodeId", "DirectoryId", "LogEndOffset", "Lag", "LastFetchTimestamp",
                       "LastCaughtUpTimestamp", "Status")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(TOOL, help="describe the KRaft metadata quorum (kafka-metadata-quorum.sh)",
                       description="This tool describes kraft metadata quorum status.")
    _connection_args(p, argparse.SUPPRESS)
    actions = p.add_subparsers(dest="quorum_command", metavar="COMMAND")
    d = actions.add_parser("describe", help="Describe the metadata quorum info")
    _connection_args(d, argparse.SUPPRESS)  # also accepted after the command
    d.add_argument("--status", action="store_true",
                   help="A short summary of the quorum status and the other provides detailed information "
                   "about the status of replication.")
    d.add_argument("--replication", action="store_true", help="Detailed information about the status of replication")
    d.add_argument("--human-readable", action="store_true", help="Human-readable output (with --replication)")
    d.add_argument("--output", choices=("text", "json"), default="text", help="text (Kafka's layout) or json")
    d.set_defaults(func=guarded(TOOL)(run_describe))

    def no_command(args: argparse.Namespace) -> int:
        p.print_help()
        return 1

    p.set_defaults(func=no_command)


def _connection_args(p: argparse.ArgumentParser, default: Any) -> None:
    p.add_argument("--bootstrap-server", default=default, metavar="HOST:PORT[,...]",
                   help="the broker(s) to ask (any KRaft node forwards to the active controller)")
    p.add_argument("--bootstrap-controller", default=default, metavar="HOST:PORT[,...]",
                   help="the controller listener(s) to ask instead")
    p.add_argument("--command-config", default=default, metavar="FILE",
                   help="properties file with client configs (security.protocol, ssl.*, sasl.*)")


def run_describe(args: argparse.Namespace) -> int:
    server = getattr(args, "bootstrap_server", None)
    controller = getattr(args, "bootstrap_controller", None)
    if bool(server) == bool(controller):
        raise CliError("exactly one of --bootstrap-server or --bootstrap-controller is required")
    if args.status == args.replication:
        raise CliError("One of --status or --replication must be specified with describe sub-command"
                       if not args.status else
                       "Only one of --status or --replication should be specified with describe sub-command")
    if args.human_readable and not args.replication:
        raise CliError("The option --human-readable is only supported along with --replication")
    target = argparse.Namespace(bootstrap_server=server or controller,
                                command_config=getattr(args, "command_config", None))
    quorum = describe_quorum(target)
    if args.status:
        quorum["cluster_id"] = cluster_id(target)
    if args.output == "json":
        print_json(quorum)
    elif args.status:
        print_status(quorum)
    else:
        print_replication(quorum, human_readable=args.human_readable)
    return 0


def cluster_id(target: argparse.Namespace) -> str:
    from kio.schema.describe_cluster.v0.request import DescribeClusterRequest

    response = send(target, DescribeClusterRequest(include_cluster_authorized_operations=False), TOOL)
    if response.error_code.value != 0:
        raise CliError(f"DescribeCluster failed: {error_name(response.error_code)}")
    return str(response.cluster_id)


def describe_quorum(target: argparse.Namespace) -> dict[str, Any]:
    """The quorum as a plain dict (what `--output json` prints)."""
    from kio.schema.describe_quorum.v2.request import DescribeQuorumRequest, PartitionData, TopicData
    from kio.schema.types import TopicName
    from kio.static.primitive import i32

    request = DescribeQuorumRequest(topics=(TopicData(topic_name=TopicName(METADATA_TOPIC),
                                                      partitions=(PartitionData(partition_index=i32(0)),)),))
    response = send(target, request, TOOL)
    part = _partition(response, target)
    if error_name(part.error_code) == "NOT_LEADER_OR_FOLLOWER" and part.leader_id >= 0:
        # a follower controller names the leader (and, v2, the voters' endpoints): ask it
        leader = next((x for n in response.nodes if int(n.node_id) == int(part.leader_id) for x in n.listeners), None)
        if leader is not None:
            target = at(target, str(leader.host), int(leader.port))
            response = send(target, request, TOOL)
            part = _partition(response, target)
    if part.error_code.value != 0:
        raise CliError(f"DescribeQuorum failed: {error_name(part.error_code)}"
                       + (f" (leader {part.leader_id})" if part.leader_id >= 0 else ""))
    endpoints = {int(n.node_id): [_endpoint(x) for x in n.listeners] for n in response.nodes}

    def replica(r: Any) -> dict[str, Any]:
        return {"id": int(r.replica_id), "directory_id": kafka_uuid_text(r.replica_directory_id),
                "log_end_offset": int(r.log_end_offset), "last_fetch_timestamp": int(r.last_fetch_timestamp),
                "last_caught_up_timestamp": int(r.last_caught_up_timestamp),
                "endpoints": endpoints.get(int(r.replica_id), [])}

    return {"leader_id": int(part.leader_id), "leader_epoch": int(part.leader_epoch),
            "high_watermark": int(part.high_watermark),
            "voters": [replica(r) for r in part.current_voters],
            "observers": [replica(r) for r in part.observers]}


def _partition(response: Any, target: argparse.Namespace) -> Any:
    """The __cluster_metadata partition of a DescribeQuorum answer; a top-level error fails."""
    if response.error_code.value != 0:
        if error_name(response.error_code) == "UNSUPPORTED_VERSION":
            raise CliError(f"{target.bootstrap_server} has no metadata quorum running (yet)")
        raise CliError(f"DescribeQuorum failed: {error_name(response.error_code)}"
                       + (f": {response.error_message}" if response.error_message else ""))
    part = next((p for t in response.topics for p in t.partitions), None)
    if part is None:
        raise CliError("DescribeQuorum answered without the __cluster_metadata partition")
    return part


def _endpoint(listener: Any) -> str:
    host = str(listener.host)
    return f"{listener.name}://{f'[{host}]' if ':' in host else host}:{int(listener.port)}"


def kafka_uuid_text(value: uuid.UUID | None) -> str:
    """Kafka's Uuid.toString(): URL-safe base64 of the 16 bytes, no padding."""
    raw = (value or uuid.UUID(int=0)).bytes
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


ZERO_UUID_TEXT = kafka_uuid_text(None)


def _leader(q: dict[str, Any]) -> dict[str, Any]:
    leader = next((v for v in q["voters"] if v["id"] == q["leader_id"]), None)
    if leader is None:
        raise CliError(f"the quorum leader {q['leader_id']} is not among the voters the controller reported")
    return leader


def follower_lag(q: dict[str, Any]) -> tuple[int, int]:
    """(MaxFollowerLag, MaxFollowerLagTimeMs) as Kafka computes them: against the voter with the
    lowest log end offset; the time is the gap between the leader's and its last caught-up time."""
    leader = _leader(q)
    laggard = min(q["voters"], key=lambda v: v["log_end_offset"])
    lag = leader["log_end_offset"] - laggard["log_end_offset"]
    if laggard is leader or laggard["log_end_offset"] == leader["log_end_offset"]:
        return lag, 0
    if leader["last_caught_up_timestamp"] >= 0 and laggard["last_caught_up_timestamp"] >= 0:
        return lag, leader["last_caught_up_timestamp"] - laggard["last_caught_up_timestamp"]
    return lag, -1


def _node_text(r: dict[str, Any]) -> str:
    text = f'{{"id": {r["id"]}'
    if r["directory_id"] != ZERO_UUID_TEXT:
        text += f', "directoryId": "{r["directory_id"]}"'
    if r["endpoints"]:
        text += ', "endpoints": [' + ", ".join(f'"{e}"' for e in r["endpoints"]) + "]"
    return text + "}"


def print_status(q: dict[str, Any]) -> None:
    lag, lag_ms = follower_lag(q)
    lines = [("ClusterId", q["cluster_id"]), ("LeaderId", q["leader_id"]), ("LeaderEpoch", q["leader_epoch"]),
             ("HighWatermark", q["high_watermark"]), ("MaxFollowerLag", lag), ("MaxFollowerLagTimeMs", lag_ms),
             ("CurrentVoters", "[" + ", ".join(_node_text(v) for v in q["voters"]) + "]"),
             ("CurrentObservers", "[" + ", ".join(_node_text(o) for o in q["observers"]) + "]")]
    for name, value in lines:
        print(f"{name + ':':<24}{value}")


def print_replication(q: dict[str, Any], *, human_readable: bool = False) -> None:
    leader = _leader(q)
    now_ms = int(time.time() * 1000)

    def stamp(ms: int) -> str:
        if ms < 0:
            return "-1"
        return f"{max(0, now_ms - ms)} ms ago" if human_readable else str(ms)

    groups = [([leader], "Leader"), ([v for v in q["voters"] if v["id"] != q["leader_id"]], "Follower"),
              (q["observers"], "Observer")]
    rows = [(r["id"], r["directory_id"], r["log_end_offset"], leader["log_end_offset"] - r["log_end_offset"],
             stamp(r["last_fetch_timestamp"]), stamp(r["last_caught_up_timestamp"]), status)
            for replicas, status in groups for r in replicas]
    print_kafka_table(REPLICATION_HEADERS, rows)
