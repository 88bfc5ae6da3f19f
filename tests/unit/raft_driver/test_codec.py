"""Raft messages <-> kio entities: every message survives encode -> bytes -> decode at every
version we accept (fields a version lacks come back as their defaults), and malformed or
misaddressed requests are refused."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.index import load_request_schema

from suoi.protocol.codec import decode_request, decode_response, encode_request, encode_response, read_prefix
from suoi.raft.messages import (
    HW_NOT_SENT,
    BeginQuorumEpochRequest,
    BeginQuorumEpochResponse,
    DescribeQuorumRequest,
    DescribeQuorumResponse,
    EndQuorumEpochRequest,
    EndQuorumEpochResponse,
    Entry,
    EpochEndOffset,
    ErrorCode,
    FetchRequest,
    FetchResponse,
    FetchSnapshotRequest,
    FetchSnapshotResponse,
    ReplicaState,
    SnapshotId,
    VoteRequest,
    VoteResponse,
)
from suoi.raft_driver import codec
from suoi.raft_driver.codec import (
    METADATA_TOPIC,
    RaftCodecError,
    decode_entries,
    encode_entries,
    request_from_kio,
    request_to_kio,
    response_from_kio,
    response_to_kio,
)

ENTRIES = (Entry(5, 2, b"a"), Entry(6, 2, b""), Entry(7, 3, b'{"type":"LeaderChange"}', control=True),
           Entry(8, 3, b"b" * 300), Entry(9, 3, b"c"))

REQUESTS: list[tuple[Any, range]] = [
    (VoteRequest(cluster_id="c1", replica_epoch=4, replica_id=2, last_offset_epoch=3, last_offset=17, pre_vote=True),
     range(2, 3)),
    (VoteRequest(cluster_id=None, replica_epoch=4, replica_id=2, last_offset_epoch=3, last_offset=17), range(0, 3)),
    (BeginQuorumEpochRequest(cluster_id="c1", leader_id=3, leader_epoch=9), range(0, 2)),
    (EndQuorumEpochRequest(cluster_id="c1", leader_id=3, leader_epoch=9, preferred_successors=(2, 1)), range(0, 2)),
    (FetchRequest(cluster_id="c1", replica_id=2, current_leader_epoch=5, fetch_offset=40, last_fetched_epoch=4,
                  log_start_offset=10, max_wait_ms=500, high_watermark=38), range(12, 19)),
    (FetchSnapshotRequest(cluster_id="c1", replica_id=2, current_leader_epoch=5, snapshot_id=SnapshotId(30, 4),
                          position=1024, max_bytes=4096), range(0, 2)),
    (DescribeQuorumRequest(), range(0, 3)),
]

RESPONSES: list[tuple[Any, range]] = [
    (VoteResponse(error_code=ErrorCode.none, leader_id=-1, leader_epoch=4, vote_granted=True), range(0, 3)),
    (VoteResponse(error_code=ErrorCode.inconsistent_cluster_id, leader_id=1, leader_epoch=4, vote_granted=False), range(0, 3)),
    (BeginQuorumEpochResponse(error_code=ErrorCode.fenced_leader_epoch, leader_id=1, leader_epoch=8), range(0, 2)),
    (EndQuorumEpochResponse(error_code=ErrorCode.none, leader_id=3, leader_epoch=9), range(0, 2)),
    (FetchResponse(error_code=ErrorCode.none, leader_id=1, leader_epoch=3, high_watermark=8, log_start_offset=5,
                   records=ENTRIES), range(12, 19)),
    (FetchResponse(error_code=ErrorCode.none, leader_id=1, leader_epoch=3, high_watermark=8,
                   diverging_epoch=EpochEndOffset(2, 6)), range(12, 19)),
    (FetchResponse(error_code=ErrorCode.none, leader_id=1, leader_epoch=3, high_watermark=8,
                   snapshot_id=SnapshotId(30, 2)), range(12, 19)),
    (FetchResponse(error_code=ErrorCode.not_leader_or_follower, leader_id=-1, leader_epoch=3), range(12, 19)),
    (FetchSnapshotResponse(error_code=ErrorCode.none, leader_id=1, leader_epoch=3, snapshot_id=SnapshotId(30, 2),
                           size=5000, position=4096, unaligned_records=b"xyz" * 10), range(0, 2)),
    (FetchSnapshotResponse(error_code=ErrorCode.snapshot_not_found, leader_id=1, leader_epoch=3,
                           snapshot_id=SnapshotId(30, 2)), range(0, 2)),
    (DescribeQuorumResponse(error_code=ErrorCode.none, leader_id=1, leader_epoch=3, high_watermark=8,
                            current_voters=(ReplicaState(replica_id=1, log_end_offset=9, last_fetch_timestamp=100,
                                                         last_caught_up_timestamp=100),
                                            ReplicaState(replica_id=2, log_end_offset=8)),
                            observers=(ReplicaState(replica_id=7, log_end_offset=3),)), range(0, 3)),
    (DescribeQuorumResponse(error_code=ErrorCode.not_leader_or_follower, leader_id=2, leader_epoch=3), range(0, 3)),
]


def _expect_at(message: Any, version: int) -> Any:
    """What survives an older version: fields it lacks come back as defaults."""
    if isinstance(message, FetchRequest) and version < 18:
        return dataclasses.replace(message, high_watermark=HW_NOT_SENT)  # KIP-1166 is v18's
    if isinstance(message, VoteRequest) and version < 2:
        return dataclasses.replace(message, pre_vote=False)
    if isinstance(message, DescribeQuorumResponse) and version < 1:
        strip = lambda rs: tuple(ReplicaState(replica_id=r.replica_id, log_end_offset=r.log_end_offset) for r in rs)  # noqa: E731
        return dataclasses.replace(message, current_voters=strip(message.current_voters), observers=strip(message.observers))
    return message


def _params(cases: list[tuple[Any, range]]) -> list[Any]:
    return [pytest.param(m, v, id=f"{type(m).__name__}-v{v}-{i}") for i, (m, vs) in enumerate(cases) for v in vs]


@pytest.mark.parametrize(("message", "version"), _params(REQUESTS))
def test_request_round_trip_through_bytes(message: Any, version: int) -> None:
    entity = request_to_kio(message, destination=3, version=version, leader_endpoint=("CONTROLLER", "127.0.0.1", 9093))
    frame = encode_request(11, "raft", entity)[4:]
    decoded = decode_request(frame, read_prefix(frame))
    assert decoded.body == entity
    assert request_from_kio(decoded.body) == _expect_at(message, version)


@pytest.mark.parametrize(("message", "version"), _params(RESPONSES))
def test_response_round_trip_through_bytes(message: Any, version: int) -> None:
    entity = response_to_kio(message, version)
    frame = b"".join(encode_response(11, entity))[4:]
    assert response_from_kio(decode_response(frame, type(entity))) == _expect_at(message, version)


def test_send_versions_are_latest_we_accept() -> None:
    for m, versions in REQUESTS:
        assert codec.SEND_VERSIONS[codec.api_key_of(m)] == versions.stop - 1 or isinstance(m, VoteRequest)


def test_fetch_addresses_the_metadata_topic_by_id_and_name() -> None:
    m = REQUESTS[4][0]
    v17 = request_to_kio(m, version=17)
    assert v17.topics[0].topic_id == codec.METADATA_TOPIC_ID
    assert v17.replica_state.replica_id == 2
    v12 = request_to_kio(m, version=12)
    assert v12.topics[0].topic == METADATA_TOPIC and v12.replica_id == 2
    assert codec.is_metadata_fetch(v17) and codec.is_metadata_fetch(v12)


def test_top_level_error_without_partitions() -> None:
    for key, version in [(52, 2), (53, 1), (54, 1), (1, 18), (59, 1), (55, 2)]:
        from suoi.protocol.codec import build_response
        entity = build_response(key, version, codec.error_response_data(key, ErrorCode.inconsistent_cluster_id))
        msg = response_from_kio(entity)
        assert msg.error_code == ErrorCode.inconsistent_cluster_id
        assert msg.leader_epoch == -1


@pytest.mark.parametrize("mutate", ["topic", "partition", "two_partitions"])
def test_misaddressed_requests_are_refused(mutate: str) -> None:
    entity = request_to_kio(REQUESTS[0][0])
    t = entity.topics[0]
    p = t.partitions[0]
    if mutate == "topic":
        t = dataclasses.replace(t, topic_name="orders")
    elif mutate == "partition":
        t = dataclasses.replace(t, partitions=(dataclasses.replace(p, partition_index=1),))
    else:
        t = dataclasses.replace(t, partitions=(p, p))
    with pytest.raises(RaftCodecError):
        request_from_kio(dataclasses.replace(entity, topics=(t,)))


def test_non_raft_api_is_refused() -> None:
    cls = load_request_schema(3, 12)
    with pytest.raises(RaftCodecError):
        request_from_kio(cls(topics=None, allow_auto_topic_creation=False, include_topic_authorized_operations=False))


def test_entries_batches() -> None:
    data = encode_entries(ENTRIES)
    from suoi.protocol.records import iter_batches
    headers = [h for _, h in iter_batches(data)]
    assert [(h.base_offset, h.partition_leader_epoch, h.is_control, h.records_count) for h in headers] == [
        (5, 2, False, 2), (7, 3, True, 1), (8, 3, False, 2)]
    assert decode_entries(data) == ENTRIES
    corrupt = bytearray(data)
    corrupt[-1] ^= 0xFF
    with pytest.raises(RaftCodecError):
        decode_entries(bytes(corrupt))
    with pytest.raises(RaftCodecError):
        decode_entries(data + b"\x00" * 3)
    assert decode_entries(b"") == () and decode_entries(None) == ()


@st.composite
def entry_runs(draw: st.DrawFn) -> tuple[Entry, ...]:
    start = draw(st.integers(0, 10**12))
    n = draw(st.integers(0, 30))
    epoch = draw(st.integers(0, 1000))
    out = []
    for i in range(n):
        epoch += draw(st.sampled_from([0, 0, 0, 1]))
        out.append(Entry(start + i, epoch, draw(st.binary(max_size=64)), draw(st.booleans())))
    return tuple(out)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # wall-clock limits fail on a loaded machine
@given(entry_runs())
def test_entries_round_trip_property(entries: tuple[Entry, ...]) -> None:
    assert decode_entries(encode_entries(entries)) == entries
