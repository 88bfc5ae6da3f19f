"""Membership events of the group state machine: JoinGroup (new, existing and static
members, group.max.size, MEMBER_ID_REQUIRED) and LeaveGroup (members and admin removal)."""

from __future__ import annotations

from collections.abc import Hashable

from suoi.model import ErrorCode

from .core import GroupMachineCore, _fail_parked, _join_reply
from .state import ClassicGroup, GroupState, Member
from .types import (
    JoinGroupRequest,
    JoinGroupResult,
    LeaveGroupRequest,
    LeaveGroupResult,
    LeaveMemberResult,
    Output,
    PersistGroup,
    Reply,
)

S = GroupState
ADMIN_LEAVE_MEMBER_IDS = ("", "UNKNOWN")


class MembershipEvents(GroupMachineCore):
    # ================================================================================ JoinGroup

    def join(self, req: JoinGroupRequest, now_ms: int) -> list[Output]:
        out: list[Output] = []
        cfg = self.config
        if not req.group_id:
            return [_join_error(req, ErrorCode.invalid_group_id)]
        if not cfg.min_session_timeout_ms <= req.session_timeout_ms <= cfg.max_session_timeout_ms:
            return [_join_error(req, ErrorCode.invalid_session_timeout)]
        unknown = req.member_id == ""
        g = self._groups.get(req.group_id)
        if g is None:
            if not unknown:
                return [_join_error(req, ErrorCode.unknown_member_id)]
            g = self._groups[req.group_id] = ClassicGroup(group_id=req.group_id, state_timestamp_ms=now_ms)

        if not self._accept_joining_member(g, req):
            if req.member_id in g.members:
                self._remove_member(g, req.member_id, out)
            g.pending_members.discard(req.member_id)
            out.append(_join_error(req, ErrorCode.group_max_size_reached, member_id=""))
            self._maybe_complete_join_phase(g, now_ms, out)
        elif unknown:
            self._join_new_member(g, req, now_ms, out)
        else:
            self._join_existing_member(g, req, now_ms, out)
        return out

    def _accept_joining_member(self, g: ClassicGroup, req: JoinGroupRequest) -> bool:
        limit = self.config.max_size
        if limit is None or g.is_(S.EMPTY, S.DEAD):
            return True
        member_id = req.member_id
        if member_id == "" and req.group_instance_id in g.static_members:
            member_id = g.static_members[req.group_instance_id]  # a restart replaces, it does not grow
        if g.is_(S.PREPARING_REBALANCE):
            member = g.members.get(member_id)
            return (member is not None and member.awaiting_join) or g.num_awaiting_join() < limit
        return member_id in g.members or len(g.members) < limit

    def _join_new_member(self, g: ClassicGroup, req: JoinGroupRequest, now: int, out: list[Output]) -> None:
        if g.is_(S.DEAD):
            out.append(_join_error(req, ErrorCode.coordinator_not_available, member_id=""))
            return
        if not g.supports_protocols(req.protocol_type, req.protocols):
            out.append(_join_error(req, ErrorCode.inconsistent_group_protocol, member_id=""))
            return
        iid = req.group_instance_id
        new_id = self._new_member_id(iid if iid is not None else req.client_id)
        if iid is not None:
            old_id = g.static_members.get(iid)
            if old_id is not None:
                self._update_static_member(g, req, old_id, new_id, now, out)
            else:
                self._add_member_and_rebalance(g, req, new_id, now, out)
        elif req.require_known_member_id:
            g.pending_members.add(new_id)
            self._timers.schedule(("pending", g.group_id, new_id), now + req.session_timeout_ms)
            out.append(_join_error(req, ErrorCode.member_id_required, member_id=new_id))
        else:
            self._add_member_and_rebalance(g, req, new_id, now, out)

    def _join_existing_member(self, g: ClassicGroup, req: JoinGroupRequest, now: int, out: list[Output]) -> None:
        mid = req.member_id
        if g.is_(S.DEAD):
            out.append(_join_error(req, ErrorCode.coordinator_not_available))
            return
        if not g.supports_protocols(req.protocol_type, req.protocols):
            out.append(_join_error(req, ErrorCode.inconsistent_group_protocol))
            return
        if mid in g.pending_members and req.group_instance_id is None:
            self._timers.cancel(("pending", g.group_id, mid))
            self._add_member_and_rebalance(g, req, mid, now, out)
            return
        err = g.validate_member(mid, req.group_instance_id)
        if err:
            out.append(_join_error(req, err))
            return
        member = g.members[mid]
        self._touch(g, member, now)
        if g.is_(S.PREPARING_REBALANCE):
            self._update_member(g, member, req, out)
            self._maybe_complete_join_phase(g, now, out)
        elif g.is_(S.COMPLETING_REBALANCE):
            if member.matches(req.protocols):
                # a retry of a JoinGroup whose response was lost: same generation again
                members = g.join_members() if g.is_leader(mid) else ()
                out.append(_join_reply(req.token, self._join_result(g, mid, members)))
            else:
                self._update_member(g, member, req, out)
                self._maybe_prepare_rebalance_or_complete_join(g, now, out)
        elif g.is_(S.STABLE):
            if g.is_leader(mid) or not member.matches(req.protocols):
                # the leader rejoining forces a rebalance (e.g. topic metadata changed)
                self._update_member(g, member, req, out)
                self._maybe_prepare_rebalance_or_complete_join(g, now, out)
            else:
                out.append(_join_reply(req.token, self._join_result(g, mid, ())))
        else:
            out.append(_join_error(req, ErrorCode.unknown_member_id))

    def _add_member_and_rebalance(self, g: ClassicGroup, req: JoinGroupRequest, mid: str, now: int, out: list[Output]) -> None:
        member = Member(
            member_id=mid,
            group_instance_id=req.group_instance_id,
            client_id=req.client_id,
            client_host=req.client_host,
            rebalance_timeout_ms=_rebalance_timeout(req),
            session_timeout_ms=req.session_timeout_ms,
            protocol_type=req.protocol_type,
            protocols=tuple(req.protocols),
            is_new=True,
            join_token=req.token,
        )
        if g.is_(S.PREPARING_REBALANCE) and g.previous_state is S.EMPTY:
            g.new_member_added = True  # extends the initial delayed join
        g.add(member)
        # New members cannot heartbeat yet; bound how long their JoinGroup may stay parked.
        self._timers.schedule(("hb", g.group_id, mid), now + self.config.new_member_join_timeout_ms)
        self._maybe_prepare_rebalance_or_complete_join(g, now, out)

    def _update_member(self, g: ClassicGroup, member: Member, req: JoinGroupRequest, out: list[Output]) -> None:
        if member.join_token is not None and member.join_token != req.token:
            # superseded by this JoinGroup; answer it rather than leave it hanging
            superseded = JoinGroupResult(error_code=ErrorCode.rebalance_in_progress, member_id=member.member_id)
            out.append(_join_reply(member.join_token, superseded))
        member.protocols = tuple(req.protocols)
        member.rebalance_timeout_ms = _rebalance_timeout(req)
        member.session_timeout_ms = req.session_timeout_ms
        member.join_token = req.token

    def _update_static_member(
        self, g: ClassicGroup, req: JoinGroupRequest, old_id: str, new_id: str, now: int, out: list[Output]
    ) -> None:
        """A known group instance id rejoined without a member id: it takes over under `new_id`."""
        iid = req.group_instance_id
        assert iid is not None
        old_leader = g.leader_id
        member = g.members[old_id]
        _fail_parked(member, ErrorCode.fenced_instance_id, out, member_id=old_id)
        self._timers.cancel(("hb", g.group_id, old_id))
        g.replace_static_member(iid, old_id, new_id)
        self._timers.schedule(("hb", g.group_id, new_id), now + req.session_timeout_ms)
        self._update_member(g, member, req, out)

        if g.is_(S.STABLE):
            if g.protocol_name == g.select_protocol():
                # No rebalance: persist the new member id, hand back the current generation.
                out.append(PersistGroup(g.group_id, self._snapshot(g)))
                if req.supports_skip_assignment:
                    leader = g.is_leader(new_id)
                    result = self._join_result(g, new_id, g.join_members() if leader else (), skip_assignment=leader)
                else:
                    # the old leader id makes a restarted leader act as a follower: a Stable
                    # group would not broadcast a fresh assignment anyway
                    result = self._join_result(g, new_id, (), leader=old_leader or "")
                member.join_token = None
                out.append(_join_reply(req.token, result))
            else:
                self._maybe_prepare_rebalance_or_complete_join(g, now, out)
        elif g.is_(S.COMPLETING_REBALANCE):
            # the leader may be assigning to the old member id: start over
            self._prepare_rebalance(g, now, out)
        else:
            self._maybe_complete_join_phase(g, now, out)

    # =============================================================================== LeaveGroup

    def leave(self, req: LeaveGroupRequest, now_ms: int) -> list[Output]:
        out: list[Output] = []
        g = self._groups.get(req.group_id)
        if g is None:
            return [_leave_reply(req.token, LeaveGroupResult(error_code=ErrorCode.unknown_member_id))]
        if g.is_(S.DEAD):
            return [_leave_reply(req.token, LeaveGroupResult(error_code=ErrorCode.coordinator_not_available))]
        results: list[LeaveMemberResult] = []
        left = False
        for who in req.members:
            err = ErrorCode.none
            if who.member_id in ADMIN_LEAVE_MEMBER_IDS:
                # admin removal by group instance id (removeMembersFromConsumerGroup)
                target = g.static_members.get(who.group_instance_id) if who.group_instance_id is not None else None
                if target is None:
                    err = ErrorCode.unknown_member_id
                else:
                    self._remove_member(g, target, out)
            elif who.member_id in g.pending_members:
                g.pending_members.discard(who.member_id)
                self._timers.cancel(("pending", g.group_id, who.member_id))
            else:
                err = g.validate_member(who.member_id, who.group_instance_id)
                if not err:
                    self._remove_member(g, who.member_id, out)
            left = left or err == ErrorCode.none
            results.append(LeaveMemberResult(member_id=who.member_id, group_instance_id=who.group_instance_id, error_code=err))
        if left:
            if g.is_(S.STABLE, S.COMPLETING_REBALANCE):
                self._maybe_prepare_rebalance_or_complete_join(g, now_ms, out)
            elif g.is_(S.PREPARING_REBALANCE):
                self._maybe_complete_join_phase(g, now_ms, out)
        out.append(_leave_reply(req.token, LeaveGroupResult(error_code=ErrorCode.none, members=tuple(results))))
        return out


def _rebalance_timeout(req: JoinGroupRequest) -> int:
    return req.rebalance_timeout_ms if req.rebalance_timeout_ms >= 0 else req.session_timeout_ms


def _join_error(req: JoinGroupRequest, err: ErrorCode, *, member_id: str | None = None) -> Reply:
    return _join_reply(req.token, JoinGroupResult(error_code=err, member_id=req.member_id if member_id is None else member_id))


def _leave_reply(token: Hashable, result: LeaveGroupResult) -> Reply:
    return Reply(token, "LeaveGroup", result)
