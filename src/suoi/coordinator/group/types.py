"""Plain inputs and outputs of the classic group state machine.

Requests carry an opaque, hashable `token` chosen by the runtime; the machine answers it
with exactly one `Reply(token, api, data)`, now or from a later event or `poll`. State
changes that must be durable before the replies go out come as `PersistGroup` effects in
the same output list: the runtime appends them first, then sends the replies.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

NO_GENERATION = -1
UNKNOWN_MEMBER_ID = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupConfig:
    min_session_timeout_ms: int = 6_000  # group.min.session.timeout.ms
    max_session_timeout_ms: int = 1_800_000  # group.max.session.timeout.ms
    initial_rebalance_delay_ms: int = 3_000  # group.initial.rebalance.delay.ms
    max_size: int | None = None  # group.max.size (None: unbounded)
    new_member_join_timeout_ms: int = 300_000  # Kafka's fixed timeout for a new member's first JoinGroup


# ---------------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class Protocol:
    name: str
    metadata: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class JoinGroupRequest:
    token: Hashable
    group_id: str
    member_id: str = UNKNOWN_MEMBER_ID
    group_instance_id: str | None = None
    protocol_type: str
    protocols: tuple[Protocol, ...]
    session_timeout_ms: int
    rebalance_timeout_ms: int = -1  # v0 has none: the session timeout is used
    client_id: str = ""
    client_host: str = ""
    require_known_member_id: bool = True  # JoinGroup v4+ without group_instance_id
    supports_skip_assignment: bool = False  # JoinGroup v9+
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class SyncAssignment:
    member_id: str
    assignment: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncGroupRequest:
    token: Hashable
    group_id: str
    generation_id: int
    member_id: str
    group_instance_id: str | None = None
    protocol_type: str | None = None  # v5+
    protocol_name: str | None = None  # v5+
    assignments: tuple[SyncAssignment, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatRequest:
    token: Hashable
    group_id: str
    generation_id: int
    member_id: str
    group_instance_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaveMember:
    member_id: str
    group_instance_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaveGroupRequest:
    """v0-2 carry one member id: build `members=(LeaveMember(member_id=...),)`."""

    token: Hashable
    group_id: str
    members: tuple[LeaveMember, ...]


# --------------------------------------------------------------------------------- responses


@dataclass(frozen=True, slots=True)
class JoinMember:
    member_id: str
    group_instance_id: str | None
    metadata: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class JoinGroupResult:
    error_code: int
    generation_id: int = NO_GENERATION
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader: str = ""
    skip_assignment: bool = False
    member_id: str = UNKNOWN_MEMBER_ID
    members: tuple[JoinMember, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncGroupResult:
    error_code: int
    protocol_type: str | None = None
    protocol_name: str | None = None
    assignment: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatResult:
    error_code: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaveMemberResult:
    member_id: str
    group_instance_id: str | None
    error_code: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaveGroupResult:
    """Top-level `error_code`, plus one result per member asked (v3+).

    v0-2 responses have only a top-level code: use `single_error()`.
    """

    error_code: int
    members: tuple[LeaveMemberResult, ...] = ()

    def single_error(self) -> int:
        if self.error_code or not self.members:
            return self.error_code
        return self.members[0].error_code


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberDescription:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupDescription:
    group_id: str
    error_code: int
    state: str  # "Empty" | "PreparingRebalance" | "CompletingRebalance" | "Stable" | "Dead"
    protocol_type: str
    protocol_data: str  # the chosen protocol name while Stable, else ""
    members: tuple[MemberDescription, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupListing:
    group_id: str
    protocol_type: str
    state: str


# ---------------------------------------------------------------------------------- snapshots


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberSnapshot:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    subscription: bytes  # metadata for the group's chosen protocol
    assignment: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupSnapshot:
    """What Kafka's GroupMetadataValue holds: enough to rebuild an Empty or Stable group."""

    group_id: str
    generation_id: int
    protocol_type: str | None
    protocol_name: str | None
    leader: str | None
    current_state_timestamp_ms: int | None = None
    members: tuple[MemberSnapshot, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "group_id": self.group_id,
            "generation_id": self.generation_id,
            "protocol_type": self.protocol_type,
            "protocol_name": self.protocol_name,
            "leader": self.leader,
            "current_state_timestamp_ms": self.current_state_timestamp_ms,
            "members": [
                {
                    "member_id": m.member_id,
                    "group_instance_id": m.group_instance_id,
                    "client_id": m.client_id,
                    "client_host": m.client_host,
                    "rebalance_timeout_ms": m.rebalance_timeout_ms,
                    "session_timeout_ms": m.session_timeout_ms,
                    "subscription": m.subscription,
                    "assignment": m.assignment,
                }
                for m in self.members
            ],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GroupSnapshot:
        return cls(
            group_id=d["group_id"],
            generation_id=d["generation_id"],
            protocol_type=d.get("protocol_type"),
            protocol_name=d.get("protocol_name"),
            leader=d.get("leader"),
            current_state_timestamp_ms=d.get("current_state_timestamp_ms"),
            members=tuple(
                MemberSnapshot(
                    member_id=m["member_id"],
                    group_instance_id=m.get("group_instance_id"),
                    client_id=m.get("client_id", ""),
                    client_host=m.get("client_host", ""),
                    rebalance_timeout_ms=m["rebalance_timeout_ms"],
                    session_timeout_ms=m["session_timeout_ms"],
                    subscription=bytes(m.get("subscription", b"")),
                    assignment=bytes(m.get("assignment", b"")),
                )
                for m in d.get("members", ())
            ),
        )


# ------------------------------------------------------------------------------------ outputs


@dataclass(frozen=True, slots=True)
class Reply:
    token: Hashable
    api: str  # "JoinGroup" | "SyncGroup" | "Heartbeat" | "LeaveGroup"
    data: JoinGroupResult | SyncGroupResult | HeartbeatResult | LeaveGroupResult


@dataclass(frozen=True, slots=True)
class PersistGroup:
    """Append this group record before sending the replies that come with it.

    `snapshot` None is a tombstone (the group was deleted).
    """

    group_id: str
    snapshot: GroupSnapshot | None = field(default=None)


Output = Reply | PersistGroup
