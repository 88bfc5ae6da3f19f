"""A broker's side of its lifecycle with the active controller: registration, heartbeats,
controlled shutdown and reports of lost replicas.

Kept apart from the quorum runtime (`kraft.py`) because it is the broker role only (a
controller-only node never runs it) and talks to the controller solely through
`KRaftServices.call_controller` on the LIFECYCLE lane, like any remote broker would. The state
it moves (``broker_epoch``, ``fenced``, ``first_unfenced``) stays on `KRaftServices`: the rest of
the node reads it there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from suoi.client import Lane
from suoi.cluster.previous_epoch import record_epoch
from suoi.cluster.rpc import heartbeat_request, lost_replicas_request, registration_request
from suoi.controller.image import MetadataImage
from suoi.model import ErrorCode
from suoi.model.errors import NotControllerError

if TYPE_CHECKING:
    from suoi.cluster.runtime_protocol import KRaftRuntime

__all__ = ["CONTROLLED_SHUTDOWN_MAX_S", "controlled_shutdown", "report_lost_replicas", "run_lifecycle", "until_stalled"]

log = logging.getLogger("suoi.cluster")
T = TypeVar("T")

#: Pause between the heartbeats of a controlled shutdown (the controller moves the leaderships
#: at the first one; the next ones ask whether it is done).
SHUTDOWN_HEARTBEAT_S = 0.1
#: Bound of each of those heartbeats.
SHUTDOWN_HEARTBEAT_TIMEOUT_S = 2.0
#: The longest a controlled shutdown may take however it progresses: Kafka's broker gives its
#: whole shutdown 5 minutes (`KafkaBroker.shutdown()`), the controlled shutdown included.
CONTROLLED_SHUTDOWN_MAX_S = 300.0


async def run_lifecycle(kraft: KRaftRuntime) -> None:
    """Register (again, after the controller forgot this broker's epoch), then heartbeat every
    broker.heartbeat.interval.ms, following the fenced state the controller answers."""
    interval = kraft.settings.heartbeat_interval_ms / 1000
    recording: asyncio.Task[bool] | None = None
    while not kraft.stopping:  # the flag too: on Python 3.11 a cancel can be swallowed (suoi.stopping)
        try:
            if kraft.broker_epoch < 0:
                response = await kraft.call_controller(registration_request(kraft), quick=True, lane=Lane.LIFECYCLE)
                if response.error_code == ErrorCode.none:
                    kraft.broker_epoch = int(response.broker_epoch)
                    log.info("node %d registered with broker epoch %d", kraft.node_id, kraft.broker_epoch)
                    # what this process's successor names after a crash (`previous_epoch`); its
                    # fsync does not hold up the unfencing heartbeat
                    recording = asyncio.create_task(_record_epoch(kraft, kraft.broker_epoch, recording))
                    prefetch = getattr(kraft.broker.producer_ids, "prefetch", None)
                    if prefetch is not None:  # a producer id block before the first InitProducerId
                        prefetch()
                    continue
                if response.error_code == ErrorCode.inconsistent_cluster_id:
                    kraft.cluster_mismatch.answered("the active controller", "BrokerRegistration")
                else:
                    log.warning("broker registration refused: %s", ErrorCode(response.error_code).name)
            else:
                response = await kraft.call_controller(heartbeat_request(kraft, want_shutdown=False), quick=True,
                                                       lane=Lane.LIFECYCLE)
                if response.error_code in (ErrorCode.stale_broker_epoch, ErrorCode.broker_id_not_registered):
                    kraft.broker_epoch = -1
                    continue
                if response.error_code == ErrorCode.none and kraft.fenced != response.is_fenced:
                    kraft.fenced = response.is_fenced
                    log.info("node %d is %s", kraft.node_id, "fenced" if kraft.fenced else "unfenced")
                    if not kraft.fenced:
                        kraft.first_unfenced.set()
        except NotControllerError as exc:
            log.info("no controller reachable yet: %s", exc)
        except Exception:
            log.exception("broker heartbeat failed")
        await asyncio.sleep(interval)


async def _record_epoch(kraft: KRaftRuntime, epoch: int, before: asyncio.Task[bool] | None) -> bool:
    """Record `epoch` in the metadata dir on a thread, after the write of an earlier
    registration's epoch (one write at a time, the newest last)."""
    if before is not None:
        await asyncio.wait([before])
    return await asyncio.to_thread(record_epoch, kraft.settings.metadata_dir, epoch)


async def report_lost_replicas(kraft: KRaftRuntime, partitions: list[tuple[str, int]]) -> None:
    """KIP-858: replicas whose log dir failed; the controller moves leadership and ISR
    membership away from this broker (retried until it answers, bounded)."""
    try:
        response = await kraft.call_controller(lost_replicas_request(kraft, partitions), timeout=30)
    except NotControllerError as exc:
        log.warning("could not report %d lost replicas to the controller: %s", len(partitions), exc)
        return
    if response.error_code != ErrorCode.none:
        log.warning("the controller refused the report of lost replicas: %s", ErrorCode(response.error_code).name)
    else:
        log.info("reported %d lost replicas to the controller", len(partitions))


async def until_stalled(work: Awaitable[T], last_progress: Callable[[], float], stall_s: float,
                        cap_s: float = CONTROLLED_SHUTDOWN_MAX_S) -> T:
    """Await ``work`` as long as it progresses: cancelled, and TimeoutError raised, once
    ``last_progress()`` (a loop time) is more than ``stall_s`` old, or after ``cap_s`` in all.
    A controlled shutdown is bounded this way (`KRaftServices.controlled_shutdown`): a fixed 5 s
    cut short one that a controller busy moving 1,000 leaderships under load was completing."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    cap = loop.time() + cap_s
    try:
        while not task.done():
            now = loop.time()
            limit = min(cap, last_progress() + stall_s)
            if now >= limit:
                why = f"no progress for {stall_s:.1f} s" if limit < cap else f"still going after {cap_s:.0f} s"
                raise TimeoutError(why)
            await asyncio.wait({task}, timeout=min(limit - now, 0.5))
        return task.result()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)


async def controlled_shutdown(kraft: KRaftRuntime, on_progress: Callable[[], None] = lambda: None) -> bool:
    """Kafka's controlled shutdown (KIP-631): BrokerHeartbeats with want_shutdown until the
    controller answers should_shut_down -- it has moved every leadership away from this broker
    and taken it out of the ISRs, then fenced it -- and then until this node's *applied* image
    (the reconciler's, which keeps running meanwhile) shows it fenced: by then every move is
    applied here, so its partitions are followed, not led, and its coordinators have resigned
    the internal partitions that moved (their clients were answered NOT_COORDINATOR and found
    the new coordinator while this node still served them). True when both happened;
    ``on_progress`` is called at every answer of the controller. The caller bounds the whole
    (`until_stalled`). A remote controller that did not answer a heartbeat in time (moving a
    thousand leaderships under load takes it seconds) is asked again, and so is the quorum
    during an election younger than two election timeouts (under load a follower's pre-vote
    names no leader for a second or two, with the leader alive: that gave up the controlled
    shutdown in 1 of 2 loaded runs); with no controller for longer, or this node's own unable
    to commit, it gives up."""
    while True:
        try:
            response = await kraft.call_controller(heartbeat_request(kraft, want_shutdown=True),
                                                   timeout=SHUTDOWN_HEARTBEAT_TIMEOUT_S, lane=Lane.LIFECYCLE)
        except NotControllerError as exc:
            if not kraft.controller_may_answer:
                raise
            log.info("controlled shutdown: no answer from controller %d yet (%s); asking again", kraft.controller_id,
                     exc)
            continue
        on_progress()
        if response.error_code != ErrorCode.none:
            log.info("controlled shutdown refused: %s", ErrorCode(response.error_code).name)
            return False
        if response.should_shut_down:
            break
        await asyncio.sleep(SHUTDOWN_HEARTBEAT_S)
    me = kraft.node_id

    def fenced(image: MetadataImage) -> bool:
        reg = image.brokers.get(me)
        return reg is None or reg.fenced

    return await kraft.wait_image(fenced, CONTROLLED_SHUTDOWN_MAX_S, applied=True)
