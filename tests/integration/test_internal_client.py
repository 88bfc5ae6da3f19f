"""suoi.client against a real broker process on 127.0.0.1: round trips, pipelining, timeouts,
a broker killed mid-request, and reconnecting through the pool after a restart."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from kio.schema.errors import ErrorCode

from suoi.client import KafkaClientConnection, NodeClient, NodeNotReadyError, UnknownNodeError, request_sync
from suoi.testing import EmbeddedBroker
from tests.integration.support import (
    api_versions_req,
    create_topics_req,
    fetch_req,
    metadata_req,
    unique,
)

pytestmark = pytest.mark.timeout(60)

T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def eventually(fn: Callable[[], Awaitable[T]], timeout: float = 10.0) -> T:
    """Retry ``fn`` until it returns without a connection error (the deadline bounds it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await fn()
        except ConnectionError:
            if loop.time() >= deadline:
                raise
            await asyncio.sleep(0.02)  # retry pacing, not synchronisation


def test_round_trips(make_broker: Callable[..., EmbeddedBroker]) -> None:
    broker = make_broker()
    topic = unique("ic")

    async def main() -> None:
        conn = await KafkaClientConnection.connect(broker.host, broker.port)
        try:
            av = await conn.request(api_versions_req(), timeout=5)
            assert av.error_code == ErrorCode.none
            assert {k.api_key for k in av.api_keys} >= {0, 1, 3, 18, 19}
            created = await conn.request(create_topics_req(topic, partitions=3), timeout=10)
            assert [(t.name, t.error_code) for t in created.topics] == [(topic, ErrorCode.none)]
            md = await conn.request(metadata_req(topic, allow_create=False), timeout=5)
            (t,) = md.topics
            assert t.name == topic and t.error_code == ErrorCode.none
            assert sorted(p.partition_index for p in t.partitions) == [0, 1, 2]
            again = await conn.request(create_topics_req(topic), timeout=10)
            assert again.topics[0].error_code == ErrorCode.topic_already_exists
        finally:
            await conn.close()
        assert conn.closed
        with pytest.raises(ConnectionError):
            await conn.request(api_versions_req())

    run(main())


def test_sync_wrapper(make_broker: Callable[..., EmbeddedBroker]) -> None:
    broker = make_broker()
    av = request_sync(broker.host, broker.port, api_versions_req(), timeout=5)
    assert av.error_code == ErrorCode.none


def test_hundred_pipelined_requests(make_broker: Callable[..., EmbeddedBroker]) -> None:
    broker = make_broker()
    topics = [unique("pipe") for _ in range(5)]

    async def main() -> None:
        conn = await KafkaClientConnection.connect(broker.host, broker.port)
        try:
            await conn.request(create_topics_req(*topics), timeout=10)
            # 100 requests of different kinds written back to back, each answered correctly.
            reqs: list[Any] = []
            for i in range(100):
                reqs.append(metadata_req(topics[i % 5], allow_create=False) if i % 2 else api_versions_req())
            tasks = [asyncio.ensure_future(conn.request(r, timeout=10)) for r in reqs]
            await asyncio.sleep(0)
            assert conn.in_flight > 1  # they really are in flight together
            results = await asyncio.gather(*tasks)
            for i, res in enumerate(results):
                if i % 2:
                    assert [t.name for t in res.topics] == [topics[i % 5]]
                else:
                    assert res.error_code == ErrorCode.none and res.api_keys
        finally:
            await conn.close()

    run(main())


def test_timeout_leaves_connection_usable(make_broker: Callable[..., EmbeddedBroker]) -> None:
    broker = make_broker()
    topic = unique("to")

    async def main() -> None:
        conn = await KafkaClientConnection.connect(broker.host, broker.port)
        try:
            await conn.request(create_topics_req(topic), timeout=10)
            # A long-poll fetch on an empty partition answers only after max_wait (1.5 s).
            with pytest.raises(asyncio.TimeoutError):
                await conn.request(fetch_req(topic, 0, 0, max_wait_ms=1500), timeout=0.2)
            # The late answer is read and dropped; the next request gets its own answer.
            md = await conn.request(metadata_req(topic, allow_create=False), timeout=5)
            assert md.topics[0].name == topic
            assert not conn.closed
        finally:
            await conn.close()

    run(main())


def test_broker_killed_mid_request(make_broker: Callable[..., EmbeddedBroker]) -> None:
    broker = make_broker()
    topic = unique("kill")

    async def main() -> None:
        conn = await KafkaClientConnection.connect(broker.host, broker.port)
        await conn.request(create_topics_req(topic), timeout=10)
        parked = [asyncio.ensure_future(conn.request(fetch_req(topic, 0, 0, max_wait_ms=20_000), timeout=30))
                  for _ in range(3)]
        await asyncio.sleep(0.1)  # let the broker read and park them (either way they must fail)
        await asyncio.get_running_loop().run_in_executor(None, broker.kill)
        results = await asyncio.wait_for(asyncio.gather(*parked, return_exceptions=True), 10)
        assert all(isinstance(r, ConnectionError) for r in results), results
        await asyncio.wait_for(conn.wait_closed(), 5)
        assert conn.closed
        with pytest.raises(ConnectionError):
            await conn.request(api_versions_req())

    run(main())


def test_pool_reconnects_after_restart(make_broker: Callable[..., EmbeddedBroker]) -> None:
    broker = make_broker()

    async def main() -> None:
        pool = NodeClient(reconnect_backoff_ms=20, reconnect_backoff_max_ms=200)
        pool.register(1, broker.host, broker.port)
        try:
            with pytest.raises(UnknownNodeError):
                await pool.request(2, api_versions_req())
            # concurrent first requests share one connection attempt
            first = await asyncio.gather(*(pool.request(1, api_versions_req(), timeout=5) for _ in range(10)))
            assert all(r.error_code == ErrorCode.none for r in first)
            assert pool.is_ready(1)

            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, broker.kill)
            with pytest.raises(ConnectionError):
                # the old connection is dead: either it fails in flight or the reconnect is refused
                await eventually(lambda: pool.request(1, api_versions_req(), timeout=5), timeout=0.5)
            # while the broker is down the pool fails fast (never blocks), with backoff
            errors = []
            for _ in range(3):
                try:
                    await pool.request(1, api_versions_req(), timeout=5)
                except ConnectionError as exc:
                    errors.append(exc)
            assert len(errors) == 3
            assert any(isinstance(e, NodeNotReadyError) for e in errors)

            await loop.run_in_executor(None, broker.start)  # same port, same data
            res = await eventually(lambda: pool.request(1, api_versions_req(), timeout=5), timeout=10)
            assert res.error_code == ErrorCode.none
            assert pool.is_ready(1)
        finally:
            await pool.close()
        with pytest.raises(ConnectionError):
            await pool.request(1, api_versions_req())

    run(main())


def test_connect_refused_and_timeout() -> None:
    from suoi.testing import free_port

    async def main() -> None:
        with pytest.raises(ConnectionError):
            await KafkaClientConnection.connect("127.0.0.1", free_port(), timeout=2)

    run(main())
