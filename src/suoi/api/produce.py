"""Produce (key 0): decode, append each partition's batches through the partition layer, encode.

The records are never decoded: `Partition.append_records` checks batch headers and CRC32C and
appends the bytes as received, stamped with the leader epoch. acks=0 sends no response at all;
acks=1 answers after the leader's append; acks=-1 answers once every ISR member has the batch,
or NOT_ENOUGH_REPLICAS / REQUEST_TIMED_OUT (`suoi.partition.append`). A single node is the
whole ISR. v0-v2 are advertised but rejected (see `legacy_produce`).
"""

from __future__ import annotations

from typing import Any

from suoi.api.registry import RequestContext, api
from suoi.api.topics import partitions_of, resolve_or_create
from suoi.model import ErrorCode
from suoi.partition.append import await_replication, pending
from suoi.partition.partition import AppendResult
from suoi.protocol.codec import ms

#: (topic name, topic id, [(partition index, result)]) in request order
Answers = list[tuple[Any, Any, list[tuple[int, AppendResult]]]]


@api(0, "Produce", 3, 13, advertised_min=0)
def handle_produce(ctx: RequestContext, request: Any) -> Any:
    acks = request.acks
    partitions = partitions_of(ctx.services)
    answers: Answers = []
    for topic in request.topic_data:
        name, topic_id = getattr(topic, "name", None), getattr(topic, "topic_id", None)
        if acks in (-1, 0, 1):
            info, error = resolve_or_create(ctx.services, name, topic_id, allow_create=True)
        else:
            info, error = None, ErrorCode.invalid_required_acks
        results = [(p.index, AppendResult(error or ErrorCode.unknown_topic_or_partition) if info is None else
                    partitions.append_records(info.name, p.index, p.records, acks, ctx.client_host))
                   for p in topic.partition_data]
        if info is not None:  # messages/bytes in and failed produces per topic (suoi.metrics_recorder)
            ctx.services.metrics.appended(info.name, [(r.error, r.record_count, len(p.records or b""))
                                                      for (_, r), p in zip(results, topic.partition_data, strict=True)])
        answers.append((name, topic_id, results))
    if acks == 0:
        return None
    waits = pending(result for _, _, results in answers for _, result in results)
    if waits:
        return _after_replication(answers, waits, ms(request.timeout) / 1000)
    return _response(answers)


async def _after_replication(answers: Answers, waits: list[AppendResult], timeout_s: float) -> dict[str, Any]:
    await await_replication(waits, timeout_s)
    return _response(answers)


def _response(answers: Answers) -> dict[str, Any]:
    return {"throttle_time": 0, "responses": [
        {"name": name, "topic_id": topic_id, "partition_responses": [
            {"index": index, "error_code": r.error, "base_offset": r.base_offset,
             "log_append_time": r.log_append_time_ms, "log_start_offset": r.log_start_offset,
             "record_errors": [], "error_message": r.message} for index, r in results]}
        for name, topic_id, results in answers]}
