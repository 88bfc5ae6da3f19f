"""SyncGroup, Heartbeat, session expiry, the pending-sync timeout and offset-commit checks."""

from __future__ import annotations

from suoi.coordinator.group import PersistGroup, Reply
from suoi.model import ErrorCode

from .group_helpers import Harness


def _completing(h: Harness, n: int) -> list[str]:
    ids = [h.new_member(client_id=f"c{i}") for i in range(n)]
    for m in ids:
        h.join(m)
    h.poll()
    assert h.state() == "CompletingRebalance"
    return ids


def test_leader_sync_releases_parked_followers_with_their_assignments() -> None:
    h = Harness()
    a, b, c = _completing(h, 3)
    tb = h.sync(b, 1)
    tc = h.sync(c, 1)
    assert h.reply(tb) is None and h.reply(tc) is None
    h.persisted.clear()
    n = len(h.outputs)
    ta = h.sync(a, 1, {a: b"A", b: b"B"})  # no assignment for c: it gets empty bytes
    outs = h.outputs[n:]
    assert isinstance(outs[0], PersistGroup)  # persisted before any reply
    assert all(isinstance(o, Reply) for o in outs[1:])
    snap = outs[0].snapshot
    assert snap is not None
    assert (snap.generation_id, snap.protocol_name, snap.leader) == (1, "range", a)
    assert {m.member_id: m.assignment for m in snap.members} == {a: b"A", b: b"B", c: b""}
    assert {m.subscription for m in snap.members} == {b"meta-range"}
    assert (h.reply(ta).assignment, h.reply(tb).assignment, h.reply(tc).assignment) == (b"A", b"B", b"")
    assert h.reply(tb).protocol_name == "range" and h.reply(tb).protocol_type == "consumer"
    assert h.state() == "Stable"
    # a later sync in Stable answers at once with the stored assignment
    assert h.reply(h.sync(b, 1)).assignment == b"B"


def test_sync_errors() -> None:
    h = Harness()
    assert h.reply(h.sync("x", 1, group="nope")).error_code == ErrorCode.unknown_member_id
    a, b = _completing(h, 2)
    assert h.reply(h.sync("x", 1)).error_code == ErrorCode.unknown_member_id
    assert h.reply(h.sync(b, 0)).error_code == ErrorCode.illegal_generation
    assert h.reply(h.sync(b, 1, protocol_type="connect")).error_code == ErrorCode.inconsistent_group_protocol
    assert h.reply(h.sync(b, 1, protocol_name="roundrobin")).error_code == ErrorCode.inconsistent_group_protocol
    h.sync(a, 1, {a: b"", b: b""})
    h.join(a)  # leader rejoins: PreparingRebalance
    assert h.reply(h.sync(b, 1)).error_code == ErrorCode.rebalance_in_progress


def test_rebalance_during_completing_fails_parked_syncs() -> None:
    h = Harness()
    a, b = _completing(h, 2)
    tb = h.sync(b, 1)
    h.join(h.new_member())  # a newcomer restarts the rebalance
    assert h.reply(tb).error_code == ErrorCode.rebalance_in_progress
    assert h.state() == "PreparingRebalance"


def test_heartbeat_codes_per_state() -> None:
    h = Harness()
    assert h.heartbeat("x", 0, group="nope") == ErrorCode.unknown_member_id
    a = h.new_member()
    h.join(a)
    assert h.state() == "PreparingRebalance"
    assert h.heartbeat(a, 0) == ErrorCode.rebalance_in_progress
    h.poll()
    assert h.state() == "CompletingRebalance"
    assert h.heartbeat(a, 1) == ErrorCode.none
    assert h.heartbeat(a, 0) == ErrorCode.illegal_generation
    assert h.heartbeat("x", 1) == ErrorCode.unknown_member_id
    h.sync(a, 1, {a: b"x"})
    assert h.heartbeat(a, 1) == ErrorCode.none
    assert h.heartbeat(a, 2) == ErrorCode.illegal_generation
    h.leave(a)
    assert h.state() == "Empty"
    assert h.heartbeat(a, 2) == ErrorCode.unknown_member_id


