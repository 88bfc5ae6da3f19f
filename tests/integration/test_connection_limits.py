"""max.connections.per.ip: a client's connection over the limit is closed at once (one log line),
the others keep being served, and a freed slot is usable again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kio.schema.errors import ErrorCode
from kio.schema.incremental_alter_configs.v1.request import (
    AlterableConfig,
    AlterConfigsResource,
    IncrementalAlterConfigsRequest,
)
from kio.static.primitive import i8

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
        # the limit is a dynamic config (cluster-wide, as in Kafka): raised at run time, two more fit
        raised = second.request(IncrementalAlterConfigsRequest(resources=(AlterConfigsResource(
            resource_type=i8(4), resource_name="", configs=(AlterableConfig(
                name="max.connections.per.ip", config_operation=i8(0), value="4"),)),), validate_only=False))
        assert [r.error_code for r in raised.responses] == [ErrorCode.none]

        def two_more_fit() -> bool:
            # The answer comes once the change is committed; the node applies it when its metadata
            # reconciler runs next (another task), so the new limit is polled for, not assumed.
            more = [RawClient(broker.bootstrap) for _ in range(2)]
            try:
                return all(not c.is_closed_by_peer(timeout=0.1) and c.request(api_versions_req()).error_code == 0
                           for c in more)
            finally:
                for c in more:
                    c.close()

        wait_until(two_more_fit, timeout=10, message="two more connections under the raised limit")
    finally:
        first.close()
        second.close()
