"""A registration that arrives while the registry is being elected primary: the group coordinator
already names this registry as the partition's owner, but librdkafka has not yet called its
on_assign (under load that takes a while). The registry used to forward the write to itself,
where it was refused as "not the primary" (50003: the answer without an id the e2e test once
got). It now waits for its own assignment and registers the schema itself.

The interleaving is forced: the election's on_assign callback is held at a gate until the
registration is seen waiting for the election (its second look at the group), then let through."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from suoi.http.registry.server import SchemaRegistryServer
from suoi.testing.inprocess import InProcessNode

pytestmark = pytest.mark.timeout(90)

CT = "application/vnd.schemaregistry.v1+json"
SCHEMA = {"type": "record", "name": "Gate", "fields": [{"name": "id", "type": "long"}]}


@pytest.fixture(scope="module")
def node() -> Iterator[InProcessNode]:
    with InProcessNode(overrides={"offsets.topic.replication.factor": "1", "group.initial.rebalance.delay.ms": "0",
                                  "transaction.state.log.replication.factor": "1",
                                  "transaction.state.log.min.isr": "1"}) as started:
        yield started


async def until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def test_a_write_during_the_registrys_own_election_is_registered_not_refused(node: InProcessNode) -> None:
    async def scenario() -> tuple[int, Any, bool]:
        server = SchemaRegistryServer(node.bootstrap, "http://127.0.0.1:0")
        await server.start()
        service = server.service
        assert service is not None
        election = service.election
        gate = threading.Event()
        assigned = election._assigned  # the gate goes where librdkafka calls in

        def held(consumer: Any, partitions: Any) -> None:
            assert gate.wait(30), "the test never opened the gate"
            assigned(consumer, partitions)

        election._assigned = held  # type: ignore[method-assign]  # set before the election subscribes
        looks = 0
        describe = election.primary_url

        async def counted() -> str | None:
            nonlocal looks
            looks += 1
            return await describe()

        election.primary_url = counted  # type: ignore[method-assign]
        try:
            await service.wait_ready(60)

            async def owner_is_me() -> bool:
                return await describe() == server.url

            await until(owner_is_me, 60, "the group coordinator to give this registry the partition")
            assert not election.is_primary  # on_assign is held: the interleaving of the flake
            async with aiohttp.ClientSession() as session:
                async def register() -> tuple[int, Any]:
                    async with session.post(f"{server.url}/subjects/gate-value/versions",
                                            data=json.dumps({"schema": json.dumps(SCHEMA)}),
                                            headers={"Content-Type": CT}) as resp:
                        return resp.status, json.loads(await resp.read())

                posted = asyncio.ensure_future(register())

                async def waiting_or_answered() -> bool:
                    return looks >= 2 or posted.done()

                await until(waiting_or_answered, 30, "the registration to look for the primary twice")
                answered_while_held = posted.done()
                gate.set()
                status, body = await asyncio.wait_for(posted, 30)
            return status, body, answered_while_held
        finally:
            gate.set()
            await server.close()

    status, body, answered_while_held = asyncio.run(scenario())
    assert (status, answered_while_held) == (200, False), body
    assert body == {"id": 1}
