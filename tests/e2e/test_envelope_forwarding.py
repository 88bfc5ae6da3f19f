"""Forwarding with the client's principal (Kafka's Envelope, KIP-590) in a 3-node cluster with ACLs:
a non-controller node forwards a client's CreateTopics to the active controller in an Envelope,
and the controller authorizes the client's principal (alice may create, bob may not), not the
forwarding broker's. Clients authenticate with SASL/PLAIN (suoi's client); brokers talk to the
controller on a PLAINTEXT controller listener as User:ANONYMOUS, a super user.

Node 1 is the only controller (nodes 2 and 3 are brokers), and only it lists carol in
super.users: what carol may do is the controller's decision, which the brokers do not second-guess
with their own authorizer (Kafka's brokers forward these requests before any check)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
from collections.abc import Iterator
from typing import Any

import pytest
from kio.schema.alter_client_quotas.v1.request import AlterClientQuotasRequest, EntityData, EntryData, OpData
from kio.schema.create_acls.v3.request import AclCreation, CreateAclsRequest
from kio.schema.create_partitions.v3.request import CreatePartitionsRequest, CreatePartitionsTopic
from kio.schema.create_topics.v7.request import CreatableTopic, CreateTopicsRequest
from kio.schema.delete_topics.v6.request import DeleteTopicsRequest, DeleteTopicState
from kio.schema.envelope.v0.request import EnvelopeRequest
from kio.schema.incremental_alter_configs.v1.request import (
    AlterableConfig,
    AlterConfigsResource,
    IncrementalAlterConfigsRequest,
)
from kio.schema.metadata.v12.request import MetadataRequest
from kio.schema.types import TopicName
from kio.static.primitive import f64, i8, i16, i32, i32Timedelta

from suoi.api.envelope import deserialize_principal, serialize_principal
from suoi.api.registry import CURRENT_REQUEST
from suoi.client import request_once
from suoi.model import ErrorCode
from suoi.protocol.codec import decode_response, encode_request, response_class
from suoi.security.client import from_client_properties
from suoi.testing.inprocess import InProcessCluster, InProcessNode
from tests.conftest import wait_until
from tests.rawclient import RawClient

JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-pw" '
        'user_admin="admin-pw" user_alice="alice-pw" user_bob="bob-pw" user_carol="carol-pw";')
RESOURCE_TOPIC, RESOURCE_CLUSTER, LITERAL, OP_CREATE, ALLOW = 2, 4, 3, 5, 3  # Kafka's wire codes
CONFIG_TOPIC, CONFIG_BROKER, SET = 2, 4, 0
TIMEOUT = i32Timedelta.parse(datetime.timedelta(seconds=10))


@pytest.fixture(scope="module")
def cluster() -> Iterator[InProcessCluster]:
    overrides = {
        "listener.security.protocol.map": "PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
        "sasl.enabled.mechanisms": "PLAIN", "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "listener.name.plaintext.plain.sasl.jaas.config": JAAS,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin;User:ANONYMOUS",
    }
    c = InProcessCluster(3, overrides=overrides)
    controller = c.nodes[1].properties
    for node in c.nodes.values():  # one voter: node 1
        node.properties["controller.quorum.voters"] = controller["controller.quorum.voters"].split(",")[0]
        if node.node_id != 1:
            node.properties.update({"process.roles": "broker",
                                    "listeners": node.properties["listeners"].split(",CONTROLLER://")[0]})
    controller["super.users"] += ";User:carol"  # the controller's own authorizer only
    with c:
        yield c


def as_user(node: InProcessNode, user: str, request: Any) -> Any:
    security = from_client_properties({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
                                       "sasl.username": user, "sasl.password": f"{user}-pw"})
    return asyncio.run(request_once(node.host, node.port, request, client_id=f"{user}-app", security=security))


def create(*names: str, partitions: int = 1) -> CreateTopicsRequest:
    return CreateTopicsRequest(topics=tuple(CreatableTopic(
        name=TopicName(name), num_partitions=i32(partitions), replication_factor=i16(1 if partitions > 1 else 3),
        assignments=(), configs=()) for name in names), timeout=TIMEOUT, validate_only=False)


def envelopes(node: InProcessNode) -> int:
    """Envelopes the node served (as the active controller)."""
    served = node.broker.metrics.requests.get("Envelope")
    return served.count if served is not None else 0


def roles(cluster: InProcessCluster) -> tuple[InProcessNode, InProcessNode]:
    """(the active controller's node, another node)."""
    controller_id = wait_until(lambda: next((i for i, n in cluster.nodes.items()
                                             if n.broker.kraft.controller is not None), None), timeout=20)
    return cluster.nodes[controller_id], next(n for i, n in cluster.nodes.items() if i != controller_id)


def test_principal_serialization_is_kafkas() -> None:
    data = serialize_principal("User:alice")
    # int16 version 0, compact strings "User" and "alice", token_authenticated false, no tagged fields
    assert data == b"\x00\x00" + b"\x05User" + b"\x06alice" + b"\x00" + b"\x00"
    assert deserialize_principal(data) == "User:alice"
    with pytest.raises(ValueError):
        deserialize_principal(b"\x00\x01" + data[2:])


def test_the_controller_authorizes_the_forwarded_client(cluster: InProcessCluster) -> None:
    controller, other = roles(cluster)
    grant = CreateAclsRequest(creations=(AclCreation(
        resource_type=i8(RESOURCE_CLUSTER), resource_name="kafka-cluster", resource_pattern_type=i8(LITERAL),
        principal="User:alice", host="*", operation=i8(OP_CREATE), permission_type=i8(ALLOW)),))
    assert [r.error_code for r in as_user(other, "admin", grant).results] == [0]
    wait_until(lambda: all(n.broker.kraft.image.acls for n in cluster.nodes.values()))
    before = envelopes(controller)

    bob = as_user(other, "bob", create("bobs-topic"))
    assert [(t.name, t.error_code) for t in bob.topics] == [("bobs-topic", ErrorCode.topic_authorization_failed)]
    alice = as_user(other, "alice", create("alices-topic"))
    assert [(t.name, t.error_code) for t in alice.topics] == [("alices-topic", 0)]
    assert envelopes(controller) > before  # forwarded in an Envelope
    assert other.broker.kraft.image.topic("bobs-topic") is None

    # what the controller decides on its own: an Envelope sent straight to its controller listener
    # (by a super user, as brokers are) with bob's principal is refused, with alice's it is done
    def enveloped(principal: str, name: str) -> Any:
        inner = create(name)
        envelope = EnvelopeRequest(request_data=encode_request(7, "app", inner)[4:],
                                   request_principal=serialize_principal(principal),
                                   client_host_address=ipaddress.ip_address("127.0.0.1").packed)
        listener = controller.properties["listeners"].split("CONTROLLER://")[1]
        with RawClient(listener) as c:
            answer = c.request(envelope)
        assert answer.error_code == 0
        return decode_response(answer.response_data, response_class(19, 7))

    assert [t.error_code for t in enveloped("User:bob", "direct-bob").topics] == [ErrorCode.topic_authorization_failed]
    assert [t.error_code for t in enveloped("User:alice", "direct-alice").topics] == [0]
    # a broker's own (un-enveloped) CreateTopics on the controller listener is still its own, as before
    with RawClient(controller.properties["listeners"].split("CONTROLLER://")[1]) as c:
        assert [t.error_code for t in c.request(create("by-broker")).topics] == [0]


def test_bad_envelopes_get_their_error_and_the_controller_serves_on(cluster: InProcessCluster) -> None:
    controller, _ = roles(cluster)
    listener = controller.properties["listeners"].split("CONTROLLER://")[1]
    inner = encode_request(1, "app", create("never"))[4:]
    local = ipaddress.ip_address("127.0.0.1").packed
    cases = [
        (EnvelopeRequest(request_data=inner, request_principal=b"\x00\x07garbage", client_host_address=local),
         ErrorCode.principal_deserialization_failure),
        (EnvelopeRequest(request_data=inner, request_principal=None, client_host_address=local),
         ErrorCode.principal_deserialization_failure),
        (EnvelopeRequest(request_data=inner, request_principal=serialize_principal("User:alice"),
                         client_host_address=b"\x01"), ErrorCode.invalid_request),
        (EnvelopeRequest(request_data=encode_request(1, "app", MetadataRequest(
            topics=None, allow_auto_topic_creation=False, include_topic_authorized_operations=False))[4:],
            request_principal=serialize_principal("User:alice"), client_host_address=local),
         ErrorCode.invalid_request),  # not an API Kafka forwards
        (EnvelopeRequest(request_data=b"\x00\x13\x00", request_principal=serialize_principal("User:alice"),
                         client_host_address=local), ErrorCode.invalid_request),
    ]
    with RawClient(listener) as c:
        for envelope, code in cases:
            answer = c.request(envelope)
            assert (answer.error_code, answer.response_data) == (code, None)
    assert controller.broker.kraft.image.topic("never") is None
    # an Envelope on a client listener is refused too, even from a super user
    answer = as_user(controller, "admin", cases[3][0])
    assert (answer.error_code, answer.response_data) == (ErrorCode.invalid_request, None)


def test_controller_mutation_rate_is_measured_on_the_controller(cluster: InProcessCluster) -> None:
    """KIP-599 as Kafka measures it: on the active controller, for the client's (user, client-id)
    carried by the Envelope, so two nodes forwarding for the same client share one bucket."""
    controller, _ = roles(cluster)
    first, second = (n for n in cluster.nodes.values() if n is not controller)
    entity = (EntityData(entity_type="client-id", entity_name="admin-app"),)

    def set_rate(value: float | None) -> None:
        op = OpData(key="controller_mutation_rate", value=f64(value or 0.0), remove=value is None)
        answer = as_user(first, "admin", AlterClientQuotasRequest(entries=(EntryData(entity=entity, ops=(op,)),),
                                                                  validate_only=False))
        assert [e.error_code for e in answer.entries] == [0]
        wait_until(lambda: all(n.broker.kraft.image.client_quotas.get((("client-id", "admin-app"),), {}).get(
            "controller_mutation_rate") == value for n in cluster.nodes.values()))

    set_rate(1.0)  # a burst of 11 partitions (11 windows of 1 s)
    try:
        assert [t.error_code for t in as_user(first, "admin", create("burst", partitions=12)).topics] == [0]
        refused = as_user(second, "admin", create("after-burst"))  # another node, the same bucket
        assert [t.error_code for t in refused.topics] == [ErrorCode.throttling_quota_exceeded]
        assert refused.throttle_time.total_seconds() > 0.5
    finally:
        set_rate(None)


def test_the_active_controller_serves_its_own_nodes_envelope_in_process(cluster: InProcessCluster) -> None:
    """A node whose forwarding finds its own controller active (it just won the election) sends the
    Envelope to it in process: served as on a CONTROLLER connection, not refused as a client's."""
    controller, _ = roles(cluster)
    envelope = EnvelopeRequest(request_data=encode_request(1, "app", create("own-envelope", partitions=2))[4:],
                               request_principal=serialize_principal("User:admin"),
                               client_host_address=ipaddress.ip_address("127.0.0.1").packed)
    async def served() -> tuple[Any, Any]:
        answer = await controller.broker._local_controller(envelope)
        return answer, CURRENT_REQUEST.get()  # the caller's own (none here), not the inner request's

    answer, current = controller.run(served())
    assert (answer.error_code, answer.response_data is not None, current) == (ErrorCode.none, True, None)
    inner = decode_response(answer.response_data, response_class(19, 7))
    assert [(t.name, t.error_code) for t in inner.topics] == [("own-envelope", ErrorCode.none)]


def test_brokers_forward_before_any_check_and_the_controller_decides(cluster: InProcessCluster) -> None:
    """Kafka's brokers forward CreateTopics, DeleteTopics, CreatePartitions, (Incremental)AlterConfigs...
    without asking their own authorizer: carol, a super user for the controller only, is served
    through a broker whose own super.users does not name her; bob's refusals come from the
    controller (an Envelope each) with Kafka's per-topic/per-resource codes."""
    controller, broker = roles(cluster)
    assert (controller.node_id, broker.broker.kraft.controller) == (1, None)
    topic_denied, cluster_denied = ErrorCode.topic_authorization_failed, ErrorCode.cluster_authorization_failed

    carol = as_user(broker, "carol", create("carols-topic"))
    assert [(t.name, t.error_code) for t in carol.topics] == [("carols-topic", ErrorCode.none)]
    grow = CreatePartitionsRequest(topics=(CreatePartitionsTopic(name=TopicName("carols-topic"), count=i32(2),
                                                                 assignments=None),), timeout=TIMEOUT,
                                   validate_only=False)
    assert [(r.name, r.error_code) for r in as_user(broker, "carol", grow).results] == [
        ("carols-topic", ErrorCode.none)]

    # bob may create "bobs-own" only (a literal topic ACL): his requests get the controller's codes
    grant = CreateAclsRequest(creations=(AclCreation(
        resource_type=i8(RESOURCE_TOPIC), resource_name="bobs-own", resource_pattern_type=i8(LITERAL),
        principal="User:bob", host="*", operation=i8(OP_CREATE), permission_type=i8(ALLOW)),))
    assert [r.error_code for r in as_user(broker, "admin", grant).results] == [0]
    wait_until(lambda: any(b.resource_name == "bobs-own" for b in controller.broker.kraft.image.acls.values()))
    before = envelopes(controller)
    mixed = as_user(broker, "bob", create("bobs-own", "bobs-other"))
    assert sorted((t.name, t.error_code) for t in mixed.topics) == [("bobs-other", topic_denied),
                                                                    ("bobs-own", ErrorCode.none)]
    delete = DeleteTopicsRequest(topics=(DeleteTopicState(name=TopicName("carols-topic"), topic_id=None),),
                                 timeout=TIMEOUT)
    assert [(r.name, r.error_code) for r in as_user(broker, "bob", delete).responses] == [
        ("carols-topic", topic_denied)]
    assert [(r.name, r.error_code) for r in as_user(broker, "bob", grow).results] == [("carols-topic", topic_denied)]
    alter = IncrementalAlterConfigsRequest(resources=(
        AlterConfigsResource(resource_type=i8(CONFIG_TOPIC), resource_name="carols-topic", configs=(
            AlterableConfig(name="retention.ms", config_operation=i8(SET), value="60000"),)),
        AlterConfigsResource(resource_type=i8(CONFIG_BROKER), resource_name="", configs=(
            AlterableConfig(name="log.retention.ms", config_operation=i8(SET), value="60000"),))),
        validate_only=False)
    assert [(r.resource_name, r.error_code) for r in as_user(broker, "bob", alter).responses] == [
        ("carols-topic", topic_denied), ("", cluster_denied)]
    assert envelopes(controller) - before == 4  # every one decided by the controller, none by the broker
    assert controller.broker.kraft.image.topic("bobs-other") is None
    assert len(controller.broker.kraft.image.topic("carols-topic").partitions) == 2

    # the controller's own node forwards its clients' requests too (in process), as Kafka's broker does
    before = envelopes(controller)
    assert [r.error_code for r in as_user(controller, "carol", delete).responses] == [ErrorCode.none]
    assert envelopes(controller) == before + 1
