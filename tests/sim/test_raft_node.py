"""Focused tests of the Raft core: role transitions, vote rules, replication, divergence,
snapshots, check-quorum, pre-vote, resignation and bad input."""

from __future__ import annotations

import dataclasses
import random

import pytest

from suoi.raft import (
    NO_LEADER,
    BeginQuorumEpochRequest,
    Candidate,
    DescribeQuorumRequest,
    Entry,
    Envelope,
    EpochEndOffset,
    ErrorCode,
    FetchRequest,
    FetchResponse,
    FetchSnapshotRequest,
    Follower,
    Leader,
    MemoryStorage,
    NotLeaderError,
    Prospective,
    QuorumStateData,
    RaftNode,
    RaftSafetyError,
    Resigned,
    SnapshotId,
    Unattached,
    VoteRequest,
    decode_leader_change,
)
from tests.sim.harness import CONFIG, Net, fetch, request


def vote(epoch: int, cand: int, last_epoch: int = 0, last_offset: int = 0, pre: bool = False) -> VoteRequest:
    return VoteRequest(
        cluster_id=None,
        replica_epoch=epoch,
        replica_id=cand,
        last_offset_epoch=last_epoch,
        last_offset=last_offset,
        pre_vote=pre,
    )


def lone_voter(voters=(1, 2, 3), node_id: int = 1, storage: MemoryStorage | None = None, **cfg) -> RaftNode:  # noqa: ANN001
    config = dataclasses.replace(CONFIG, **cfg)
    return RaftNode(node_id, voters, storage or MemoryStorage(), config, random.Random(node_id))


# ---------------------------------------------------------------- elections and role transitions


def test_single_voter_elects_itself_and_commits() -> None:
    net = Net(voters=1)
    leader = net.elect()
    assert leader.epoch == 1
    first = leader.committed()[0]
    assert first.control and decode_leader_change(first.payload)["leader_id"] == 1
    off = leader.append([b"a", b"b"])
    net.run_until(lambda: leader.high_watermark == off + 1)
    assert [e.payload for e in net.recorders[1].committed if not e.control] == [b"a", b"b"]


def test_three_voters_elect_one_leader_and_replicate() -> None:
    net = Net(voters=3)
    leader = net.elect()
    others = [n for n in net.nodes.values() if n is not leader]
    assert all(isinstance(n.role, Follower) and n.role.leader_id == leader.node_id for n in others)
    assert all(n.epoch == leader.epoch for n in others)
    leader.append([b"x"])
    net.run_until(net.converged)
    for rec in net.recorders.values():
        assert [e.payload for e in rec.committed][-1] == b"x"
    # quorum state was persisted with the leader
    for _i, s in net.storages.items():
        assert s.quorum_state.epoch == leader.epoch and s.quorum_state.leader_id == leader.node_id


def test_transitions_unattached_prospective_candidate_leader() -> None:
    node = lone_voter()
    assert isinstance(node.role, Unattached)
    out = node.poll(node.next_deadline())
    assert isinstance(node.role, Prospective) and node.epoch == 0  # pre-vote does not bump the epoch
    prevotes = [e for e in out if isinstance(e.message, VoteRequest)]
    assert {e.destination for e in prevotes} == {2, 3} and all(e.message.pre_vote for e in prevotes)
    from suoi.raft import VoteResponse

    grant = VoteResponse(error_code=ErrorCode.none, leader_id=NO_LEADER, leader_epoch=0, vote_granted=True)
    out = node.handle(Envelope(2, 1, prevotes[0].correlation_id, grant), node._now)
    assert isinstance(node.role, Candidate) and node.epoch == 1
    assert node.storage.read_quorum_state() == QuorumStateData(1, 1, None)  # persisted before asking
    votes = [e for e in out if isinstance(e.message, VoteRequest)]
    assert votes and not any(e.message.pre_vote for e in votes)
    grant = VoteResponse(error_code=ErrorCode.none, leader_id=NO_LEADER, leader_epoch=1, vote_granted=True)
    node.handle(Envelope(votes[0].destination, 1, votes[0].correlation_id, grant), node._now)
    assert isinstance(node.role, Leader) and node.leader_and_epoch.leader_id == 1
    assert node.log.entry(0).control


def test_candidate_without_pre_vote_bumps_epoch() -> None:
    node = lone_voter(pre_vote=False)
    node.poll(node.next_deadline())
    assert isinstance(node.role, Candidate) and node.epoch == 1


