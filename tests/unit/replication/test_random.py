"""Seeded random runs of a leader, its followers and a controller, checking invariants.

Followers really hold records: a follower's `true_leo` only grows when a fetch response
delivers records. The controller commits AlterPartition proposals (bumping the partition
epoch and publishing a registration) or rejects stale ones; responses and registrations
arrive in random order. After every step: HW never decreases, HW <= leader LEO, every
committed-ISR member really holds every offset below HW (and the leader's view of it
agrees where known), the leader is in the ISR and in every proposal, and an acks=all wait
completes without error only when every committed-ISR member has the offsets.
"""

from __future__ import annotations

import random

import pytest

from suoi.model import ErrorCode
from suoi.replication import UNKNOWN_OFFSET, AcksAllWaiters, AlterPartitionProposal, LeaderPartitionState

LEADER = 1
LAG = 1000


class Controller:
    def __init__(self, leader_epoch: int, partition_epoch: int, replicas: tuple[int, ...], isr: set[int]) -> None:
        self.leader_epoch = leader_epoch
        self.partition_epoch = partition_epoch
        self.replicas = replicas
        self.isr = set(isr)
        self.registrations: list[tuple[int, int, tuple[int, ...], tuple[int, ...]]] = []

    def publish(self) -> None:
        self.registrations.append((self.leader_epoch, self.partition_epoch, self.replicas, tuple(sorted(self.isr))))

    def alter(self, p: AlterPartitionProposal) -> tuple[ErrorCode, tuple[int, ...], int, int]:
        if p.leader_epoch != self.leader_epoch:
            return ErrorCode.fenced_leader_epoch, (), -1, -1
        if p.partition_epoch != self.partition_epoch:
            return ErrorCode.invalid_update_version, (), -1, -1
        assert LEADER in p.new_isr
        self.isr = set(p.new_isr)
        self.partition_epoch += 1
        self.publish()
        return ErrorCode.none, p.new_isr, self.leader_epoch, self.partition_epoch


@pytest.mark.parametrize("seed", range(60))
def test_random_replication_invariants(seed: int) -> None:
    rng = random.Random(seed)
    rf = rng.choice([2, 3, 5])
    replicas = tuple(range(1, rf + 1))
    min_isr = rng.randint(1, rf)
    now = 0
    leo = rng.randint(0, 20)
    # followers start with some prefix of the leader's log; the ISR ones with all of it
    isr = {LEADER} | {r for r in replicas[1:] if rng.random() < 0.6}
    true_leo = {r: (leo if r in isr else rng.randint(0, leo)) for r in replicas[1:]}
    hw0 = rng.randint(0, min([leo, *(true_leo[r] for r in isr if r != LEADER)]))
    s = LeaderPartitionState("t", 0, LEADER, 3, 9, replicas, isr, min_isr, LAG, leader_leo=leo, high_watermark=hw0, now_ms=now)
    ctl = Controller(3, 9, replicas, isr)
    alive = {r: True for r in replicas[1:]}
    responses: list[tuple[AlterPartitionProposal, tuple[ErrorCode, tuple[int, ...], int, int]]] = []
    waiters = AcksAllWaiters()
    outstanding: dict[int, int] = {}  # token -> required offset
    answered: set[int] = set()
    next_token = 0
    last_hw = s.high_watermark

    def deliver(done: list[tuple[object, ErrorCode]]) -> None:
        for token, err in done:
            assert isinstance(token, int) and token not in answered
            answered.add(token)
            required = outstanding.pop(token)
            if err in (ErrorCode.none, ErrorCode.not_enough_replicas_after_append):
                assert s.high_watermark >= required
                for r in s.isr - {LEADER}:
                    assert true_leo[r] >= required
                assert (err == ErrorCode.none) == (len(s.isr) >= min_isr)
            else:
                assert err == ErrorCode.request_timed_out

    def send(p: AlterPartitionProposal | None) -> None:
        if p is not None:
            assert LEADER in p.new_isr and p.leader_epoch == s.leader_epoch
            assert p is s.pending
            responses.append((p, ctl.alter(p)))

    for _ in range(400):
        now += rng.randint(0, 300)
        action = rng.random()
        if action < 0.2:
            if s.can_accept_acks_all() == ErrorCode.none or rng.random() < 0.3:
                leo += rng.randint(1, 5)
                s.on_leader_append(leo, now)
                if s.can_accept_acks_all() == ErrorCode.none:
                    waiters.register(next_token, leo, now + rng.randint(100, 5000))
                    outstanding[next_token] = leo
                    next_token += 1
        elif action < 0.6:
            r = rng.choice(replicas[1:])
            if alive[r]:
                result = s.on_follower_fetch(r, true_leo[r], leo, now)
                assert result.error == ErrorCode.none
                send(result.proposal)
                true_leo[r] = rng.randint(true_leo[r], leo)  # the response's records
        elif action < 0.65:
            r = rng.choice(replicas[1:])
            alive[r] = not alive[r]
        elif action < 0.75:
            send(s.maybe_shrink_isr(now))
        elif action < 0.85 and responses:
            p, (err, new_isr, le, pe) = responses.pop(rng.randrange(len(responses)))
            s.on_alter_partition_response(p, err, isr=new_isr, leader_epoch=le, partition_epoch=pe, now_ms=now)
        elif action < 0.95 and ctl.registrations:
            le, pe, reps, new_isr = ctl.registrations.pop(0)
            fresh = pe >= s.partition_epoch  # an AlterPartition response may have come first
            assert s.update_registration(le, pe, reps, new_isr, now, leader_leo=leo) == fresh
        elif action < 0.97:
            # the controller fences a follower (or bumps the leader epoch)
            if rng.random() < 0.5 and len(ctl.isr) > 1:
                ctl.isr.discard(rng.choice(sorted(ctl.isr - {LEADER})))
            else:
                ctl.leader_epoch += 1
            ctl.partition_epoch += 1
            ctl.publish()
        deliver(waiters.check_state(s))
        deliver(waiters.poll(now))

        hw = s.high_watermark
        assert hw >= last_hw
        last_hw = hw
        assert hw <= s.leader_leo == leo
        assert LEADER in s.isr and s.isr <= set(s.replicas)
        if s.pending is not None:
            assert LEADER in s.pending.new_isr
        for r in s.isr - {LEADER}:
            assert true_leo[r] >= hw
            known = s.follower_state(r).log_end_offset
            assert known == UNKNOWN_OFFSET or known >= hw
        for off in (hw - 1, hw, hw + 1):
            assert s.acks_all_satisfied(off) == (hw >= off)

    # everything still waiting is answered by a timeout eventually
    deliver(waiters.poll(now + 10_000))
    assert not outstanding and len(waiters) == 0
