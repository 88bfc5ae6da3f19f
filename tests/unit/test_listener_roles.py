"""Listener roles in dispatch: a CONTROLLER listener serves only the controller's APIs
(Kafka's ControllerApis); everything else there closes the connection."""

from __future__ import annotations

import datetime

import pytest
from kio.schema.api_versions.v0.request import ApiVersionsRequest
from kio.schema.api_versions.v0.response import ApiVersionsResponse
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.metadata.v12.request import MetadataRequest
from kio.schema.produce.v9.request import ProduceRequest
from kio.schema.types import BrokerId, TopicName
from kio.static.primitive import i32, i32Timedelta, i64

import suoi.broker  # noqa: F401  (registers every handler)
from suoi.api.dispatch import NotServedOnListener, ProtocolViolation, dispatch
from suoi.api.listener_roles import CONTROLLER_APIS, ListenerRole, serves
from suoi.api.registry import REGISTRY
from suoi.broker import Broker
from suoi.config import load_config
from suoi.protocol.codec import decode_response, encode_request

CONTROLLER = ListenerRole.CONTROLLER


def frame(request: object) -> bytes:
    return encode_request(7, "roles-test", request)[4:]  # type: ignore[arg-type]


def fetch_of(topic: str) -> FetchRequest:
    return FetchRequest(replica_id=BrokerId(-1), max_wait=i32Timedelta.parse(datetime.timedelta(0)),
                        min_bytes=i32(1), max_bytes=i32(1 << 20), isolation_level=0, session_id=i32(0),
                        session_epoch=i32(-1), rack_id="", forgotten_topics_data=(), topics=(FetchTopic(
                            topic=TopicName(topic), partitions=(FetchPartition(
                                partition=i32(0), current_leader_epoch=i32(-1), fetch_offset=i64(0),
                                log_start_offset=i64(-1), partition_max_bytes=i32(1 << 20), last_fetched_epoch=i32(-1)),
                            )),))


def test_a_client_listener_serves_every_api_a_controller_listener_only_the_controllers() -> None:
    assert all(serves(ListenerRole.CLIENT, key) for key in REGISTRY)
    assert [key for key in (0, 2, 3, 8, 9, 10, 11, 22, 75) if serves(CONTROLLER, key)] == []
    assert [key for key in (1, 18, 52, 53, 54, 55, 56, 59, 62, 63, 67) if not serves(CONTROLLER, key)] == []


@pytest.mark.parametrize("request_", [
    pytest.param(MetadataRequest(topics=None, allow_auto_topic_creation=False, include_topic_authorized_operations=False),
                 id="Metadata"),
    pytest.param(ProduceRequest(transactional_id=None, acks=1, timeout=i32Timedelta.parse(
        datetime.timedelta(seconds=1)), topic_data=()), id="Produce"),
    pytest.param(fetch_of("orders"), id="Fetch-of-a-data-topic"),
])
def test_a_client_api_on_a_controller_listener_is_refused_before_any_handler_runs(request_: object) -> None:
    # no node behind it (None): the refusal must come before a handler touches the services
    with pytest.raises(NotServedOnListener, match="is not served on CONTROLLER listener") as refused:
        dispatch(None, frame(request_), "127.0.0.1:1", role=CONTROLLER)  # type: ignore[arg-type]
    assert refused.value.reason == "request not served on this listener"


def test_an_unknown_api_key_is_still_a_malformed_request() -> None:
    with pytest.raises(ProtocolViolation) as closed:
        dispatch(None, b"\x03\xe7\x00\x00\x00\x00\x00\x01\xff\xff", "127.0.0.1:1", role=CONTROLLER)  # type: ignore[arg-type]
    assert (type(closed.value), closed.value.reason) == (ProtocolViolation, "malformed request")


def test_api_versions_on_a_controller_listener_advertises_only_the_controllers_apis(tmp_path) -> None:  # type: ignore[no-untyped-def]
    node = Broker(load_config({}, {"log.dirs": str(tmp_path), "node.id": "1"}))
    answers = {}
    for role in ListenerRole:
        parts = dispatch(node, frame(ApiVersionsRequest()), "127.0.0.1:1", role=role)
        answers[role] = {int(k.api_key) for k in decode_response(b"".join(parts)[4:], ApiVersionsResponse).api_keys}  # type: ignore[arg-type]
    assert answers[ListenerRole.CLIENT] == set(REGISTRY)  # every node is in a quorum (its own, here)
    assert answers[CONTROLLER] == answers[ListenerRole.CLIENT] & CONTROLLER_APIS
    assert {18, 19, 20, 32, 60} <= answers[CONTROLLER]
