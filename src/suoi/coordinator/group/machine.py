"""The classic consumer-group protocol as a sans-IO state machine.

`GroupStateMachine` owns every classic group of one coordinator. Each event method takes a
request (with the runtime's opaque `token`) and the current time in ms and returns a list
of outputs: `Reply` for that request or for requests parked earlier, and `PersistGroup`
effects the runtime must append *before* sending the replies of the same list. Parked
JoinGroup/SyncGroup requests are answered later by another event or by `poll(now_ms)`,
which fires due timers. Event methods never fire timers themselves: the runtime calls
`poll(now)` whenever `next_deadline()` <= now (calling it after every event is fine).

Every parked token is answered exactly once; a parked request that Kafka would silently
drop (a superseded JoinGroup/SyncGroup from the same member, a removed member's SyncGroup)
is answered with an error instead.

Semantics follow Apache Kafka's classic group coordinator (GroupMetadataManager /
ClassicGroup). Timers, by key:
  ("join", group)            join phase deadline (rebalance timeout, or the initial delay)
  ("sync", group)            members that joined but did not SyncGroup in time are removed
  ("hb", group, member)      session expiry (new members: new_member_join_timeout_ms)
  ("pending", group, member) a MEMBER_ID_REQUIRED id that never rejoined
Not thread-safe: one caller at a time.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable, Iterable

from .errors import Err
from .state import CAN_REBALANCE, ClassicGroup, GroupState, Member
from .timers import Timers
from .types import (
    GroupConfig,
    GroupDescription,
    GroupListing,
    GroupSnapshot,
    HeartbeatRequest,
    HeartbeatResult,
    JoinGroupRequest,
    JoinGroupResult,
    LeaveGroupRequest,
    LeaveGroupResult,
    LeaveMemberResult,
    MemberDescription,
    Output,
    PersistGroup,
    Protocol,
    Reply,
    SyncGroupRequest,
    SyncGroupResult,
)

S = GroupState
ADMIN_LEAVE_MEMBER_IDS = ("", "UNKNOWN")


def _default_member_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


class GroupStateMachine:
    def __init__(self, config: GroupConfig | None = None, *, new_member_id: Callable[[str], str] | None = None) -> None:
        """`new_member_id(prefix)` makes member ids; prefix is the group instance id or client id."""
        self.config = config or GroupConfig()
        self._new_member_id = new_member_id or _default_member_id
        self._groups: dict[str, ClassicGroup] = {}
        self._timers = Timers()

    # ================================================================== queries for the runtime

    def next_deadline(self) -> int | None:
        return self._timers.next_deadline()

    def group(self, group_id: str) -> ClassicGroup | None:
        """The live group object (read-only use: tests, metrics)."""
        return self._groups.get(group_id)

    def group_ids(self) -> list[str]:
        return list(self._groups)

    # ================================================================================ JoinGroup

    def join(self, req: JoinGroupRequest, now_ms: int) -> list[Output]:
        out: list[Output] = []
        cfg = self.config
        if not req.group_id:
            return [_join_error(req, Err.INVALID_GROUP_ID)]
        if not cfg.min_session_timeout_ms <= req.session_timeout_ms <= cfg.max_session_timeout_ms:
            return [_join_error(req, Err.INVALID_SESSION_TIMEOUT)]
        unknown = req.member_id == ""
        g = self._groups.get(req.group_id)
        if g is None:
            if not unknown:
                return [_join_error(req, Err.UNKNOWN_MEMBER_ID)]
            g = self._groups[req.group_id] = ClassicGroup(group_id=req.group_id, state_timestamp_ms=now_ms)

        if not self._accept_joining_member(g, req):
            if req.member_id in g.members:
                self._remove_member(g, req.member_id, out)
            g.pending_members.discard(req.member_id)
            out.append(_join_error(req, Err.GROUP_MAX_SIZE_REACHED, member_id=""))
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
            out.append(_join_error(req, Err.COORDINATOR_NOT_AVAILABLE, member_id=""))
            return
        if not g.supports_protocols(req.protocol_type, req.protocols):
            out.append(_join_error(req, Err.INCONSISTENT_GROUP_PROTOCOL, member_id=""))
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
            out.append(_join_error(req, Err.MEMBER_ID_REQUIRED, member_id=new_id))
        else:
            self._add_member_and_rebalance(g, req, new_id, now, out)

    def _join_existing_member(self, g: ClassicGroup, req: JoinGroupRequest, now: int, out: list[Output]) -> None:
        mid = req.member_id
        if g.is_(S.DEAD):
            out.append(_join_error(req, Err.COORDINATOR_NOT_AVAILABLE))
            return
        if not g.supports_protocols(req.protocol_type, req.protocols):
            out.append(_join_error(req, Err.INCONSISTENT_GROUP_PROTOCOL))
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
            out.append(_join_error(req, Err.UNKNOWN_MEMBER_ID))

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
            superseded = JoinGroupResult(error_code=Err.REBALANCE_IN_PROGRESS, member_id=member.member_id)
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
        if member.join_token is not None:
            out.append(_join_reply(member.join_token, JoinGroupResult(error_code=Err.FENCED_INSTANCE_ID, member_id=old_id)))
            member.join_token = None
        if member.sync_token is not None:
            out.append(_sync_reply(member.sync_token, SyncGroupResult(error_code=Err.FENCED_INSTANCE_ID)))
            member.sync_token = None
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
            return [_sync_reply(req.token, SyncGroupResult(error_code=Err.REBALANCE_IN_PROGRESS))]
        if g.is_(S.STABLE):
            self._mark_synced(g, req.member_id)
            return [_sync_reply(req.token, self._sync_result(g, member))]
        # CompletingRebalance: park until the leader's assignment arrives
        if member.sync_token is not None and member.sync_token != req.token:
            out.append(_sync_reply(member.sync_token, SyncGroupResult(error_code=Err.REBALANCE_IN_PROGRESS)))
        member.sync_token = req.token
        self._mark_synced(g, req.member_id)
        if g.is_leader(req.member_id):
            assignments = {a.member_id: a.assignment for a in req.assignments}
            for m in g.members.values():
                m.assignment = assignments.get(m.member_id, b"")
            g.transition(S.STABLE, now_ms)
            out.append(PersistGroup(g.group_id, self._snapshot(g)))
            self._propagate_assignment(g, Err.NONE, now_ms, out)
        return out

    def _validate_sync(self, g: ClassicGroup | None, req: SyncGroupRequest) -> Err:
        if g is None:
            return Err.UNKNOWN_MEMBER_ID
        if g.is_(S.DEAD):
            return Err.COORDINATOR_NOT_AVAILABLE
        err = g.validate_member(req.member_id, req.group_instance_id)
        if err:
            return err
        if req.generation_id != g.generation_id:
            return Err.ILLEGAL_GENERATION
        if _inconsistent(req.protocol_type, g.protocol_type) or _inconsistent(req.protocol_name, g.protocol_name):
            return Err.INCONSISTENT_GROUP_PROTOCOL
        if g.is_(S.EMPTY):
            return Err.UNKNOWN_MEMBER_ID
        return Err.NONE

    def _mark_synced(self, g: ClassicGroup, member_id: str) -> None:
        g.pending_sync.discard(member_id)
        if not g.pending_sync:
            self._timers.cancel(("sync", g.group_id))

    def _propagate_assignment(self, g: ClassicGroup, error: Err, now: int, out: list[Output]) -> None:
        for m in g.members.values():
            if m.sync_token is None:
                continue
            result = self._sync_result(g, m) if error == Err.NONE else SyncGroupResult(error_code=error)
            out.append(_sync_reply(m.sync_token, result))
            m.sync_token = None
            self._touch(g, m, now)

    # ================================================================================ Heartbeat

    def heartbeat(self, req: HeartbeatRequest, now_ms: int) -> list[Output]:
        return [Reply(req.token, "Heartbeat", HeartbeatResult(error_code=self._heartbeat(req, now_ms)))]

    def _heartbeat(self, req: HeartbeatRequest, now: int) -> Err:
        g = self._groups.get(req.group_id)
        if g is None:
            return Err.UNKNOWN_MEMBER_ID
        if g.is_(S.DEAD):
            return Err.COORDINATOR_NOT_AVAILABLE
        err = g.validate_member(req.member_id, req.group_instance_id)
        if err:
            return err
        if req.generation_id != g.generation_id:
            return Err.ILLEGAL_GENERATION
        if g.is_(S.EMPTY):
            return Err.UNKNOWN_MEMBER_ID
        self._touch(g, g.members[req.member_id], now)
        return Err.REBALANCE_IN_PROGRESS if g.is_(S.PREPARING_REBALANCE) else Err.NONE

    # =============================================================================== LeaveGroup

    def leave(self, req: LeaveGroupRequest, now_ms: int) -> list[Output]:
        out: list[Output] = []
        g = self._groups.get(req.group_id)
        if g is None:
            return [_leave_reply(req.token, LeaveGroupResult(error_code=Err.UNKNOWN_MEMBER_ID))]
        if g.is_(S.DEAD):
            return [_leave_reply(req.token, LeaveGroupResult(error_code=Err.COORDINATOR_NOT_AVAILABLE))]
        results: list[LeaveMemberResult] = []
        left = False
        for who in req.members:
            err = Err.NONE
            if who.member_id in ADMIN_LEAVE_MEMBER_IDS:
                # admin removal by group instance id (removeMembersFromConsumerGroup)
                target = g.static_members.get(who.group_instance_id) if who.group_instance_id is not None else None
                if target is None:
                    err = Err.UNKNOWN_MEMBER_ID
                else:
                    self._remove_member(g, target, out)
            elif who.member_id in g.pending_members:
                g.pending_members.discard(who.member_id)
                self._timers.cancel(("pending", g.group_id, who.member_id))
            else:
                err = g.validate_member(who.member_id, who.group_instance_id)
                if not err:
                    self._remove_member(g, who.member_id, out)
            left = left or err == Err.NONE
            results.append(LeaveMemberResult(member_id=who.member_id, group_instance_id=who.group_instance_id, error_code=err))
        if left:
            if g.is_(S.STABLE, S.COMPLETING_REBALANCE):
                self._maybe_prepare_rebalance_or_complete_join(g, now_ms, out)
            elif g.is_(S.PREPARING_REBALANCE):
                self._maybe_complete_join_phase(g, now_ms, out)
        out.append(_leave_reply(req.token, LeaveGroupResult(error_code=Err.NONE, members=tuple(results))))
        return out

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
            return Err.INVALID_GROUP_ID
        g = self._groups.get(group_id)
        if g is None:
            if generation_id >= 0 and not transactional:
                return Err.ILLEGAL_GENERATION
            g = self._groups[group_id] = ClassicGroup(group_id=group_id, state_timestamp_ms=now_ms)
        if g.is_(S.DEAD):
            return Err.COORDINATOR_NOT_AVAILABLE
        if generation_id < 0 and g.is_(S.EMPTY):
            return Err.NONE
        if generation_id >= 0 or member_id or group_instance_id is not None:
            err = g.validate_member(member_id, group_instance_id)
            if err:
                return err
            if generation_id != g.generation_id:
                return Err.ILLEGAL_GENERATION
        elif not transactional and not g.is_(S.EMPTY):
            return Err.UNKNOWN_MEMBER_ID  # a member-less commit only goes to an Empty group
        if not transactional and g.is_(S.COMPLETING_REBALANCE):
            return Err.REBALANCE_IN_PROGRESS  # its assignment may be about to change
        if member_id in g.members:
            self._touch(g, g.members[member_id], now_ms)
        return Err.NONE

    def validate_offset_fetch(self, group_id: str) -> int:
        """Classic groups accept any OffsetFetch; unknown groups just have no offsets."""
        g = self._groups.get(group_id)
        if g is not None and g.is_(S.DEAD):
            return Err.GROUP_ID_NOT_FOUND
        return Err.NONE

    def delete_group(self, group_id: str) -> int:
        """Delete an Empty group; on NONE the caller appends its tombstone (and its offsets')."""
        g = self._groups.get(group_id)
        if not group_id:
            return Err.INVALID_GROUP_ID
        if g is None or g.is_(S.DEAD):
            return Err.GROUP_ID_NOT_FOUND
        if not g.is_(S.EMPTY):
            return Err.NON_EMPTY_GROUP
        self._drop_group(g, Err.COORDINATOR_NOT_AVAILABLE, [])  # an Empty group has nothing parked
        return Err.NONE

    def delete_groups(self, group_ids: Iterable[str]) -> tuple[dict[str, int], list[Output]]:
        """Per-group error codes, and the `PersistGroup(group_id, None)` tombstones to append."""
        errors: dict[str, int] = {}
        out: list[Output] = []
        for gid in group_ids:
            errors[gid] = self.delete_group(gid)
            if errors[gid] == Err.NONE:
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
            return GroupDescription(group_id=group_id, error_code=Err.INVALID_GROUP_ID, state=S.DEAD.value,
                                    protocol_type="", protocol_data="")
        g = self._groups.get(group_id)
        if g is None:
            return GroupDescription(group_id=group_id, error_code=Err.NONE, state=S.DEAD.value,
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
            error_code=Err.NONE,
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
            self._drop_group(old, Err.NOT_COORDINATOR, out)
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
                self._drop_group(g, Err.NOT_COORDINATOR, out)
        return out

    # ==================================================================================== timers

    def poll(self, now_ms: int) -> list[Output]:
        out: list[Output] = []
        while (key := self._timers.pop_due(now_ms)) is not None:
            assert isinstance(key, tuple)
            kind, gid = key[0], key[1]
            g = self._groups.get(gid)
            if g is None:
                continue
            if kind == "join":
                self._on_join_timer(g, now_ms, out)
            elif kind == "sync":
                self._on_sync_timer(g, now_ms, out)
            elif kind == "hb":
                self._on_heartbeat_timer(g, key[2], now_ms, out)
            elif kind == "pending":
                self._on_pending_timer(g, key[2], now_ms, out)
        return out

    def _on_join_timer(self, g: ClassicGroup, now: int, out: list[Output]) -> None:
        if not g.is_(S.PREPARING_REBALANCE):
            return
        if g.delayed_initial_join and g.new_member_added and g.initial_remaining_ms != 0:
            # Kafka's InitialDelayedJoin: someone joined during the delay, wait a bit more
            g.new_member_added = False
            delay = min(self.config.initial_rebalance_delay_ms, g.initial_remaining_ms)
            g.initial_remaining_ms = max(g.initial_remaining_ms - g.initial_delay_ms, 0)
            g.initial_delay_ms = delay
            self._timers.schedule(("join", g.group_id), now + delay)
        else:
            self._complete_join(g, now, out)

    def _on_sync_timer(self, g: ClassicGroup, now: int, out: list[Output]) -> None:
        if g.is_(S.COMPLETING_REBALANCE, S.STABLE) and g.pending_sync:
            for mid in list(g.pending_sync):
                self._remove_member(g, mid, out)
            self._prepare_rebalance(g, now, out)

    def _on_heartbeat_timer(self, g: ClassicGroup, member_id: str, now: int, out: list[Output]) -> None:
        member = g.members.get(member_id)
        if member is None:
            return
        if not member.is_new and (member.awaiting_join or member.awaiting_sync):
            return  # parked in a rebalance: its session restarts when the rebalance answers it
        self._remove_member(g, member_id, out)
        if g.is_(S.STABLE, S.COMPLETING_REBALANCE):
            self._maybe_prepare_rebalance_or_complete_join(g, now, out)
        elif g.is_(S.PREPARING_REBALANCE) and g.has_all_members_joined():
            self._complete_join(g, now, out)

    def _on_pending_timer(self, g: ClassicGroup, member_id: str, now: int, out: list[Output]) -> None:
        if member_id in g.pending_members:
            g.pending_members.discard(member_id)
            if g.is_(S.PREPARING_REBALANCE) and g.has_all_members_joined():
                self._complete_join(g, now, out)

    # ================================================================= rebalance state changes

    def _maybe_prepare_rebalance_or_complete_join(self, g: ClassicGroup, now: int, out: list[Output]) -> None:
        if g.state in CAN_REBALANCE:
            self._prepare_rebalance(g, now, out)
        else:
            self._maybe_complete_join_phase(g, now, out)

    def _maybe_complete_join_phase(self, g: ClassicGroup, now: int, out: list[Output]) -> None:
        # the initial rebalance always waits for its delay
        if g.is_(S.PREPARING_REBALANCE) and g.has_all_members_joined() and g.previous_state is not S.EMPTY:
            self._complete_join(g, now, out)

    def _prepare_rebalance(self, g: ClassicGroup, now: int, out: list[Output]) -> None:
        if g.is_(S.COMPLETING_REBALANCE):
            for m in g.members.values():
                m.assignment = b""
            self._propagate_assignment(g, Err.REBALANCE_IN_PROGRESS, now, out)
        g.pending_sync.clear()
        self._timers.cancel(("sync", g.group_id))
        initial = g.is_(S.EMPTY)
        g.transition(S.PREPARING_REBALANCE, now)
        if initial:
            delay = self.config.initial_rebalance_delay_ms
            g.delayed_initial_join = True
            g.new_member_added = False
            g.initial_delay_ms = delay
            g.initial_remaining_ms = max(g.rebalance_timeout_ms() - delay, 0)
            self._timers.schedule(("join", g.group_id), now + delay)
        elif g.has_all_members_joined():
            self._complete_join(g, now, out)
        else:
            g.delayed_initial_join = False
            self._timers.schedule(("join", g.group_id), now + g.rebalance_timeout_ms())

    def _complete_join(self, g: ClassicGroup, now: int, out: list[Output]) -> None:
        self._timers.cancel(("join", g.group_id))
        g.delayed_initial_join = False
        for m in g.not_yet_rejoined():
            if m.group_instance_id is None:  # static members keep their place until their session ends
                self._remove_member(g, m.member_id, out)
        if g.is_(S.DEAD):
            return
        if g.members and not g.maybe_elect_joined_leader():
            # only static members that have not rejoined: wait for them (or their sessions) again
            self._timers.schedule(("join", g.group_id), now + max(1, g.rebalance_timeout_ms()))
            return
        g.generation_id += 1
        if not g.members:
            g.protocol_name = None
            g.transition(S.EMPTY, now)
            out.append(PersistGroup(g.group_id, self._snapshot(g)))
            return
        g.protocol_name = g.select_protocol()
        g.transition(S.COMPLETING_REBALANCE, now)
        all_members = g.join_members()
        for m in g.members.values():
            if m.join_token is not None:
                result = self._join_result(g, m.member_id, all_members if g.is_leader(m.member_id) else ())
                out.append(_join_reply(m.join_token, result))
                m.join_token = None
            m.is_new = False
            self._touch(g, m, now)
            g.pending_sync.add(m.member_id)
        self._timers.schedule(("sync", g.group_id), now + g.rebalance_timeout_ms())

    # =================================================================================== helpers

    def _touch(self, g: ClassicGroup, m: Member, now: int) -> None:
        """Restart the member's session (a new member keeps its longer first-join bound)."""
        timeout = self.config.new_member_join_timeout_ms if m.is_new else m.session_timeout_ms
        self._timers.schedule(("hb", g.group_id, m.member_id), now + timeout)

    def _remove_member(self, g: ClassicGroup, member_id: str, out: list[Output]) -> None:
        member = g.remove(member_id)
        self._timers.cancel(("hb", g.group_id, member_id))
        if member is None:
            return
        # a parked JoinGroup gets UNKNOWN_MEMBER_ID so a live client simply rejoins
        if member.join_token is not None:
            out.append(_join_reply(member.join_token, JoinGroupResult(error_code=Err.UNKNOWN_MEMBER_ID, member_id="")))
            member.join_token = None
        if member.sync_token is not None:
            out.append(_sync_reply(member.sync_token, SyncGroupResult(error_code=Err.UNKNOWN_MEMBER_ID)))
            member.sync_token = None

    def _drop_group(self, g: ClassicGroup, error: Err, out: list[Output]) -> None:
        """Remove the group and its timers; parked requests are answered with `error`."""
        gid = g.group_id
        for m in g.members.values():
            self._timers.cancel(("hb", gid, m.member_id))
            if m.join_token is not None:
                out.append(_join_reply(m.join_token, JoinGroupResult(error_code=error, member_id=m.member_id)))
                m.join_token = None
            if m.sync_token is not None:
                out.append(_sync_reply(m.sync_token, SyncGroupResult(error_code=error)))
                m.sync_token = None
        for mid in g.pending_members:
            self._timers.cancel(("pending", gid, mid))
        self._timers.cancel(("join", gid))
        self._timers.cancel(("sync", gid))
        g.transition(S.DEAD, g.state_timestamp_ms or 0)
        del self._groups[gid]

    def _join_result(
        self, g: ClassicGroup, member_id: str, members: tuple, *, skip_assignment: bool = False, leader: str | None = None
    ) -> JoinGroupResult:
        return JoinGroupResult(
            error_code=Err.NONE,
            generation_id=g.generation_id,
            protocol_type=g.protocol_type,
            protocol_name=g.protocol_name,
            leader=(g.leader_id or "") if leader is None else leader,
            skip_assignment=skip_assignment,
            member_id=member_id,
            members=members,
        )

    @staticmethod
    def _sync_result(g: ClassicGroup, m: Member) -> SyncGroupResult:
        return SyncGroupResult(
            error_code=Err.NONE, protocol_type=g.protocol_type, protocol_name=g.protocol_name, assignment=m.assignment
        )

    @staticmethod
    def _snapshot(g: ClassicGroup) -> GroupSnapshot:
        return GroupSnapshot(
            group_id=g.group_id,
            generation_id=g.generation_id,
            protocol_type=g.protocol_type,
            protocol_name=g.protocol_name,
            leader=g.leader_id,
            current_state_timestamp_ms=g.state_timestamp_ms,
            members=g.member_snapshots(),
        )


def _rebalance_timeout(req: JoinGroupRequest) -> int:
    return req.rebalance_timeout_ms if req.rebalance_timeout_ms >= 0 else req.session_timeout_ms


def _inconsistent(requested: str | None, current: str | None) -> bool:
    return requested is not None and current is not None and requested != current


def _join_error(req: JoinGroupRequest, err: Err, *, member_id: str | None = None) -> Reply:
    return _join_reply(req.token, JoinGroupResult(error_code=err, member_id=req.member_id if member_id is None else member_id))


def _join_reply(token: Hashable, result: JoinGroupResult) -> Reply:
    return Reply(token, "JoinGroup", result)


def _sync_reply(token: Hashable, result: SyncGroupResult) -> Reply:
    return Reply(token, "SyncGroup", result)


def _leave_reply(token: Hashable, result: LeaveGroupResult) -> Reply:
    return Reply(token, "LeaveGroup", result)
