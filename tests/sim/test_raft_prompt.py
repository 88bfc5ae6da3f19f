"""Liveness details of the Raft core that the simulation's invariants do not pin down: a
follower learns a commit without waiting for its long poll (KIP-1166), a follower stops
naming a leader it cannot reach, and the only voter leads at once."""

from __future__ import annotations

import dataclasses
import random

from suoi.raft import EndQuorumEpochRequest, ErrorCode, FetchRequest, MemoryStorage, RaftNode
from tests.sim.harness import CONFIG, Net, fetch, request


def test_leader_answers_at_once_a_fetch_that_does_not_know_its_high_watermark() -> None:
    """KIP-1166: a caught-up replica whose known HW is behind the leader's is answered now, not
    parked for max_wait (KAFKA-14145); one that knows it, or does not say (Fetch < v18), parks."""
    net = Net(voters=3)
    leader = net.elect()
    leader.append([b"a"])
    net.run_until(net.converged)
    e, end, hw = leader.epoch, leader.log.end_offset, leader.high_watermark
    r = next(i for i in net.ids if i != leader.node_id)

    def long_poll(known_hw: int | None) -> FetchRequest:
        req = fetch(r, e, end, e, wait=CONFIG.fetch_max_wait_ms)
        return req if known_hw is None else dataclasses.replace(req, high_watermark=known_hw)

    behind = request(leader, r, long_poll(hw - 1))
    assert behind is not None and behind.error_code == ErrorCode.none
    assert behind.high_watermark == hw and behind.records == ()
    assert request(leader, r, long_poll(hw)) is None  # parked: nothing to learn
    assert request(leader, r, long_poll(None)) is None  # HW_NOT_SENT: parked as before
    # the followers' own fetches report what they know
    last = [env.message for env in net.sent if env.source == r and isinstance(env.message, FetchRequest)][-1]
    assert last.high_watermark == net.nodes[r].high_watermark == hw


def test_a_follower_stops_naming_a_leader_it_cannot_reach() -> None:
    """A transport failure of the fetch to the leader (a SIGKILLed leader refuses connections):
    the follower no longer names it as the live leader, retries after the backoff rather than the
    request timeout, and names it again once it answers; the epoch ends only at the fetch timeout."""
    net = Net(voters=3)
    leader = net.elect()
    net.run_until(net.converged)
    r = next(i for i in net.ids if i != leader.node_id)
    follower = net.nodes[r]
    assert follower.live_leader_id == leader.node_id and leader.live_leader_id == leader.node_id
    inflight = follower.role.inflight  # its long-poll fetch, parked on the leader
    assert inflight is not None
    net.queue.clear()
    t = net.now
    assert follower.request_failed(inflight + 1000, t) == [] and follower.live_leader_id == leader.node_id  # unknown id
    out = follower.request_failed(inflight, t)
    assert follower.live_leader_id is None
    assert follower.leader_and_epoch.leader_id == leader.node_id  # still its epoch's leader
    assert not any(isinstance(e.message, FetchRequest) for e in out)  # backing off
    assert follower.next_deadline() <= t + CONFIG.retry_backoff_ms
    again = follower.poll(t + CONFIG.retry_backoff_ms)
    assert [e.destination for e in again if isinstance(e.message, FetchRequest)] == [leader.node_id]
    net.emit(again)
    # the leader answers (at the latest when the long poll expires): alive again
    net.run_until(lambda: follower.live_leader_id == leader.node_id, max_ms=CONFIG.fetch_max_wait_ms + 5)
    assert follower.leader_and_epoch.epoch == leader.epoch


def test_the_only_voter_leads_at_its_first_poll_and_after_a_restart() -> None:
    """No election timeout to wait for with nobody else to vote (Kafka stands at once too)."""
    storage = MemoryStorage()
    node = RaftNode(1, [1], storage, CONFIG, random.Random(1), now_ms=5000)
    node.poll(5000)
    assert node.is_leader and node.epoch == 1 and node.high_watermark == 1
    restarted = RaftNode(1, [1], storage, CONFIG, random.Random(2), now_ms=9000)  # quorum-state names it leader
    restarted.poll(9000)
    assert restarted.is_leader and restarted.epoch == 2


