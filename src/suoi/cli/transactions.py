"""`suoi transactions` (kafka-transactions.sh): inspect transactional state and recover from
hanging transactions.

    suoi transactions --bootstrap-server H:P list
    suoi transactions --bootstrap-server H:P describe --transactional-id ID
    suoi transactions --bootstrap-server H:P describe-producers --topic T --partition P [--broker-id N]
    suoi transactions --bootstrap-server H:P find-hanging (--broker-id N | --topic T [--partition P])
                                                          [--max-transaction-timeout MINUTES]
    suoi transactions --bootstrap-server H:P abort --topic T --partition P --start-offset O
                                                   (or --producer-id --producer-epoch --coordinator-epoch)

Requests are written with kio and sent with `suoi.client` as Kafka's admin client routes them:
ListTransactions to every broker, DescribeTransactions to the transaction coordinator
(FindCoordinator), DescribeProducers to the partition leader (or `--broker-id`). `abort` does
what Kafka's `Admin.abortTransaction` does: it finds the producer whose open transaction starts
at `--start-offset` (DescribeProducers) and sends the partition leader a WriteTxnMarkers ABORT
with that producer id and epoch, which moves the last stable offset past the transaction.
A hanging transaction is an open one on a partition whose coordinator does not know it (no
transactional id for the producer, or the partition is not in its transaction) that has been
open longer than the maximum transaction timeout. Tables are Kafka's (tab-separated columns).
"""

from __future__ import annotations

import argparse
import datetime
import time
from typing import Any

from suoi.cli.admin_requests import at, error_name, send
from suoi.cli.broker_api_versions import brokers
from suoi.cli.common import CliError, add_common_args, guarded, print_json
from suoi.cli.tables import print_kafka_table

TOOL = "transactions"
TRANSACTION_KEY_TYPE = 1


def add_parser(sub: Any) -> None:
    p = sub.add_parser(TOOL, help="list, describe and abort transactions (kafka-transactions.sh)",
                       description="This tool is used to analyze the transactional state of producers in the "
                       "cluster. It can be used to detect and recover from hanging transactions.")
    add_common_args(p)
    actions = p.add_subparsers(dest="txn_command", metavar="COMMAND")
    actions.add_parser("list", help="list transactions").set_defaults(func=guarded(TOOL)(run_list))

    d = actions.add_parser("describe", help="describe the state of an active transactional-id")
    d.add_argument("--transactional-id", required=True, help="transactional id")
    d.set_defaults(func=guarded(TOOL)(run_describe))

    dp = actions.add_parser("describe-producers", help="describe the states of active producers for a topic partition")
    dp.add_argument("--broker-id", type=int, help="optional broker id to describe the producer state on a specific replica")
    dp.add_argument("--topic", required=True, help="topic name")
    dp.add_argument("--partition", type=int, required=True, help="partition number")
    dp.set_defaults(func=guarded(TOOL)(run_describe_producers))

    fh = actions.add_parser("find-hanging", help="find hanging transactions")
    fh.add_argument("--broker-id", type=int, help="broker id to search for hanging transactions")
    fh.add_argument("--max-transaction-timeout", type=int, default=15,
                    help="maximum transaction timeout in minutes to limit the scope of the search (default 15)")
    fh.add_argument("--topic", help="topic name to limit search to")
    fh.add_argument("--partition", type=int, help="partition number")
    fh.set_defaults(func=guarded(TOOL)(run_find_hanging))

    ab = actions.add_parser("abort", help="abort a hanging transaction (requires administrative privileges)")
    ab.add_argument("--topic", required=True, help="topic name")
    ab.add_argument("--partition", type=int, required=True, help="partition number")
    ab.add_argument("--start-offset", type=int, help="start offset of the transaction to abort")
    ab.add_argument("--producer-id", type=int, help="producer id (without --start-offset)")
    ab.add_argument("--producer-epoch", type=int, help="producer epoch (without --start-offset)")
    ab.add_argument("--coordinator-epoch", type=int, help="coordinator epoch (without --start-offset)")
    ab.set_defaults(func=guarded(TOOL)(run_abort))

    def no_command(args: argparse.Namespace) -> int:
        p.print_help()
        return 1

    p.set_defaults(func=no_command)


# ============================================================================ requests


def _broker(args: argparse.Namespace, broker_id: int) -> argparse.Namespace:
    for b in brokers(args):
        if b["id"] == broker_id:
            return at(args, b["host"], b["port"])
    raise CliError(f"broker {broker_id} is not in the cluster")


