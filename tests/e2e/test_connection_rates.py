"""Connection creation rates (KIP-612) and per-listener connection counts, with Kafka's settings:
``listener.name.<l>.max.connection.creation.rate`` holds a connection over the rate (served
after the throttle time), ``listener.name.<l>.max.connections`` closes one over the count, and
an ``ip`` entity's ``connection_creation_rate`` quota (set with `suoi configs --entity-type ips`)
closes a connection over it after the throttle time. Quota windows: 2 of 1 s."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from kio.schema.alter_client_quotas.v1.request import AlterClientQuotasRequest, EntityData, EntryData, OpData
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.describe_client_quotas.v1.request import ComponentData, DescribeClientQuotasRequest
from kio.static.primitive import f64, i8

from suoi.testing import InProcessNode
from tests.conftest import wait_until
from tests.e2e.cli import suoi
from tests.e2e.security_helpers import external_listener_props
from tests.rawclient import RawClient

VERSIONS = ApiVersionsRequest(client_software_name="raw", client_software_version="1")


@pytest.fixture(scope="module")
def node() -> Iterator[tuple[InProcessNode, str]]:
    props, _, external = external_listener_props("PLAINTEXT", **{
        "inter.broker.listener.name": "PLAINTEXT", "listener.name.external.max.connection.creation.rate": "2",
        "listener.name.external.max.connections": "3", "quota.window.num": "2", "quota.window.size.seconds": "1"})
    with InProcessNode(properties=props) as n:
        yield n, f"127.0.0.1:{external}"


def answered_in(client: RawClient) -> float:
    started = time.monotonic()
    assert client.request(VERSIONS).error_code == 0
    return time.monotonic() - started


def test_listener_rate_holds_and_listener_count_closes(node: tuple[InProcessNode, str]) -> None:
    _, external = node
    started = time.monotonic()
    clients = [RawClient(external) for _ in range(3)]
    try:
        # 2/s over (at least) one 1 s window: two at once; the third waits (3/1 s - 2) / 2 * 1 s = 0.5 s
        times = [answered_in(c) for c in clients]
        assert times[0] < 0.4 and times[1] < 0.4, times
        assert 0.45 < time.monotonic() - started < 2.0, times
        with RawClient(external) as fourth:  # listener.name.external.max.connections=3
            assert fourth.is_closed_by_peer(timeout=5)
    finally:
        for c in clients:
            c.close()


def test_ip_connection_creation_rate(node: tuple[InProcessNode, str]) -> None:
    n, _ = node
    with RawClient(n.bootstrap) as admin:  # connected before the quota: unaffected
        proc = suoi("configs", "--bootstrap-server", n.bootstrap, "--alter", "--entity-type", "ips",
                    "--entity-default", "--add-config", "connection_creation_rate=1")
        assert proc.returncode == 0, proc.stderr
        wait_until(lambda: n.broker.kraft.image.client_quotas.get((("ip", None),)))
        described = admin.request(DescribeClientQuotasRequest(
            components=(ComponentData(entity_type="ip", match_type=i8(1), match=None),), strict=True))
        assert [([(e.entity_type, e.entity_name) for e in x.entity], [(v.key, v.value) for v in x.values])
                for x in described.entries] == [([("ip", None)], [("connection_creation_rate", 1.0)])]
        try:
            with RawClient(n.bootstrap) as first:
                assert first.request(VERSIONS).error_code == 0
                started = time.monotonic()
                with RawClient(n.bootstrap) as second:  # 2/s from 127.0.0.1 against 1/s: closed after 1 s
                    second.send_bytes(second.encode(VERSIONS))
                    assert second.is_closed_by_peer(timeout=5)
                    waited = time.monotonic() - started
                    assert 0.6 < waited < 2.0, waited
        finally:
            entry = EntryData(entity=(EntityData(entity_type="ip", entity_name=None),),
                              ops=(OpData(key="connection_creation_rate", value=f64(0.0), remove=True),))
            assert [e.error_code for e in admin.request(AlterClientQuotasRequest(
                entries=(entry,), validate_only=False)).entries] == [0]
