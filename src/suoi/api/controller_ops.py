"""Running a controller operation for an admin request, in whichever mode this node is in.

* the active controller runs it (`KRaftServices.run_on_controller`, answered once committed);
* another KRaft node forwards the request as is to the active controller and relays its answer;
* a standalone node (no ``process.roles``) answers as a one-broker cluster would: the same
  `QuorumController` logic runs over a throwaway image of this broker and its local topics
  (every partition: replicas = ISR = [this node], led by it). Nothing there can change, so an
  operation that would write records is a bug and raises.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from suoi.api.cluster_metadata import forward
from suoi.controller.controller import ControllerConfig, QuorumController
from suoi.controller.image import MetadataBuilder
from suoi.controller.messages import ControllerResult
from suoi.controller.records import Partition, RegisterBroker, Topic
from suoi.model import ErrorCode, KafkaError

if TYPE_CHECKING:
    from suoi.services import Services

__all__ = ["controller_call", "one_broker_controller"]

T = TypeVar("T")
ResponseData = dict[str, Any]


def one_broker_controller(broker: Services) -> QuorumController:
    """A controller over this standalone broker as a one-broker cluster (read-only)."""
    b = MetadataBuilder()
    me = broker.node_id
    b.apply(RegisterBroker(broker_id=me, incarnation_id=uuid.UUID(int=me + 1), broker_epoch=0, fenced=False))
    for name, info in sorted(broker.logs.topics().items()):
        b.apply(Topic(name=name, topic_id=info.topic_id))
        for p in range(info.partitions):
            b.apply(Partition(topic_id=info.topic_id, partition=p, replicas=(me,), isr=(me,), leader=me))

    def refuse(records: Any) -> int:
        raise RuntimeError(f"a standalone broker cannot record metadata changes: {list(records)}")

    return QuorumController(b.image(), append=refuse, now=0, config=ControllerConfig(auto_leader_rebalance_enable=False))


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
    if broker.kraft is None:
        return render(op(one_broker_controller(broker)).response)
    kraft = broker.kraft

    async def run() -> ResponseData:
        try:
            if kraft.controller is None:
                return await forward(broker, request)
            return render(await kraft.run_on_controller(op))
        except TimeoutError as exc:
            return failed(ErrorCode.request_timed_out, f"the controller did not commit in time: {exc}")
        except (KafkaError, RuntimeError) as exc:  # lost leadership (Raft/NotControllerError); forward() failed
            return failed(ErrorCode.not_controller, str(exc) or type(exc).__name__)

    return run()
