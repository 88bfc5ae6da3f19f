"""The schema registry at idle (issue 19): its replay thread stops polling librdkafka five times a
second once nothing was read for a while and looks only now and then; a write waiting for its
read-back wakes it at once, and so does a stop. Here the idle look is made a minute long, so that
a write or a stop that did not wake the reader would take that long."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

import suoi.http.registry.topic as registry_topic
from suoi.http.registry.server import SchemaRegistryServer
from suoi.testing.inprocess import InProcessNode
from tests.e2e.test_registry_primary_race import node  # noqa: F401  (the in-process node, a module fixture)

pytestmark = pytest.mark.timeout(120)

CT = "application/vnd.schemaregistry.v1+json"
#: how long the reader keeps polling after its last record (made short) ...
ACTIVE_S = 0.3
#: ... and how long it then waits between looks (made long: only a wake-up ends it in time)
IDLE_POLL_S = 60.0
#: a registration or a stop is answered well within the idle look
PROMPT_S = 10.0


def schema(extra_fields: int) -> str:
    """Version n + 1 adds a field with a default: compatible (BACKWARD) with the earlier ones."""
    fields = [{"name": "id", "type": "long"}, *({"name": f"f{i}", "type": "long", "default": 0} for i in range(extra_fields))]
    return json.dumps({"type": "record", "name": "Idle", "fields": fields})


def test_a_write_to_an_idle_registry_wakes_its_reader_and_a_stop_ends_it(
        node: InProcessNode, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setattr(registry_topic, "READER_ACTIVE_S", ACTIVE_S)
    monkeypatch.setattr(registry_topic, "READER_IDLE_POLL_S", IDLE_POLL_S)

    async def scenario() -> None:
        server = SchemaRegistryServer(node.bootstrap, "http://127.0.0.1:0")
        await server.start()
        assert server.service is not None
        try:
            await server.service.wait_ready(60)
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=PROMPT_S * 3)) as session:
                async def register(version: int) -> tuple[int, Any, float]:
                    started = time.monotonic()
                    async with session.post(f"{server.url}/subjects/idle-value/versions",
                                            data=json.dumps({"schema": schema(version)}),
                                            headers={"Content-Type": CT}) as resp:
                        return resp.status, json.loads(await resp.read()), time.monotonic() - started

                first = await register(0)
                assert first[0] == 200, first
                for version in (1, 2):
                    # the scenario, not a synchronisation: quiet for longer than the reader stays active
                    await asyncio.sleep(ACTIVE_S * 4)
                    status, body, took = await register(version)
                    assert status == 200, body
                    assert body["id"] > first[1]["id"]
                    assert took < PROMPT_S, f"a registration to an idle registry took {took:.1f} s"
                async with session.get(f"{server.url}/subjects/idle-value/versions") as resp:
                    assert await resp.json() == [1, 2, 3]
            await asyncio.sleep(ACTIVE_S * 4)  # idle again: the reader waits out its long look
        finally:
            started = time.monotonic()
            await server.close()
            took = time.monotonic() - started
        assert took < PROMPT_S, f"stopping an idle registry took {took:.1f} s"

    asyncio.run(scenario())
