"""InitProducerId (key 22): producer ids for idempotent producers.

Modern clients (Java since 3.0, kafka-python 3.x) enable idempotence by default, so
this is needed for a plain `send()`. A non-transactional request always gets a fresh
id with epoch 0, as in Kafka. Transactional ids need the transaction coordinator,
which suoi does not have yet: such requests are refused with a log line.
"""

from __future__ import annotations

import logging
from typing import Any

from suoi.api.registry import RequestContext, api
from suoi.model import ErrorCode

log = logging.getLogger("suoi.api")


@api(22, "InitProducerId", 0, 5)
def handle_init_producer_id(ctx: RequestContext, request: Any) -> dict[str, Any]:
    if request.transactional_id is not None:
        log.warning("client %s asked for transactional.id=%r: transactions are not supported yet",
                    ctx.client_host, request.transactional_id)
        return {"throttle_time": 0, "error_code": ErrorCode.invalid_request, "producer_id": -1, "producer_epoch": -1}
    pid = ctx.broker.producer_ids.next_id()
    return {"throttle_time": 0, "error_code": ErrorCode.none, "producer_id": pid, "producer_epoch": 0}
