"""Requests and responses of the controller's operations, as plain frozen dataclasses.

Field names follow Kafka's request/response schemas so the API layer can map them to kio
classes field by field; error codes are `ErrorCode` values (Kafka's numbers).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Generic, TypeVar

from suoi.controller.records import Record
from suoi.model import ErrorCode

__all__ = [
    "AlterConfigOp",
    "AlterConfigsResource",
    "AlterConfigsResult",
    "AlterPartitionResult",
    "ControllerResult",
    "CreatePartitionsResult",
    "CreateTopicResult",
    "DeleteTopicResult",
    "ElectionResult",
    "ElectionType",
    "HeartbeatResult",
    "IncrementalAlterConfigsResource",
    "NewPartitions",
    "NewTopic",
    "OngoingReassignment",
    "OpType",
    "ProducerIdsResult",
    "ReassignmentResult",
    "RegisterBrokerResult",
    "UnregisterBrokerResult",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ControllerResult(Generic[T]):
    """What an operation decided.

    ``records`` were handed to the ``append`` callback as one batch (one Raft entry) and are
    already part of the controller's working state. Send ``response`` once the Raft commit
    offset reaches ``offset`` (the last offset appended so far, so even a refusal that was
    based on not-yet-committed state is only answered once that state is durable; -1: at once).
    """

    response: T
    records: tuple[Record, ...] = ()
    offset: int = -1


# ---------------------------------------------------------------------------- brokers


@dataclass(frozen=True, slots=True)
class RegisterBrokerResult:
    error: ErrorCode = ErrorCode.none
    message: str | None = None
    broker_epoch: int = -1


@dataclass(frozen=True, slots=True)
class UnregisterBrokerResult:
    error: ErrorCode = ErrorCode.none
    message: str | None = None


@dataclass(frozen=True, slots=True)
class HeartbeatResult:
    error: ErrorCode = ErrorCode.none
    message: str | None = None
    is_caught_up: bool = False
    is_fenced: bool = True
    should_shutdown: bool = False


@dataclass(frozen=True, slots=True)
class ProducerIdsResult:
    error: ErrorCode = ErrorCode.none
    message: str | None = None
    producer_id_start: int = -1
    producer_id_len: int = 0


# ---------------------------------------------------------------------------- topics


@dataclass(frozen=True, slots=True, kw_only=True)
class NewTopic:
    """CreateTopics entry. -1 = the controller's default; ``assignments`` maps partition index
    to broker ids (then both counts must be -1)."""

    name: str
    num_partitions: int = -1
    replication_factor: int = -1
    assignments: Mapping[int, Sequence[int]] | None = None
    configs: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CreateTopicResult:
    name: str
    error: ErrorCode = ErrorCode.none
    message: str | None = None
    topic_id: uuid.UUID | None = None
    num_partitions: int = -1
    replication_factor: int = -1
    configs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeleteTopicResult:
    name: str | None
    topic_id: uuid.UUID | None
    error: ErrorCode = ErrorCode.none
    message: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NewPartitions:
    """CreatePartitions entry: grow ``name`` to ``count`` partitions; optional assignments
    (one broker list per new partition)."""

    name: str
    count: int
    assignments: Sequence[Sequence[int]] | None = None


@dataclass(frozen=True, slots=True)
class CreatePartitionsResult:
    name: str
    error: ErrorCode = ErrorCode.none
    message: str | None = None


# ---------------------------------------------------------------------------- configs


@dataclass(frozen=True, slots=True, kw_only=True)
class AlterConfigsResource:
    """Legacy AlterConfigs: ``configs`` replaces every override of the resource."""

    resource_type: int
    resource_name: str
    configs: Mapping[str, str | None]


class OpType(IntEnum):
    SET = 0
    DELETE = 1
    APPEND = 2
    SUBTRACT = 3


@dataclass(frozen=True, slots=True)
class AlterConfigOp:
    name: str
    op: OpType
    value: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class IncrementalAlterConfigsResource:
    resource_type: int
    resource_name: str
    ops: Sequence[AlterConfigOp]


@dataclass(frozen=True, slots=True)
class AlterConfigsResult:
    resource_type: int
    resource_name: str
    error: ErrorCode = ErrorCode.none
    message: str | None = None


# ---------------------------------------------------------------------------- partitions


@dataclass(frozen=True, slots=True)
class AlterPartitionResult:
    """The partition's state after the request (or the current one, with an error)."""

    error: ErrorCode = ErrorCode.none
    message: str | None = None
    leader: int = -1
    leader_epoch: int = -1
    isr: tuple[int, ...] = ()
    partition_epoch: int = -1


class ElectionType(IntEnum):
    PREFERRED = 0
    UNCLEAN = 1


@dataclass(frozen=True, slots=True)
class ElectionResult:
    topic: str
    partition: int
    error: ErrorCode = ErrorCode.none
    message: str | None = None


# ---------------------------------------------------------------------------- reassignments


@dataclass(frozen=True, slots=True)
class ReassignmentResult:
    """AlterPartitionReassignments: the outcome for one partition."""

    topic: str
    partition: int
    error: ErrorCode = ErrorCode.none
    message: str | None = None


@dataclass(frozen=True, slots=True)
class OngoingReassignment:
    """ListPartitionReassignments: ``replicas`` is the full current list (target, then the
    replicas being removed)."""

    topic: str
    partition: int
    replicas: tuple[int, ...]
    adding_replicas: tuple[int, ...]
    removing_replicas: tuple[int, ...]
