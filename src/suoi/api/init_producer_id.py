"""InitProducerId (key 22): producer ids for idempotent and transactional producers.

Modern clients (Java since 3.0, kafka-python 3.x) enable idempotence by default, so
this is needed for a plain `send()`: a non-transactional request gets a fresh id with
epoch 0, as in Kafka. A transactional.id goes to the transaction coordinator, which
bumps the epoch (fencing older instances of the same id) and aborts any transaction the
previous instance left open.
"""

from __future__ import annotations

from typing import Any

from suoi.api.registry import RequestContext, api
from suoi.coordinator.txn import InitProducerIdRequest, for_version
from suoi.model import ErrorCode, KafkaError
from suoi.protocol.codec import ms


@api(22, "InitProducerId", 0, 5)
async def handle_init_producer_id(ctx: RequestContext, request: Any) -> dict[str, Any]:
    try:
        return await _init_producer_id(ctx, request)
    except KafkaError as exc:  # e.g. no producer id block at hand yet (retriable)
        return {"throttle_time": 0, "error_code": exc.error_code, "producer_id": -1, "producer_epoch": -1}


async def _init_producer_id(ctx: RequestContext, request: Any) -> dict[str, Any]:
    if request.transactional_id is None:
        pid = ctx.services.producer_ids.next_id()
        return {"throttle_time": 0, "error_code": ErrorCode.none, "producer_id": pid, "producer_epoch": 0}
    txn = ctx.services.transactions
    error = txn.check_transactional_id(request.transactional_id)
    if error != ErrorCode.none:
        return {"throttle_time": 0, "error_code": error, "producer_id": -1, "producer_epoch": -1}
    reply = await txn.call(txn.machine.init_producer_id, InitProducerIdRequest(
        token=None, transactional_id=request.transactional_id, transaction_timeout_ms=ms(request.transaction_timeout),
        producer_id=getattr(request, "producer_id", -1), producer_epoch=getattr(request, "producer_epoch", -1)))
    return {"throttle_time": 0, "error_code": for_version("InitProducerId", ctx.api_version, reply.error_code),
            "producer_id": reply.producer_id, "producer_epoch": reply.producer_epoch}