def test_candidate_becomes_follower_on_begin_quorum_epoch() -> None:
    node = lone_voter(pre_vote=False)
    node.poll(node.next_deadline())
    resp = request(node, 2, BeginQuorumEpochRequest(cluster_id=None, leader_id=2, leader_epoch=1))
    assert resp.error_code == ErrorCode.none
    assert isinstance(node.role, Follower) and node.role.leader_id == 2 and node.epoch == 1


def test_follower_fetch_timeout_starts_election() -> None:
    net = Net(voters=3)
    leader = net.elect()
    net.crash(leader.node_id)
    f = next(n for i, n in net.nodes.items() if i != leader.node_id)
    net.run_until(lambda: not isinstance(f.role, Follower), max_ms=1000)
    assert isinstance(f.role, Prospective | Candidate | Leader)
    new = net.elect()
    assert new.node_id != leader.node_id and new.epoch > leader.epoch


def test_restart_of_leader_resigns_and_higher_epoch_vote_unattaches() -> None:
    net = Net(voters=3)
    leader = net.elect()
    lid, epoch = leader.node_id, leader.epoch
    net.crash(lid)
    restarted = net.start(lid)
    assert isinstance(restarted.role, Resigned) and restarted.epoch == epoch
    with pytest.raises(NotLeaderError):
        restarted.append([b"x"])
    cand = next(i for i in net.ids if i != lid)
    resp = request(restarted, cand, vote(epoch + 1, cand, last_epoch=epoch, last_offset=restarted.log.end_offset))
    assert resp.vote_granted and isinstance(restarted.role, Unattached) and restarted.epoch == epoch + 1


# ---------------------------------------------------------------- vote rules


def test_one_vote_per_epoch_and_it_is_persisted() -> None:
    storage = MemoryStorage()
    node = lone_voter(storage=storage)
    assert request(node, 2, vote(5, 2)).vote_granted
    assert storage.quorum_state == QuorumStateData(5, 2, None)
    assert request(node, 2, vote(5, 2)).vote_granted  # the same candidate again: fine
    assert not request(node, 3, vote(5, 3)).vote_granted  # another candidate, same epoch: no
    restarted = lone_voter(storage=storage)
    assert not request(restarted, 3, vote(5, 3)).vote_granted  # survives a restart
    assert request(restarted, 3, vote(6, 3)).vote_granted


def test_vote_requires_an_up_to_date_log() -> None:
    storage = MemoryStorage()
    storage.append([Entry(0, 2, b"a"), Entry(1, 3, b"b")])
    storage.flush()
    storage.write_quorum_state(QuorumStateData(3, None, None))
    node = lone_voter(storage=storage)
    assert not request(node, 2, vote(4, 2, last_epoch=2, last_offset=10)).vote_granted  # older last epoch
    assert not request(node, 2, vote(4, 2, last_epoch=3, last_offset=1)).vote_granted  # shorter
    assert node.epoch == 4  # but the epoch was learned
    assert request(node, 3, vote(4, 3, last_epoch=3, last_offset=2)).vote_granted


def test_stale_epoch_vote_is_fenced() -> None:
    node = lone_voter()
    request(node, 2, vote(5, 2))
    resp = request(node, 3, vote(4, 3))
    assert resp.error_code == ErrorCode.fenced_leader_epoch and not resp.vote_granted and resp.leader_epoch == 5


def test_vote_from_non_voter_is_rejected_without_state_change() -> None:
    node = lone_voter()
    qs = node.storage.read_quorum_state()
    resp = request(node, 9, vote(7, 9))
    assert resp.error_code == ErrorCode.inconsistent_voter_set and not resp.vote_granted
    assert node.epoch == 0 and node.storage.read_quorum_state() == qs
    assert request(node, 9, vote(7, 9, pre=True)).error_code == ErrorCode.inconsistent_voter_set


def test_observer_never_votes_or_stands() -> None:
    observer = RaftNode(100, [1, 2, 3], MemoryStorage(), CONFIG, random.Random(1))
    assert request(observer, 2, vote(3, 2)).error_code == ErrorCode.inconsistent_voter_set
    out = observer.poll(10_000)
    assert not any(isinstance(e.message, VoteRequest) for e in out)  # it looks for the leader instead
    assert any(isinstance(e.message, FetchRequest) for e in out)


def test_malformed_vote_is_invalid_request() -> None:
    node = lone_voter()
    assert request(node, 2, vote(3, 2, last_epoch=3)).error_code == ErrorCode.invalid_request
    assert request(node, 2, vote(3, 2, last_offset=-1)).error_code == ErrorCode.invalid_request
    assert node.epoch == 0


