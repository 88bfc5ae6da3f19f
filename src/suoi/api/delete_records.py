"""DeleteRecords (key 21): advance a partition's log start offset (offset -1 = HW)."""

from __future__ import annotations

from typing import Any

from suoi.api.registry import RequestContext, api
from suoi.log.errors import LogError
from suoi.model import ErrorCode


@api(21, "DeleteRecords", 0, 2)
def handle_delete_records(ctx: RequestContext, request: Any) -> dict[str, Any]:
    logs = ctx.broker.logs
    topics = []
    for topic in request.topics:
        partitions = []
        for p in topic.partitions:
            plog = logs.get_log(topic.name, p.partition_index)
            if plog is None:
                partitions.append({"partition_index": p.partition_index, "low_watermark": -1,
                                   "error_code": ErrorCode.unknown_topic_or_partition})
                continue
            offset = plog.high_watermark if p.offset == -1 else p.offset
            try:
                plog.delete_records_before(offset)
                partitions.append({"partition_index": p.partition_index,
                                   "low_watermark": plog.log_start_offset, "error_code": ErrorCode.none})
            except LogError as exc:
                partitions.append({"partition_index": p.partition_index, "low_watermark": -1,
                                   "error_code": ErrorCode(exc.error_code)})
        topics.append({"name": topic.name, "partitions": partitions})
    return {"throttle_time": 0, "topics": topics}
