"""SyncGroup and Heartbeat events of the group state machine: the leader's assignment,
followers parked until it arrives, and session keep-alives."""

from __future__ import annotations

from suoi.model import ErrorCode

from .core import GroupMachineCore, _sync_reply
from .state import ClassicGroup, GroupState
from .types import (
    HeartbeatRequest,
    HeartbeatResult,
    Output,
    PersistGroup,
    Reply,
    SyncGroupRequest,
    SyncGroupResult,
)

S = GroupState


class SyncHeartbeatEvents(GroupMachineCore):
    # ================================================================================ SyncGroup

    def sync(self, req: SyncGroupRequest, now_ms: int) -> list[Output]:
        out: list[Output] = []
        g = self._groups.get(req.group_id)
        err = self._validate_sync(g, req)
        if err:
            return [_sync_reply(req.token, SyncGroupResult(error_code=err))]
        assert g is not None
        member = g.members[req.member_id]
        self._touch(g, member, now_ms)
        if g.is_(S.PREPARING_REBALANCE):
            return [_sync_reply(req.token, SyncGroupResult(error_code=ErrorCode.rebalance_in_progress))]
        if g.is_(S.STABLE):
            self._mark_synced(g, req.member_id)
            return [_sync_reply(req.token, self._sync_result(g, member))]
        # CompletingRebalance: park until the leader's assignment arrives
        if member.sync_token is not None and member.sync_token != req.token:
            out.append(_sync_reply(member.sync_token, SyncGroupResult(error_code=ErrorCode.rebalance_in_progress)))
        member.sync_token = req.token
        self._mark_synced(g, req.member_id)
        if g.is_leader(req.member_id):
            assignments = {a.member_id: a.assignment for a in req.assignments}
            for m in g.members.values():
                m.assignment = assignments.get(m.member_id, b"")
            g.transition(S.STABLE, now_ms)
            out.append(PersistGroup(g.group_id, self._snapshot(g)))
            self._propagate_assignment(g, ErrorCode.none, now_ms, out)
        return out

    def _validate_sync(self, g: ClassicGroup | None, req: SyncGroupRequest) -> ErrorCode:
        err = _validate_generation(g, req.member_id, req.group_instance_id, req.generation_id)
        if err or g is None:
            return err
        if _inconsistent(req.protocol_type, g.protocol_type) or _inconsistent(req.protocol_name, g.protocol_name):
            return ErrorCode.inconsistent_group_protocol
        if g.is_(S.EMPTY):
            return ErrorCode.unknown_member_id
        return ErrorCode.none

    def _mark_synced(self, g: ClassicGroup, member_id: str) -> None:
        g.pending_sync.discard(member_id)
        if not g.pending_sync:
            self._timers.cancel(("sync", g.group_id))

    # ================================================================================ Heartbeat

    def heartbeat(self, req: HeartbeatRequest, now_ms: int) -> list[Output]:
        return [Reply(req.token, "Heartbeat", HeartbeatResult(error_code=self._heartbeat(req, now_ms)))]

    def _heartbeat(self, req: HeartbeatRequest, now: int) -> ErrorCode:
        g = self._groups.get(req.group_id)
        err = _validate_generation(g, req.member_id, req.group_instance_id, req.generation_id)
        if err or g is None:
            return err
        if g.is_(S.EMPTY):
            return ErrorCode.unknown_member_id
        self._touch(g, g.members[req.member_id], now)
        return ErrorCode.rebalance_in_progress if g.is_(S.PREPARING_REBALANCE) else ErrorCode.none


def _validate_generation(g: ClassicGroup | None, member_id: str, group_instance_id: str | None, generation_id: int) -> ErrorCode:
    """The checks SyncGroup and Heartbeat share: a live group, a known member, its generation."""
    if g is None:
        return ErrorCode.unknown_member_id
    if g.is_(S.DEAD):
        return ErrorCode.coordinator_not_available
    err = g.validate_member(member_id, group_instance_id)
    if err:
        return err
    if generation_id != g.generation_id:
        return ErrorCode.illegal_generation
    return ErrorCode.none


def _inconsistent(requested: str | None, current: str | None) -> bool:
    return requested is not None and current is not None and requested != current

