"""Hostile requests against a real KRaft combined node, on its client AND its controller
listener (they share dispatch): the regression cases of the hardening issue (items 1 and 4)
and of the compatibility issue's item 6. The node answers with Kafka's error code or closes
the connection with one WARNING line, never logs a traceback, and keeps serving."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kio.schema.errors import ErrorCode

from suoi.testing import EmbeddedBroker, free_port
from tests.integration.support import LogWatch, api_versions_req, kraft_combined_overrides, metadata_req
from tests.rawclient import RawClient
from tests.unit.protocol.test_bounds import DESCRIBE_PRODUCERS_2_34

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """One KRaft node with roles broker,controller; `node.controller_port` is its CONTROLLER listener."""
    port, cport = free_port(), free_port()
    broker = EmbeddedBroker(tmp_path_factory.mktemp("hostile"), port=port, overrides=kraft_combined_overrides(
        port, cport, **{"offsets.topic.replication.factor": "1", "transaction.state.log.replication.factor": "1",
                        "transaction.state.log.min.isr": "1", "group.initial.rebalance.delay.ms": "0"}))
    broker.controller_port = cport  # type: ignore[attr-defined]
    with broker:
        yield broker
    assert "Traceback" not in broker.logs()


@pytest.fixture(params=["client", "controller"])
def address(request: pytest.FixtureRequest, node: EmbeddedBroker) -> str:
    return node.bootstrap if request.param == "client" else f"127.0.0.1:{node.controller_port}"  # type: ignore[attr-defined]


def assert_answers(node: EmbeddedBroker) -> None:
    """Both listeners answer ApiVersions, and Metadata on the client listener, on new connections."""
    assert node.proc is not None and node.proc.poll() is None, "the node died"
    for address in (node.bootstrap, f"127.0.0.1:{node.controller_port}"):  # type: ignore[attr-defined]
        with RawClient(address) as c:
            assert c.request(api_versions_req()).error_code == ErrorCode.none
    with RawClient(node.bootstrap) as c:
        assert [b.node_id for b in c.request(metadata_req(allow_create=False)).brokers] == [1]


def assert_round_trip(node: EmbeddedBroker, topic: str) -> None:
    """A real client produces and consumes through the node."""
    producer = KafkaProducer(bootstrap_servers=node.bootstrap)
    try:
        producer.send(topic, b"still-serving").get(timeout=30)
    finally:
        producer.close()
    consumer = KafkaConsumer(topic, bootstrap_servers=node.bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=20000)
    try:
        assert next(iter(consumer)).value == b"still-serving"
    finally:
        consumer.close()


def test_nested_array_claiming_2_34_entries_closes_the_connection(node: EmbeddedBroker, address: str) -> None:
    """Hardening item 1: kio 0.6.5 aborted the process on this 24-byte request."""
    watch = LogWatch(node)
    with RawClient(address) as c:
        c.send_bytes(DESCRIBE_PRODUCERS_2_34)
        assert c.is_closed_by_peer(timeout=5.0)
    line = watch.wait_for(r"malformed request.*partition_indexes claims 17179869184")
    assert node.proc is not None and node.proc.poll() is None, "the node died"
    assert watch.new().count("partition_indexes claims") == 1, line
    assert_answers(node)
    assert struct.unpack(">i", DESCRIBE_PRODUCERS_2_34[:4])[0] == 20


@pytest.mark.parametrize("api_key", [999, 34, -1])
def test_unknown_api_key_closes_the_connection(node: EmbeddedBroker, address: str, api_key: int) -> None:
    """Compatibility item 6: an api key the node does not serve closes the connection (as Kafka)
    with one WARNING line; a known key at an unknown version still gets UNSUPPORTED_VERSION."""
    watch = LogWatch(node)
    with RawClient(address) as c:
        c.send_bytes(struct.pack(">ihhih", 10, api_key, 0, 4242, 0))
        assert c.is_closed_by_peer(timeout=5.0)
    watch.wait_for(rf"closing connection from .*unknown api key {api_key} \(v0\)")
    assert watch.new().count("unknown api key") == 1
    with RawClient(address) as c:
        c.send_bytes(struct.pack(">ihhih", 10, 3, 99, 4243, 0))
        assert struct.unpack(">ih", c.recv_frame()[:6]) == (4243, ErrorCode.unsupported_version)
    assert_answers(node)
