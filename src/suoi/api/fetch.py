"""Fetch (key 1): serve record batches straight from segment files, with long-poll.

A fetch that finds at least min_bytes answers at once. Otherwise it parks on the
partitions it reads (`AppendNotifier`) and re-reads as soon as any of them gets an
append, or answers with what it has when max_wait runs out. Bytes go from the segment
file to the socket without being decoded or re-encoded.

isolation_level=1 (read_committed) reads only below the last stable offset and lists the
aborted transactions overlapping the returned batches (the client drops their records);
read_uncommitted reads up to the high watermark. Both report the LSO.

Fetch sessions (KIP-227) are not kept: we answer session_id=0, which tells clients to
send full fetch requests, exactly as a Kafka broker with a full session cache does.
"""

from __future__ import annotations

import asyncio
from typing import Any

from suoi.api import raft_apis
from suoi.api.registry import RequestContext, api
from suoi.api.topics import leader_log
from suoi.log.errors import LogError
from suoi.log.transactions import next_offset_after
from suoi.model import ErrorCode, TopicPartition
from suoi.protocol.codec import ms

READ_COMMITTED = 1


@api(1, "Fetch", 4, 17)
def handle_fetch(ctx: RequestContext, request: Any) -> Any:
    # KRaft replicates the metadata log with plain Fetch on __cluster_metadata-0 (by name, or
    # by topic id from v13). That partition is the Raft quorum's, not a LogManager log: hand
    # the request to the quorum driver (api/raft_apis.py), which long-polls on its own.
    if raft_apis.is_metadata_fetch(request):
        return raft_apis.handle_metadata_fetch(ctx, request)
    responses, total, tps, has_error = _read(ctx, request)
    wait_ms = ms(request.max_wait)
    if total >= request.min_bytes or has_error or wait_ms <= 0 or not tps:
        return _response(responses)
    return _long_poll(ctx, request, wait_ms, tps)


async def _long_poll(ctx: RequestContext, request: Any, wait_ms: int, tps: list[TopicPartition]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_ms / 1000
    notifier = ctx.broker.notifier
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        await notifier.wait(tps, remaining)
        responses, total, tps, has_error = _read(ctx, request)
        if total >= request.min_bytes or has_error:
            return _response(responses)
    responses, _, _, _ = _read(ctx, request)
    return _response(responses)


def _response(responses: list[dict[str, Any]]) -> dict[str, Any]:
    return {"throttle_time": 0, "error_code": ErrorCode.none, "session_id": 0, "responses": responses}


def _read(ctx: RequestContext, request: Any) -> tuple[list[dict[str, Any]], int, list[TopicPartition], bool]:
    """One pass over every requested partition. Returns (responses, bytes, partitions, error)."""
    logs = ctx.broker.logs
    read_committed = getattr(request, "isolation_level", 0) == READ_COMMITTED
    budget = request.max_bytes
    total = 0
    has_error = False
    tps: list[TopicPartition] = []
    responses = []
    for topic in request.topics:
        name = getattr(topic, "topic", None)
        topic_id = getattr(topic, "topic_id", None)
        info = logs.topics().get(name) if name else logs.topic_by_id(topic_id) if topic_id else None
        missing: ErrorCode = ErrorCode.unknown_topic_id if name is None else ErrorCode.unknown_topic_or_partition
        partitions = []
        for p in topic.partitions:
            index = p.partition
            plog = logs.get_log(info.name, index) if info is not None else None
            if ctx.broker.kraft is not None and (name or info is not None):
                plog, missing = leader_log(ctx.broker, info.name if info is not None else name, index)
            if plog is None:
                has_error = True
                partitions.append(_partition(index, missing, -1, -1, -1, [] if read_committed else None, b""))
                continue
            tps.append(TopicPartition(info.name, index))  # type: ignore[union-attr]
            hw = plog.high_watermark
            lso = plog.last_stable_offset
            data = b""
            error = ErrorCode.none
            limit = min(p.partition_max_bytes, budget)
            if limit > 0 or total == 0:
                try:
                    data = plog.read(p.fetch_offset, max(limit, 0), max_offset=lso if read_committed else hw,
                                     min_one_batch=total == 0)
                except LogError as exc:
                    error = ErrorCode(exc.error_code)
                    has_error = True
            aborted: list[dict[str, int]] | None = None
            if read_committed:
                aborted = [{"producer_id": t.producer_id, "first_offset": t.first_offset} for t in
                           plog.aborted_transactions(p.fetch_offset, next_offset_after(data, p.fetch_offset))]
            total += len(data)
            budget -= len(data)
            partitions.append(_partition(index, error, hw, lso, plog.log_start_offset, aborted, data))
        responses.append({"topic": name, "topic_id": topic_id, "partitions": partitions})
    return responses, total, tps, has_error


def _partition(index: int, error: ErrorCode, hw: int, lso: int, log_start: int,
               aborted: list[dict[str, int]] | None, data: bytes) -> dict[str, Any]:
    return {
        "partition_index": index, "error_code": error, "high_watermark": hw,
        "last_stable_offset": lso, "log_start_offset": log_start,
        "aborted_transactions": aborted, "preferred_read_replica": -1, "records": data,
    }
