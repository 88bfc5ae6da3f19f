"""max.connections.per.ip: a client's connection over the limit is closed at once (one log line),
the others keep being served, and a freed slot is usable again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kio.schema.errors import ErrorCode

from suoi.testing import EmbeddedBroker
from tests.conftest import wait_until
from tests.integration.support import api_versions_req, module_broker
from tests.rawclient import RawClient


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    yield from module_broker(tmp_path_factory, {"max.connections.per.ip": "2"})


def test_connections_over_the_per_ip_limit_are_closed(broker: EmbeddedBroker) -> None:
    first, second = RawClient(broker.bootstrap), RawClient(broker.bootstrap)
    try:
        for c in (first, second):
            assert c.request(api_versions_req()).error_code == ErrorCode.none
        third = RawClient(broker.bootstrap)
        assert third.is_closed_by_peer(timeout=5)
        third.close()
        assert first.request(api_versions_req()).error_code == ErrorCode.none
        first.close()

        def fresh_one_serves() -> bool:
            c = RawClient(broker.bootstrap)
            try:
                return not c.is_closed_by_peer(timeout=0.3) and c.request(api_versions_req()).error_code == 0
            finally:
                c.close()

        wait_until(fresh_one_serves, timeout=10)
    finally:
        first.close()
        second.close()