def _ms(value: Any) -> int:
    """A kio timestamp (datetime or int milliseconds) as epoch milliseconds, -1 when absent."""
    if value is None:
        return -1
    if isinstance(value, datetime.datetime):
        return max(-1, round(value.timestamp() * 1000))
    if isinstance(value, datetime.timedelta):
        return round(value.total_seconds() * 1000)
    return int(value)


def partition_replicas(args: argparse.Namespace, topics: list[str] | None) -> dict[tuple[str, int], dict[str, Any]]:
    """(topic, partition) -> {"leader", "replicas"} from Metadata (all non-internal topics when None)."""
    from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
    from kio.schema.types import TopicName

    wanted = None if topics is None else tuple(MetadataRequestTopic(topic_id=None, name=TopicName(t)) for t in topics)
    md = send(args, MetadataRequest(topics=wanted, allow_auto_topic_creation=False,
                                    include_topic_authorized_operations=False), TOOL)
    out = {}
    for t in md.topics:
        if t.error_code.value != 0:
            raise CliError(f"topic {t.name}: {error_name(t.error_code)}")
        if topics is None and t.is_internal:
            continue
        for p in t.partitions:
            out[(str(t.name), int(p.partition_index))] = {"leader": int(p.leader_id),
                                                          "replicas": [int(r) for r in p.replica_nodes]}
    return out


def describe_producers(args: argparse.Namespace, partitions: list[tuple[str, int]],
                       broker_id: int | None = None) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """Active producers per partition, asked of each partition's leader (or of `broker_id`)."""
    from kio.schema.describe_producers.v0.request import DescribeProducersRequest, TopicRequest
    from kio.schema.types import TopicName
    from kio.static.primitive import i32

    if broker_id is not None:
        by_target: dict[int, list[tuple[str, int]]] = {broker_id: list(partitions)}
    else:
        layout = partition_replicas(args, sorted({t for t, _ in partitions}))
        by_target = {}
        for tp in partitions:
            if tp not in layout:
                raise CliError(f"partition {tp[0]}-{tp[1]} does not exist")
            if layout[tp]["leader"] < 0:
                raise CliError(f"partition {tp[0]}-{tp[1]} has no leader")
            by_target.setdefault(layout[tp]["leader"], []).append(tp)
    out: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for target, tps in by_target.items():
        topics: dict[str, list[int]] = {}
        for t, p in tps:
            topics.setdefault(t, []).append(p)
        request = DescribeProducersRequest(topics=tuple(
            TopicRequest(name=TopicName(t), partition_indexes=tuple(i32(p) for p in ps)) for t, ps in topics.items()))
        response = send(_broker(args, target), request, TOOL)
        for t in response.topics:
            for p in t.partitions:
                where = f"broker {broker_id}" if broker_id is not None else "leader"
                if p.error_code.value != 0:
                    raise CliError(f"Failed to describe producers for partition {t.name}-{p.partition_index} on "
                                   f"{where}: {error_name(p.error_code)}")
                out[(str(t.name), int(p.partition_index))] = [{
                    "producer_id": int(s.producer_id), "producer_epoch": int(s.producer_epoch),
                    "coordinator_epoch": int(s.coordinator_epoch), "last_sequence": int(s.last_sequence),
                    "last_timestamp": _ms(s.last_timestamp),
                    "current_txn_start_offset": int(s.current_txn_start_offset)} for s in p.active_producers]
    return out


def list_transactions(args: argparse.Namespace, producer_ids: tuple[int, ...] = ()) -> dict[int, list[dict[str, Any]]]:
    """Every broker's transactions (each broker lists those it coordinates), by broker id."""
    from kio.schema.list_transactions.v1.request import ListTransactionsRequest
    from kio.schema.types import ProducerId
    from kio.static.primitive import i64

    out = {}
    for b in brokers(args):
        response = send(at(args, b["host"], b["port"]), ListTransactionsRequest(
            state_filters=(), producer_id_filters=tuple(ProducerId(p) for p in producer_ids),
            duration_filter=i64(-1)), TOOL)
        if response.error_code.value != 0:
            raise CliError(f"Failed to list transactions on broker {b['id']}: {error_name(response.error_code)}")
        out[b["id"]] = [{"transactional_id": str(s.transactional_id), "producer_id": int(s.producer_id),
                         "state": str(s.transaction_state)} for s in response.transaction_states]
    return out


