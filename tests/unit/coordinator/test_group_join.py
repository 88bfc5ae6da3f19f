"""JoinGroup: validation, MEMBER_ID_REQUIRED, the join phase, protocol selection, delays."""

from __future__ import annotations

from suoi.coordinator.group import GroupConfig, PersistGroup, Protocol
from suoi.model import ErrorCode

from .group_helpers import Harness, protos


def test_first_join_gets_member_id_required_then_joins() -> None:
    h = Harness()
    t = h.join(client_id="cli")
    r = h.reply(t)
    assert r.error_code == ErrorCode.member_id_required and r.member_id == "cli-1"
    assert r.generation_id == -1 and r.members == ()
    assert h.state() == "Empty"

    t2 = h.join("cli-1", client_id="cli")
    assert h.reply(t2) is None  # parked: the initial delayed join (0 ms here) fires on poll
    assert h.state() == "PreparingRebalance"
    h.poll()
    r2 = h.reply(t2)
    assert r2.error_code == 0
    assert (r2.member_id, r2.leader, r2.generation_id) == ("cli-1", "cli-1", 1)
    assert (r2.protocol_type, r2.protocol_name, r2.skip_assignment) == ("consumer", "range", False)
    assert [(m.member_id, m.group_instance_id, m.metadata) for m in r2.members] == [("cli-1", None, b"meta-range")]
    assert h.state() == "CompletingRebalance"


def test_v0_to_v3_join_without_member_id_is_added_directly() -> None:
    h = Harness()
    t = h.join(require_known=False, client_id="old")
    assert h.reply(t) is None
    h.poll()
    assert h.reply(t).error_code == 0 and h.reply(t).member_id == "old-1"


def test_validation_errors() -> None:
    h = Harness()
    assert h.reply(h.join(group="")).error_code == ErrorCode.invalid_group_id
    assert h.reply(h.join(session=5_999)).error_code == ErrorCode.invalid_session_timeout
    assert h.reply(h.join(session=1_800_001)).error_code == ErrorCode.invalid_session_timeout
    assert h.reply(h.join(protocol_type="")).error_code == ErrorCode.inconsistent_group_protocol
    assert h.reply(h.join(protocols=())).error_code == ErrorCode.inconsistent_group_protocol
    # a member id for a group that does not exist
    assert h.reply(h.join("ghost", group="nope")).error_code == ErrorCode.unknown_member_id
    # a made-up member id for an existing group
    h.stable_group(1)
    assert h.reply(h.join("ghost")).error_code == ErrorCode.unknown_member_id


def test_custom_session_bounds() -> None:
    h = Harness(GroupConfig(min_session_timeout_ms=100, max_session_timeout_ms=200, initial_rebalance_delay_ms=0))
    assert h.reply(h.join(session=150)).error_code == ErrorCode.member_id_required
    assert h.reply(h.join(session=201)).error_code == ErrorCode.invalid_session_timeout


def test_inconsistent_protocols_with_the_group() -> None:
    h = Harness()
    h.stable_group(1, protocols=protos("range", "roundrobin"))
    assert h.reply(h.join(protocol_type="connect", protocols=protos("range"))).error_code == ErrorCode.inconsistent_group_protocol
    assert h.reply(h.join(protocols=protos("sticky"))).error_code == ErrorCode.inconsistent_group_protocol
    assert h.reply(h.join(protocols=protos("sticky", "roundrobin"))).error_code == ErrorCode.member_id_required


def test_three_members_leader_gets_members_followers_do_not() -> None:
    h = Harness()
    ids = [h.new_member(client_id=f"c{i}") for i in range(3)]
    tokens = [h.join(m, client_id=f"c{i}") for i, m in enumerate(ids)]
    h.poll()
    results = [h.reply(t) for t in tokens]
    assert {r.generation_id for r in results} == {1}
    assert {r.leader for r in results} == {ids[0]}  # the first member to join leads
    assert [m.member_id for m in results[0].members] == ids
    assert results[1].members == () and results[2].members == ()
    assert [r.member_id for r in results] == ids


def test_join_waits_for_all_known_members_then_completes() -> None:
    h = Harness()
    a, b = h.stable_group(2)
    gen = h.generation()
    # a (the leader) rejoins: rebalance; b has not rejoined yet so a waits
    ta = h.join(a)
    assert h.state() == "PreparingRebalance" and h.reply(ta) is None
    assert h.heartbeat(b, gen) == ErrorCode.rebalance_in_progress
    tb = h.join(b)  # the last one in completes the phase at once (not the initial rebalance)
    assert h.reply(ta).generation_id == h.reply(tb).generation_id == gen + 1
    assert h.state() == "CompletingRebalance"


def test_rebalance_timeout_drops_members_who_do_not_rejoin() -> None:
    h = Harness()
    a, b, c = h.stable_group(3)
    ta = h.join(a, rebalance=20_000)
    tb = h.join(b, rebalance=20_000)
    # c keeps heartbeating (so its session stays alive) but never rejoins
    for _ in range(3):
        h.advance(5_000)
        h.heartbeat(c, 1)
    assert h.reply(ta) is None
    # rebalance timeout = max over members = 30 000 (c's) from when the rebalance began
    h.advance(15_000)
    ra, rb = h.reply(ta), h.reply(tb)
    assert ra.error_code == 0 and rb.error_code == 0
    assert [m.member_id for m in ra.members] == [a, b]
    assert h.grp().members.keys() == {a, b}
    assert h.heartbeat(c, 2) == ErrorCode.unknown_member_id


