"""A node stops within a few seconds whatever the rest of its cluster did: here the active
controller is stopped last, when it has lost its quorum, so its controlled shutdown (a
BrokerHeartbeat with want_shutdown to its own controller) can never commit and must give up
(not skipped: even the last broker records its clean shutdown, so its restart registers at once)."""

from __future__ import annotations

import logging
import time

import pytest

from suoi.testing.inprocess import InProcessCluster
from tests.conftest import wait_until


def _leader(cluster: InProcessCluster) -> int:
    first = cluster.nodes[1].broker.kraft
    wait_until(lambda: first.controller_id > 0 and all(
        n.broker.kraft.controller_id == first.controller_id for n in cluster.nodes.values()))
    return first.controller_id


def test_the_controller_left_without_its_quorum_stops_promptly(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="suoi")
    with InProcessCluster(3) as cluster:
        leader = _leader(cluster)
        took = {}
        for node_id in [*(i for i in cluster.nodes if i != leader), leader]:  # the controller last
            started = time.monotonic()
            cluster.nodes[node_id].stop()
            took[node_id] = time.monotonic() - started
        assert max(took.values()) < 4.5, took  # before the fix: 5.5 s (a commit that never came)
    assert f"controlled shutdown of node {leader} incomplete" in caplog.text
    assert "did not stop" not in caplog.text
    assert caplog.text.count("stopped cleanly") == 3

