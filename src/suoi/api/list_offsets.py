"""ListOffsets (key 2): earliest, latest, max-timestamp, or the first offset at a time.

Consumers call this to resolve auto.offset.reset and offsetsForTimes. "Latest" is the
high watermark (the last stable offset for read_committed), never an offset a consumer
could not yet read.
"""

from __future__ import annotations

from typing import Any

from suoi.api.registry import RequestContext, api
from suoi.api.topics import leader_log
from suoi.model import ErrorCode

LATEST = -1
EARLIEST = -2
MAX_TIMESTAMP = -3
EARLIEST_LOCAL = -4
LATEST_TIERED = -5
READ_COMMITTED = 1


@api(2, "ListOffsets", 1, 10)
def handle_list_offsets(ctx: RequestContext, request: Any) -> dict[str, Any]:
    read_committed = getattr(request, "isolation_level", 0) == READ_COMMITTED
    topics = []
    for topic in request.topics:
        partitions = []
        for p in topic.partitions:
            plog, error = leader_log(ctx.broker, topic.name, p.partition_index)
            if plog is None:
                partitions.append({"partition_index": p.partition_index, "error_code": error})
                continue
            ts = p.timestamp
            offset, found_ts = -1, -1
            # read_committed sees only offsets below the LSO, as in Kafka's fetchOffsetForTimestamp.
            fetchable = plog.last_stable_offset if read_committed else plog.high_watermark
            if ts == LATEST:
                offset = fetchable
            elif ts in (EARLIEST, EARLIEST_LOCAL):
                offset = plog.log_start_offset
            elif ts == MAX_TIMESTAMP:
                found_ts, offset = plog.max_timestamp()
            elif ts == LATEST_TIERED:
                offset = -1  # no tiered storage: nothing is tiered
            elif ts >= 0:
                hit = plog.offset_for_timestamp(ts)
                if hit is not None:
                    offset, found_ts = hit
            else:
                partitions.append({"partition_index": p.partition_index, "error_code": ErrorCode.invalid_request})
                continue
            if read_committed and (ts == MAX_TIMESTAMP or ts >= 0) and offset >= fetchable:
                offset, found_ts = -1, -1  # the record found is not committed yet
            partitions.append({"partition_index": p.partition_index, "error_code": ErrorCode.none,
                               "timestamp": found_ts, "offset": offset, "leader_epoch": 0})
        topics.append({"name": topic.name, "partitions": partitions})
    return {"throttle_time": 0, "topics": topics}
