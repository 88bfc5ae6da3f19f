"""What every part of the group state machine shares: the groups, the timers, and the
rebalance transitions (prepare, complete the join phase, hand out the assignment).

`GroupMachineCore` is the base of the event mixins (`membership`, `sync_heartbeat`,
`admin`) that `machine.GroupStateMachine` combines; it also fires due timers (`poll`).
Timers, by key:
  ("join", group)            join phase deadline (rebalance timeout, or the initial delay)
  ("sync", group)            members that joined but did not SyncGroup in time are removed
  ("hb", group, member)      session expiry (new members: new_member_join_timeout_ms)
  ("pending", group, member) a MEMBER_ID_REQUIRED id that never rejoined
Not thread-safe: one caller at a time.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable

from suoi.model import ErrorCode

from .state import CAN_REBALANCE, ClassicGroup, GroupState, Member
from .timers import Timers
from .types import (
    GroupConfig,
    GroupSnapshot,
    JoinGroupResult,
    Output,
    PersistGroup,
    Reply,
    SyncGroupResult,
)

S = GroupState


def _default_member_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


class GroupMachineCore:
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
            self._propagate_assignment(g, ErrorCode.rebalance_in_progress, now, out)
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

    def _propagate_assignment(self, g: ClassicGroup, error: ErrorCode, now: int, out: list[Output]) -> None:
        for m in g.members.values():
            if m.sync_token is None:
                continue
            result = self._sync_result(g, m) if error == ErrorCode.none else SyncGroupResult(error_code=error)
            out.append(_sync_reply(m.sync_token, result))
            m.sync_token = None
            self._touch(g, m, now)

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
        _fail_parked(member, ErrorCode.unknown_member_id, out, member_id="")

    def _drop_group(self, g: ClassicGroup, error: ErrorCode, out: list[Output]) -> None:
        """Remove the group and its timers; parked requests are answered with `error`."""
        gid = g.group_id
        for m in g.members.values():
            self._timers.cancel(("hb", gid, m.member_id))
            _fail_parked(m, error, out, member_id=m.member_id)
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
            error_code=ErrorCode.none,
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
            error_code=ErrorCode.none, protocol_type=g.protocol_type, protocol_name=g.protocol_name, assignment=m.assignment
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


def _join_reply(token: Hashable, result: JoinGroupResult) -> Reply:
    return Reply(token, "JoinGroup", result)


def _sync_reply(token: Hashable, result: SyncGroupResult) -> Reply:
    return Reply(token, "SyncGroup", result)


def _fail_parked(member: Member, error: ErrorCode, out: list[Output], *, member_id: str) -> None:
    """Answer the member's parked JoinGroup (with `member_id`) and SyncGroup with `error`."""
    if member.join_token is not None:
        out.append(_join_reply(member.join_token, JoinGroupResult(error_code=error, member_id=member_id)))
        member.join_token = None
    if member.sync_token is not None:
        out.append(_sync_reply(member.sync_token, SyncGroupResult(error_code=error)))
        member.sync_token = None