def find_coordinator(args: argparse.Namespace, transactional_id: str) -> tuple[int, argparse.Namespace]:
    from kio.schema.find_coordinator.v4.request import FindCoordinatorRequest
    from kio.static.primitive import i8

    response = send(args, FindCoordinatorRequest(key_type=i8(TRANSACTION_KEY_TYPE), coordinator_keys=(transactional_id,)), TOOL)
    [c] = response.coordinators
    if c.error_code.value != 0:
        raise CliError(f"no coordinator for transactional-id `{transactional_id}`: {error_name(c.error_code)}")
    return int(c.node_id), at(args, str(c.host), int(c.port))


def describe_transaction(args: argparse.Namespace, transactional_id: str) -> dict[str, Any] | None:
    """The coordinator's view of one transactional id; None when it does not know it."""
    from kio.schema.describe_transactions.v0.request import DescribeTransactionsRequest
    from kio.schema.types import TransactionalId

    coordinator_id, at = find_coordinator(args, transactional_id)
    [s] = send(at, DescribeTransactionsRequest(transactional_ids=(TransactionalId(transactional_id),)), TOOL).transaction_states
    if error_name(s.error_code) == "TRANSACTIONAL_ID_NOT_FOUND":
        return None
    if s.error_code.value != 0:
        raise CliError(f"Failed to describe transaction state of transactional-id `{transactional_id}`: "
                       f"{error_name(s.error_code)}")
    return {"coordinator_id": coordinator_id, "transactional_id": transactional_id,
            "producer_id": int(s.producer_id), "producer_epoch": int(s.producer_epoch),
            "state": str(s.transaction_state), "timeout_ms": _ms(s.transaction_timeout),
            "start_time_ms": _ms(s.transaction_start_time),
            "partitions": [f"{t.topic}-{p}" for t in s.topics for p in t.partitions]}


def write_abort_marker(args: argparse.Namespace, topic: str, partition: int, producer_id: int,
                       producer_epoch: int, coordinator_epoch: int) -> None:
    """WriteTxnMarkers(ABORT) for one producer's transaction, sent to the partition's leader."""
    from kio.schema.types import ProducerId, TopicName
    from kio.schema.write_txn_markers.v1.request import (
        WritableTxnMarker,
        WritableTxnMarkerTopic,
        WriteTxnMarkersRequest,
    )
    from kio.static.primitive import i16, i32

    leader = partition_replicas(args, [topic]).get((topic, partition), {}).get("leader", -1)
    if leader < 0:
        raise CliError(f"partition {topic}-{partition} does not exist or has no leader")
    request = WriteTxnMarkersRequest(markers=(WritableTxnMarker(
        producer_id=ProducerId(producer_id), producer_epoch=i16(producer_epoch), transaction_result=False,
        topics=(WritableTxnMarkerTopic(name=TopicName(topic), partition_indexes=(i32(partition),)),),
        coordinator_epoch=i32(max(0, coordinator_epoch))),))
    response = send(_broker(args, leader), request, TOOL)
    for m in response.markers:
        for t in m.topics:
            for p in t.partitions:
                if p.error_code.value != 0:
                    raise CliError(f"Failed to abort transaction of producer {producer_id} (epoch {producer_epoch}) "
                                   f"on {topic}-{partition}: {error_name(p.error_code)}")


# ============================================================================ commands


def _out(args: argparse.Namespace, obj: Any, headers: tuple[str, ...], rows: list[list[Any]]) -> int:
    if args.output == "json":
        print_json(obj)
    else:
        print_kafka_table(headers, rows)
    return 0


def run_list(args: argparse.Namespace) -> int:
    by_broker = list_transactions(args)
    rows = [[t["transactional_id"], bid, t["producer_id"], t["state"]]
            for bid, txns in sorted(by_broker.items()) for t in txns]
    return _out(args, [{"coordinator": bid, **t} for bid, txns in sorted(by_broker.items()) for t in txns],
                ("TransactionalId", "Coordinator", "ProducerId", "TransactionState"), rows)


def run_describe(args: argparse.Namespace) -> int:
    d = describe_transaction(args, args.transactional_id)
    if d is None:
        raise CliError(f"Failed to describe transaction state of transactional-id `{args.transactional_id}`: "
                       "TRANSACTIONAL_ID_NOT_FOUND")
    started = d["start_time_ms"] >= 0
    row = [d["coordinator_id"], d["transactional_id"], d["producer_id"], d["producer_epoch"], d["state"],
           d["timeout_ms"], d["start_time_ms"] if started else "None",
           int(time.time() * 1000) - d["start_time_ms"] if started else "None", ",".join(d["partitions"])]
    return _out(args, d, ("CoordinatorId", "TransactionalId", "ProducerId", "ProducerEpoch", "TransactionState",
                          "TransactionTimeoutMs", "CurrentTransactionStartTimeMs", "TransactionDurationMs",
                          "TopicPartitions"), [row])


