"""DescribeTransactions (65), ListTransactions (66), DescribeProducers (61): what
`kafka-transactions.sh` and admin clients use to look at transactions and producers."""

from __future__ import annotations

from typing import Any

from suoi.api.registry import RequestContext, api
from suoi.model import ErrorCode


@api(65, "DescribeTransactions", 0, 0)
def handle_describe_transactions(ctx: RequestContext, request: Any) -> dict[str, Any]:
    txn = ctx.services.transactions
    states = []
    for tid in request.transactional_ids:
        error = txn.check_transactional_id(tid) if tid else ErrorCode.none  # the machine refuses ""
        if error != ErrorCode.none:  # NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS for this id
            states.append({"error_code": error, "transactional_id": tid, "transaction_state": "",
                           "transaction_timeout": 0, "transaction_start_time": -1, "producer_id": -1,
                           "producer_epoch": -1, "topics": []})
            continue
        d = txn.machine.describe([tid])[0]
        states.append({
            "error_code": d.error_code, "transactional_id": d.transactional_id, "transaction_state": d.state,
            "transaction_timeout": d.transaction_timeout_ms, "transaction_start_time": d.transaction_start_time_ms,
            "producer_id": d.producer_id, "producer_epoch": d.producer_epoch,
            "topics": [{"topic": t.topic, "partitions": list(t.partitions)} for t in d.topics],
        })
    return {"throttle_time": 0, "transaction_states": states}


@api(66, "ListTransactions", 0, 1)
def handle_list_transactions(ctx: RequestContext, request: Any) -> dict[str, Any]:
    txn = ctx.services.transactions
    if txn.loading:
        return {"throttle_time": 0, "error_code": ErrorCode.coordinator_load_in_progress,
                "unknown_state_filters": [], "transaction_states": []}
    result = txn.machine.list_transactions(
        tuple(request.state_filters), tuple(request.producer_id_filters),
        getattr(request, "duration_filter", -1), now_ms=ctx.services.now_ms())
    return {"throttle_time": 0, "error_code": ErrorCode.none,
            "unknown_state_filters": list(result.unknown_state_filters),
            "transaction_states": [{"transactional_id": t.transactional_id, "producer_id": t.producer_id,
                                    "transaction_state": t.state} for t in result.transactions]}


@api(61, "DescribeProducers", 0, 0)
def handle_describe_producers(ctx: RequestContext, request: Any) -> dict[str, Any]:
    logs = ctx.services.logs
    topics = []
    for t in request.topics:
        partitions = []
        for p in t.partition_indexes:
            plog = logs.get_log(t.name, p)
            if plog is None:
                partitions.append({"partition_index": p, "error_code": ErrorCode.unknown_topic_or_partition,
                                   "error_message": None, "active_producers": []})
                continue
            partitions.append({"partition_index": p, "error_code": ErrorCode.none, "error_message": None,
                               "active_producers": [
                                   {"producer_id": v.producer_id, "producer_epoch": v.producer_epoch,
                                    "last_sequence": v.last_sequence, "last_timestamp": v.last_timestamp,
                                    "coordinator_epoch": v.coordinator_epoch,
                                    "current_txn_start_offset": v.current_txn_start_offset}
                                   for v in plog.describe_producers()]})
        topics.append({"name": t.name, "partitions": partitions})
    return {"throttle_time": 0, "topics": topics}
