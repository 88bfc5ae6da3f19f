"""LeaveGroup, static membership, DeleteGroups, Describe/List, restore from snapshots."""

from __future__ import annotations

from suoi.coordinator.group import GroupConfig, GroupSnapshot, LeaveMember, PersistGroup, Protocol
from suoi.model import ErrorCode

from .group_helpers import Harness, protos


def _static_stable(h: Harness, instances: list[str]) -> dict[str, str]:
    """Static members (no MEMBER_ID_REQUIRED for them), joined and synced; instance -> member id."""
    tokens = {i: h.join(instance=i, client_id=i) for i in instances}
    h.poll()
    ids = {i: h.reply(t).member_id for i, t in tokens.items()}
    leader = h.reply(tokens[instances[0]]).leader
    gen = h.generation()
    for i, m in ids.items():
        h.sync(m, gen, {mm: f"a-{ii}".encode() for ii, mm in ids.items()} if m == leader else None, instance=i)
    assert h.state() == "Stable"
    return ids


def test_leave_v0_triggers_rebalance() -> None:
    h = Harness()
    a, b = h.stable_group(2)
    r = h.leave(b)
    assert r.error_code == 0 and r.single_error() == 0
    assert h.state() == "PreparingRebalance"
    t = h.join(a)
    assert [m.member_id for m in h.reply(t).members] == [a]


def test_leave_unknown_member_and_unknown_group() -> None:
    h = Harness()
    h.stable_group(1)
    r = h.leave("ghost")
    assert r.single_error() == ErrorCode.unknown_member_id
    assert h.state() == "Stable"
    assert h.leave("x", group="nope").single_error() == ErrorCode.unknown_member_id


def test_batched_leave_per_member_errors_and_empty() -> None:
    h = Harness()
    ids = _static_stable(h, ["i1", "i2"])
    r = h.leave(
        LeaveMember(member_id=ids["i1"], group_instance_id="i1"),
        LeaveMember(member_id="wrong", group_instance_id="i2"),
        LeaveMember(member_id="ghost"),
    )
    assert [m.error_code for m in r.members] == [0, ErrorCode.fenced_instance_id, ErrorCode.unknown_member_id]
    assert h.state() == "PreparingRebalance"
    r = h.leave(LeaveMember(member_id=ids["i2"], group_instance_id="i2"))
    assert r.members[0].error_code == 0
    assert h.state() == "Empty"


def test_leave_while_join_pending_answers_the_parked_join() -> None:
    h = Harness()
    a, b = h.stable_group(2)
    ta = h.join(a)  # parked, waiting for b
    h.leave(a)
    assert h.reply(ta).error_code == ErrorCode.unknown_member_id
    tb = h.join(b)
    assert h.reply(tb).error_code == 0 and h.reply(tb).leader == b


def test_admin_removal_by_instance_id() -> None:
    h = Harness()
    ids = _static_stable(h, ["i1", "i2"])
    r = h.leave(LeaveMember(member_id="", group_instance_id="i2"), LeaveMember(member_id="", group_instance_id="nope"))
    assert [m.error_code for m in r.members] == [0, ErrorCode.unknown_member_id]
    assert set(h.grp().members) == {ids["i1"]}
    assert h.state() == "PreparingRebalance"


def test_static_member_restart_without_rebalance_and_fencing() -> None:
    h = Harness()
    ids = _static_stable(h, ["i1", "i2"])
    old = ids["i2"]
    h.persisted.clear()
    t = h.join(instance="i2", client_id="i2")  # restarted: no member id
    r = h.reply(t)
    assert r.error_code == 0 and r.member_id != old
    assert (r.generation_id, r.protocol_name, r.members, r.skip_assignment) == (1, "range", (), False)
    assert r.leader == ids["i1"]
    assert h.state() == "Stable" and h.generation() == 1
    snap = h.snap()
    assert {m.member_id for m in snap.members} == {ids["i1"], r.member_id}
    # the new id gets the old assignment
    assert h.reply(h.sync(r.member_id, 1, instance="i2")).assignment == b"a-i2"
    # the old id is fenced
    assert h.heartbeat(old, 1, instance="i2") == ErrorCode.fenced_instance_id
    assert h.reply(h.sync(old, 1, instance="i2")).error_code == ErrorCode.fenced_instance_id
    assert h.reply(h.join(old, instance="i2")).error_code == ErrorCode.fenced_instance_id
    assert h.gc.validate_offset_commit("g", old, 1, "i2", h.now) == ErrorCode.fenced_instance_id
    assert h.heartbeat(r.member_id, 1, instance="i2") == ErrorCode.none


