"""Sans-IO Raft in the style of Kafka's KRaft (KIP-595, KIP-630 snapshots, KIP-996 pre-vote).

See README.md. The asyncio driver lives elsewhere; nothing here does I/O of its own except
:class:`FileStorage`, which the driver injects.
"""

from suoi.raft.config import RaftConfig
from suoi.raft.file_storage import FileStorage
from suoi.raft.log import FlushJob, RaftLog, RaftSafetyError
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
    Envelope,
    EpochEndOffset,
    ErrorCode,
    FetchRequest,
    FetchResponse,
    FetchSnapshotRequest,
    FetchSnapshotResponse,
    LeaderAndEpoch,
    Message,
    ReplicaState,
    SnapshotId,
    VoteRequest,
    VoteResponse,
)
from suoi.raft.node import NotLeaderError, RaftListener, RaftNode, decode_leader_change, encode_leader_change
from suoi.raft.state import Candidate, Follower, Leader, Prospective, Resigned, Unattached
from suoi.raft.storage import FlushRun, MemoryStorage, QuorumStateData, RaftStorage

__all__ = [
    "HW_NOT_SENT",
    "NO_LEADER",
    "BeginQuorumEpochRequest",
    "BeginQuorumEpochResponse",
    "Candidate",
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
    "FileStorage",
    "FlushJob",
    "FlushRun",
    "Follower",
    "Leader",
    "LeaderAndEpoch",
    "MemoryStorage",
    "Message",
    "NotLeaderError",
    "Prospective",
    "QuorumStateData",
    "RaftConfig",
    "RaftListener",
    "RaftLog",
    "RaftNode",
    "RaftSafetyError",
    "RaftStorage",
    "ReplicaState",
    "Resigned",
    "SnapshotId",
    "Unattached",
    "VoteRequest",
    "VoteResponse",
    "decode_leader_change",
    "encode_leader_change",
]