def test_the_only_voter_writes_its_quorum_state_once_per_election() -> None:
    """Its vote for itself needs no durable record of its own (no vote request goes out): the
    leader state of the new epoch is written directly (one fsync'd write fewer at start-up)."""
    written: list[tuple[int, int | None, int | None]] = []

    class Counting(MemoryStorage):
        def write_quorum_state(self, state):  # type: ignore[no-untyped-def]
            written.append((state.epoch, state.voted_id, state.leader_id))
            super().write_quorum_state(state)

    storage = Counting()
    node = RaftNode(1, [1], storage, CONFIG, random.Random(1), now_ms=0)
    node.poll(0)
    assert node.is_leader and written == [(1, 1, 1)]
    assert storage.read_quorum_state().leader_id == 1
    restarted = RaftNode(1, [1], storage, CONFIG, random.Random(2), now_ms=10)
    restarted.poll(10)
    assert restarted.is_leader and written == [(1, 1, 1), (2, 1, 1)]


def test_a_follower_in_pre_vote_still_names_its_leader_and_tells_no_listener_of_a_change() -> None:
    """Under load a follower's fetch timeout runs out with its leader alive: it asks for pre-votes
    (KIP-996), which the others refuse. Meanwhile it still names that leader (Kafka's
    ProspectiveState does), so its node's controller is not 'unknown' for a second or two."""
    net = Net(voters=3)
    leader = net.elect()
    net.run_until(net.converged)
    r = next(i for i in net.ids if i != leader.node_id)
    follower = net.nodes[r]
    seen = len(net.recorders[r].leaders)
    net.isolate(r)
    net.run_until(lambda: follower.role_name == "prospective", max_ms=CONFIG.fetch_timeout_ms * 2)
    assert follower.leader_and_epoch == leader.leader_and_epoch
    assert follower.live_leader_id is None  # not heard from within the fetch timeout
    assert len(net.recorders[r].leaders) == seen  # the view did not change: no listener call
    net.heal()
    net.run_until(lambda: follower.role_name == "follower" and follower.live_leader_id == leader.node_id,
                  max_ms=CONFIG.election_timeout_ms * 3)
    assert leader.is_leader and follower.epoch == leader.epoch  # the pre-vote disturbed nobody


def test_voters_told_of_a_resignation_never_follow_the_resigned_leader_again() -> None:
    """A graceful stop (EndQuorumEpoch): the others elect a new leader in an election timeout or
    so. The resigned node's error answers to the parked fetches must not send a voter that
    already stood for election back to following it: it then waited a whole fetch timeout (2 s)
    with no controller, as seen while a cluster was stopping."""
    net = Net(voters=3)
    leader = net.elect()
    net.run_until(net.converged)
    old = leader.node_id
    assert leader.resign()
    out = leader.poll(net.now)  # the parked fetches' error answers, and EndQuorumEpoch
    # They travel on different connections: here EndQuorumEpoch arrives first and each voter polls
    # (stands for election, at once for the preferred successor) before the fetch answer comes.
    for env in (e for e in out if isinstance(e.message, EndQuorumEpochRequest)):
        net.emit(net.nodes[env.destination].handle(env, net.now))
        net.emit(net.nodes[env.destination].poll(net.now))
    standing = [i for i, n in net.nodes.items() if n.role_name == "prospective"]
    assert standing
    for env in (e for e in out if not isinstance(e.message, EndQuorumEpochRequest)):
        net.emit(net.nodes[env.destination].handle(env, net.now))
    assert [i for i in standing if net.nodes[i].role_name == "follower"] == []  # before: back to the old one
    started = net.now
    net.run_until(lambda: any(n.is_leader and i != old for i, n in net.nodes.items()),
                  max_ms=CONFIG.fetch_timeout_ms)
    assert net.now - started < CONFIG.fetch_timeout_ms
