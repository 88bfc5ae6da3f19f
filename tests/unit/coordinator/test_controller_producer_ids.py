"""KRaft-mode producer ids (`ControllerProducerIdManager`, Kafka's RPCProducerIdManager) fed
by a real `QuorumController` (the sans-IO controller of tests/unit/controller): ids come from
the controller's blocks, the next block is asked for at 90 %, no block means a retriable
COORDINATOR_LOAD_IN_PROGRESS, and no id is handed out twice across brokers, broker restarts and
controller failovers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from suoi.coordinator.txn.producer_ids import (
    ControllerProducerIdManager,
    ProducerIdsUnavailableError,
    controller_block_requester,
)
from suoi.model import ErrorCode, KafkaError
from tests.unit.controller.helpers import Harness


class Controller:
    """The active controller as brokers see it: AllocateProducerIds answered by a real
    QuorumController (records replayed on failover); `gate` holds answers back while clear."""

    def __init__(self, brokers: int = 3, block_size: int = 1000) -> None:
        self.h = Harness(brokers, producer_id_block_size=block_size)
        self.asked: list[int] = []
        self.gate = asyncio.Event()
        self.gate.set()

    def requester(self, broker_id: int) -> Callable[[], Awaitable[tuple[int, int]]]:
        async def request() -> tuple[int, int]:
            self.asked.append(broker_id)
            await self.gate.wait()
            r = self.h.ctl.allocate_producer_ids(broker_id, self.h.epochs[broker_id]).response
            if r.error != ErrorCode.none:
                raise KafkaError(r.message or r.error.name, int(r.error))
            return r.producer_id_start, r.producer_id_len

        return request

    def manager(self, broker_id: int, **kw: float) -> ControllerProducerIdManager:
        return ControllerProducerIdManager(self.requester(broker_id), **kw)


def run(coro: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 30))  # type: ignore[arg-type]


def test_no_block_yet_is_retriable_then_ids_come_from_the_controllers_block() -> None:
    async def scenario() -> None:
        ctl = Controller()
        ctl.h.ctl.allocate_producer_ids(0, ctl.h.epochs[0])  # another broker took the first block
        m = ctl.manager(1)
        with pytest.raises(ProducerIdsUnavailableError) as err:
            m.next_id()
        assert err.value.error_code == ErrorCode.coordinator_load_in_progress
        with pytest.raises(ProducerIdsUnavailableError):
            m.next_id()  # still asking: one request only
        await m.wait_ready()
        assert ctl.asked == [1]
        assert [m.next_id() for _ in range(5)] == [1000, 1001, 1002, 1003, 1004]
        assert ctl.h.replayed().next_producer_id == 2000  # the block is in the metadata log
        await m.close()

    run(scenario())


def test_next_block_is_asked_for_at_90_percent_and_used_without_a_gap_in_service() -> None:
    async def scenario() -> None:
        ctl = Controller(block_size=10)
        m = ctl.manager(1)
        await m.wait_ready()
        assert [m.next_id() for _ in range(8)] == list(range(8))
        assert not m.requesting  # 80 %: not yet
        ctl.h.ctl.allocate_producer_ids(2, ctl.h.epochs[2])  # broker 2 takes 10..19 meanwhile
        assert m.next_id() == 8  # 90 %: the next block is asked for in the background
        assert m.requesting
        await m.wait_ready(11)
        assert ctl.asked == [1, 1]
        assert m.available == 1 + 10
        assert [m.next_id() for _ in range(11)] == [9, *range(20, 30)]
        await m.close()

    run(scenario())


def test_a_slow_controller_means_retriable_errors_never_a_reused_id() -> None:
    async def scenario() -> None:
        ctl = Controller(block_size=10)
        m = ctl.manager(1)
        await m.wait_ready()
        ctl.gate.clear()  # the controller does not answer for now
        ids = [m.next_id() for _ in range(10)]
        for _ in range(3):
            with pytest.raises(ProducerIdsUnavailableError):
                m.next_id()
            assert m.requesting
        ctl.gate.set()
        await m.wait_ready()
        assert ctl.asked == [1, 1]  # one request in flight, not one per refused call
        ids += [m.next_id() for _ in range(10)]
        assert ids == list(range(20))
        await m.close()

    run(scenario())


def test_brokers_restarts_and_controller_failover_never_share_an_id() -> None:
    async def scenario() -> None:
        ctl = Controller(block_size=100)
        seen: list[int] = []

        async def take(m: ControllerProducerIdManager, n: int) -> None:
            for _ in range(n):
                await m.wait_ready()
                seen.append(m.next_id())

        brokers = {b: ctl.manager(b) for b in (0, 1, 2)}
        for round_ in range(4):
            for b, m in brokers.items():
                await take(m, 130 + 17 * b)
            if round_ == 1:
                ctl.h.restart_controller()  # failover: a new controller from the replayed log
            # every broker restarts: re-registers (new epoch) and starts from a fresh block
            for b in brokers:
                await brokers[b].close()
                ctl.h.register(b, n=round_ + 1)
                brokers[b] = ctl.manager(b)
                before = max(seen)
                await take(brokers[b], 1)
                assert seen[-1] > before
        assert len(seen) == len(set(seen))
        ctl.h.check_replay()

    run(scenario())


def test_failed_requests_are_retried_with_backoff_until_a_block_arrives() -> None:
    async def scenario() -> None:
        ctl = Controller()
        calls = 0
        good = ctl.requester(1)

        async def flaky() -> tuple[int, int]:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise KafkaError("NOT_CONTROLLER", ErrorCode.not_controller)
            if calls == 2:
                return -5, 10  # nonsense: refused
            return await good()

        m = ControllerProducerIdManager(flaky, retry_backoff_s=0.001)
        await m.wait_ready()
        assert calls == 3 and m.next_id() == 0 and m.blocks_received == 1
        await m.close()

    run(scenario())


def test_an_overlapping_block_is_refused_and_asked_for_again() -> None:
    async def scenario() -> None:
        answers = iter([(0, 10), (5, 10), (10, 10)])

        async def requester() -> tuple[int, int]:
            return next(answers)

        m = ControllerProducerIdManager(requester, retry_backoff_s=0.001)
        await m.wait_ready()
        ids = [m.next_id() for _ in range(10)]
        await m.wait_ready()
        ids += [m.next_id() for _ in range(10)]
        assert ids == list(range(20))
        await m.close()

    run(scenario())


def test_requester_needs_a_registered_broker_and_maps_controller_errors() -> None:
    class Services:
        node_id = 4
        broker_epoch = -1

        async def call_controller(self, request: object, **kw: object) -> object:
            raise AssertionError("must not be called before registration")

    async def scenario() -> None:
        services = Services()
        request = controller_block_requester(lambda: services)
        with pytest.raises(ProducerIdsUnavailableError):
            await request()
        with pytest.raises(ProducerIdsUnavailableError):
            await controller_block_requester(lambda: None)()

    run(scenario())
