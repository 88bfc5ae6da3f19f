"""OffsetForLeaderEpoch (key 23): where a leader epoch ends in this node's log.

Followers ask it to find where their log diverges from a new leader's (KIP-101, KIP-279);
consumers ask it after a leader change, or when resuming from a committed offset that
carries an epoch, to detect truncation (KIP-320: librdkafka sends v2, the Java client v3+).
Each partition gets the largest epoch <= the requested one and its end offset, from the
leader-epoch cache (`LeaderEpochCache.end_offset_for`); an epoch the log does not know
(above the latest) is answered with -1/-1 and no error, as Kafka does.

The request's ``current_leader_epoch`` is checked against the partition's (FENCED or
UNKNOWN_LEADER_EPOCH). Only the leader answers consumers (replica_id -1, and v2, which has
no replica_id) and followers (replica_id >= 0); replica_id -2 (debugging) may be answered
by any replica hosting the partition. v0-v1 are not offered (Kafka 4 removed them, KIP-896).
"""

from __future__ import annotations

from typing import Any

from suoi.api.leader_epochs import CONSUMER_REPLICA_ID, DEBUGGING_REPLICA_ID, epoch_view, local_log
from suoi.api.registry import RequestContext, api
from suoi.log.leader_epoch import UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET


@api(23, "OffsetForLeaderEpoch", 2, 4)
def handle_offset_for_leader_epoch(ctx: RequestContext, request: Any) -> dict[str, Any]:
    broker = ctx.services
    replica_id = request.replica_id if ctx.api_version >= 3 else CONSUMER_REPLICA_ID
    require_leader = replica_id != DEBUGGING_REPLICA_ID
    topics = []
    for topic in request.topics:
        partitions = []
        for p in topic.partitions:
            plog, error = local_log(broker, topic.topic, p.partition, p.current_leader_epoch,
                                    require_leader=require_leader)
            epoch, end_offset = UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
            if plog is not None:
                view = epoch_view(broker, topic.topic, p.partition, plog)
                epoch, end_offset = view.end_offset_for(p.leader_epoch, plog.log_end_offset)
            partitions.append({"error_code": error, "partition": p.partition,
                               "leader_epoch": epoch, "end_offset": end_offset})
        topics.append({"topic": topic.topic, "partitions": partitions})
    return {"throttle_time": 0, "topics": topics}
