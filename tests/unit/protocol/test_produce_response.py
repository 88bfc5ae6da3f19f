"""The hand-made Produce answer (`protocol.produce_response`) is byte for byte kio's."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from suoi.model import ErrorCode
from suoi.protocol.codec import build_response, encode_response
from suoi.protocol.produce_response import (
    PartitionAnswer,
    ProduceAnswer,
    TopicAnswer,
    encode_produce_response,
)

VERSIONS = range(3, 14)


def kio_bytes(correlation_id: int, version: int, answer: ProduceAnswer, throttle_ms: int) -> bytes:
    return b"".join(encode_response(correlation_id, build_response(0, version, answer.as_dict(throttle_ms))))


partitions = st.builds(
    PartitionAnswer,
    index=st.integers(0, 2**31 - 1),
    error_code=st.sampled_from([ErrorCode.none, ErrorCode.not_leader_or_follower, ErrorCode.corrupt_message,
                                ErrorCode.request_timed_out]),
    base_offset=st.integers(-1, 2**63 - 1),
    log_append_time=st.one_of(st.just(-1), st.integers(0, 2**41)),
    log_start_offset=st.integers(-1, 2**63 - 1),
    error_message=st.one_of(st.none(), st.text(max_size=200)),
)
topics = st.builds(TopicAnswer, name=st.text(min_size=1, max_size=300), topic_id=st.uuids(),
                   partitions=st.lists(partitions, max_size=140))


@settings(max_examples=60, deadline=None)
@given(st.lists(topics, max_size=3), st.integers(0, 2**31 - 1), st.integers(0, 10_000))
def test_every_version_matches_kio(answer_topics: list[TopicAnswer], correlation_id: int, throttle_ms: int) -> None:
    answer = ProduceAnswer(answer_topics)
    for version in VERSIONS:
        ours = encode_produce_response(correlation_id, version, answer_topics, throttle_ms)
        assert ours == kio_bytes(correlation_id, version, answer, throttle_ms), f"v{version}"


def test_a_topic_without_the_name_or_id_its_version_needs_goes_through_kio() -> None:
    by_id = [TopicAnswer(None, uuid.UUID(int=7), [PartitionAnswer(0, ErrorCode.none, 5, -1, 0, None)])]
    assert encode_produce_response(1, 12, by_id, 0) is None
    assert encode_produce_response(1, 13, by_id, 0) is not None
    assert encode_produce_response(1, 13, [by_id[0]._replace(topic_id=None, name="t")], 0) is None
    # the answer still encodes: kio writes the empty name a v12 answer needs
    assert b"".join(ProduceAnswer(by_id).encode(1, 12)) == kio_bytes(1, 12, ProduceAnswer(by_id), 0)


@pytest.mark.parametrize("version", VERSIONS)
def test_throttled_answer_carries_the_throttle_time(version: int) -> None:
    answer = ProduceAnswer([TopicAnswer("t", uuid.UUID(int=1), [PartitionAnswer(3, 0, 10, -1, 0, None)])])
    assert b"".join(answer.encode(9, version, 250)) == kio_bytes(9, version, answer, 250)
