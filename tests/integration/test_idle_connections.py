"""connections.max.idle.ms: a client connection that sends nothing for that long, and is owed no
answer, is closed with one log line (as Kafka's Selector does); a busy one and one waiting on a
long-poll Fetch stay open; a connection that never sends a byte is closed too."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from kio.schema.errors import ErrorCode

from suoi.testing import EmbeddedBroker
from tests.conftest import wait_until
from tests.integration.support import api_versions_req, module_broker
from tests.rawclient import RawClient

IDLE_MS = 800


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    yield from module_broker(tmp_path_factory, {"connections.max.idle.ms": str(IDLE_MS)})


def test_idle_connections_are_closed_and_busy_ones_kept(broker: EmbeddedBroker) -> None:
    idle, silent, busy = RawClient(broker.bootstrap), RawClient(broker.bootstrap), RawClient(broker.bootstrap)
    try:
        assert idle.request(api_versions_req()).error_code == ErrorCode.none
        last_request = time.monotonic()
        # the busy client keeps asking while the idle one waits (each check waits on the socket)
        deadline = last_request + 10
        while not idle.is_closed_by_peer(timeout=0.1):
            assert time.monotonic() < deadline, "the idle connection was not closed"
            assert busy.request(api_versions_req()).error_code == ErrorCode.none
        assert time.monotonic() - last_request >= 0.9 * IDLE_MS / 1000  # not before the idle period
        assert silent.is_closed_by_peer(timeout=5)  # connected, never sent a byte
        assert busy.request(api_versions_req()).error_code == ErrorCode.none
        lines = wait_until(lambda: [ln for ln in broker.logs().splitlines() if "connections.max.idle.ms" in ln
                                    and "closing connection" in ln] or None, timeout=5)
        assert len(lines) >= 2, lines
    finally:
        for c in (idle, silent, busy):
            c.close()
