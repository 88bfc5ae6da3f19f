"""A driver for GroupStateMachine: a manual clock, numbered tokens, deterministic member ids,
and a record of every reply (asserting that no token is answered twice)."""

from __future__ import annotations

from itertools import count
from typing import Any

from suoi.coordinator.group import (
    ClassicGroup,
    GroupConfig,
    GroupSnapshot,
    GroupStateMachine,
    HeartbeatRequest,
    JoinGroupRequest,
    LeaveGroupRequest,
    LeaveMember,
    Output,
    PersistGroup,
    Protocol,
    Reply,
    SyncAssignment,
    SyncGroupRequest,
)

GROUP = "g"
SESSION = 10_000
REBALANCE = 30_000


def protos(*names: str) -> tuple[Protocol, ...]:
    return tuple(Protocol(n, f"meta-{n}".encode()) for n in names)


class Harness:
    def __init__(self, config: GroupConfig | None = None, now: int = 1_000) -> None:
        self.ids = count(1)
        self.gc = GroupStateMachine(
            config or GroupConfig(initial_rebalance_delay_ms=0), new_member_id=lambda p: f"{p}-{next(self.ids)}"
        )
        self.now = now
        self.tokens = count(1)
        self.replies: dict[Any, Any] = {}
        self.persisted: list[PersistGroup] = []
        self.outputs: list[Output] = []

    # ------------------------------------------------------------------ plumbing
    def _record(self, outs: list[Output]) -> list[Output]:
        for o in outs:
            self.outputs.append(o)
            if isinstance(o, Reply):
                assert o.token not in self.replies, f"token {o.token} answered twice"
                self.replies[o.token] = o.data
            else:
                self.persisted.append(o)
        return outs

    def reply(self, token: Any) -> Any:
        return self.replies.get(token)

    def advance(self, ms: int) -> list[Output]:
        self.now += ms
        return self._record(self.gc.poll(self.now))

    def poll(self) -> list[Output]:
        return self._record(self.gc.poll(self.now))

    # ------------------------------------------------------------------ requests
    def join(self, member_id: str = "", *, group: str = GROUP, instance: str | None = None,
             protocols: tuple[Protocol, ...] | None = None, protocol_type: str = "consumer",
             session: int = SESSION, rebalance: int = REBALANCE, client_id: str = "c",
             require_known: bool | None = None, skip: bool = False) -> int:
        token = next(self.tokens)
        req = JoinGroupRequest(
            token=token, group_id=group, member_id=member_id, group_instance_id=instance,
            protocol_type=protocol_type, protocols=protos("range") if protocols is None else protocols,
            session_timeout_ms=session, rebalance_timeout_ms=rebalance, client_id=client_id, client_host="/127.0.0.1",
            require_known_member_id=(instance is None) if require_known is None else require_known,
            supports_skip_assignment=skip,
        )
        self._record(self.gc.join(req, self.now))
        return token

    def sync(self, member_id: str, generation: int, assignments: dict[str, bytes] | None = None, *,
             group: str = GROUP, instance: str | None = None, protocol_type: str | None = None,
             protocol_name: str | None = None) -> int:
        token = next(self.tokens)
        req = SyncGroupRequest(
            token=token, group_id=group, generation_id=generation, member_id=member_id, group_instance_id=instance,
            protocol_type=protocol_type, protocol_name=protocol_name,
            assignments=tuple(SyncAssignment(m, a) for m, a in (assignments or {}).items()),
        )
        self._record(self.gc.sync(req, self.now))
        return token

    def heartbeat(self, member_id: str, generation: int, *, group: str = GROUP, instance: str | None = None) -> int:
        token = next(self.tokens)
        req = HeartbeatRequest(token=token, group_id=group, generation_id=generation, member_id=member_id,
                               group_instance_id=instance)
        self._record(self.gc.heartbeat(req, self.now))
        return self.replies[token].error_code

    def leave(self, *members: LeaveMember | str, group: str = GROUP) -> Any:
        token = next(self.tokens)
        ms = tuple(LeaveMember(member_id=m) if isinstance(m, str) else m for m in members)
        self._record(self.gc.leave(LeaveGroupRequest(token=token, group_id=group, members=ms), self.now))
        return self.replies[token]

    # ------------------------------------------------------------------ scenarios
    def new_member(self, client_id: str = "c", **kw: Any) -> str:
        """MEMBER_ID_REQUIRED round trip: returns the member id handed out."""
        t = self.join(client_id=client_id, **kw)
        r = self.reply(t)
        assert r.error_code == 79, r
        return r.member_id

    def stable_group(self, n: int, **kw: Any) -> list[str]:
        """n dynamic members, rebalanced, leader synced with b"a-<id>" for each. Returns ids."""
        ids = [self.new_member(client_id=f"c{i}", **kw) for i in range(n)]
        tokens = [self.join(mid, client_id=f"c{i}", **kw) for i, mid in enumerate(ids)]
        self.poll()
        results = [self.reply(t) for t in tokens]
        assert all(r is not None and r.error_code == 0 for r in results), results
        gen = results[0].generation_id
        leader = results[0].leader
        syncs = [self.sync(mid, gen, {m: f"a-{m}".encode() for m in ids} if mid == leader else None) for mid in ids]
        assert all(self.reply(t).error_code == 0 for t in syncs)
        return ids

    def state(self, group: str = GROUP) -> str:
        return self.gc.describe(group).state

    def grp(self, group: str = GROUP) -> ClassicGroup:
        g = self.gc.group(group)
        assert g is not None
        return g

    def snap(self) -> GroupSnapshot:
        """The last persisted snapshot (not a tombstone)."""
        s = self.persisted[-1].snapshot
        assert s is not None
        return s

    def generation(self, group: str = GROUP) -> int:
        g = self.gc.group(group)
        assert g is not None
        return g.generation_id
