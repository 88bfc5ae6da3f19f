"""Error responses derived from kio's schemas (suoi.api.error_responses): one for every API
and version we serve, mirroring the request's topics/partitions/groups with the error."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kio.schema.delete_groups.v2.request import DeleteGroupsRequest
from kio.schema.describe_producers.v0.request import DescribeProducersRequest, TopicRequest
from kio.schema.errors import ErrorCode
from kio.schema.find_coordinator.v4.request import FindCoordinatorRequest
from kio.schema.list_offsets.v7.request import ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic

import suoi.broker  # noqa: F401  (registers every handler)
from suoi.api.error_responses import error_response
from suoi.api.registry import REGISTRY
from suoi.protocol.codec import encode_response
from tests.integration.support import ms
from tests.kio_strategies import fuzz_settings, served


@pytest.mark.parametrize("api_key", sorted(REGISTRY))
@fuzz_settings(5)
@given(data=st.data())
def test_every_api_and_version_has_an_encodable_error_response(api_key: int, data: st.DataObject) -> None:
    request = data.draw(served(api_key), label="request")
    version = request.__version__
    response = error_response(api_key, version, data.draw(st.sampled_from([request, None])), ErrorCode.invalid_request, "bad")
    assert b"".join(encode_response(5, response))
    if hasattr(response, "error_code"):
        assert response.error_code == ErrorCode.invalid_request


def test_partitions_of_the_request_are_mirrored_with_the_error() -> None:
    req = DescribeProducersRequest(topics=(TopicRequest(name="t", partition_indexes=(0, 3)),))
    resp = error_response(61, 0, req, ErrorCode.invalid_request, "bad")
    assert [(t.name, [(p.partition_index, p.error_code) for p in t.partitions]) for t in resp.topics] == [
        ("t", [(0, ErrorCode.invalid_request), (3, ErrorCode.invalid_request)])]
    req2 = ListOffsetsRequest(replica_id=-1, isolation_level=0, topics=(ListOffsetsTopic(name="u", partitions=(
        ListOffsetsPartition(partition_index=2, current_leader_epoch=-1, timestamp=-1),)),))
    resp2 = error_response(2, 7, req2, ErrorCode.unknown_server_error)
    assert [(p.partition_index, p.error_code) for p in resp2.topics[0].partitions] == [(2, ErrorCode.unknown_server_error)]


def test_fetch_partitions_are_mirrored_by_index() -> None:
    from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
    part = FetchPartition(partition=7, current_leader_epoch=0, fetch_offset=0, last_fetched_epoch=-1,
                          log_start_offset=0, partition_max_bytes=1)
    req = FetchRequest(cluster_id=None, replica_id=-1, max_wait=ms(0), min_bytes=1, max_bytes=1, isolation_level=0,
                       session_id=0, session_epoch=-1, topics=(FetchTopic(topic="f", partitions=(part,)),),
                       forgotten_topics_data=(), rack_id="")
    resp = error_response(1, 12, req, ErrorCode.unknown_server_error)
    assert resp.error_code == ErrorCode.unknown_server_error
    assert [(t.topic, [(p.partition_index, p.error_code) for p in t.partitions]) for t in resp.responses] == [
        ("f", [(7, ErrorCode.unknown_server_error)])]


def test_bare_values_fill_their_field_and_null_arrays_mirror_as_empty() -> None:
    resp = error_response(42, 2, DeleteGroupsRequest(groups_names=("g1", "g2")), ErrorCode.invalid_request)
    assert [(r.group_id, r.error_code) for r in resp.results] == [("g1", ErrorCode.invalid_request),
                                                                 ("g2", ErrorCode.invalid_request)]
    req = FindCoordinatorRequest(key_type=0, coordinator_keys=("grp",))
    resp2 = error_response(10, 4, req, ErrorCode.invalid_request, "bad")
    assert [(c.key, c.error_code, c.error_message) for c in resp2.coordinators] == [("grp", ErrorCode.invalid_request, "bad")]
    assert error_response(61, 0, DescribeProducersRequest(topics=None), ErrorCode.invalid_request).topics == ()  # type: ignore[arg-type]
