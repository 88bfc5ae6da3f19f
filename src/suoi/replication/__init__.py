"""Partition replication as sans-IO state machines (see README.md).

Driven by `suoi.partition` (`Partition`, `ReplicaManager`).
"""

from __future__ import annotations

from .follower import FollowerPartitionState
from .partition_state import (
    UNKNOWN_OFFSET,
    AlterPartitionProposal,
    FollowerFetchResult,
    LeaderPartitionState,
    ReplicaState,
)
from .waiters import AcksAllWaiters

__all__ = [
    "UNKNOWN_OFFSET",
    "AcksAllWaiters",
    "AlterPartitionProposal",
    "FollowerFetchResult",
    "FollowerPartitionState",
    "LeaderPartitionState",
    "ReplicaState",
]
