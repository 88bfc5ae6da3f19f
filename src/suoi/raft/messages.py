"""The Raft RPCs as plain frozen dataclasses, plus the envelope that carries them.

Field names follow Kafka's KRaft schemas (VoteRequest, BeginQuorumEpochRequest,
EndQuorumEpochRequest, FetchRequest, FetchSnapshotRequest, DescribeQuorumRequest and their
responses) flattened to the single ``__cluster_metadata-0`` partition, so the asyncio driver
can map each one to the kio class of the negotiated version field by field. Differences:

* ``VoteRequest`` uses the v2 names (``replica_epoch``, ``replica_id``, ``pre_vote``); for a
  standard vote ``replica_epoch`` is the candidate's bumped epoch, for a pre-vote (KIP-996) it is
  the prospective's current epoch and the receiver compares against ``replica_epoch + 1``.
* Error codes are carried at partition level only; the driver puts them where the version wants.
* Records travel as a tuple of :class:`Entry` (the driver encodes them as a record batch).
* ``Envelope.correlation_id`` lets the core match a response to the request it sent; the
  driver echoes the id of an inbound request in the response it receives from the core.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from suoi.model.errors import ErrorCode

__all__ = [
    "HW_NOT_SENT",
    "NO_LEADER",
    "BeginQuorumEpochRequest",
    "BeginQuorumEpochResponse",
    "DescribeQuorumRequest",
    "DescribeQuorumResponse",
    "EndQuorumEpochRequest",
    "EndQuorumEpochResponse",
    "Entry",
    "Envelope",
    "EpochEndOffset",
    "ErrorCode",
    "FetchRequest",
    "FetchResponse",
    "FetchSnapshotRequest",
    "FetchSnapshotResponse",
    "LeaderAndEpoch",
    "Message",
    "ReplicaState",
    "SnapshotId",
    "VoteRequest",
    "VoteResponse",
]

NO_LEADER = -1
"""Kafka's sentinel for "no leader known" in ``leader_id`` fields."""

HW_NOT_SENT = 2**63 - 1
"""FetchRequest.high_watermark of a replica that does not report what it knows (Fetch < v18,
KIP-1166): the leader then parks the fetch as before, whatever its own high watermark."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One record of the replicated log. ``control`` marks Raft's own entries (LeaderChange)."""

    offset: int
    epoch: int
    payload: bytes
    control: bool = False


@dataclass(frozen=True, slots=True, order=True)
class SnapshotId:
    """A snapshot covers every entry below ``end_offset``; ``epoch`` is the epoch of the last one."""

    end_offset: int
    epoch: int


@dataclass(frozen=True, slots=True)
class EpochEndOffset:
    """FetchResponse.DivergingEpoch: the leader's end offset for ``epoch``."""

    epoch: int
    end_offset: int


@dataclass(frozen=True, slots=True)
class LeaderAndEpoch:
    """A node's current view; ``leader_id`` is None when no leader is known in ``epoch``."""

    leader_id: int | None
    epoch: int


# --- Vote -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class VoteRequest:
    cluster_id: str | None
    replica_epoch: int
    replica_id: int
    last_offset_epoch: int
    last_offset: int
    pre_vote: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class VoteResponse:
    error_code: ErrorCode
    leader_id: int
    leader_epoch: int
    vote_granted: bool


# --- BeginQuorumEpoch / EndQuorumEpoch ---------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class BeginQuorumEpochRequest:
    cluster_id: str | None
    leader_id: int
    leader_epoch: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BeginQuorumEpochResponse:
    error_code: ErrorCode
    leader_id: int
    leader_epoch: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EndQuorumEpochRequest:
    cluster_id: str | None
    leader_id: int
    leader_epoch: int
    preferred_successors: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class EndQuorumEpochResponse:
    error_code: ErrorCode
    leader_id: int
    leader_epoch: int


# --- Fetch ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchRequest:
    cluster_id: str | None
    replica_id: int
    current_leader_epoch: int
    fetch_offset: int
    last_fetched_epoch: int
    log_start_offset: int = 0
    max_wait_ms: int = 0
    # KIP-1166: the high watermark the fetching replica knows. A leader whose own is higher
    # answers at once instead of parking, so a follower that just missed a commit does not
    # learn it only when its long poll expires (KAFKA-14145).
    high_watermark: int = HW_NOT_SENT


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchResponse:
    error_code: ErrorCode
    leader_id: int
    leader_epoch: int
    high_watermark: int = -1
    log_start_offset: int = 0
    diverging_epoch: EpochEndOffset | None = None
    snapshot_id: SnapshotId | None = None
    records: tuple[Entry, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchSnapshotRequest:
    cluster_id: str | None
    replica_id: int
    current_leader_epoch: int
    snapshot_id: SnapshotId
    position: int
    max_bytes: int = 2**31 - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchSnapshotResponse:
    error_code: ErrorCode
    leader_id: int
    leader_epoch: int
    snapshot_id: SnapshotId | None = None
    size: int = -1
    position: int = -1
    unaligned_records: bytes = b""


# --- DescribeQuorum -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DescribeQuorumRequest:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaState:
    replica_id: int
    log_end_offset: int
    last_fetch_timestamp: int = -1
    last_caught_up_timestamp: int = -1


@dataclass(frozen=True, slots=True, kw_only=True)
class DescribeQuorumResponse:
    error_code: ErrorCode
    leader_id: int = NO_LEADER
    leader_epoch: int = -1
    high_watermark: int = -1
    current_voters: tuple[ReplicaState, ...] = ()
    observers: tuple[ReplicaState, ...] = ()


Message = (
    VoteRequest
    | VoteResponse
    | BeginQuorumEpochRequest
    | BeginQuorumEpochResponse
    | EndQuorumEpochRequest
    | EndQuorumEpochResponse
    | FetchRequest
    | FetchResponse
    | FetchSnapshotRequest
    | FetchSnapshotResponse
    | DescribeQuorumRequest
    | DescribeQuorumResponse
)

REQUEST_TYPES = (
    VoteRequest,
    BeginQuorumEpochRequest,
    EndQuorumEpochRequest,
    FetchRequest,
    FetchSnapshotRequest,
    DescribeQuorumRequest,
)


@dataclass(frozen=True, slots=True)
class Envelope:
    """A message between two nodes. Requests carry a fresh ``correlation_id``; a response
    carries the id of the request it answers."""

    source: int
    destination: int
    correlation_id: int
    message: Message = field(repr=True)

    @property
    def is_request(self) -> bool:
        return isinstance(self.message, REQUEST_TYPES)
