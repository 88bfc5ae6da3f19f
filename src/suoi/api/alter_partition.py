"""AlterPartition (key 56, KIP-497): a partition leader asks the active controller to change
the ISR. Answered only by the active controller (others: NOT_CONTROLLER, and the leader
retries with the quorum leader). Each partition is one controller decision; the answer
carries the partition's state afterwards (or the current one with the error), which the
leader applies (`suoi.replication.LeaderPartitionState.on_alter_partition_response`).

v2 names topics by id and sends the ISR as broker ids; v3 (KIP-903) sends broker epochs
with them, which we accept and do not check (the controller refuses fenced brokers).
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

from suoi.api.registry import RequestContext, api
from suoi.model import ErrorCode
from suoi.model.errors import NotControllerError

if TYPE_CHECKING:
    from suoi.controller import QuorumController

log = logging.getLogger("suoi.api")


def _alter_one(c: QuorumController, *, request: Any, topic_id: Any, partition: Any, isr: list[int]) -> Any:
    return c.alter_partition(request.broker_id, request.broker_epoch, topic_id, partition.partition_index,
                             partition.leader_epoch, partition.partition_epoch, isr)


@api(56, "AlterPartition", 2, 3)
def handle_alter_partition(ctx: RequestContext, request: Any) -> Any:
    kraft: Any = ctx.services.kraft  # its lambdas below are typed loosely

    async def run() -> dict[str, Any]:
        topics = []
        try:
            for topic in request.topics:
                partitions = []
                for p in topic.partitions:
                    isr = ([int(b.broker_id) for b in p.new_isr_with_epochs] if ctx.api_version >= 3
                           else [int(b) for b in p.new_isr])
                    result = await kraft.run_on_controller(functools.partial(
                        _alter_one, request=request, topic_id=topic.topic_id, partition=p, isr=isr))
                    partitions.append({
                        "partition_index": p.partition_index, "error_code": int(result.error),
                        "leader_id": result.leader, "leader_epoch": result.leader_epoch, "isr": list(result.isr),
                        "leader_recovery_state": 0, "partition_epoch": result.partition_epoch})
                topics.append({"topic_id": topic.topic_id, "partitions": partitions})
        except NotControllerError:
            return {"throttle_time": 0, "error_code": ErrorCode.not_controller, "topics": []}
        except TimeoutError:  # e.g. the quorum stalled (a paused node): the leader retries
            log.warning("AlterPartition from broker %d: not committed in time; answering REQUEST_TIMED_OUT",
                        request.broker_id)
            return {"throttle_time": 0, "error_code": ErrorCode.request_timed_out, "topics": []}
        return {"throttle_time": 0, "error_code": ErrorCode.none, "topics": topics}

    return run()