def test_pre_vote_changes_nothing_on_the_receiver() -> None:
    node = lone_voter()
    resp = request(node, 2, vote(8, 2, pre=True))
    assert resp.vote_granted and node.epoch == 0 and node.storage.read_quorum_state().voted_id is None


def test_pre_vote_does_not_disrupt_a_stable_leader() -> None:
    net = Net(voters=3)
    leader = net.elect()
    epoch = leader.epoch
    victim = next(i for i in net.ids if i != leader.node_id)
    net.isolate(victim)
    net.run_for(1500)  # the isolated voter keeps trying pre-votes
    assert net.nodes[victim].epoch == epoch
    net.heal()
    leader.append([b"after"])
    net.run_until(net.converged)
    assert net.leader() is leader and leader.epoch == epoch


def test_without_pre_vote_a_rejoining_voter_bumps_the_epoch() -> None:
    net = Net(voters=3, config=dataclasses.replace(CONFIG, pre_vote=False))
    leader = net.elect()
    epoch = leader.epoch
    victim = next(i for i in net.ids if i != leader.node_id)
    net.isolate(victim)
    net.run_for(1500)
    assert net.nodes[victim].epoch > epoch  # the disruption pre-vote prevents
    net.heal()
    net.run_until(net.converged)


# ---------------------------------------------------------------- replication, HW, divergence


def test_high_watermark_needs_a_majority_and_an_entry_of_the_leaders_epoch() -> None:
    net = Net(voters=3)
    leader = net.elect()
    hw = leader.high_watermark
    for i in net.ids:
        if i != leader.node_id:
            net.isolate(i)
    leader.append([b"lonely"])
    net.run_for(100)
    assert leader.high_watermark == hw  # no majority: not committed
    net.heal()
    net.run_until(lambda: leader.high_watermark == leader.log.end_offset)


def test_divergent_follower_truncates_to_the_leader() -> None:
    # node 1: leader of epoch 3 with entries of epochs 1 and 3; node 2 has uncommitted epoch-2 entries
    s1, s2 = MemoryStorage(), MemoryStorage()
    common = [Entry(0, 1, b"a"), Entry(1, 1, b"b")]
    s1.append(common + [Entry(2, 3, b"c3")])
    s2.append(common + [Entry(2, 2, b"x2"), Entry(3, 2, b"y2"), Entry(4, 2, b"z2")])
    for s in (s1, s2):
        s.flush()
    leader = RaftNode(1, [1, 2, 3], s1, CONFIG, random.Random(1))
    leader._persist(3, 1, 1)
    leader.role = Leader(3, 1, leader.voters, 2, 0, 10_000)
    resp = request(leader, 2, fetch(2, 3, offset=5, last_epoch=2))
    assert resp.diverging_epoch == EpochEndOffset(1, 2) and not resp.records
    s2.write_quorum_state(QuorumStateData(3, None, 1))
    follower = RaftNode(2, [1, 2, 3], s2, CONFIG, random.Random(2))
    assert isinstance(follower.role, Follower)
    out = follower.poll(0)
    req = next(e for e in out if isinstance(e.message, FetchRequest))
    answer = leader.handle(req, 0)
    out = follower.handle(next(e for e in answer if e.correlation_id == req.correlation_id), 0)
    assert follower.log.end_offset == 2  # truncated to the common prefix
    req = next(e for e in out if isinstance(e.message, FetchRequest))
    assert (req.message.fetch_offset, req.message.last_fetched_epoch) == (2, 1)
    answer = leader.handle(req, 0)
    follower.handle(next(e for e in answer if e.correlation_id == req.correlation_id), 0)
    assert [e.payload for e in follower.log.entries] == [b"a", b"b", b"c3"]
    assert s2.durable == follower.log.entries  # truncation and append were flushed


def test_follower_refuses_truncation_below_its_high_watermark() -> None:
    storage = MemoryStorage()
    storage.append([Entry(0, 1, b"a"), Entry(1, 1, b"b")])
    storage.flush()
    storage.write_quorum_state(QuorumStateData(2, None, 3))
    f = RaftNode(2, [1, 2, 3], storage, CONFIG, random.Random(2))
    f.high_watermark = 2  # as if learned from the leader
    req = next(e for e in f.poll(0) if isinstance(e.message, FetchRequest))
    bogus = FetchResponse(
        error_code=ErrorCode.none, leader_id=3, leader_epoch=2, high_watermark=2, diverging_epoch=EpochEndOffset(0, 0)
    )
    with pytest.raises(RaftSafetyError):
        f.handle(Envelope(3, 2, req.correlation_id, bogus), 0)
    assert storage.durable == [Entry(0, 1, b"a"), Entry(1, 1, b"b")]


