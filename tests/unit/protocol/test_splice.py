"""A Metadata answer with its topics spliced in as cached kio encodings (`protocol.splice`)
is byte for byte kio's encoding of the whole answer, for every Metadata version, and the
splice refuses response shapes it cannot handle."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suoi.model import ErrorCode
from suoi.protocol.codec import build_response, encode_response, response_class
from suoi.protocol.splice import SplicedResponse, element_class, encode_element, encode_spliced

METADATA = 3
OMITTED = -2147483648

ids = st.integers(min_value=-1, max_value=2**31 - 1)
names = st.text(alphabet="abcXYZ._-0123456789", min_size=1, max_size=20)
errors = st.sampled_from([ErrorCode.none, ErrorCode.leader_not_available, ErrorCode.unknown_topic_or_partition])
partitions = st.fixed_dictionaries({
    "error_code": errors, "partition_index": st.integers(0, 2**31 - 1), "leader_id": ids,
    "leader_epoch": st.integers(-1, 2**31 - 1), "replica_nodes": st.lists(ids, max_size=4),
    "isr_nodes": st.lists(ids, max_size=4), "offline_replicas": st.lists(ids, max_size=2)})
topics = st.fixed_dictionaries({
    "error_code": errors, "name": names, "topic_id": st.uuids(), "is_internal": st.booleans(),
    "partitions": st.lists(partitions, max_size=12),
    "topic_authorized_operations": st.sampled_from([OMITTED, 0, 2**31 - 1])})
brokers = st.fixed_dictionaries({"node_id": st.integers(0, 2**31 - 1), "host": names,
                                 "port": st.integers(1, 65535), "rack": st.none() | names})
answers = st.fixed_dictionaries({
    "throttle_time": st.integers(0, 10_000), "brokers": st.lists(brokers, max_size=3),
    "cluster_id": st.none() | names, "controller_id": ids, "topics": st.lists(topics, max_size=5),
    "cluster_authorized_operations": st.sampled_from([OMITTED, 7]), "error_code": errors})


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(answer=answers, version=st.integers(0, 13), encoded=st.lists(st.booleans(), max_size=5),
       correlation_id=st.integers(-2**31, 2**31 - 1))
def test_spliced_metadata_is_kios_encoding(answer: dict, version: int, encoded: list[bool],
                                           correlation_id: int) -> None:
    cls = response_class(METADATA, version)
    expected = b"".join(encode_response(correlation_id, build_response(METADATA, version, answer)))
    # some topics pre-encoded (as the topic cache holds them), the others still dicts
    topic_cls = element_class(cls, "topics")
    mixed = [encode_element(topic_cls, t) if i < len(encoded) and encoded[i] else t
             for i, t in enumerate(answer["topics"])]
    got = b"".join(encode_spliced(correlation_id, cls, SplicedResponse({**answer, "topics": mixed}, "topics")))
    assert got == expected


def test_an_empty_topic_list_and_a_thousand_partitions() -> None:
    topic = {"error_code": ErrorCode.none, "name": "big", "topic_id": uuid.uuid4(), "is_internal": False,
             "partitions": [{"error_code": 0, "partition_index": p, "leader_id": 1, "leader_epoch": 0,
                             "replica_nodes": [1], "isr_nodes": [1], "offline_replicas": []} for p in range(1000)],
             "topic_authorized_operations": OMITTED}
    for version in (0, 8, 12, 13):
        for topics_ in ([], [topic]):
            answer = {"throttle_time": 0, "brokers": [{"node_id": 1, "host": "h", "port": 9092, "rack": None}],
                      "cluster_id": "c", "controller_id": 1, "topics": topics_,
                      "cluster_authorized_operations": OMITTED, "error_code": 0}
            cls = response_class(METADATA, version)
            expected = b"".join(encode_response(5, build_response(METADATA, version, answer)))
            pre = [encode_element(element_class(cls, "topics"), t) for t in topics_]
            assert b"".join(encode_spliced(5, cls, SplicedResponse({**answer, "topics": pre}, "topics"))) == expected


def test_shapes_it_cannot_splice_are_refused() -> None:
    with pytest.raises(ValueError, match="not an array of entities"):
        element_class(response_class(METADATA, 12), "cluster_id")
    with pytest.raises(ValueError, match="tagged fields"):  # Fetch v16: node_endpoints is tagged
        encode_spliced(0, response_class(1, 16), SplicedResponse(
            {"throttle_time": 0, "error_code": 0, "session_id": 0, "responses": []}, "responses"))