def test_static_leader_restart_keeps_old_leader_id_unless_skip_assignment() -> None:
    h = Harness()
    ids = _static_stable(h, ["i1", "i2"])
    r = h.reply(h.join(instance="i1", client_id="i1"))
    assert r.leader == ids["i1"] and r.member_id != ids["i1"] and r.members == ()
    # v9+: the restarted leader is told it leads but must skip the assignment
    r2 = h.reply(h.join(instance="i1", client_id="i1", skip=True))
    assert r2.leader == r2.member_id and r2.skip_assignment is True
    assert {m.member_id for m in r2.members} == {r2.member_id, ids["i2"]}
    assert h.state() == "Stable" and h.generation() == 1


def test_static_restart_with_changed_protocol_rebalances() -> None:
    h = Harness()
    _static_stable(h, ["i1"])
    t = h.join(instance="i1", protocols=protos("roundrobin", "range"), client_id="i1")
    # the only member has rejoined, so the rebalance it triggered completes at once
    assert h.state() == "CompletingRebalance"
    assert h.reply(t).protocol_name == "roundrobin" and h.reply(t).generation_id == 2


def test_static_restart_during_completing_rebalance_restarts_rebalance() -> None:
    h = Harness()
    ta = h.join(instance="i1", client_id="i1")
    tb = h.join(instance="i2", client_id="i2")
    h.poll()
    old_b = h.reply(tb).member_id
    ts = h.sync(old_b, 1, instance="i2")
    tb2 = h.join(instance="i2", client_id="i2")
    assert h.reply(ts).error_code == ErrorCode.fenced_instance_id
    assert h.state() == "PreparingRebalance"
    a = h.reply(ta).member_id
    ta2 = h.join(a, instance="i1")
    assert h.reply(ta2).generation_id == h.reply(tb2).generation_id == 2


def test_static_member_not_rejoining_is_kept_until_session_ends() -> None:
    h = Harness()
    ids = _static_stable(h, ["i1", "i2"])
    t = h.join(ids["i1"], instance="i1")  # leader rejoins; i2 is silent
    h.advance(9_999)
    assert h.reply(t) is None
    h.advance(1)  # i2's session expires -> everyone left has joined
    r = h.reply(t)
    assert r.generation_id == 2 and [m.member_id for m in r.members] == [ids["i1"]]


def test_delete_groups() -> None:
    h = Harness()
    h.stable_group(1)
    h.gc.validate_offset_commit("empty", "", -1, None, h.now)
    errors, outs = h.gc.delete_groups(["g", "empty", "nope", ""])
    assert errors == {"g": ErrorCode.non_empty_group, "empty": 0, "nope": ErrorCode.group_id_not_found,
                      "": ErrorCode.invalid_group_id}
    assert outs == [PersistGroup("empty", None)]
    assert h.gc.describe("empty").state == "Dead"
    assert h.gc.delete_groups(["empty"])[0] == {"empty": ErrorCode.group_id_not_found}
    assert h.gc.delete_group("g") == ErrorCode.non_empty_group


def test_empty_since_for_offset_retention() -> None:
    h = Harness()
    assert h.gc.empty_since("unknown") == 0
    (a,) = h.stable_group(1)
    assert h.gc.empty_since("g") is None
    h.advance(1_234)
    h.leave(a)
    assert h.gc.empty_since("g") == h.now


