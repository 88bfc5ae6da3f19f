"""A node whose controller listener is SSL with client certificates (no SASL), with ACLs on:
its in-process calls to its own controller (registration, heartbeats, forwarded admin requests)
are authorized as the principal its controller listener gives it over a socket, the subject of
its keystore certificate mapped by ssl.principal.mapping.rules (Kafka's SSL principal), not
User:ANONYMOUS. super.users names that principal only, so the node starts and serves only if
both paths agree."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kio.schema.create_topics.v7.request import CreatableTopic, CreateTopicsRequest
from kio.schema.types import TopicName
from kio.static.primitive import i16, i32, i32Timedelta

from suoi.authorizer.standard import AUTHORIZER_CLASS
from suoi.cli.cluster_layout import free_ports
from suoi.client import request_once
from suoi.config import load_config
from suoi.model import ErrorCode
from suoi.security.client import ClientSecurity
from suoi.security.listeners import SecurityConfigError, check_node_security, controller_security, node_principal
from suoi.security.tls import client_context
from suoi.testing.inprocess import InProcessNode, kraft_properties
from tests.e2e.security_helpers import Pki, make_pki, tls_keystore

pytestmark = pytest.mark.timeout(90)

RULES = r"RULE:^CN=([^,]+),.*$/$1/L"


def node_props(pki: Pki, **extra: str) -> dict[str, str]:
    """A combined node with a PLAINTEXT client listener and an mTLS CONTROLLER listener."""
    port, cport = free_ports(2)
    tls = {f"listener.name.controller.{k}": v for k, v in tls_keystore(pki, "Node-1").items()}
    return {**kraft_properties(1, port, cport, f"1@127.0.0.1:{cport}"),
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL",
            "listener.name.controller.ssl.client.auth": "required",
            "listener.name.controller.ssl.principal.mapping.rules": RULES, **tls,
            "offsets.topic.replication.factor": "1", "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1", **extra}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InProcessNode, Pki]]:
    directory = tmp_path_factory.mktemp("node-tls-principal")
    pki = make_pki(directory / "pki")
    acls = {"authorizer.class.name": AUTHORIZER_CLASS, "allow.everyone.if.no.acl.found": "false",
            "super.users": "User:node-1"}  # not User:ANONYMOUS
    with InProcessNode(directory / "node", properties=node_props(pki, **acls), start_timeout=20) as started:
        yield started, pki


def create(name: str) -> CreateTopicsRequest:
    return CreateTopicsRequest(topics=(CreatableTopic(
        name=TopicName(name), num_partitions=i32(1), replication_factor=i16(1), assignments=(), configs=()),),
        timeout=i32Timedelta.parse(datetime.timedelta(seconds=10)), validate_only=False)


def on_controller_listener(node: InProcessNode, security: ClientSecurity, request: Any) -> Any:
    port = int(node.properties["listeners"].split("CONTROLLER://")[1].rsplit(":", 1)[1])
    return asyncio.run(request_once("127.0.0.1", port, request, security=security, timeout=10))


def test_the_local_peer_is_the_nodes_certificate_principal_and_a_super_user(node: tuple[InProcessNode, Pki]) -> None:
    started, pki = node
    broker = started.broker
    assert broker._local_peer.principal == "User:node-1"  # CN=Node-1,... mapped by RULES (lower case)
    # registered and unfenced through its own controller in process: CLUSTER_ACTION as a super user
    registration = broker.kraft.image.brokers[1]
    assert registration.fenced is False
    # the same principal over a socket: the node's own controller client (its keystore certificate)
    assert [t.error_code for t in on_controller_listener(
        started, controller_security(broker.config), create("by-node-cert")).topics] == [ErrorCode.none]
    # another certificate of the same CA is someone else, with no ACL: refused
    cert, key = pki.client_files("mallory")
    ctx, check = client_context({"ssl.truststore.location": pki.ca_file, "ssl.keystore.type": "PEM",
                                 "ssl.keystore.certificate.chain": Path(cert).read_text(),
                                 "ssl.keystore.key": Path(key).read_text()}.get, "CONTROLLER")
    answer = on_controller_listener(started, ClientSecurity(ctx, check), create("by-mallory"))
    assert [t.error_code for t in answer.topics] == [ErrorCode.topic_authorization_failed]
    # and the anonymous client listener too: ACLs are on
    plain = asyncio.run(request_once(started.host, started.port, create("by-anonymous"), timeout=10))
    assert [t.error_code for t in plain.topics] == [ErrorCode.topic_authorization_failed]
    assert broker.kraft.image.topic("by-node-cert") is not None
    assert broker.kraft.image.topic("by-mallory") is None and broker.kraft.image.topic("by-anonymous") is None


def test_the_principal_follows_the_listeners_client_auth_and_rules(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    assert node_principal(load_config({}, node_props(pki))) == "User:node-1"
    # a listener that asks for no certificate never sees the node's: Kafka's ANONYMOUS
    no_auth = node_props(pki, **{"listener.name.controller.ssl.client.auth": "none"})
    assert node_principal(load_config({}, no_auth)) == "User:ANONYMOUS"
    default_rules = node_props(pki, **{"listener.name.controller.ssl.principal.mapping.rules": "DEFAULT"})
    assert node_principal(load_config({}, default_rules)).startswith("User:CN=Node-1,OU=")
    # rules its own certificate matches none of: its controller listener would close its connections
    refused = node_props(pki, **{"listener.name.controller.ssl.principal.mapping.rules": "RULE:^CN=x$/x/"})
    with pytest.raises(SecurityConfigError, match="this node's own keystore certificate: No rules apply to CN=Node-1"):
        check_node_security(load_config({}, refused))
