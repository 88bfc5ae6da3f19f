"""Produce (key 0): validate each partition's batches, append them, wake fetchers.

The records are never decoded here: `PartitionLog.append` checks batch headers and
CRC32C and appends the bytes as received, stamped with the partition's leader epoch.
acks=0 sends no response at all; acks=1 answers after the leader's append. acks=-1 in a
cluster is refused with NOT_ENOUGH_REPLICAS when the ISR is below min.insync.replicas, and
otherwise answers once every ISR member has the batch (the high watermark passed it), or
REQUEST_TIMED_OUT after the request's timeout (the client retries; an idempotent retry is
deduplicated and waits for the original batch). On a single node the leader is the whole
ISR. v0-v2 are advertised but rejected (see `legacy_produce`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from suoi.api.registry import RequestContext, api
from suoi.api.topics import leader_log, resolve_or_create
from suoi.log.errors import LogError
from suoi.model import ErrorCode, TopicPartition
from suoi.protocol.codec import ms
from suoi.protocol.records import RecordValidationError

if TYPE_CHECKING:
    from suoi.cluster.replica_manager import ReplicaManager

log = logging.getLogger("suoi.api.produce")


def _partition_error(index: int, error: ErrorCode, message: str | None = None) -> dict[str, Any]:
    return {"index": index, "error_code": error, "base_offset": -1, "log_append_time": -1,
            "log_start_offset": -1, "record_errors": [], "error_message": message}


@api(0, "Produce", 3, 13, advertised_min=0)
def handle_produce(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.services
    acks = request.acks
    replicas = broker.kraft.replicas if broker.kraft is not None else None
    waits: list[Wait] = []
    responses = []
    for topic in request.topic_data:
        name = getattr(topic, "name", None)
        topic_id = getattr(topic, "topic_id", None)
        partitions = []
        if acks not in (-1, 0, 1):
            error: ErrorCode | None = ErrorCode.invalid_required_acks
            info = None
        else:
            info, error = resolve_or_create(broker, name, topic_id, allow_create=True)
        for pdata in topic.partition_data:
            index = pdata.index
            if info is None:
                partitions.append(_partition_error(index, error or ErrorCode.unknown_topic_or_partition))
                continue
            plog, perror = leader_log(broker, info.name, index)
            if plog is None:
                partitions.append(_partition_error(index, perror))
                continue
            records = pdata.records
            if not records:
                partitions.append(_partition_error(index, ErrorCode.invalid_record, "empty record set"))
                continue
            leader = replicas.leader(info.name, index) if replicas is not None else None
            if replicas is not None and leader is None:
                partitions.append(_partition_error(index, ErrorCode.not_leader_or_follower))
                continue
            if leader is not None and acks == -1:
                refused = replicas.check_acks_all(leader)  # type: ignore[union-attr]
                if refused:
                    partitions.append(_partition_error(index, refused, "the ISR is smaller than min.insync.replicas"))
                    continue
            try:
                result = plog.append(records, leader_epoch=leader.state.leader_epoch if leader is not None else 0)
            except (RecordValidationError, LogError) as exc:
                log.warning("produce to %s-%d from %s rejected: %s", info.name, index, ctx.client_host, exc)
                broker.metrics.produce_failed(info.name)
                partitions.append(_partition_error(index, ErrorCode(exc.error_code), str(exc)))
                continue
            if leader is not None:
                replicas.on_leader_append(leader)  # type: ignore[union-attr]
            broker.metrics.produced(info.name, result.record_count, len(records))
            broker.notifier.appended(TopicPartition(info.name, index))
            part = {
                "index": index, "error_code": ErrorCode.none, "base_offset": result.base_offset,
                "log_append_time": result.log_append_time_ms, "log_start_offset": result.log_start_offset,
                "record_errors": [], "error_message": None,
            }
            partitions.append(part)
            if leader is not None and acks == -1:
                waits.append((part, leader, replicas.wait_for_replication(leader, result.last_offset + 1)))  # type: ignore[union-attr]
        responses.append({"name": name, "topic_id": topic_id, "partition_responses": partitions})
    if acks == 0:
        return None
    response = {"responses": responses, "throttle_time": 0}
    if not waits or all(f.done() for _, _, f in waits):
        _finish(waits)
        return response
    return _await_replication(replicas, waits, response, ms(request.timeout) / 1000)  # type: ignore[arg-type]


Wait = tuple[dict[str, Any], Any, "asyncio.Future[int]"]


async def _await_replication(replicas: ReplicaManager, waits: list[Wait], response: dict[str, Any],
                             timeout_s: float) -> dict[str, Any]:
    """acks=all: answer once every partition's batch is on every ISR member (or the timeout).

    The futures are awaited directly, with a timer for the timeout (not asyncio.wait, which
    chains a callback per future and resumes this task one loop iteration later)."""
    timer = asyncio.get_running_loop().call_later(timeout_s, _expire, replicas, waits) if timeout_s > 0 else None
    try:
        if timer is not None:
            for _, _, future in waits:
                if not future.done():
                    await future
    finally:
        if timer is not None:
            timer.cancel()
        for _, leader, future in waits:  # timed out (timeout_s <= 0) or the connection went away
            if not future.done() or future.cancelled():
                replicas.cancel_wait(leader, future)
                future.cancel()
    _finish(waits)
    return response


def _expire(replicas: ReplicaManager, waits: list[Wait]) -> None:
    for _, leader, future in waits:
        if not future.done():
            replicas.cancel_wait(leader, future)
            future.set_result(int(ErrorCode.request_timed_out))


def _finish(waits: list[Wait]) -> None:
    for part, _, future in waits:
        error = future.result() if future.done() and not future.cancelled() else int(ErrorCode.request_timed_out)
        if error:
            part.update(_partition_error(part["index"], ErrorCode(error)))
