"""The hand-made Fetch answer (`protocol.fetch_response`) is byte for byte kio's, and leaves
any shape it does not know to kio."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from suoi.model import ErrorCode
from suoi.protocol.codec import GatherBuffer, build_response, encode_response
from suoi.protocol.fetch_response import encode_fetch_response

VERSIONS = range(4, 19)


def kio_bytes(correlation_id: int, version: int, data: dict[str, Any]) -> bytes:
    return b"".join(encode_response(correlation_id, build_response(1, version, data)))


aborted = st.fixed_dictionaries({"producer_id": st.integers(0, 2**63 - 1), "first_offset": st.integers(0, 2**63 - 1)})
partitions = st.fixed_dictionaries({
    "partition_index": st.integers(0, 2**31 - 1),
    "error_code": st.sampled_from([ErrorCode.none, ErrorCode.offset_out_of_range, ErrorCode.not_leader_or_follower]),
    "high_watermark": st.integers(-1, 2**63 - 1),
    "last_stable_offset": st.integers(-1, 2**63 - 1),
    "log_start_offset": st.integers(-1, 2**63 - 1),
    "aborted_transactions": st.one_of(st.none(), st.lists(aborted, max_size=3)),
    "preferred_read_replica": st.integers(-1, 5),
    "records": st.one_of(st.just(b""), st.binary(max_size=300), st.just(b"r" * (GatherBuffer.LARGE + 5))),
})
topics = st.fixed_dictionaries({"topic": st.text(min_size=1, max_size=200), "topic_id": st.uuids(),
                                "partitions": st.lists(partitions, max_size=5)})
answers = st.fixed_dictionaries({"throttle_time": st.integers(0, 10_000), "error_code": st.just(ErrorCode.none),
                                 "session_id": st.integers(0, 2**31 - 1), "responses": st.lists(topics, max_size=3)})


@settings(max_examples=50, deadline=None)
@given(answers, st.integers(0, 2**31 - 1))
def test_every_version_matches_kio(data: dict[str, Any], correlation_id: int) -> None:
    for version in VERSIONS:
        ours = encode_fetch_response(correlation_id, version, data)
        assert ours is not None
        assert b"".join(ours) == kio_bytes(correlation_id, version, data), f"v{version}"


def test_large_records_stay_a_part_of_their_own() -> None:
    records = b"x" * (GatherBuffer.LARGE + 1)
    data = {"throttle_time": 0, "error_code": 0, "session_id": 0, "responses": [
        {"topic": "t", "topic_id": uuid.UUID(int=3), "partitions": [
            {"partition_index": 0, "error_code": 0, "high_watermark": 9, "last_stable_offset": 9,
             "log_start_offset": 0, "aborted_transactions": None, "preferred_read_replica": -1, "records": records}]}]}
    parts = encode_fetch_response(5, 12, data)
    assert parts is not None and any(p is records for p in parts)


def test_fields_it_does_not_know_go_to_kio() -> None:
    part = {"partition_index": 0, "error_code": 0, "high_watermark": 9, "last_stable_offset": 9,
            "log_start_offset": 0, "aborted_transactions": None, "preferred_read_replica": -1, "records": b""}
    topic = {"topic": "t", "topic_id": uuid.UUID(int=3), "partitions": [part]}
    data = {"throttle_time": 0, "error_code": 0, "session_id": 0, "responses": [topic]}
    assert encode_fetch_response(1, 12, data) is not None
    diverging = {**part, "diverging_epoch": {"epoch": 3, "end_offset": 7}}
    assert encode_fetch_response(1, 12, {**data, "responses": [{**topic, "partitions": [diverging]}]}) is None
    assert encode_fetch_response(1, 16, {**data, "node_endpoints": []}) is None
    assert encode_fetch_response(1, 13, {**data, "responses": [{**topic, "topic_id": None}]}) is None
    assert encode_fetch_response(1, 12, {**data, "responses": [{**topic, "topic": None}]}) is None
