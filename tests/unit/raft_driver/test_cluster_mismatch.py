"""The INCONSISTENT_CLUSTER_ID ERROR: both ids and the fix, once per peer per minute."""

from __future__ import annotations

import logging

import pytest

from suoi.raft_driver.cluster_mismatch import ClusterIdMismatchLog


def test_names_both_ids_and_the_fix_once_per_peer_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    mismatch = ClusterIdMismatchLog(logging.getLogger("t"), "OURS", clock=lambda: now[0])
    with caplog.at_level(logging.ERROR, "t"):
        for _ in range(50):  # a peer retrying its Vote every few hundred ms
            mismatch.received(3, "VoteRequest", "THEIRS")
        mismatch.received(2, "FetchRequest", "THEIRS")  # another peer: its own line
        mismatch.received(4, "VoteRequest", "OURS")  # same cluster: nothing
        mismatch.received(4, "VoteRequest", None)  # an old request without the field: nothing
        mismatch.answered("node 3", "FetchRequest")
        mismatch.answered("node 3", "FetchRequest")
        now[0] = 61.0
        mismatch.received(3, "VoteRequest", "THEIRS")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4
    assert all(r.levelno == logging.ERROR for r in caplog.records)
    assert "VoteRequest from node 3 of cluster.id=THEIRS" in lines[0] and "cluster.id=OURS" in lines[0]
    assert "node 2" in lines[1]
    assert "node 3 refused our FetchRequest" in lines[2] and "OURS" in lines[2]
    assert all("suoi storage format --cluster-id" in line for line in lines)
    assert "node 3" in lines[3]  # the minute passed: said again