def test_member_joining_stable_group_triggers_rebalance_and_ids_are_kept() -> None:
    h = Harness()
    a, b = h.stable_group(2)
    c = h.new_member(client_id="c2")
    tc = h.join(c)
    assert h.state() == "PreparingRebalance"
    assert h.heartbeat(a, 1) == ErrorCode.rebalance_in_progress
    ta, tb = h.join(a), h.join(b)
    results = [h.reply(t) for t in (ta, tb, tc)]
    assert [r.member_id for r in results] == [a, b, c]
    assert {r.generation_id for r in results} == {2}
    assert results[0].leader == a


def test_follower_rejoin_in_stable_with_same_metadata_gets_current_generation() -> None:
    h = Harness()
    a, b = h.stable_group(2)
    t = h.join(b)
    r = h.reply(t)
    assert (r.error_code, r.generation_id, r.leader, r.members) == (0, 1, a, ())
    assert h.state() == "Stable"
    # with changed metadata it forces a rebalance
    h.join(b, protocols=(Protocol("range", b"new"),))
    assert h.state() == "PreparingRebalance"


def test_rejoin_during_completing_rebalance_returns_same_generation() -> None:
    h = Harness()
    a = h.new_member()
    h.join(a)
    h.poll()
    t = h.join(a)
    r = h.reply(t)
    assert (r.generation_id, r.leader, [m.member_id for m in r.members]) == (1, a, [a])
    assert h.state() == "CompletingRebalance"


def test_protocol_selection_by_votes() -> None:
    h = Harness()
    prefs = [("roundrobin", "range"), ("range", "roundrobin"), ("range", "roundrobin", "sticky")]
    ids = [h.new_member(protocols=protos(*p)) for p in prefs]
    tokens = [h.join(m, protocols=protos(*p)) for m, p in zip(ids, prefs, strict=True)]
    h.poll()
    assert {h.reply(t).protocol_name for t in tokens} == {"range"}
    # "sticky" is not supported by all, so it can never win even with most first votes
    h2 = Harness()
    prefs2 = [("sticky", "range"), ("sticky", "range"), ("range",)]
    ids2 = [h2.new_member(protocols=protos(*p)) for p in prefs2]
    tokens2 = [h2.join(m, protocols=protos(*p)) for m, p in zip(ids2, prefs2, strict=True)]
    h2.poll()
    assert h2.reply(tokens2[0]).protocol_name == "range"
    # the leader's member list carries each member's metadata for the chosen protocol
    assert {m.metadata for m in h2.reply(tokens2[0]).members} == {b"meta-range"}


def test_initial_rebalance_delay_extended_by_new_joiners() -> None:
    h = Harness(GroupConfig(initial_rebalance_delay_ms=3_000))
    a = h.new_member()
    ta = h.join(a, rebalance=10_000)  # t=0: delay 3000, remaining 7000
    h.advance(2_000)
    b = h.new_member()
    tb = h.join(b, rebalance=10_000)  # joined during the delay
    h.advance(1_000)  # t=3000: timer fires, b was added -> wait min(3000, 7000) more
    assert h.reply(ta) is None
    h.advance(2_999)
    assert h.reply(ta) is None
    h.advance(1)  # t=6000 no one new -> complete
    assert h.reply(ta).generation_id == h.reply(tb).generation_id == 1
    assert [m.member_id for m in h.reply(ta).members] == [a, b]


def test_initial_rebalance_delay_is_bounded_by_rebalance_timeout() -> None:
    h = Harness(GroupConfig(initial_rebalance_delay_ms=3_000))
    a = h.new_member()
    ta = h.join(a, rebalance=5_000)
    done_at = None
    for step in range(1, 20):
        h.advance(1_000)
        if h.reply(ta) is not None:
            done_at = step * 1_000
            break
        h.join(h.new_member(), rebalance=5_000)  # someone new every second
    assert done_at is not None and done_at <= 3_000 + 5_000


def test_initial_delay_waits_even_when_everyone_joined() -> None:
    h = Harness(GroupConfig(initial_rebalance_delay_ms=3_000))
    a = h.new_member()
    ta = h.join(a)
    assert h.gc.next_deadline() == h.now + 3_000
    h.advance(2_999)
    assert h.reply(ta) is None
    h.advance(1)
    assert h.reply(ta).error_code == 0


def test_group_max_size() -> None:
    h = Harness(GroupConfig(initial_rebalance_delay_ms=0, max_size=2))
    h.stable_group(2)
    t = h.join()
    assert h.reply(t).error_code == ErrorCode.group_max_size_reached and h.reply(t).member_id == ""
    assert h.state() == "Stable"


def test_pending_member_id_expires_after_session_timeout() -> None:
    h = Harness()
    a = h.new_member()
    h.advance(10_000)
    assert h.reply(h.join(a)).error_code == ErrorCode.unknown_member_id


def test_group_becoming_empty_bumps_generation_and_persists() -> None:
    h = Harness()
    (a,) = h.stable_group(1)
    h.persisted.clear()
    h.leave(a)
    assert h.state() == "Empty" and h.generation() == 2
    assert [p.snapshot.generation_id for p in h.persisted if p.snapshot is not None] == [2]
    assert h.snap().members == ()
    assert isinstance(h.persisted[-1], PersistGroup)
