"""Produce (key 0): validate each partition's batches, append them, wake fetchers.

The records are never decoded here: `PartitionLog.append` checks batch headers and
CRC32C and appends the bytes as received. acks=0 sends no response at all; acks=1 and
acks=-1 are equivalent on a single node (the leader is the whole ISR). v0-v2 are
advertised but rejected (see `legacy_produce`).
"""

from __future__ import annotations

import logging
from typing import Any

from suoi.api.registry import RequestContext, api
from suoi.api.topics import leader_log, resolve_or_create
from suoi.log.errors import LogError
from suoi.model import ErrorCode, TopicPartition
from suoi.protocol.records import RecordValidationError

log = logging.getLogger("suoi.api.produce")


def _partition_error(index: int, error: ErrorCode, message: str | None = None) -> dict[str, Any]:
    return {"index": index, "error_code": error, "base_offset": -1, "log_append_time": -1,
            "log_start_offset": -1, "record_errors": [], "error_message": message}


@api(0, "Produce", 3, 13, advertised_min=0)
def handle_produce(ctx: RequestContext, request: Any) -> dict[str, Any] | None:
    broker = ctx.broker
    acks = request.acks
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
            try:
                result = plog.append(records)
            except (RecordValidationError, LogError) as exc:
                log.warning("produce to %s-%d from %s rejected: %s", info.name, index, ctx.client_host, exc)
                partitions.append(_partition_error(index, ErrorCode(exc.error_code), str(exc)))
                continue
            broker.notifier.appended(TopicPartition(info.name, index))
            partitions.append({
                "index": index, "error_code": ErrorCode.none, "base_offset": result.base_offset,
                "log_append_time": result.log_append_time_ms, "log_start_offset": result.log_start_offset,
                "record_errors": [], "error_message": None,
            })
        responses.append({"name": name, "topic_id": topic_id, "partition_responses": partitions})
    if acks == 0:
        return None
    return {"responses": responses, "throttle_time": 0}
