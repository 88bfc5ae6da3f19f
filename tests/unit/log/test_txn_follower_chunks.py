"""A follower appends what it fetched in chunks of many batches (`append_as_follower`): its
transaction state must be what the leader's is, however the batches were cut into fetches.

Markers end transactions in log order: data of producer P's next transaction, fetched in the
same chunk as the marker ending P's previous one, starts a new transaction. The bug this rules
out (found by tests/faults' nemesis with a transactional producer): `_place` updated the producer
state for every batch of a chunk first and applied the chunk's markers after, so a later
transaction's data joined the earlier one; its ABORT then found no transaction (no .txnindex
entry: read_committed consumers of that replica, once leader, were served aborted records) and
an open transaction at the end of a chunk was lost (the LSO passed uncommitted data).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from suoi.log.config import LogConfig
from suoi.log.partition_log import PartitionLog
from suoi.protocol.records import build_batch, iter_batches
from tests.unit.log.log_helpers import Clock, OpenLog


def leader_history(log: PartitionLog, rng: random.Random, steps: int) -> None:
    """Random appends on a leader log: transactional batches of producers 1-3 (each opens or
    joins its transaction), COMMIT/ABORT markers of producers with one open, plain batches."""
    seqs = {pid: 0 for pid in (1, 2, 3)}
    for _ in range(steps):
        open_txns = sorted(log.producer_state.ongoing_txns)
        roll = rng.random()
        if open_txns and roll < 0.35:
            log.append_control(rng.choice(open_txns), 0, rng.random() < 0.5, 0)
        elif roll < 0.85:
            pid = rng.choice((1, 2, 3))
            n = rng.randint(1, 3)
            log.append(build_batch([(None, b"p%d-%d" % (pid, seqs[pid] + i)) for i in range(n)], producer_id=pid,
                                   producer_epoch=0, base_sequence=seqs[pid], is_transactional=True))
            seqs[pid] += n
        else:
            log.append(build_batch([(None, b"plain")]))


def replicate(leader: PartitionLog, follower: PartitionLog, rng: random.Random, max_batches: int) -> None:
    """Copy the leader's log to the follower in chunks of 1..max_batches whole batches."""
    data = bytes(leader.read(0, 1 << 30, max_offset=leader.log_end_offset))
    ends = [pos + h.size for pos, h in iter_batches(data)]
    start = 0
    i = 0
    while i < len(ends):
        i = min(len(ends), i + rng.randint(1, max_batches))
        follower.append_as_follower(data[start:ends[i - 1]])
        start = ends[i - 1]
    assert follower.log_end_offset == leader.log_end_offset


def transaction_state(log: PartitionLog) -> tuple[dict[int, int], list[tuple[int, int, int, int]]]:
    """(ongoing transactions: producer -> first offset, aborted transactions with their LSO)."""
    aborted = [(t.producer_id, t.first_offset, t.last_offset, t.last_stable_offset)
               for t in log.aborted_transactions(0, log.log_end_offset)]
    return dict(log.producer_state.ongoing_txns), aborted


@pytest.mark.parametrize("seed", range(40))
def test_a_follower_has_the_leaders_transactions_however_its_fetches_cut_the_log(
        seed: int, open_log: OpenLog, tmp_path: Path, clock: Clock) -> None:
    rng = random.Random(seed)
    leader = open_log()
    leader_history(leader, rng, 60)
    follower = PartitionLog.open(tmp_path / "f-0", "f", 0, LogConfig(), now_ms=clock, hw_follows_leo=False)
    try:
        replicate(leader, follower, rng, max_batches=rng.choice((2, 8, 1000)))
        assert transaction_state(follower) == transaction_state(leader), f"seed {seed}"
    finally:
        follower.close()


def test_markers_in_one_chunk_end_transactions_in_log_order(open_log: OpenLog, tmp_path: Path, clock: Clock) -> None:
    """The shape the nemesis found: abort, next transaction, commit, next, abort, next (open)."""
    leader = open_log()
    first_offsets = []
    for i, commit in enumerate((False, True, False, None)):
        first_offsets.append(leader.append(build_batch([(None, b"t%d" % i)], producer_id=9, producer_epoch=0,
                                                      base_sequence=i, is_transactional=True)).base_offset)
        if commit is not None:
            leader.append_control(9, 0, commit, 0)
    follower = PartitionLog.open(tmp_path / "f-0", "f", 0, LogConfig(), now_ms=clock, hw_follows_leo=False)
    try:
        follower.append_as_follower(leader.read(0, 1 << 20, max_offset=leader.log_end_offset))
        ongoing, aborted = transaction_state(follower)
        assert ongoing == {9: first_offsets[3]}  # the last transaction is still open
        assert [(pid, first, last) for pid, first, last, _ in aborted] == [(9, 0, 1), (9, 4, 5)]
        assert (ongoing, aborted) == transaction_state(leader)
    finally:
        follower.close()
