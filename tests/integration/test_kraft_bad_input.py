"""KRaft mode bad input over the wire: a broker registering with a node id that a live
broker already holds, and registration with the wrong cluster id — refused with Kafka's
codes while the cluster keeps serving."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kio.schema.broker_registration.v3.request import BrokerRegistrationRequest, Listener
from kio.schema.errors import ErrorCode
from kio.schema.metadata.v12.request import MetadataRequest

from suoi.testing import EmbeddedBroker, free_port
from tests.conftest import wait_until
from tests.integration.support import kraft_combined_overrides
from tests.rawclient import RawClient

CLUSTER_ID = "c3VvaS10ZXN0LWNsdXN0ZXI"


@pytest.fixture
def kraft_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedBroker, int]]:
    """A one-node KRaft cluster (broker,controller): its own quorum of one voter."""
    port, cport = free_port(), free_port()
    broker = EmbeddedBroker(tmp_path_factory.mktemp("kraft"), port=port, overrides=kraft_combined_overrides(
        port, cport, **{"cluster.id": CLUSTER_ID, "broker.heartbeat.interval.ms": "200"}))
    with broker:
        yield broker, cport


def registered(bootstrap: str) -> bool:
    with RawClient(bootstrap) as c:
        md = c.request(MetadataRequest(topics=None, allow_auto_topic_creation=False,
                                       include_topic_authorized_operations=False))
    return [b.node_id for b in md.brokers] == [1]


def register(cport: int, node_id: int, cluster_id: str = CLUSTER_ID) -> ErrorCode:
    with RawClient(f"127.0.0.1:{cport}") as c:
        resp = c.request(BrokerRegistrationRequest(
            broker_id=node_id, cluster_id=cluster_id, incarnation_id=uuid.uuid4(),
            listeners=(Listener(name="PLAINTEXT", host="127.0.0.1", port=1, security_protocol=0),),
            features=(), rack=None, log_dirs=(), previous_broker_epoch=-1))
    return ErrorCode(resp.error_code)


def test_duplicate_node_id_and_wrong_cluster_are_refused(kraft_node: tuple[EmbeddedBroker, int]) -> None:
    broker, cport = kraft_node
    wait_until(lambda: registered(broker.bootstrap), timeout=20, message="node 1 registered and unfenced")
    assert register(cport, 1) == ErrorCode.duplicate_broker_registration
    assert register(cport, 2, cluster_id="another-cluster") == ErrorCode.inconsistent_cluster_id
    assert registered(broker.bootstrap)  # the real node 1 keeps its registration
    assert "Traceback" not in broker.logs()
