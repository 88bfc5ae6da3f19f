"""Raft messages (``suoi.raft.messages``) <-> Kafka's KRaft RPCs as kio entities.

Pure functions, no I/O; the only place that knows where each field of a Raft message lives
in which version of which Kafka schema. Every RPC addresses the single partition
``__cluster_metadata-0`` (topic id ``METADATA_TOPIC_ID``, Kafka's ``Uuid.METADATA_TOPIC_ID``).

| Raft message | Kafka API (key) | versions we accept / send |
| --- | --- | --- |
| Vote | Vote (52) | 0-2 / 2 (``pre_vote`` exists only in v2) |
| BeginQuorumEpoch | BeginQuorumEpoch (53) | 0-1 / 1 |
| EndQuorumEpoch | EndQuorumEpoch (54) | 0-1 / 1 (v0 ``preferred_successors``, v1 ``preferred_candidates``) |
| Fetch | Fetch (1) on ``__cluster_metadata-0`` | 12-18 / 18 (*) |
| FetchSnapshot | FetchSnapshot (59) | 0-1 / 1 |
| DescribeQuorum | DescribeQuorum (55) | 0-2 / 2 |

(*) leader, diverging epoch and snapshot id are v12+ tagged fields; the replica's known high
watermark is v18's (KIP-1166).

Responses are described as dicts in the newest field names (``response_data``) so the
broker's version-agnostic ``protocol.codec.build`` fits them to whatever version was asked,
exactly like every other handler. Error codes: the partition-level code carries the Raft
error; ``INCONSISTENT_CLUSTER_ID`` is also put at top level, where Kafka puts it. A response
with a top-level error and no partition decodes to that error with no leader and epoch -1
(which the core ignores as stale).

Log entries travel as v2 record batches (``suoi.protocol.records``): consecutive entries of one
epoch and kind form one batch whose partition leader epoch is that epoch; Raft's own entries
(LeaderChange) are control batches whose record key is Kafka's control key (version 0, type
LEADER_CHANGE = 2) and whose value is our payload. Data records have a null key.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from kio.index import load_request_schema

from suoi.model.errors import ErrorCode
from suoi.protocol.codec import build, build_response, ms
from suoi.protocol.records import SimpleRecord, build_batch, decode_batch_records, iter_batches, verify_crc
from suoi.raft.messages import (
    HW_NOT_SENT,
    NO_LEADER,
    BeginQuorumEpochRequest,
    BeginQuorumEpochResponse,
    DescribeQuorumRequest,
    DescribeQuorumResponse,
    EndQuorumEpochRequest,
    EndQuorumEpochResponse,
    Entry,
    EpochEndOffset,
    FetchRequest,
    FetchResponse,
    FetchSnapshotRequest,
    FetchSnapshotResponse,
    Message,
    ReplicaState,
    SnapshotId,
    VoteRequest,
    VoteResponse,
)

__all__ = [
    "API_KEYS",
    "METADATA_PARTITION",
    "METADATA_TOPIC",
    "METADATA_TOPIC_ID",
    "SEND_VERSIONS",
    "RaftCodecError",
    "api_key_of",
    "decode_entries",
    "encode_entries",
    "error_response_data",
    "is_metadata_fetch",
    "request_from_kio",
    "request_source",
    "request_to_kio",
    "response_data",
    "response_from_kio",
    "response_to_kio",
]

METADATA_TOPIC = "__cluster_metadata"
METADATA_PARTITION = 0
METADATA_TOPIC_ID = uuid.UUID(int=1)  # Kafka: Uuid.METADATA_TOPIC_ID = new Uuid(0L, 1L)

FETCH_KEY, VOTE_KEY, BEGIN_KEY, END_KEY, DESCRIBE_KEY, FETCH_SNAPSHOT_KEY = 1, 52, 53, 54, 55, 59

API_KEYS: dict[type, int] = {
    VoteRequest: VOTE_KEY, VoteResponse: VOTE_KEY,
    BeginQuorumEpochRequest: BEGIN_KEY, BeginQuorumEpochResponse: BEGIN_KEY,
    EndQuorumEpochRequest: END_KEY, EndQuorumEpochResponse: END_KEY,
    FetchRequest: FETCH_KEY, FetchResponse: FETCH_KEY,
    FetchSnapshotRequest: FETCH_SNAPSHOT_KEY, FetchSnapshotResponse: FETCH_SNAPSHOT_KEY,
    DescribeQuorumRequest: DESCRIBE_KEY, DescribeQuorumResponse: DESCRIBE_KEY,
}  # fmt: skip

#: The version the driver sends of each RPC (every voter runs suoi; no negotiation).
SEND_VERSIONS: dict[int, int] = {VOTE_KEY: 2, BEGIN_KEY: 1, END_KEY: 1, FETCH_KEY: 18, FETCH_SNAPSHOT_KEY: 1, DESCRIBE_KEY: 2}

_CONTROL_KEY = struct.Struct(">hh")
LEADER_CHANGE = 2  # Kafka ControlRecordType.LEADER_CHANGE
_LEADER_CHANGE_KEY = _CONTROL_KEY.pack(0, LEADER_CHANGE)


class RaftCodecError(ValueError):
    """A request that is not a well-formed Raft RPC for ``__cluster_metadata-0``."""


def api_key_of(message: Message) -> int:
    return API_KEYS[type(message)]


# ============================================================================ records


def encode_entries(entries: Iterable[Entry], *, timestamp_ms: int = 0) -> bytes:
    """Entries (consecutive offsets) as v2 record batches, one per run of epoch and kind."""
    out = bytearray()
    run: list[Entry] = []

    def flush() -> None:
        if not run:
            return
        first = run[0]
        records = [SimpleRecord(_LEADER_CHANGE_KEY if first.control else None, e.payload) for e in run]
        out.extend(build_batch(records, base_offset=first.offset, timestamp_ms=timestamp_ms,
                               partition_leader_epoch=first.epoch, is_control=first.control))
        run.clear()

    for e in entries:
        if run and (e.epoch != run[0].epoch or e.control != run[0].control or e.offset != run[-1].offset + 1):
            flush()
        run.append(e)
    flush()
    return bytes(out)


def decode_entries(data: bytes | bytearray | memoryview | None) -> tuple[Entry, ...]:
    """The entries of record batches written by :func:`encode_entries` (CRCs checked)."""
    if not data:
        return ()
    view = memoryview(data)
    entries: list[Entry] = []
    consumed = 0
    for pos, header in iter_batches(view):
        if header.magic != 2 or not verify_crc(view, pos, header):
            raise RaftCodecError(f"corrupt metadata record batch at offset {header.base_offset}")
        for rec in decode_batch_records(view, pos, header):
            assert rec.offset is not None
            entries.append(Entry(rec.offset, header.partition_leader_epoch, rec.value or b"", header.is_control))
        consumed = pos + header.size
    if consumed != len(view):
        raise RaftCodecError(f"{len(view) - consumed} trailing bytes after the metadata record batches")
    return tuple(entries)


# ============================================================================ requests


def request_to_kio(
    message: Message,
    *,
    destination: int = -1,
    version: int | None = None,
    leader_endpoint: tuple[str, str, int] | None = None,
) -> Any:
    """A Raft request as the kio request entity of ``version`` (default: ``SEND_VERSIONS``).
    ``destination`` fills the v1+ ``voter_id``; ``leader_endpoint`` = (listener, host, port)
    fills BeginQuorumEpoch/EndQuorumEpoch v1 ``leader_endpoints``."""
    key = api_key_of(message)
    v = SEND_VERSIONS[key] if version is None else version
    cls = load_request_schema(key, v)
    return build(cls, _request_dict(message, destination, leader_endpoint))


def _one(partition: dict[str, Any], name_field: str = "topic_name") -> list[dict[str, Any]]:
    return [{name_field: METADATA_TOPIC, "partitions": [partition]}]


def _request_dict(m: Message, destination: int, endpoint: tuple[str, str, int] | None) -> dict[str, Any]:
    endpoints = [{"name": endpoint[0], "host": endpoint[1], "port": endpoint[2]}] if endpoint else []
    if isinstance(m, VoteRequest):
        return {"cluster_id": m.cluster_id, "voter_id": destination, "topics": _one({
            "partition_index": METADATA_PARTITION, "replica_epoch": m.replica_epoch, "replica_id": m.replica_id,
            "replica_directory_id": None, "voter_directory_id": None, "last_offset_epoch": m.last_offset_epoch,
            "last_offset": m.last_offset, "pre_vote": m.pre_vote})}
    if isinstance(m, BeginQuorumEpochRequest):
        return {"cluster_id": m.cluster_id, "voter_id": destination, "leader_endpoints": endpoints, "topics": _one({
            "partition_index": METADATA_PARTITION, "voter_directory_id": None,
            "leader_id": m.leader_id, "leader_epoch": m.leader_epoch})}
    if isinstance(m, EndQuorumEpochRequest):
        return {"cluster_id": m.cluster_id, "leader_endpoints": endpoints, "topics": _one({
            "partition_index": METADATA_PARTITION, "leader_id": m.leader_id, "leader_epoch": m.leader_epoch,
            "preferred_successors": tuple(m.preferred_successors),
            "preferred_candidates": [{"candidate_id": c, "candidate_directory_id": None}
                                     for c in m.preferred_successors]})}
    if isinstance(m, FetchRequest):
        return {
            "cluster_id": m.cluster_id, "replica_id": m.replica_id,
            "replica_state": {"replica_id": m.replica_id, "replica_epoch": -1},
            "max_wait": m.max_wait_ms, "min_bytes": 0, "max_bytes": 0x7FFFFFFF, "isolation_level": 0,
            "session_id": 0, "session_epoch": -1, "forgotten_topics_data": [], "rack_id": "",
            "topics": [{"topic": METADATA_TOPIC, "topic_id": METADATA_TOPIC_ID, "partitions": [{
                "partition": METADATA_PARTITION, "current_leader_epoch": m.current_leader_epoch,
                "fetch_offset": m.fetch_offset, "last_fetched_epoch": m.last_fetched_epoch,
                "log_start_offset": m.log_start_offset, "partition_max_bytes": 0x7FFFFFFF,
                "high_watermark": m.high_watermark}]}],
        }
    if isinstance(m, FetchSnapshotRequest):
        return {"cluster_id": m.cluster_id, "replica_id": m.replica_id, "max_bytes": m.max_bytes,
                "topics": [{"name": METADATA_TOPIC, "partitions": [{
                    "partition": METADATA_PARTITION, "current_leader_epoch": m.current_leader_epoch,
                    "snapshot_id": {"end_offset": m.snapshot_id.end_offset, "epoch": m.snapshot_id.epoch},
                    "position": m.position}]}]}
    if isinstance(m, DescribeQuorumRequest):
        return {"topics": _one({"partition_index": METADATA_PARTITION})}
    raise TypeError(f"not a Raft request: {m!r}")


def _only_partition(topics: Any, name_attr: str, index_attr: str) -> Any:
    if len(topics) != 1 or len(topics[0].partitions) != 1:
        raise RaftCodecError("a Raft request names exactly one topic partition")
    topic = topics[0]
    name = getattr(topic, name_attr, None)
    topic_id = getattr(topic, "topic_id", None)
    if name != METADATA_TOPIC and topic_id != METADATA_TOPIC_ID:
        raise RaftCodecError(f"not the metadata topic: {name or topic_id}")
    part = topic.partitions[0]
    if getattr(part, index_attr) != METADATA_PARTITION:
        raise RaftCodecError(f"{METADATA_TOPIC} has only partition {METADATA_PARTITION}")
    return part


def is_metadata_fetch(request: Any) -> bool:
    """True for a Fetch addressed (only) to ``__cluster_metadata``, by name or topic id."""
    topics: Sequence[Any] = getattr(request, "topics", ())
    if len(topics) != 1:
        return False
    t = topics[0]
    if getattr(t, "topic", None) == METADATA_TOPIC:
        return True
    topic_id = getattr(t, "topic_id", None)  # every consumer Fetch asks: no UUID.__eq__ call (Python) for it
    return topic_id is not None and topic_id.int == METADATA_TOPIC_ID.int


def request_from_kio(entity: Any) -> Message:
    """The Raft request a kio request entity carries; ``RaftCodecError`` if it is not one."""
    key = int(type(entity).__api_key__)
    cluster_id = getattr(entity, "cluster_id", None)
    if key == VOTE_KEY:
        p = _only_partition(entity.topics, "topic_name", "partition_index")
        return VoteRequest(cluster_id=cluster_id, replica_epoch=int(p.replica_epoch), replica_id=int(p.replica_id),
                           last_offset_epoch=int(p.last_offset_epoch), last_offset=int(p.last_offset),
                           pre_vote=bool(getattr(p, "pre_vote", False)))
    if key == BEGIN_KEY:
        p = _only_partition(entity.topics, "topic_name", "partition_index")
        return BeginQuorumEpochRequest(cluster_id=cluster_id, leader_id=int(p.leader_id),
                                       leader_epoch=int(p.leader_epoch))
    if key == END_KEY:
        p = _only_partition(entity.topics, "topic_name", "partition_index")
        if hasattr(p, "preferred_candidates"):
            successors = tuple(int(c.candidate_id) for c in p.preferred_candidates)
        else:
            successors = tuple(int(c) for c in p.preferred_successors)
        return EndQuorumEpochRequest(cluster_id=cluster_id, leader_id=int(p.leader_id),
                                     leader_epoch=int(p.leader_epoch), preferred_successors=successors)
    if key == FETCH_KEY:
        p = _only_partition(entity.topics, "topic", "partition")
        state = getattr(entity, "replica_state", None)
        replica_id = int(state.replica_id) if state is not None else int(getattr(entity, "replica_id", -1))
        return FetchRequest(cluster_id=cluster_id, replica_id=replica_id,
                            current_leader_epoch=int(p.current_leader_epoch), fetch_offset=int(p.fetch_offset),
                            last_fetched_epoch=int(getattr(p, "last_fetched_epoch", -1)),
                            log_start_offset=int(p.log_start_offset), max_wait_ms=ms(entity.max_wait),
                            high_watermark=int(getattr(p, "high_watermark", HW_NOT_SENT)))
    if key == FETCH_SNAPSHOT_KEY:
        p = _only_partition(entity.topics, "name", "partition")
        return FetchSnapshotRequest(cluster_id=cluster_id, replica_id=int(entity.replica_id),
                                    current_leader_epoch=int(p.current_leader_epoch),
                                    snapshot_id=SnapshotId(int(p.snapshot_id.end_offset), int(p.snapshot_id.epoch)),
                                    position=int(p.position), max_bytes=int(entity.max_bytes))
    if key == DESCRIBE_KEY:
        _only_partition(entity.topics, "topic_name", "partition_index")
        return DescribeQuorumRequest()
    raise RaftCodecError(f"api key {key} is not a Raft RPC")


def request_source(message: Message) -> int:
    """The node a request comes from, as the request itself says (-1 if it does not)."""
    if isinstance(message, (VoteRequest, FetchRequest, FetchSnapshotRequest)):
        return message.replica_id
    if isinstance(message, (BeginQuorumEpochRequest, EndQuorumEpochRequest)):
        return message.leader_id
    return -1


# ============================================================================ responses


def _top(error: ErrorCode) -> ErrorCode:
    return error if error == ErrorCode.inconsistent_cluster_id else ErrorCode.none


def response_data(m: Message, *, timestamp_ms: int = 0) -> dict[str, Any]:
    """A Raft response as a version-agnostic response dict (newest field names)."""
    if isinstance(m, VoteResponse):
        return {"error_code": _top(m.error_code), "topics": _one({
            "partition_index": METADATA_PARTITION, "error_code": m.error_code, "leader_id": m.leader_id,
            "leader_epoch": m.leader_epoch, "vote_granted": m.vote_granted})}
    if isinstance(m, (BeginQuorumEpochResponse, EndQuorumEpochResponse)):
        return {"error_code": _top(m.error_code), "topics": _one({
            "partition_index": METADATA_PARTITION, "error_code": m.error_code, "leader_id": m.leader_id,
            "leader_epoch": m.leader_epoch})}
    if isinstance(m, FetchResponse):
        de = m.diverging_epoch
        sid = m.snapshot_id
        return {"throttle_time": 0, "error_code": _top(m.error_code), "session_id": 0, "responses": [{
            "topic": METADATA_TOPIC, "topic_id": METADATA_TOPIC_ID, "partitions": [{
                "partition_index": METADATA_PARTITION, "error_code": m.error_code,
                "high_watermark": m.high_watermark, "last_stable_offset": m.high_watermark,
                "log_start_offset": m.log_start_offset,
                "diverging_epoch": {"epoch": de.epoch, "end_offset": de.end_offset} if de else {"epoch": -1, "end_offset": -1},
                "current_leader": {"leader_id": m.leader_id, "leader_epoch": m.leader_epoch},
                "snapshot_id": {"end_offset": sid.end_offset, "epoch": sid.epoch} if sid else {"end_offset": -1, "epoch": -1},
                "aborted_transactions": None, "preferred_read_replica": -1,
                "records": encode_entries(m.records, timestamp_ms=timestamp_ms),
            }]}]}
    if isinstance(m, FetchSnapshotResponse):
        sid = m.snapshot_id
        return {"throttle_time": 0, "error_code": _top(m.error_code), "topics": [{"name": METADATA_TOPIC, "partitions": [{
            "index": METADATA_PARTITION, "error_code": m.error_code,
            "snapshot_id": {"end_offset": sid.end_offset, "epoch": sid.epoch} if sid else {"end_offset": -1, "epoch": -1},
            "current_leader": {"leader_id": m.leader_id, "leader_epoch": m.leader_epoch},
            "size": m.size, "position": m.position, "unaligned_records": m.unaligned_records}]}]}
    if isinstance(m, DescribeQuorumResponse):
        def state(r: ReplicaState) -> dict[str, Any]:
            return {"replica_id": r.replica_id, "replica_directory_id": None, "log_end_offset": r.log_end_offset,
                    "last_fetch_timestamp": r.last_fetch_timestamp, "last_caught_up_timestamp": r.last_caught_up_timestamp}

        return {"error_code": _top(m.error_code), "error_message": None, "nodes": [], "topics": _one({
            "partition_index": METADATA_PARTITION, "error_code": m.error_code, "error_message": None,
            "leader_id": m.leader_id, "leader_epoch": m.leader_epoch, "high_watermark": m.high_watermark,
            "current_voters": [state(r) for r in m.current_voters], "observers": [state(r) for r in m.observers]})}
    raise TypeError(f"not a Raft response: {m!r}")


def error_response_data(api_key: int, error: ErrorCode) -> dict[str, Any]:
    """A top-level error with no partitions (bad request, or no quorum on this node)."""
    base: dict[str, Any] = {"error_code": error, "throttle_time": 0, "error_message": None, "nodes": []}
    if api_key == FETCH_KEY:
        return base | {"session_id": 0, "responses": []}
    return base | {"topics": []}


def response_to_kio(message: Message, version: int, *, timestamp_ms: int = 0) -> Any:
    return build_response(api_key_of(message), version, response_data(message, timestamp_ms=timestamp_ms))


def _response_partition(entity: Any, topics_attr: str, name_attr: str, index_attr: str) -> Any | None:
    for topic in getattr(entity, topics_attr, ()):
        if getattr(topic, name_attr, None) == METADATA_TOPIC or getattr(topic, "topic_id", None) == METADATA_TOPIC_ID:
            for p in topic.partitions:
                if getattr(p, index_attr) == METADATA_PARTITION:
                    return p
    return None


def _error(value: Any) -> ErrorCode:
    return value if isinstance(value, ErrorCode) else ErrorCode(int(value))


def response_from_kio(entity: Any) -> Message:
    """The Raft response a kio response entity carries."""
    key = int(type(entity).__api_key__)
    top = _error(entity.error_code)
    if key == VOTE_KEY:
        p = _response_partition(entity, "topics", "topic_name", "partition_index")
        if p is None:
            return VoteResponse(error_code=_nonzero(top), leader_id=NO_LEADER, leader_epoch=-1, vote_granted=False)
        return VoteResponse(error_code=_error(p.error_code), leader_id=int(p.leader_id),
                            leader_epoch=int(p.leader_epoch), vote_granted=bool(p.vote_granted))
    if key in (BEGIN_KEY, END_KEY):
        cls = BeginQuorumEpochResponse if key == BEGIN_KEY else EndQuorumEpochResponse
        p = _response_partition(entity, "topics", "topic_name", "partition_index")
        if p is None:
            return cls(error_code=_nonzero(top), leader_id=NO_LEADER, leader_epoch=-1)
        return cls(error_code=_error(p.error_code), leader_id=int(p.leader_id), leader_epoch=int(p.leader_epoch))
    if key == FETCH_KEY:
        p = _response_partition(entity, "responses", "topic", "partition_index")
        if p is None:
            return FetchResponse(error_code=_nonzero(top), leader_id=NO_LEADER, leader_epoch=-1)
        de = getattr(p, "diverging_epoch", None)
        sid = getattr(p, "snapshot_id", None)
        leader = getattr(p, "current_leader", None)
        return FetchResponse(
            error_code=_error(p.error_code),
            leader_id=int(leader.leader_id) if leader is not None else NO_LEADER,
            leader_epoch=int(leader.leader_epoch) if leader is not None else -1,
            high_watermark=int(p.high_watermark), log_start_offset=int(p.log_start_offset),
            diverging_epoch=(EpochEndOffset(int(de.epoch), int(de.end_offset))
                             if de is not None and de.epoch >= 0 and de.end_offset >= 0 else None),
            snapshot_id=(SnapshotId(int(sid.end_offset), int(sid.epoch))
                         if sid is not None and sid.end_offset >= 0 and sid.epoch >= 0 else None),
            records=decode_entries(p.records),
        )
    if key == FETCH_SNAPSHOT_KEY:
        p = _response_partition(entity, "topics", "name", "index")
        if p is None:
            return FetchSnapshotResponse(error_code=_nonzero(top), leader_id=NO_LEADER, leader_epoch=-1)
        sid = p.snapshot_id
        return FetchSnapshotResponse(
            error_code=_error(p.error_code), leader_id=int(p.current_leader.leader_id),
            leader_epoch=int(p.current_leader.leader_epoch),
            snapshot_id=SnapshotId(int(sid.end_offset), int(sid.epoch)) if sid.end_offset >= 0 else None,
            size=int(p.size), position=int(p.position), unaligned_records=bytes(p.unaligned_records or b""),
        )
    if key == DESCRIBE_KEY:
        p = _response_partition(entity, "topics", "topic_name", "partition_index")
        if p is None:
            return DescribeQuorumResponse(error_code=_nonzero(top))

        def state(r: Any) -> ReplicaState:
            return ReplicaState(replica_id=int(r.replica_id), log_end_offset=int(r.log_end_offset),
                                last_fetch_timestamp=int(getattr(r, "last_fetch_timestamp", -1)),
                                last_caught_up_timestamp=int(getattr(r, "last_caught_up_timestamp", -1)))

        return DescribeQuorumResponse(
            error_code=_error(p.error_code), leader_id=int(p.leader_id), leader_epoch=int(p.leader_epoch),
            high_watermark=int(p.high_watermark), current_voters=tuple(state(r) for r in p.current_voters),
            observers=tuple(state(r) for r in p.observers))
    raise RaftCodecError(f"api key {key} is not a Raft RPC")


def _nonzero(error: ErrorCode) -> ErrorCode:
    """A response without our partition is an error even if the top level says none."""
    return error if error != ErrorCode.none else ErrorCode.unknown_topic_or_partition