def test_session_expiry_evicts_and_rebalances() -> None:
    h = Harness()
    a, b = h.stable_group(2)
    for _ in range(2):
        h.advance(4_000)
        assert h.heartbeat(a, 1) == ErrorCode.none  # only a heartbeats
    h.advance(1_999)
    assert h.state() == "Stable"
    h.advance(1)  # b's session (10 s) runs out
    assert b not in h.grp().members
    assert h.state() == "PreparingRebalance"
    assert h.heartbeat(a, 1) == ErrorCode.rebalance_in_progress
    t = h.join(a)
    r = h.reply(t)
    assert (r.generation_id, [m.member_id for m in r.members]) == (2, [a])


def test_heartbeats_keep_members_alive() -> None:
    h = Harness()
    a, b = h.stable_group(2)
    for _ in range(20):
        h.advance(5_000)
        h.heartbeat(a, 1)
        h.heartbeat(b, 1)
    assert h.state() == "Stable" and h.generation() == 1


def test_last_member_expiring_leaves_group_empty() -> None:
    h = Harness()
    h.stable_group(1)
    h.advance(10_000)
    assert h.state() == "Empty" and h.generation() == 2
    assert h.snap().members == ()


def test_leader_never_syncs_members_without_sync_are_removed() -> None:
    h = Harness()
    a, b = _completing(h, 2)
    tb = h.sync(b, 1)
    for _ in range(5):  # the leader heartbeats but never syncs; b is parked
        h.advance(5_000)
        h.heartbeat(a, 1)
    assert h.reply(tb) is None
    h.advance(5_000)  # 30 s rebalance timeout since the join completed
    assert h.reply(tb).error_code == ErrorCode.rebalance_in_progress
    assert set(h.grp().members) == {b}
    assert h.state() == "PreparingRebalance"
    t = h.join(b)
    assert h.reply(t).leader == b and h.reply(t).generation_id == 2


def test_follower_that_never_syncs_in_stable_is_removed() -> None:
    h = Harness()
    a, b = _completing(h, 2)
    h.sync(a, 1, {a: b"A", b: b"B"})
    for _ in range(6):
        h.advance(5_000)
        h.heartbeat(a, 1)
        h.heartbeat(b, 1)
    assert set(h.grp().members) == {a}
    assert h.state() == "PreparingRebalance"


def test_offset_commit_validation() -> None:
    h = Harness()
    # admin / simple consumer commit creates an Empty group
    assert h.gc.validate_offset_commit("solo", "", -1, None, h.now) == ErrorCode.none
    assert h.state("solo") == "Empty"
    assert h.gc.validate_offset_commit("nope", "m", 3, None, h.now) == ErrorCode.illegal_generation
    assert h.gc.validate_offset_commit("", "", -1, None, h.now) == ErrorCode.invalid_group_id

    a, b = _completing(h, 2)
    assert h.gc.validate_offset_commit("g", "", -1, None, h.now) == ErrorCode.unknown_member_id
    assert h.gc.validate_offset_commit("g", "x", 1, None, h.now) == ErrorCode.unknown_member_id
    assert h.gc.validate_offset_commit("g", a, 0, None, h.now) == ErrorCode.illegal_generation
    assert h.gc.validate_offset_commit("g", a, 1, None, h.now) == ErrorCode.rebalance_in_progress
    assert h.gc.validate_offset_commit("g", a, 1, None, h.now, transactional=True) == ErrorCode.none
    h.sync(a, 1, {a: b"A", b: b"B"})
    assert h.gc.validate_offset_commit("g", a, 1, None, h.now) == ErrorCode.none
    # eager consumers commit in onPartitionsRevoked while the group prepares a rebalance
    h.join(h.new_member())
    assert h.state() == "PreparingRebalance"
    assert h.gc.validate_offset_commit("g", b, 1, None, h.now) == ErrorCode.none
    assert h.gc.validate_offset_fetch("g") == ErrorCode.none


def test_offset_commit_refreshes_session() -> None:
    h = Harness()
    (a,) = h.stable_group(1)
    for _ in range(5):
        h.advance(6_000)
        assert h.gc.validate_offset_commit("g", a, 1, None, h.now) == ErrorCode.none
    assert h.state() == "Stable"
