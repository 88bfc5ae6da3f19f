"""The transactional producer's APIs: AddPartitionsToTxn (24), AddOffsetsToTxn (25),
EndTxn (26), TxnOffsetCommit (28) and WriteTxnMarkers (27).

They feed the transaction coordinator (`coordinator/txn_coordinator.py`); markers are
written by the coordinator itself on a single node, and WriteTxnMarkers lets an external
coordinator (or a test) write them too. PRODUCER_FENCED becomes INVALID_PRODUCER_EPOCH for
clients too old to know it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from suoi.api.registry import RequestContext, api
from suoi.coordinator.txn import AddOffsetsRequest, AddPartitionsRequest, EndTxnRequest, for_version
from suoi.model import ErrorCode, TopicPartition

log = logging.getLogger("suoi.api")


@api(24, "AddPartitionsToTxn", 0, 3)
async def handle_add_partitions_to_txn(ctx: RequestContext, request: Any) -> dict[str, Any]:
    txn = ctx.services.transactions
    tid = request.v3_and_below_transactional_id
    topics = request.v3_and_below_topics
    wanted = [TopicPartition(t.name, p) for t in topics for p in t.partitions]
    error = txn.check_transactional_id(tid)
    results: dict[TopicPartition, int] = {}
    if error == ErrorCode.none:
        count = txn.partition_count
        unknown = [tp for tp in wanted if not 0 <= tp.partition < (count(tp.topic) or 0)]
        if unknown:
            # Kafka refuses the whole request: the unknown ones get UNKNOWN_TOPIC_OR_PARTITION,
            # the rest OPERATION_NOT_ATTEMPTED.
            results = {tp: (ErrorCode.unknown_topic_or_partition if tp in unknown else ErrorCode.operation_not_attempted)
                       for tp in wanted}
        else:
            reply = await txn.call(txn.machine.add_partitions, AddPartitionsRequest(
                token=None, transactional_id=tid, producer_id=request.v3_and_below_producer_id,
                producer_epoch=request.v3_and_below_producer_epoch, partitions=tuple(wanted)))
            results = {tp: for_version("AddPartitionsToTxn", ctx.api_version, code) for tp, code in reply.results}
            if not results and reply.error_code:
                results = {tp: for_version("AddPartitionsToTxn", ctx.api_version, reply.error_code) for tp in wanted}
    else:
        results = {tp: error for tp in wanted}
    return {"throttle_time": 0, "results_by_topic_v3_and_below": [
        {"name": t.name, "results_by_partition": [
            {"partition_index": p, "partition_error_code": results.get(TopicPartition(t.name, p), ErrorCode.none)}
            for p in t.partitions]} for t in topics]}


@api(25, "AddOffsetsToTxn", 0, 4)
async def handle_add_offsets_to_txn(ctx: RequestContext, request: Any) -> dict[str, Any]:
    txn = ctx.services.transactions
    error: int = txn.check_transactional_id(request.transactional_id)
    # The group's coordinator is usually another broker: Kafka's transaction coordinator only
    # adds the group's __consumer_offsets partition here.
    if error == ErrorCode.none:
        reply = await txn.call(txn.machine.add_offsets, AddOffsetsRequest(
            token=None, transactional_id=request.transactional_id, producer_id=request.producer_id,
            producer_epoch=request.producer_epoch, group_id=request.group_id,
            partition=txn.offsets_partition(request.group_id)))
        error = for_version("AddOffsetsToTxn", ctx.api_version, reply.error_code)
    return {"throttle_time": 0, "error_code": error}


@api(26, "EndTxn", 0, 4)
async def handle_end_txn(ctx: RequestContext, request: Any) -> dict[str, Any]:
    txn = ctx.services.transactions
    error: int = txn.check_transactional_id(request.transactional_id)
    if error == ErrorCode.none:
        reply = await txn.call(txn.machine.end_txn, EndTxnRequest(
            token=None, transactional_id=request.transactional_id, producer_id=request.producer_id,
            producer_epoch=request.producer_epoch, commit=request.committed))
        error = for_version("EndTxn", ctx.api_version, reply.error_code)
    return {"throttle_time": 0, "error_code": error}


@api(28, "TxnOffsetCommit", 0, 4)
async def handle_txn_offset_commit(ctx: RequestContext, request: Any) -> dict[str, Any]:
    wanted = [(t.name, p.partition_index, p.committed_offset, getattr(p, "committed_leader_epoch", -1),
               p.committed_metadata) for t in request.topics for p in t.partitions]
    _, errors = await ctx.services.groups.txn_commit_offsets(
        request.group_id, request.producer_id, request.producer_epoch, getattr(request, "generation_id", -1),
        getattr(request, "member_id", ""), getattr(request, "group_instance_id", None), wanted)
    it = iter(for_version("TxnOffsetCommit", ctx.api_version, e) for e in errors)
    return {"throttle_time": 0, "topics": [
        {"name": t.name, "partitions": [{"partition_index": p.partition_index, "error_code": next(it)}
                                        for p in t.partitions]} for t in request.topics]}


@api(27, "WriteTxnMarkers", 1, 1)
def handle_write_txn_markers(ctx: RequestContext, request: Any) -> Any:
    """Append COMMIT/ABORT markers as a transaction coordinator asks (Kafka's inter-broker API)."""
    return _write_markers_as_leader(ctx, request)


async def _write_markers_as_leader(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """In a cluster only a partition's leader writes its marker, stamped with its leader epoch,
    and answers once the ISR has it (Kafka appends markers with acks=all)."""
    from suoi.partition.txn_markers import append_marker

    replicas = ctx.services.kraft.replicas
    markers = []
    for m in request.markers:
        topics = []
        for t in m.topics:
            codes = await asyncio.gather(*(append_marker(
                replicas.broker, replicas, TopicPartition(t.name, p), m.producer_id, m.producer_epoch,
                m.transaction_result, m.coordinator_epoch) for p in t.partition_indexes)) if replicas else [
                ErrorCode.not_leader_or_follower] * len(t.partition_indexes)  # a controller-only node
            topics.append({"name": t.name, "partitions": [{"partition_index": p, "error_code": code}
                                                          for p, code in zip(t.partition_indexes, codes, strict=True)]})
        markers.append({"producer_id": m.producer_id, "topics": topics})
    return {"markers": markers}
