"""AssignReplicasToDirs (key 73): a broker tells the active controller which log dir holds each
of its replicas (KIP-858). suoi keeps no directory assignment in its metadata; it uses the
request for what matters when a dir fails: replicas assigned to Kafka's LOST directory id
(00000000-0000-0000-0000-000000000001) are offline on that broker, so the controller takes the
broker out of their ISRs and elects other leaders (`QuorumController.replicas_offline`).
Assignments to real directory ids are acknowledged and not stored."""

from __future__ import annotations

import uuid
from typing import Any

from suoi.api.registry import RequestContext, api
from suoi.model import ErrorCode
from suoi.model.errors import NotControllerError

#: Kafka's DirectoryId.LOST: the replica's directory is offline or unknown.
LOST_DIRECTORY = uuid.UUID(int=1)


@api(73, "AssignReplicasToDirs", 0, 0)
async def handle_assign_replicas_to_dirs(ctx: RequestContext, request: Any) -> dict[str, Any]:
    kraft = ctx.services.kraft
    lost = [(t.topic_id, int(p.partition_index)) for d in request.directories if d.id_ == LOST_DIRECTORY
            for t in d.topics for p in t.partitions]

    def answer(error: int, errors: dict[tuple[Any, int], int]) -> dict[str, Any]:
        return {"throttle_time": 0, "error_code": error, "directories": [
            {"id_": d.id_, "topics": [{"topic_id": t.topic_id, "partitions": [
                {"partition_index": p.partition_index, "error_code": errors.get((t.topic_id, int(p.partition_index)), 0)}
                for p in t.partitions]} for t in d.topics]} for d in request.directories]}

    if kraft.controller is None:
        return answer(ErrorCode.not_controller, {})
    try:
        error, errors = await kraft.run_on_controller(
            lambda c: c.replicas_offline(int(request.broker_id), int(request.broker_epoch), lost))
    except NotControllerError:
        return answer(ErrorCode.not_controller, {})
    return answer(int(error), {k: int(v) for k, v in errors.items()})