# ---------------------------------------------------------------- snapshots


def test_snapshot_truncates_log_and_lagging_follower_installs_it() -> None:
    net = Net(voters=3)
    leader = net.elect()
    lagger = next(i for i in net.ids if i != leader.node_id)
    net.isolate(lagger)
    for k in range(10):
        leader.append([f"e{k}".encode()])
        net.run_for(5)
    net.run_until(lambda: leader.high_watermark == leader.log.end_offset)
    with pytest.raises(ValueError):
        leader.create_snapshot(leader.high_watermark + 1, b"too far")
    sid = leader.create_snapshot(leader.high_watermark - 2, b"state-up-to-there")
    assert leader.log.start_offset == sid.end_offset and leader.latest_snapshot_id == sid
    assert net.storages[leader.node_id].entries[0].offset == sid.end_offset
    net.heal()
    net.run_until(net.converged)
    node = net.nodes[lagger]
    assert node.latest_snapshot_id == sid and node.log.start_offset == sid.end_offset
    assert net.recorders[lagger].snapshots == [(sid, b"state-up-to-there")]
    assert [e.payload for e in net.recorders[lagger].committed] == [b"e8", b"e9"]
    # it came in 7-byte FetchSnapshot chunks
    chunks = [e for e in net.sent if isinstance(e.message, FetchSnapshotRequest) and e.source == lagger]
    assert len(chunks) >= 3
    # a restart loads the snapshot first
    net.crash(lagger)
    net.start(lagger)
    net.run_until(net.converged)
    assert net.recorders[lagger].snapshots[0][0] == sid


def test_fetch_snapshot_errors() -> None:
    net = Net(voters=1)
    leader = net.elect()
    leader.append([b"a"])
    net.run_until(lambda: leader.high_watermark == 2)
    sid = leader.create_snapshot(2, b"0123456789")

    def fs(snapshot_id: SnapshotId, pos: int) -> FetchSnapshotRequest:
        return FetchSnapshotRequest(
            cluster_id=None, replica_id=7, current_leader_epoch=leader.epoch, snapshot_id=snapshot_id, position=pos
        )

    assert request(leader, 7, fs(SnapshotId(1, 1), 0)).error_code == ErrorCode.snapshot_not_found
    assert request(leader, 7, fs(sid, 10)).error_code == ErrorCode.position_out_of_range
    ok = request(leader, 7, fs(sid, 4))
    assert ok.error_code == ErrorCode.none and ok.unaligned_records == b"456789" and ok.size == 10
    r = fetch(7, leader.epoch, 0, 0)
    assert request(leader, 7, r).snapshot_id == sid


# ---------------------------------------------------------------- check-quorum and resignation


def test_isolated_leader_resigns_after_check_quorum_timeout() -> None:
    net = Net(voters=3)
    leader = net.elect()
    t0 = net.now
    net.isolate(leader.node_id)
    net.run_until(lambda: not leader.is_leader, max_ms=1000)
    assert isinstance(leader.role, Resigned)
    assert net.now - t0 >= CONFIG.check_quorum_timeout_ms - CONFIG.fetch_max_wait_ms
    net.run_until(lambda: net.leader() is not None and net.leader() is not leader)
    net.heal()
    net.run_until(net.converged)
    assert leader.epoch == net.leader().epoch  # type: ignore[union-attr]


def test_graceful_resign_hands_over_quickly() -> None:
    net = Net(voters=3)
    leader = net.elect()
    epoch = leader.epoch
    assert leader.resign()
    t0 = net.now
    net.run_until(lambda: net.leader() is not None and net.leader().epoch > epoch)  # type: ignore[union-attr]
    assert net.now - t0 < CONFIG.fetch_timeout_ms  # EndQuorumEpoch made it faster than a timeout
    assert not lone_voter().resign()


# ---------------------------------------------------------------- bad input on the fetch path


