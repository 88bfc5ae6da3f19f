"""ListOffsets (key 2): earliest, latest, max-timestamp, or the first offset at a time.

Consumers call this to resolve auto.offset.reset and offsetsForTimes. "Latest" is the
high watermark (the last stable offset for read_committed), never an offset a consumer
could not yet read; a replica or debugging tool (replica_id != -1) gets the log end offset.

From v4 the request carries the client's ``current_leader_epoch`` (checked as Fetch does,
`leader_epochs`) and each answer the leader epoch of the returned offset (KIP-320): the
epoch that wrote it, from the leader-epoch cache, and for "latest" the partition's current
epoch, as Kafka answers. Only the leader answers, except to replica_id -2 (debugging).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from suoi.api.leader_epochs import (
    CONSUMER_REPLICA_ID,
    DEBUGGING_REPLICA_ID,
    NO_EPOCH_CHECK,
    current_leader_epoch,
    epoch_start_offset,
    epoch_view,
    local_log,
)
from suoi.api.registry import RequestContext, api
from suoi.log.leader_epoch import UNDEFINED_EPOCH
from suoi.model import ErrorCode

if TYPE_CHECKING:
    from suoi.log.partition_log import PartitionLog
    from suoi.services import Services

LATEST = -1
EARLIEST = -2
MAX_TIMESTAMP = -3
EARLIEST_LOCAL = -4
LATEST_TIERED = -5
READ_COMMITTED = 1


@api(2, "ListOffsets", 1, 10)
def handle_list_offsets(ctx: RequestContext, request: Any) -> dict[str, Any]:
    broker = ctx.services
    read_committed = getattr(request, "isolation_level", 0) == READ_COMMITTED
    from_client = request.replica_id == CONSUMER_REPLICA_ID
    require_leader = request.replica_id != DEBUGGING_REPLICA_ID
    topics = []
    for topic in request.topics:
        partitions = []
        for p in topic.partitions:
            plog, error = local_log(broker, topic.name, p.partition_index,
                                    getattr(p, "current_leader_epoch", NO_EPOCH_CHECK), require_leader=require_leader)
            if plog is None:
                partitions.append({"partition_index": p.partition_index, "error_code": error})
            else:
                partitions.append(_answer(broker, topic.name, p.partition_index, p.timestamp, plog,
                                          from_client, read_committed))
        topics.append({"name": topic.name, "partitions": partitions})
    return {"throttle_time": 0, "topics": topics}


def _answer(broker: Services, topic: str, index: int, ts: int, plog: PartitionLog, from_client: bool,
            read_committed: bool) -> dict[str, Any]:
    """One partition's answer, as Kafka's Partition.fetchOffsetForTimestamp."""
    # Clients see offsets below the high watermark (read_committed: the LSO); replicas and
    # debugging tools the whole log.
    fetchable = plog.log_end_offset
    if from_client:
        fetchable = plog.last_stable_offset if read_committed else plog.high_watermark
    # A new leader whose high watermark has not yet reached the start of its epoch does not
    # know the real one yet (KIP-207): "latest" is not available until it does.
    epoch_start = epoch_start_offset(broker, topic, index, plog)
    lagging = from_client and epoch_start is not None and epoch_start > plog.high_watermark
    offset, found_ts = -1, -1
    if ts == LATEST:
        if lagging:
            return {"partition_index": index, "error_code": ErrorCode.offset_not_available}
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
        return {"partition_index": index, "error_code": ErrorCode.invalid_request}
    if from_client and (ts == MAX_TIMESTAMP or ts >= 0) and offset >= fetchable:
        if lagging:
            return {"partition_index": index, "error_code": ErrorCode.offset_not_available}
        offset, found_ts = -1, -1  # the record found is not readable (committed) yet
    if ts == LATEST:
        epoch = current_leader_epoch(broker, topic, index)
    elif offset >= 0:
        epoch = epoch_view(broker, topic, index, plog).epoch_for_offset(offset)
    else:
        epoch = UNDEFINED_EPOCH
    return {"partition_index": index, "error_code": ErrorCode.none, "timestamp": found_ts, "offset": offset,
            "leader_epoch": epoch}