def test_describe_and_list() -> None:
    h = Harness()
    a, b = h.stable_group(2)
    d = h.gc.describe("g")
    assert (d.error_code, d.state, d.protocol_type, d.protocol_data) == (0, "Stable", "consumer", "range")
    assert [(m.member_id, m.client_id, m.client_host, m.metadata, m.assignment) for m in d.members] == [
        (a, "c0", "/127.0.0.1", b"meta-range", f"a-{a}".encode()),
        (b, "c1", "/127.0.0.1", b"meta-range", f"a-{b}".encode()),
    ]
    h.join(a)
    d = h.gc.describe("g")
    assert (d.state, d.protocol_data, d.members[0].metadata, d.members[0].assignment) == ("PreparingRebalance", "", b"", b"")
    assert h.gc.describe("nope").state == "Dead"
    h.gc.validate_offset_commit("simple", "", -1, None, h.now)
    listing = {(x.group_id, x.protocol_type, x.state) for x in h.gc.list_groups()}
    assert listing == {("g", "consumer", "PreparingRebalance"), ("simple", "", "Empty")}
    assert [x.group_id for x in h.gc.list_groups(["empty"])] == ["simple"]
    assert [x.group_id for x in h.gc.list_groups(["PreparingRebalance", "Stable"])] == ["g"]
    assert h.gc.list_groups(types_filter=["consumer"]) == []


def test_restore_from_snapshot() -> None:
    h = Harness()
    a, b = h.stable_group(2)
    snap = h.snap()
    assert GroupSnapshot.from_dict(snap.to_dict()) == snap

    h2 = Harness(now=50_000)
    assert h2.gc.restore(GroupSnapshot.from_dict(snap.to_dict()), h2.now) == []
    d = h2.gc.describe("g")
    assert (d.state, d.protocol_data) == ("Stable", "range")
    assert {m.member_id: m.assignment for m in d.members} == {a: f"a-{a}".encode(), b: f"a-{b}".encode()}
    assert h2.heartbeat(a, 1) == ErrorCode.none
    assert h2.reply(h2.sync(b, 1)).assignment == f"a-{b}".encode()
    # fresh sessions from `now`: b is silent and expires 10 s after the load (a heartbeated)
    h2.advance(9_000)
    h2.heartbeat(a, 1)
    h2.advance(1_000)
    assert set(h2.grp().members) == {a}
    # a tombstone replayed later
    h2.gc.unload(["g"])
    assert h2.gc.describe("g").state == "Dead"


def test_restore_empty_group_keeps_generation() -> None:
    h = Harness()
    snap = GroupSnapshot(group_id="g", generation_id=7, protocol_type="consumer", protocol_name=None, leader=None)
    h.gc.restore(snap, h.now)
    assert h.state() == "Empty" and h.generation() == 7
    a = h.new_member()
    t = h.join(a)
    h.poll()
    assert h.reply(t).generation_id == 8


def test_restore_over_capacity_rebalances() -> None:
    h = Harness()
    h.stable_group(3)
    snap = h.snap()
    h2 = Harness(GroupConfig(initial_rebalance_delay_ms=0, max_size=2))
    h2.gc.restore(snap, h2.now)
    assert h2.state() == "PreparingRebalance"
    ids = [m.member_id for m in snap.members]
    t0, t1 = h2.join(ids[0]), h2.join(ids[1])
    t2 = h2.join(ids[2])
    assert h2.reply(t2).error_code == ErrorCode.group_max_size_reached
    assert h2.reply(t0).generation_id == h2.reply(t1).generation_id == 2


def test_unload_answers_parked_requests() -> None:
    h2 = Harness()
    a2, _ = h2.stable_group(2)
    t2 = h2.join(a2)
    h2._record(h2.gc.unload(["g"]))
    assert h2.reply(t2).error_code == ErrorCode.not_coordinator
    assert h2.gc.group_ids() == [] and h2.gc.next_deadline() is None


def test_join_supersedes_parked_join_from_same_member() -> None:
    h = Harness()
    a, b = h.stable_group(2)
    t1 = h.join(a)
    t2 = h.join(a, protocols=(Protocol("range", b"v2"),))
    assert h.reply(t1).error_code == ErrorCode.rebalance_in_progress
    h.join(b)
    assert h.reply(t2).error_code == 0
    assert {m.metadata for m in h.reply(t2).members} == {b"v2", b"meta-range"}
