"""Seeded random runs: clients join, sync, heartbeat, leave, crash, restart (static) and
time jumps, with invariants checked after every step; then every live client behaves and
the group must settle with every parked request answered. A failing seed reproduces
exactly: `pytest tests/unit/coordinator/test_group_random.py -k 'seed-17'`."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

import pytest

from suoi.coordinator.group import GroupConfig, GroupState, LeaveMember, Protocol, Reply
from suoi.model import ErrorCode

from .group_helpers import GROUP, Harness

PROTOCOL_CHOICES = [("range", "roundrobin"), ("roundrobin", "range"), ("range",), ("sticky", "range")]
SEEDS = int(os.environ.get("SUOI_GROUP_SEEDS", "60"))


@dataclass
class Client:
    name: str
    instance: str | None
    protocols: tuple[str, ...]
    session: int
    rebalance: int
    member_id: str = ""
    generation: int = -1
    is_leader: bool = False
    skip: bool = False
    members: tuple[str, ...] = ()
    join_token: int | None = None
    sync_token: int | None = None
    need_rejoin: bool = True
    synced: bool = False
    alive: bool = True  # False: crashed, left, fenced or rejected; sends nothing more
    last_heartbeat: int = 0
    meta: bytes = b"m0"

    def protos(self) -> tuple[Protocol, ...]:
        return tuple(Protocol(p, self.meta) for p in self.protocols)


@dataclass
class Sim:
    rng: random.Random
    h: Harness
    clients: list[Client] = field(default_factory=list)
    owner: dict[int, Client] = field(default_factory=dict)
    outstanding: set[int] = field(default_factory=set)
    seen: int = 0
    last_generation: int = 0
    n: int = 0

    # ------------------------------------------------------------------ client actions
    def new_client(self, instance: str | None = None) -> Client:
        self.n += 1
        static = instance is not None or self.rng.random() < 0.4
        c = Client(
            name=f"c{self.n}",
            instance=instance if instance is not None else (f"i{self.n}" if static else None),
            protocols=self.rng.choice(PROTOCOL_CHOICES),
            session=self.rng.choice([6_000, 8_000, 10_000]),
            rebalance=self.rng.choice([6_000, 15_000, 30_000]),
            skip=self.rng.random() < 0.5,
        )
        self.clients.append(c)
        return c

    def join(self, c: Client) -> None:
        if c.join_token is not None:
            return
        t = self.h.join(c.member_id, instance=c.instance, protocols=c.protos(), session=c.session,
                        rebalance=c.rebalance, client_id=c.name, skip=c.skip)
        self._sent(c, t, "join")

    def sync(self, c: Client) -> None:
        if c.sync_token is not None or not c.member_id or c.generation < 0:
            return
        assignments = {m: f"a{c.generation}-{m}".encode() for m in c.members} if c.is_leader else None
        t = self.h.sync(c.member_id, c.generation, assignments, instance=c.instance)
        self._sent(c, t, "sync")

    def heartbeat(self, c: Client) -> None:
        if not c.member_id:
            return
        c.last_heartbeat = self.h.now
        self._on_heartbeat(c, self.h.heartbeat(c.member_id, c.generation, instance=c.instance))

    def leave(self, c: Client) -> None:
        if c.member_id:
            self.h.leave(LeaveMember(member_id=c.member_id, group_instance_id=c.instance))
        c.alive = False

    def _sent(self, c: Client, token: int, kind: str) -> None:
        self.owner[token] = c
        if token in self.h.replies:
            return  # answered at once; handled in drain()
        self.outstanding.add(token)
        if kind == "join":
            c.join_token = token
        else:
            c.sync_token = token

    # ------------------------------------------------------------------ replies
    def drain(self) -> None:
        outs = self.h.outputs[self.seen:]
        self.seen = len(self.h.outputs)
        for o in outs:
            if not isinstance(o, Reply) or o.api not in ("JoinGroup", "SyncGroup"):
                continue
            token = o.token
            assert isinstance(token, int)
            self.outstanding.discard(token)
            c = self.owner[token]
            if o.api == "JoinGroup":
                if c.join_token == token:
                    c.join_token = None
                self._on_join(c, o.data)
            else:
                if c.sync_token == token:
                    c.sync_token = None
                self._on_sync(c, o.data)

    def _on_join(self, c: Client, r) -> None:
        if r.error_code == ErrorCode.none:
            c.member_id, c.generation = r.member_id, r.generation_id
            c.is_leader = r.leader == r.member_id and not r.skip_assignment
            c.members = tuple(m.member_id for m in r.members)
            c.need_rejoin, c.synced = False, False
        elif r.error_code == ErrorCode.member_id_required:
            c.member_id, c.need_rejoin = r.member_id, True
        elif r.error_code in (ErrorCode.fenced_instance_id, ErrorCode.group_max_size_reached):
            c.alive = False
        else:
            if r.error_code == ErrorCode.unknown_member_id:
                c.member_id, c.generation = "", -1
            c.need_rejoin = True

    def _on_sync(self, c: Client, r) -> None:
        if r.error_code == ErrorCode.none:
            c.synced = True
            assert r.assignment, f"{c.member_id} synced with an empty assignment"
        elif r.error_code == ErrorCode.fenced_instance_id:
            c.alive = False
        else:
            if r.error_code == ErrorCode.unknown_member_id:
                c.member_id, c.generation = "", -1
            c.need_rejoin = True

    def _on_heartbeat(self, c: Client, err: int) -> None:
        if err in (ErrorCode.rebalance_in_progress, ErrorCode.illegal_generation):
            c.need_rejoin = True
        elif err == ErrorCode.unknown_member_id:
            c.member_id, c.generation, c.need_rejoin = "", -1, True
        elif err == ErrorCode.fenced_instance_id:
            c.alive = False

    # ------------------------------------------------------------------ invariants
    def check(self) -> None:
        g = self.h.gc.group(GROUP)
        if g is None:
            return
        assert g.generation_id >= self.last_generation, "generation went backwards"
        self.last_generation = g.generation_id
        if g.members:
            assert g.leader_id in g.members
        else:
            assert g.leader_id is None
        parked = {m.join_token for m in g.members.values()} | {m.sync_token for m in g.members.values()}
        parked.discard(None)
        assert parked == self.outstanding, "parked tokens differ from unanswered requests"
        if g.state is GroupState.STABLE:
            for m in g.members.values():
                assert m.assignment, f"member {m.member_id} of a Stable group has no assignment"
        if g.state in (GroupState.COMPLETING_REBALANCE, GroupState.STABLE):
            assert all(m.join_token is None for m in g.members.values())
            assert g.protocol_name is not None
            assert all(g.protocol_name in m.protocol_names() for m in g.members.values())
        if g.state is not GroupState.COMPLETING_REBALANCE:
            assert all(m.sync_token is None for m in g.members.values())
        if g.state is GroupState.EMPTY:
            assert not g.members
        for iid, mid in g.static_members.items():
            assert g.members[mid].group_instance_id == iid
        assert g.leader_id is None or g.state is not GroupState.EMPTY

    # ------------------------------------------------------------------ driving
    def random_step(self) -> None:
        rng = self.rng
        live = [c for c in self.clients if c.alive]
        action = rng.choices(
            ["new", "join", "sync", "heartbeat", "advance", "leave", "crash", "restart", "zombie", "commit", "admin",
             "meta"],
            weights=[6, 14, 14, 14, 18, 3, 2, 3, 2, 3, 1, 2],
        )[0]
        if action == "new" or not live:
            self.join(self.new_client())
        elif action == "advance":
            self.h.advance(rng.choice([0, 1, 500, 2_000, 5_000, 9_000, 31_000]))
        else:
            c = rng.choice(live)
            if action == "join":
                self.join(c)
            elif action == "sync":
                self.sync(c)
            elif action == "heartbeat":
                self.heartbeat(c)
            elif action == "leave":
                self.leave(c)
            elif action == "crash":
                c.alive = False
            elif action == "restart" and c.instance is not None:
                c.alive = False  # the process restarts: same instance id, no member id
                self.join(self.new_client(instance=c.instance))
            elif action == "zombie":
                dead = [d for d in self.clients if not d.alive and d.member_id]
                if dead:
                    z = rng.choice(dead)
                    if rng.random() < 0.5:
                        self.heartbeat(z)
                    else:
                        self.sync(z)
            elif action == "commit":
                self.h.gc.validate_offset_commit(GROUP, c.member_id, c.generation, c.instance, self.h.now)
            elif action == "admin" and c.instance is not None:
                self.h.leave(LeaveMember(member_id="", group_instance_id=c.instance))
            elif action == "meta":
                c.meta = f"m{rng.randrange(3)}".encode()
                self.join(c)
        self.drain()
        self.check()

    def behave(self, seconds: int) -> None:
        """Every live client does the right thing once a second."""
        for _ in range(seconds):
            for c in [c for c in self.clients if c.alive]:
                if c.need_rejoin or not c.member_id:
                    self.join(c)
                elif not c.synced:
                    self.sync(c)
                elif self.h.now - c.last_heartbeat >= 3_000:
                    self.heartbeat(c)
                self.drain()
            self.h.advance(1_000)
            self.drain()
            self.check()


@pytest.mark.parametrize("seed", [f"seed-{i}" for i in range(SEEDS)])
def test_random_runs_keep_invariants_and_settle(seed: str) -> None:
    rng = random.Random(seed)
    config = GroupConfig(
        initial_rebalance_delay_ms=rng.choice([0, 0, 3_000]),
        max_size=rng.choice([None, None, 4]),
    )
    sim = Sim(rng=rng, h=Harness(config))
    for _ in range(400):
        sim.random_step()

    sim.behave(240)
    g = sim.h.gc.group(GROUP)
    assert g is not None
    live = {c.member_id for c in sim.clients if c.alive}
    assert not sim.outstanding, f"unanswered requests {sim.outstanding}"
    assert set(g.members) == live
    assert g.state is (GroupState.STABLE if live else GroupState.EMPTY)
    assert all(c.synced and c.generation == g.generation_id for c in sim.clients if c.alive)

    # everyone goes silent: sessions end, the group empties, nothing is left parked
    for c in sim.clients:
        c.alive = False
    sim.h.advance(3_600_000)
    sim.drain()
    sim.check()
    assert g.state is GroupState.EMPTY and not g.members
