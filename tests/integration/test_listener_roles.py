"""Listener roles: a CONTROLLER listener answers only the controller's APIs, as Kafka's
ControllerApis does. A client API sent there closes the connection with one WARNING line
(Kafka's SocketServer does the same for an API not enabled on the listener), and ApiVersions
there advertises only the controller's APIs, so a client reading it never sends one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kio.schema.describe_quorum.v1.request import DescribeQuorumRequest, PartitionData, TopicData
from kio.schema.errors import ErrorCode
from kio.schema.types import TopicName

from suoi.api.listener_roles import CONTROLLER_APIS
from suoi.protocol.records import build_batch
from tests.conftest import wait_until
from tests.integration.kraft_cluster import KRaftCluster, kraft_cluster
from tests.integration.support import (
    LogWatch,
    api_versions_req,
    create_topics_req,
    fetch_req,
    metadata_req,
    produce,
    read_all,
    unique,
)
from tests.rawclient import RawClient

KRAFT_RPCS = {1, 52, 53, 54, 55, 59, 62, 63, 56, 67}  # Fetch, Vote..FetchSnapshot, registration, AlterPartition...
CLIENT_APIS = {0, 2, 3, 8, 9, 10, 11, 22, 75}  # Produce, ListOffsets, Metadata, offsets, groups, InitProducerId...


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KRaftCluster]:
    with kraft_cluster(Path(tmp_path_factory.mktemp("roles")), size=2) as c:
        yield c


def test_api_versions_on_a_controller_listener_advertises_only_controller_apis(cluster: KRaftCluster) -> None:
    with RawClient(cluster.controller_bootstrap(1)) as c:
        on_controller = {int(k.api_key) for k in c.request(api_versions_req()).api_keys}
    with RawClient(cluster.nodes[1].bootstrap) as c:
        on_client = {int(k.api_key) for k in c.request(api_versions_req()).api_keys}
    assert KRAFT_RPCS <= on_controller <= CONTROLLER_APIS
    assert on_controller & CLIENT_APIS == set()
    assert on_client >= CLIENT_APIS


@pytest.mark.parametrize("request_of", [
    pytest.param(lambda topic: metadata_req(allow_create=False), id="Metadata"),
    pytest.param(lambda topic: fetch_req(topic, 0, 0), id="Fetch-of-a-data-topic"),
])
def test_a_client_api_on_a_controller_listener_closes_the_connection(cluster: KRaftCluster, request_of) -> None:  # type: ignore[no-untyped-def]
    node = cluster.nodes[2]
    topic = unique("roles")
    watch = LogWatch(node)
    with RawClient(cluster.controller_bootstrap(2)) as bystander, RawClient(cluster.controller_bootstrap(2)) as c:
        c.send_bytes(c.encode(request_of(topic)))
        assert c.is_closed_by_peer(timeout=5.0)
        assert bystander.request(api_versions_req()).error_code == ErrorCode.none  # others go on
    name = "Metadata" if "metadata" in type(request_of(topic)).__module__ else "Fetch"
    watch.wait_for(rf"closing connection from .*{name} v\d+ is not served on CONTROLLER listener")
    assert watch.new().count("is not served on CONTROLLER listener") == 1


def test_the_cluster_keeps_working_through_its_controller_listeners(cluster: KRaftCluster) -> None:
    """Registration, heartbeats, forwarded CreateTopics and Raft all travel over the CONTROLLER
    listeners: a topic created through the node that is not the controller gets leaders on
    both nodes and takes records, and the quorum answers DescribeQuorum there."""
    topic = unique("after-roles")
    for node_id in cluster.nodes:
        with RawClient(cluster.nodes[node_id].bootstrap) as c:
            answer = c.request(create_topics_req(topic, partitions=2)).topics[0]
        if answer.error_code == ErrorCode.none:
            break
        assert answer.error_code == ErrorCode.topic_already_exists
    leaders = cluster.wait_leaders(topic, 2)
    for partition, (leader, _) in leaders.items():
        value = f"v{partition}".encode()
        assert produce(cluster.nodes[leader].bootstrap, topic, partition, build_batch([(None, value)])).error_code == 0
        assert read_all(cluster.nodes[leader].bootstrap, topic, partition) == [(0, value)]
    request = DescribeQuorumRequest(topics=(TopicData(topic_name=TopicName("__cluster_metadata"), partitions=(
        PartitionData(partition_index=0),)),))

    def described() -> object:
        with RawClient(cluster.controller_bootstrap(1)) as c:
            p = c.request(request).topics[0].partitions[0]
        return p if p.error_code in (ErrorCode.none, ErrorCode.not_leader_or_follower) and p.leader_id > 0 else None

    part = wait_until(described, timeout=10, message="DescribeQuorum answered on a CONTROLLER listener")
    assert int(part.leader_id) in cluster.nodes
