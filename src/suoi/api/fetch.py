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
from suoi.api.leader_epochs import compare_epochs
from suoi.api.registry import RequestContext, api
from suoi.api.topics import leader_log
from suoi.log.errors import LogError
from suoi.log.transactions import next_offset_after
from suoi.model import ErrorCode, TopicPartition
from suoi.protocol.codec import ms

READ_COMMITTED = 1


@api(1, "Fetch", 4, 18)
def handle_fetch(ctx: RequestContext, request: Any) -> Any:
    # KRaft replicates the metadata log with plain Fetch on __cluster_metadata-0 (by name, or
    # by topic id from v13). That partition is the Raft quorum's, not a LogManager log: hand
    # the request to the quorum driver (api/raft_apis.py), which long-polls on its own.
    if raft_apis.is_metadata_fetch(request):
        return raft_apis.handle_metadata_fetch(ctx, request)
    responses, total, tps, has_error = _read(ctx, request)
    wait_ms = ms(request.max_wait)
    if total >= request.min_bytes or has_error or wait_ms <= 0 or not tps:
        return _response(ctx, request, responses)
    return _long_poll(ctx, request, wait_ms, tps)


async def _long_poll(ctx: RequestContext, request: Any, wait_ms: int, tps: list[TopicPartition]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_ms / 1000
    notifier = ctx.services.notifier
    # A follower reads up to the log end: only appends can give it more (not HW moves).
    replica = ctx.services.kraft is not None and _replica_id(request) >= 0
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        await notifier.wait(tps, remaining, replica=replica)
        responses, total, tps, has_error = _read(ctx, request)
        if total >= request.min_bytes or has_error:
            return _response(ctx, request, responses)
    responses, _, _, _ = _read(ctx, request)
    return _response(ctx, request, responses)


def _response(ctx: RequestContext, request: Any, responses: list[dict[str, Any]]) -> dict[str, Any]:
    ctx.services.metrics.fetched(responses, _replica_id(request) >= 0)  # bytes out, failed fetches
    return {"throttle_time": 0, "error_code": ErrorCode.none, "session_id": 0, "responses": responses}


def _replica_id(request: Any) -> int:
    """The fetching follower's broker id (v15+ in replica_state), -1 for consumers."""
    state = getattr(request, "replica_state", None)
    if state is not None:
        return int(state.replica_id)
    return int(getattr(request, "replica_id", -1))


def _read(ctx: RequestContext, request: Any) -> tuple[list[dict[str, Any]], int, list[TopicPartition], bool]:
    """One pass over every requested partition. Returns (responses, bytes, partitions, error)."""
    logs = ctx.services.logs
    kraft = ctx.services.kraft
    replicas = kraft.replicas if kraft is not None else None
    follower_id = _replica_id(request) if replicas is not None else -1
    # Fetch v11+ carries the consumer's rack and the preferred read replica (KIP-392)
    follower_reads = ctx.api_version >= 11
    client_rack = str(getattr(request, "rack_id", "") or "")
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
            follower = None
            if ctx.services.kraft is not None and (name or info is not None):
                plog, missing = leader_log(ctx.services, info.name if info is not None else name, index)
                if plog is None and replicas is not None and info is not None and follower_id < 0 and follower_reads:
                    # KIP-392: a consumer sent here as the preferred read replica reads this
                    # follower's copy, up to the high watermark it learned from the leader.
                    follower = replicas.follower(info.name, index)
                    plog = follower.plog if follower is not None else None
            if plog is None:
                has_error = True
                partitions.append(_partition(index, missing, -1, -1, -1, [] if read_committed else None, b""))
                continue
            assert info is not None
            leader = replicas.leader(info.name, index) if replicas is not None else None
            if replicas is not None:
                epoch = leader.state.leader_epoch if leader is not None else follower.state.leader_epoch if follower else -1
                epoch_error = (ErrorCode.not_leader_or_follower if leader is None and follower is None else
                               compare_epochs(epoch, getattr(p, "current_leader_epoch", -1)))
                if epoch_error:
                    has_error = True
                    partitions.append(_partition(index, epoch_error, -1, -1, -1, [] if read_committed else None, b""))
                    continue
            tps.append(TopicPartition(info.name, index))
            data = b""
            error = ErrorCode.none
            diverging = None
            limit = min(p.partition_max_bytes, budget)
            preferred = -1
            if leader is not None and follower_id < 0 and follower_reads:
                chosen = replicas.preferred_read_replica(leader, client_rack, p.fetch_offset)  # type: ignore[union-attr]
                if chosen != ctx.services.node_id:
                    preferred, limit = chosen, 0  # no records: the client goes to that replica
                    has_error = True  # answer at once
            if preferred >= 0:
                pass  # redirected to the preferred read replica: no records from here
            elif follower_id >= 0 and leader is not None:
                # A follower reads up to the log end, and its fetch offset is its log end offset.
                diverging = _diverging_epoch(plog, p)
                leo = plog.log_end_offset
                if diverging is None:
                    follower_start = int(getattr(p, "log_start_offset", -1))
                    try:
                        data = plog.read(p.fetch_offset, max(limit, 0), max_offset=leo, min_one_batch=total == 0)
                        error = replicas.on_follower_fetch(leader, follower_id, p.fetch_offset, leo,  # type: ignore[union-attr]
                                                           follower_start)
                    except LogError as exc:
                        error = ErrorCode(exc.error_code)
                    # answer at once on an error, or when the follower must move its log start up
                    # to ours (DeleteRecords waits for it), rather than after the long poll
                    has_error = has_error or error != ErrorCode.none or 0 <= follower_start < plog.log_start_offset
                else:
                    has_error = True  # answer at once: the follower must truncate
            elif limit > 0 or total == 0:
                try:
                    max_offset = plog.last_stable_offset if read_committed else plog.high_watermark
                    data = plog.read(p.fetch_offset, max(limit, 0), max_offset=max_offset, min_one_batch=total == 0)
                except LogError as exc:
                    error = ErrorCode(exc.error_code)
                    has_error = True
            hw = plog.high_watermark
            lso = plog.last_stable_offset
            aborted: list[dict[str, int]] | None = None
            if read_committed:
                aborted = [{"producer_id": t.producer_id, "first_offset": t.first_offset} for t in
                           plog.aborted_transactions(p.fetch_offset, next_offset_after(data, p.fetch_offset))]
            total += len(data)
            budget -= len(data)
            part = _partition(index, error, hw, lso, plog.log_start_offset, aborted, data)
            part["preferred_read_replica"] = preferred
            if diverging is not None:
                part["diverging_epoch"] = diverging
            partitions.append(part)
        responses.append({"topic": name, "topic_id": topic_id, "partitions": partitions})
    return responses, total, tps, has_error


def _diverging_epoch(plog: Any, p: Any) -> dict[str, int] | None:
    """Fetch v12+ (KIP-595's truncation through Fetch): the follower's last fetched epoch
    ends earlier in this log than its fetch offset, or is unknown here -> it must truncate."""
    last_fetched = getattr(p, "last_fetched_epoch", -1)
    if last_fetched < 0:
        return None
    epoch, end = plog.leader_epoch_cache.end_offset_for(last_fetched, plog.log_end_offset)
    if epoch == last_fetched and end >= p.fetch_offset:
        return None
    return {"epoch": epoch, "end_offset": end}


def _partition(index: int, error: ErrorCode, hw: int, lso: int, log_start: int,
               aborted: list[dict[str, int]] | None, data: bytes) -> dict[str, Any]:
    return {
        "partition_index": index, "error_code": error, "high_watermark": hw,
        "last_stable_offset": lso, "log_start_offset": log_start,
        "aborted_transactions": aborted, "preferred_read_replica": -1, "records": data,
    }