def run_describe_producers(args: argparse.Namespace) -> int:
    tp = (args.topic, args.partition)
    producers = describe_producers(args, [tp], args.broker_id).get(tp, [])
    rows = [[s["producer_id"], s["producer_epoch"], s["coordinator_epoch"], s["last_sequence"], s["last_timestamp"],
             s["current_txn_start_offset"] if s["current_txn_start_offset"] >= 0 else "None"] for s in producers]
    return _out(args, producers, ("ProducerId", "ProducerEpoch", "LatestCoordinatorEpoch", "LastSequence",
                                  "LastTimestamp", "CurrentTransactionStartOffset"), rows)


def find_hanging(args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.topic is None and args.broker_id is None:
        raise CliError("The `find-hanging` command requires either --topic or --broker-id to limit the scope of the search")
    if args.partition is not None and args.topic is None:
        raise CliError("The --partition argument requires --topic to be provided")
    if args.topic is not None and args.partition is not None:
        partitions = [(args.topic, args.partition)]
    else:
        layout = partition_replicas(args, [args.topic] if args.topic else None)
        partitions = [tp for tp, info in sorted(layout.items())
                      if args.broker_id is None or args.broker_id in info["replicas"]]
    now_ms = int(time.time() * 1000)
    max_timeout_ms = args.max_transaction_timeout * 60_000
    candidates = [{"topic": t, "partition": p, **s}
                  for (t, p), states in sorted(describe_producers(args, partitions, args.broker_id).items())
                  for s in states
                  if s["current_txn_start_offset"] >= 0 and now_ms - s["last_timestamp"] > max_timeout_ms]
    if not candidates:
        return []
    pids = tuple(sorted({c["producer_id"] for c in candidates}))
    tids = {t["producer_id"]: t["transactional_id"] for txns in list_transactions(args, pids).values() for t in txns}
    described = {tid: describe_transaction(args, tid) for tid in set(tids.values())}
    hanging = []
    for c in candidates:
        d = described.get(tids.get(c["producer_id"], ""))
        # the coordinator still lists the partition: it will write the marker itself
        if d is None or f"{c['topic']}-{c['partition']}" not in d["partitions"]:
            hanging.append({**c, "duration_min": (now_ms - c["last_timestamp"]) // 60_000})
    return hanging


def run_find_hanging(args: argparse.Namespace) -> int:
    hanging = find_hanging(args)
    rows = [[h["topic"], h["partition"], h["producer_id"], h["producer_epoch"], h["coordinator_epoch"],
             h["current_txn_start_offset"], h["last_timestamp"], h["duration_min"]] for h in hanging]
    return _out(args, hanging, ("Topic", "Partition", "ProducerId", "ProducerEpoch", "CoordinatorEpoch",
                                "StartOffset", "LastTimestamp", "Duration(min)"), rows)


def run_abort(args: argparse.Namespace) -> int:
    tp = (args.topic, args.partition)
    if args.start_offset is None and args.producer_id is None:
        raise CliError("The transaction to abort must be identified either with --start-offset (for brokers on 3.0 "
                       "or above) or with --producer-id, --producer-epoch, and --coordinator-epoch (for older brokers)")
    if args.start_offset is None:
        if args.producer_epoch is None:
            raise CliError("Missing required argument --producer-epoch")
        if args.coordinator_epoch is None:
            raise CliError("Missing required argument --coordinator-epoch")
        pid, epoch, coordinator_epoch = args.producer_id, args.producer_epoch, args.coordinator_epoch
    else:
        found = [s for s in describe_producers(args, [tp]).get(tp, [])
                 if s["current_txn_start_offset"] == args.start_offset]
        if not found:
            raise CliError(f"Could not find any open transactions starting at offset {args.start_offset} on "
                           f"partition {args.topic}-{args.partition}")
        pid, epoch, coordinator_epoch = (found[0]["producer_id"], found[0]["producer_epoch"],
                                         found[0]["coordinator_epoch"])
    write_abort_marker(args, args.topic, args.partition, pid, epoch, coordinator_epoch)
    if args.output == "json":
        print_json({"topic": args.topic, "partition": args.partition, "producer_id": pid, "producer_epoch": epoch,
                    "coordinator_epoch": max(0, coordinator_epoch), "aborted": True})
    return 0
