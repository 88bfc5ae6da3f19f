"""Admin and loading side of the group state machine: offset commit/fetch validation,
DeleteGroups, DescribeGroups, ListGroups, offset-retention queries, and `restore`/`unload`
of groups as the coordinator's partitions come and go."""

from __future__ import annotations

from collections.abc import Iterable

from suoi.model import ErrorCode

from .core import GroupMachineCore
from .state import ClassicGroup, GroupState, Member
from .types import (
    GroupDescription,
    GroupListing,
    GroupSnapshot,
    MemberDescription,
    Output,
    PersistGroup,
    Protocol,
)

S = GroupState


class GroupAdmin(GroupMachineCore):
    # ================================================================= offsets, admin, loading

    def validate_offset_commit(
        self,
        group_id: str,
        member_id: str,
        generation_id: int,
        group_instance_id: str | None,
        now_ms: int,
        *,
        transactional: bool = False,
    ) -> int:
        """Kafka's ClassicGroup.validateOffsetCommit. Creates an Empty group for an
        admin/simple-consumer commit (generation < 0) to a group that does not exist."""
        if not group_id:
            return ErrorCode.invalid_group_id
        g = self._groups.get(group_id)
        if g is None:
            if generation_id >= 0 and not transactional:
                return ErrorCode.illegal_generation
            g = self._groups[group_id] = ClassicGroup(group_id=group_id, state_timestamp_ms=now_ms)
        if g.is_(S.DEAD):
            return ErrorCode.coordinator_not_available
        if generation_id < 0 and g.is_(S.EMPTY):
            return ErrorCode.none
        if generation_id >= 0 or member_id or group_instance_id is not None:
            err = g.validate_member(member_id, group_instance_id)
            if err:
                return err
            if generation_id != g.generation_id:
                return ErrorCode.illegal_generation
        elif not transactional and not g.is_(S.EMPTY):
            return ErrorCode.unknown_member_id  # a member-less commit only goes to an Empty group
        if not transactional and g.is_(S.COMPLETING_REBALANCE):
            return ErrorCode.rebalance_in_progress  # its assignment may be about to change
        if member_id in g.members:
            self._touch(g, g.members[member_id], now_ms)
        return ErrorCode.none

    def validate_offset_fetch(self, group_id: str) -> int:
        """Classic groups accept any OffsetFetch; unknown groups just have no offsets."""
        g = self._groups.get(group_id)
        if g is not None and g.is_(S.DEAD):
            return ErrorCode.group_id_not_found
        return ErrorCode.none

    def delete_group(self, group_id: str) -> int:
        """Delete an Empty group; on NONE the caller appends its tombstone (and its offsets')."""
        g = self._groups.get(group_id)
        if not group_id:
            return ErrorCode.invalid_group_id
        if g is None or g.is_(S.DEAD):
            return ErrorCode.group_id_not_found
        if not g.is_(S.EMPTY):
            return ErrorCode.non_empty_group
        self._drop_group(g, ErrorCode.coordinator_not_available, [])  # an Empty group has nothing parked
        return ErrorCode.none

    def delete_groups(self, group_ids: Iterable[str]) -> tuple[dict[str, int], list[Output]]:
        """Per-group error codes, and the `PersistGroup(group_id, None)` tombstones to append."""
        errors: dict[str, int] = {}
        out: list[Output] = []
        for gid in group_ids:
            errors[gid] = self.delete_group(gid)
            if errors[gid] == ErrorCode.none:
                out.append(PersistGroup(gid, None))
        return errors, out

    def empty_since(self, group_id: str) -> int | None:
        """For offset retention: when the group became Empty; None while it has members;
        0 for a group this machine does not know (offsets only)."""
        g = self._groups.get(group_id)
        if g is None:
            return 0
        if not g.is_(S.EMPTY):
            return None
        return g.state_timestamp_ms or 0

    def describe(self, group_id: str) -> GroupDescription:
        if not group_id:
            return GroupDescription(group_id=group_id, error_code=ErrorCode.invalid_group_id, state=S.DEAD.value,
                                    protocol_type="", protocol_data="")
        g = self._groups.get(group_id)
        if g is None:
            return GroupDescription(group_id=group_id, error_code=ErrorCode.none, state=S.DEAD.value,
                                    protocol_type="", protocol_data="")
        stable = g.is_(S.STABLE)
        members = tuple(
            MemberDescription(
                member_id=m.member_id,
                group_instance_id=m.group_instance_id,
                client_id=m.client_id,
                client_host=m.client_host,
                metadata=m.metadata(g.protocol_name) if stable else b"",
                assignment=m.assignment if stable else b"",
            )
            for m in g.members.values()
        )
        return GroupDescription(
            group_id=group_id,
            error_code=ErrorCode.none,
            state=g.state.value,
            protocol_type=g.protocol_type or "",
            protocol_data=(g.protocol_name or "") if stable else "",
            members=members,
        )

    def list_groups(
        self, states_filter: Iterable[str] | None = None, types_filter: Iterable[str] | None = None
    ) -> list[GroupListing]:
        """States match case-insensitively (KIP-518); the only type here is "classic"."""
        states = {s.lower() for s in states_filter} if states_filter else None
        types = {t.lower() for t in types_filter} if types_filter else None
        if types is not None and "classic" not in types:
            return []
        return [
            GroupListing(group_id=g.group_id, protocol_type=g.protocol_type or "", state=g.state.value)
            for g in self._groups.values()
            if states is None or g.state.value.lower() in states
        ]

    def restore(self, snapshot: GroupSnapshot, now_ms: int) -> list[Output]:
        """Rebuild a group from its last persisted record (an Empty or Stable group, as Kafka
        loads it); members get fresh sessions from `now_ms`. A tombstone: `unload([group_id])`."""
        out: list[Output] = []
        group_id = snapshot.group_id
        old = self._groups.get(group_id)
        if old is not None:
            self._drop_group(old, ErrorCode.not_coordinator, out)
        g = ClassicGroup(
            group_id=group_id,
            state=S.STABLE if snapshot.members else S.EMPTY,
            state_timestamp_ms=snapshot.current_state_timestamp_ms if snapshot.current_state_timestamp_ms is not None else now_ms,
            generation_id=snapshot.generation_id,
            protocol_type=snapshot.protocol_type or None,
            protocol_name=snapshot.protocol_name,
        )
        for ms in snapshot.members:
            g.add(
                Member(
                    member_id=ms.member_id,
                    group_instance_id=ms.group_instance_id,
                    client_id=ms.client_id,
                    client_host=ms.client_host,
                    rebalance_timeout_ms=ms.rebalance_timeout_ms if ms.rebalance_timeout_ms >= 0 else ms.session_timeout_ms,
                    session_timeout_ms=ms.session_timeout_ms,
                    protocol_type=snapshot.protocol_type or "",
                    protocols=(Protocol(snapshot.protocol_name or "", ms.subscription),),
                    assignment=ms.assignment,
                )
            )
        g.protocol_type = snapshot.protocol_type or None
        if snapshot.leader in g.members:
            g.leader_id = snapshot.leader
        self._groups[group_id] = g
        for m in g.members.values():
            self._touch(g, m, now_ms)
        if self.config.max_size is not None and len(g.members) > self.config.max_size:
            self._prepare_rebalance(g, now_ms, out)  # give the members a chance to commit, then shed
        return out

    def unload(self, group_ids: Iterable[str] | None = None) -> list[Output]:
        """Forget groups (coordinator moved away); parked requests get NOT_COORDINATOR."""
        out: list[Output] = []
        for gid in list(self._groups) if group_ids is None else list(group_ids):
            g = self._groups.get(gid)
            if g is not None:
                self._drop_group(g, ErrorCode.not_coordinator, out)
        return out
