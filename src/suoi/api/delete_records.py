"""DeleteRecords (key 21): advance a partition's log start offset (offset -1 = HW).

Only the partition's leader accepts it (Kafka's `deleteRecordsOnLeader`): a
follower, or a broker without the partition, answers NOT_LEADER_OR_FOLLOWER, and a partition
the cluster does not have UNKNOWN_TOPIC_OR_PARTITION. The leader answers once every alive
replica's log start has reached the offset (the low watermark, `partition/delete_records.py`),
or REQUEST_TIMED_OUT after the request's timeout.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from suoi.api.registry import RequestContext, api
from suoi.model import ErrorCode
from suoi.protocol.codec import ms

if TYPE_CHECKING:
    from suoi.services import KRaft


def _answer(index: int, error: ErrorCode, low_watermark: int = -1) -> dict[str, Any]:
    return {"partition_index": index, "low_watermark": low_watermark, "error_code": error}


@api(21, "DeleteRecords", 0, 2)
def handle_delete_records(ctx: RequestContext, request: Any) -> Any:
    return _on_leaders(ctx.services.kraft, request)


async def _on_leaders(kraft: KRaft, request: Any) -> dict[str, Any]:
    replicas = kraft.replicas  # None on a controller-only node: it leads no partition
    timeout_s = max(ms(request.timeout), 0) / 1000

    async def one(name: str, index: int, offset: int) -> dict[str, Any]:
        leader = replicas.leader(name, index) if replicas is not None else None
        if replicas is None or leader is None:
            topic = kraft.image.topic(name)
            known = topic is not None and index in topic.partitions
            return _answer(index, ErrorCode.not_leader_or_follower if known else ErrorCode.unknown_topic_or_partition)
        error, low = await replicas.delete_records.delete(leader, offset, timeout_s)
        return _answer(index, error, low)

    # every partition at once: the request waits for its slowest partition, not for their sum
    answers = iter(await asyncio.gather(*(one(t.name, p.partition_index, p.offset)
                                          for t in request.topics for p in t.partitions)))
    return {"throttle_time": 0, "topics": [{"name": t.name, "partitions": [next(answers) for _ in t.partitions]}
                                           for t in request.topics]}
