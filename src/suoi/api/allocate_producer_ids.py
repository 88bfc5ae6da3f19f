"""AllocateProducerIds (key 67, KIP-730): a broker in KRaft mode asks the active controller
for a block of producer ids. The controller records the block in the metadata log (a
`ProducerIds` record) and answers once that is committed, so no id is handed out twice across
broker restarts or controller failovers. Answered only by the active controller (others:
NOT_CONTROLLER, and the broker retries with the quorum leader); the broker's side is
`suoi.coordinator.txn.producer_ids.ControllerProducerIdManager`.
"""

from __future__ import annotations

from typing import Any

from suoi.api.registry import RequestContext, api
from suoi.model import ErrorCode, KafkaError


def _refused(error: ErrorCode) -> dict[str, Any]:
    return {"throttle_time": 0, "error_code": error, "producer_id_start": -1, "producer_id_len": 0}


@api(67, "AllocateProducerIds", 0, 0)
def handle_allocate_producer_ids(ctx: RequestContext, request: Any) -> Any:
    kraft = ctx.services.kraft

    async def run() -> dict[str, Any]:
        try:
            result = await kraft.run_on_controller(
                lambda c: c.allocate_producer_ids(int(request.broker_id), int(request.broker_epoch)))
        except (KafkaError, TimeoutError):  # NotControllerError, NotLeaderError, QuorumUnavailableError
            # Not the controller, or it lost leadership before the block committed: the block
            # was never handed out; the broker asks again (of the new leader).
            return _refused(ErrorCode.not_controller)
        return {"throttle_time": 0, "error_code": int(result.error), "producer_id_start": result.producer_id_start,
                "producer_id_len": result.producer_id_len}

    return run()