def test_fetch_epoch_checks() -> None:
    net = Net(voters=3)
    leader = net.elect()
    e = leader.epoch
    r = next(i for i in net.ids if i != leader.node_id)
    future = request(leader, r, fetch(r, e + 1, 0, 0))
    assert future.error_code == ErrorCode.unknown_leader_epoch and future.leader_epoch == e
    assert leader.is_leader and leader.epoch == e  # no state change from a future epoch
    stale = request(leader, r, fetch(r, e - 1, 0, 0))
    assert stale.error_code == ErrorCode.fenced_leader_epoch and stale.leader_id == leader.node_id
    follower = next(n for n in net.nodes.values() if n is not leader)
    nl = request(follower, 50, fetch(50, e, 0, 0))
    assert nl.error_code == ErrorCode.not_leader_or_follower and nl.leader_id == leader.node_id
    for bad in (fetch(r, e, -1, 0), fetch(r, e, 0, e + 1), fetch(leader.node_id, e, 0, 0)):
        assert request(leader, r, bad).error_code == ErrorCode.invalid_request


def test_unknown_replica_is_served_as_observer_and_never_counted() -> None:
    net = Net(voters=3)
    leader = net.elect()
    for i in net.ids:
        if i != leader.node_id:
            net.isolate(i)
    leader.append([b"a"])
    net.run_for(5)
    hw = leader.high_watermark
    resp = request(leader, 77, fetch(77, leader.epoch, leader.log.end_offset, leader.epoch))
    assert resp.error_code == ErrorCode.none
    assert leader.high_watermark == hw  # an observer's fetch does not commit anything
    assert [o.replica_id for o in leader.describe_quorum().observers] == [77]
    # a fetch at a diverging position gets a diverging epoch, and nothing else changes
    resp = request(leader, 77, fetch(77, leader.epoch, 50, leader.epoch))
    assert resp.diverging_epoch == EpochEndOffset(leader.epoch, leader.log.end_offset)
    assert leader.is_leader and leader.high_watermark == hw


def test_cluster_id_mismatch() -> None:
    node = lone_voter(cluster_id="abc")
    r = VoteRequest(cluster_id="xyz", replica_epoch=2, replica_id=2, last_offset_epoch=0, last_offset=0)
    assert request(node, 2, r).error_code == ErrorCode.inconsistent_cluster_id and node.epoch == 0
    f = FetchRequest(cluster_id="xyz", replica_id=2, current_leader_epoch=0, fetch_offset=0, last_fetched_epoch=0)
    assert request(node, 2, f).error_code == ErrorCode.inconsistent_cluster_id


def test_begin_quorum_epoch_from_non_voter_or_second_leader() -> None:
    net = Net(voters=3)
    leader = net.elect()
    f = next(n for n in net.nodes.values() if n is not leader)
    r = request(f, 9, BeginQuorumEpochRequest(cluster_id=None, leader_id=9, leader_epoch=f.epoch + 1))
    assert r.error_code == ErrorCode.inconsistent_voter_set and f.epoch == leader.epoch
    other = next(i for i in net.ids if i not in (leader.node_id, f.node_id))
    r = request(f, other, BeginQuorumEpochRequest(cluster_id=None, leader_id=other, leader_epoch=f.epoch))
    assert r.error_code == ErrorCode.invalid_request and f.role.leader_id == leader.node_id


# ---------------------------------------------------------------- API


def test_append_describe_quorum_and_not_leader() -> None:
    net = Net(voters=3, observers=1)
    leader = net.elect()
    with pytest.raises(NotLeaderError):
        leader.append([b"x"], epoch=leader.epoch - 1)
    follower = next(n for n in net.nodes.values() if n is not leader)
    with pytest.raises(NotLeaderError) as err:
        follower.append([b"x"])
    assert err.value.error_code == ErrorCode.not_leader_or_follower
    off = leader.append([b"p", b"q"], epoch=leader.epoch)
    assert off == leader.log.end_offset - 1
    net.run_until(net.converged)
    dq = leader.describe_quorum()
    assert dq.error_code == ErrorCode.none and dq.leader_id == leader.node_id and dq.high_watermark == off + 1
    assert [v.replica_id for v in dq.current_voters] == [1, 2, 3]
    assert all(v.log_end_offset == off + 1 for v in dq.current_voters)
    assert [o.replica_id for o in dq.observers] == [100] and dq.observers[0].log_end_offset == off + 1
    assert all(v.last_caught_up_timestamp >= 0 for v in dq.current_voters)
    assert request(leader, 5, DescribeQuorumRequest()) == leader.describe_quorum()
    assert follower.describe_quorum().error_code == ErrorCode.not_leader_or_follower
    assert [e.payload for e in net.nodes[100].committed(0)][-2:] == [b"p", b"q"]
    assert net.recorders[100].leaders[-1] == leader.leader_and_epoch
