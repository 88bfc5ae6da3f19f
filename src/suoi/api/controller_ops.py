"""Running a controller operation for an admin request:

* the active controller runs it (`KRaftServices.run_on_controller`, answered once committed);
* another node forwards the request as is to the active controller and relays its answer; a
  client's request is always forwarded (`envelope.forwards`), to this node's own controller too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from suoi.api.cluster_metadata import forward
from suoi.api.envelope import forwards
from suoi.controller.controller import QuorumController
from suoi.controller.messages import ControllerResult
from suoi.model import ErrorCode, KafkaError

if TYPE_CHECKING:
    from suoi.services import Services

__all__ = ["controller_call"]

T = TypeVar("T")
ResponseData = dict[str, Any]


def controller_call(
    broker: Services,
    request: Any,
    op: Callable[[QuorumController], ControllerResult[T]],
    render: Callable[[T], ResponseData],
    failed: Callable[[ErrorCode, str], ResponseData],
) -> ResponseData | Awaitable[ResponseData]:
    """``render(op(controller).response)`` here, on the active controller, or the controller's
    own answer to the forwarded request. ``failed(code, message)`` answers when no controller
    could (NOT_CONTROLLER; REQUEST_TIMED_OUT when the records did not commit in time)."""
    kraft = broker.kraft

    async def run() -> ResponseData:
        try:
            if forwards(kraft):
                return await forward(broker, request)
            return render(await kraft.run_on_controller(op))
        except TimeoutError as exc:
            return failed(ErrorCode.request_timed_out, f"the controller did not commit in time: {exc}")
        except (KafkaError, RuntimeError) as exc:  # lost leadership (Raft/NotControllerError); forward() failed
            return failed(ErrorCode.not_controller, str(exc) or type(exc).__name__)

    return run()
