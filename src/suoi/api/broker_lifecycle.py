"""BrokerRegistration (62), BrokerHeartbeat (63), UnregisterBroker (64): brokers talking to
the active controller in KRaft mode. Answered only by the active controller (others:
NOT_CONTROLLER, so the broker retries with the quorum leader)."""

from __future__ import annotations

import uuid
from typing import Any

from suoi.api.registry import RequestContext, api
from suoi.controller.records import Listener
from suoi.model import ErrorCode
from suoi.model.errors import NotControllerError


@api(62, "BrokerRegistration", 0, 4)
def handle_broker_registration(ctx: RequestContext, request: Any) -> Any:
    kraft = ctx.services.kraft
    if request.cluster_id != ctx.services.cluster_id:
        kraft.cluster_mismatch.received(request.broker_id, "BrokerRegistration", request.cluster_id)
        return {"throttle_time": 0, "error_code": ErrorCode.inconsistent_cluster_id, "broker_epoch": -1}
    listeners = [Listener(x.name, x.host, int(x.port), int(x.security_protocol)) for x in request.listeners]
    incarnation = request.incarnation_id or uuid.UUID(int=0)

    async def run() -> dict[str, Any]:
        try:
            result = await kraft.run_on_controller(lambda c: c.register_broker(
                request.broker_id, incarnation, listeners, request.rack, ctx.services.now_ms(),
                previous_broker_epoch=int(getattr(request, "previous_broker_epoch", -1))))
        except NotControllerError:
            return {"throttle_time": 0, "error_code": ErrorCode.not_controller, "broker_epoch": -1}
        except TimeoutError:  # not committed in time (a stalled quorum): the broker retries
            return {"throttle_time": 0, "error_code": ErrorCode.request_timed_out, "broker_epoch": -1}
        return {"throttle_time": 0, "error_code": int(result.error), "broker_epoch": result.broker_epoch}

    return run()


@api(63, "BrokerHeartbeat", 0, 1)
def handle_broker_heartbeat(ctx: RequestContext, request: Any) -> Any:
    kraft = ctx.services.kraft
    refused = {"throttle_time": 0, "is_caught_up": False, "is_fenced": True, "should_shut_down": False}

    conn = ctx.connection
    if conn is not None and kraft.controller is not None:
        # Watch the connection this broker heartbeats on: if it closes (a killed broker's
        # sockets are closed by its OS) the controller fences it sooner than the session timeout.
        key = ("broker-heartbeat", request.broker_id)
        if key not in conn.close_callbacks:
            broker_id, epoch = int(request.broker_id), int(request.broker_epoch)
            conn.close_callbacks[key] = lambda: kraft.broker_connection_lost(broker_id, epoch)

    async def run() -> dict[str, Any]:
        try:
            result = await kraft.run_on_controller(lambda c: c.heartbeat(
                request.broker_id, request.broker_epoch, want_fence=request.want_fence,
                want_shutdown=request.want_shut_down, current_metadata_offset=request.current_metadata_offset,
                now=ctx.services.now_ms()))
        except NotControllerError:
            return {**refused, "error_code": ErrorCode.not_controller}
        except TimeoutError:  # not committed in time (a stalled quorum): the broker retries
            return {**refused, "error_code": ErrorCode.request_timed_out}
        return {"throttle_time": 0, "error_code": int(result.error), "is_caught_up": result.is_caught_up,
                "is_fenced": result.is_fenced, "should_shut_down": result.should_shutdown}

    return run()


@api(64, "UnregisterBroker", 0, 0)
def handle_unregister_broker(ctx: RequestContext, request: Any) -> Any:
    kraft = ctx.services.kraft

    async def run() -> dict[str, Any]:
        try:
            result = await kraft.run_on_controller(lambda c: c.unregister_broker(request.broker_id))
        except NotControllerError:
            return {"throttle_time": 0, "error_code": ErrorCode.not_controller, "error_message": None}
        except TimeoutError:  # not committed in time (a stalled quorum): the broker retries
            return {"throttle_time": 0, "error_code": ErrorCode.request_timed_out, "error_message": "timed out"}
        return {"throttle_time": 0, "error_code": int(result.error), "error_message": result.message}

    return run()
