"""BrokerRegistration carries each listener's real security protocol (Kafka's SecurityProtocol
ids, from ``listener.security.protocol.map``) into the metadata log, while Metadata and
DescribeCluster still answer each client with the brokers' address on its own listener."""

from __future__ import annotations

from kio.schema.describe_cluster.v1.request import DescribeClusterRequest
from kio.schema.metadata.v12.request import MetadataRequest

from suoi.controller.image import MetadataImage
from suoi.testing import InProcessNode
from tests.conftest import wait_until
from tests.e2e.security_helpers import PLAIN_JAAS, external_listener_props
from tests.rawclient import RawClient


def test_registration_carries_each_listeners_security_protocol() -> None:
    props, plain, external = external_listener_props(
        "SASL_PLAINTEXT", **{"sasl.enabled.mechanisms": "PLAIN", "listener.name.external.plain.sasl.jaas.config": PLAIN_JAAS})
    with InProcessNode(properties=props) as node:
        reg = wait_until(lambda: node.broker.kraft.image.brokers.get(1))
        assert [(x.name, x.port, x.security_protocol) for x in reg.listeners] == [
            ("PLAINTEXT", plain, 0), ("EXTERNAL", external, 2)]  # 2 = SASL_PLAINTEXT
        image = node.broker.kraft.image
        assert MetadataImage.from_snapshot(image.to_snapshot()).brokers[1].listeners == reg.listeners
        with RawClient(f"127.0.0.1:{plain}") as c:
            cluster = c.request(DescribeClusterRequest(include_cluster_authorized_operations=False))
            assert [(b.broker_id, b.host, b.port) for b in cluster.brokers] == [(1, "127.0.0.1", plain)]
            metadata = c.request(MetadataRequest(topics=(), allow_auto_topic_creation=False,
                                                 include_topic_authorized_operations=False))
            assert [(b.node_id, b.host, b.port) for b in metadata.brokers] == [(1, "127.0.0.1", plain)]
