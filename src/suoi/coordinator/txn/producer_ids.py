"""Allocation of producer ids that are never handed out twice, even across restarts.

`ControllerProducerIdManager` (Kafka's RPCProducerIdManager, KIP-730): the broker
asks the active controller for blocks of ids (AllocateProducerIds); the controller records
each block in the metadata log (a `ProducerIds` record) before answering, so the log is the
one source of truth across broker restarts and controller failovers. Ids come from the
current block; the next block is requested in the background once 90 % of the current one is
used. With no block at hand `next_id` raises `ProducerIdsUnavailableError`
(COORDINATOR_LOAD_IN_PROGRESS, retriable: clients retry InitProducerId) and starts a request.
Nothing is kept on disk: a restarted broker asks for a new block (the rest of the old one is
never used).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from suoi.model import ErrorCode, KafkaError

log = logging.getLogger("suoi.coordinator.txn")

#: Kafka's ProducerIdManager.PidPrefetchThreshold: ask for the next block once this share of
#: the current one is handed out.
PREFETCH_THRESHOLD = 0.9
#: After a failed AllocateProducerIds, wait this long before asking again (doubling up to the max).
RETRY_BACKOFF_S = 0.05
RETRY_BACKOFF_MAX_S = 1.0
#: Largest producer id (a Java long).
MAX_PRODUCER_ID = 2**63 - 1


class ProducerIdManager(Protocol):
    """Where the transaction coordinator gets producer ids (never the same one twice)."""

    def next_id(self) -> int: ...


class ProducerIdsUnavailableError(KafkaError):
    """No producer id block from the controller yet (one has been asked for): retriable."""

    error_code = ErrorCode.coordinator_load_in_progress


@dataclass(frozen=True, slots=True)
class ProducerIdBlock:
    start: int
    length: int

    @property
    def end(self) -> int:
        """One past the last id of the block."""
        return self.start + self.length


#: Asks the controller for a block: returns (start, length) or raises (retried after a backoff).
BlockRequester = Callable[[], Awaitable[tuple[int, int]]]


class ControllerProducerIdManager:
    """Ids from blocks the active controller hands out (see the module docstring).
    `next_id` runs on the event loop (it may start the background request)."""

    def __init__(self, request_block: BlockRequester, *, prefetch_threshold: float = PREFETCH_THRESHOLD,
                 retry_backoff_s: float = RETRY_BACKOFF_S) -> None:
        self._request_block = request_block
        self._threshold = prefetch_threshold
        self._backoff = retry_backoff_s
        self._current: ProducerIdBlock | None = None
        self._next_id = 0
        self._prefetched: ProducerIdBlock | None = None
        #: End of the newest block accepted: a later block must start at or past it.
        self._high = 0
        self._task: asyncio.Task[None] | None = None
        self.blocks_received = 0

    # -- handing out ---------------------------------------------------------------
    def next_id(self) -> int:
        if self._current is None or self._next_id >= self._current.end:
            if self._prefetched is None:
                self.prefetch()
                raise ProducerIdsUnavailableError("no producer id block from the controller yet")
            self._current, self._prefetched = self._prefetched, None
            self._next_id = self._current.start
        pid = self._next_id
        self._next_id += 1
        if self._prefetched is None and self._next_id >= self._current.start + self._current.length * self._threshold:
            self.prefetch()
        return pid

    @property
    def available(self) -> int:
        """Ids that can be handed out without waiting for the controller."""
        left = 0 if self._current is None else max(0, self._current.end - self._next_id)
        return left + (self._prefetched.length if self._prefetched is not None else 0)

    @property
    def requesting(self) -> bool:
        """A block has been asked for and has not arrived yet."""
        return self._task is not None and not self._task.done()

    # -- asking the controller -----------------------------------------------------
    def prefetch(self) -> None:
        """Ask for the next block in the background unless one is at hand or asked for."""
        if self._prefetched is not None or self.requesting:
            return
        self._task = asyncio.get_running_loop().create_task(self._fetch(), name="producer-id-block")

    async def wait_ready(self, min_ids: int = 1) -> None:
        """Until `min_ids` ids can be handed out without the controller (asking for a block
        if needed), or a block is at hand besides the current one."""
        while self.available < min_ids:
            self.prefetch()
            if self._task is None or not self.requesting:
                return
            await asyncio.shield(self._task)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _fetch(self) -> None:
        """Until a usable block arrives: ask, and after a failure wait (growing backoff)."""
        backoff = self._backoff
        while True:
            problem: str
            try:
                start, length = await self._request_block()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                problem = str(exc) or type(exc).__name__
            else:
                block = ProducerIdBlock(int(start), int(length))
                problem = self._check(block)
                if not problem:
                    self._prefetched = block
                    self._high = block.end
                    self.blocks_received += 1
                    log.info("producer id block %d..%d from the controller", block.start, block.end - 1)
                    return
            log.warning("no producer id block yet (retrying in %.2fs): %s", backoff, problem)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RETRY_BACKOFF_MAX_S)

    def _check(self, block: ProducerIdBlock) -> str:
        """Why `block` must not be used ("" if it may): Kafka's sanity checks of the answer."""
        if block.start < 0 or block.length <= 0 or block.end - 1 > MAX_PRODUCER_ID:
            return f"invalid producer id block start={block.start} length={block.length}"
        if block.start < self._high:
            return f"producer id block {block.start}..{block.end - 1} overlaps ids already received (< {self._high})"
        return ""


def controller_block_requester(kraft: Callable[[], Any]) -> BlockRequester:
    """AllocateProducerIds to the active controller through `kraft()` (the node's
    `KRaftServices`: `node_id`, `broker_epoch`, `call_controller`); refused until the broker is
    registered."""

    async def request_block() -> tuple[int, int]:
        from kio.schema.allocate_producer_ids.v0.request import AllocateProducerIdsRequest
        from kio.schema.types import BrokerId
        from kio.static.primitive import i64

        from suoi.client import Lane

        services = kraft()
        if services is None or services.broker_epoch < 0:
            raise ProducerIdsUnavailableError("the broker is not registered with the controller yet")
        # quick: each attempt bounded, then whoever leads the quorum by then (a block whose
        # answer is lost is never used, so asking again is safe)
        response = await services.call_controller(AllocateProducerIdsRequest(
            broker_id=BrokerId(services.node_id), broker_epoch=i64(services.broker_epoch)), quick=True,
            lane=Lane.PRODUCER_IDS)
        if response.error_code != ErrorCode.none:
            raise KafkaError(f"AllocateProducerIds: {ErrorCode(response.error_code).name}", response.error_code)
        return int(response.producer_id_start), int(response.producer_id_len)

    return request_block
