"""The active controller's ticks are armed at its next deadline, not every 200 ms (issue 19, a
node at idle): what can bring the deadline nearer must still wake them. A broker whose process is
killed is fenced as soon as the controller finds its endpoints refusing connections, not when its
session would end."""

from __future__ import annotations

import time
from pathlib import Path

from tests.conftest import wait_until
from tests.integration.kraft_cluster import kraft_cluster
from tests.integration.support import metadata_req
from tests.rawclient import RawClient

#: long enough that a fencing within FENCED_WITHIN_S cannot be the session's end
SESSION_TIMEOUT_MS = 30_000
#: the ticks wait for the next deadline up to 5 s (MAX_TICK_WAIT_S): a missed wake-up fences later
FENCED_WITHIN_S = 4.0


def test_a_killed_broker_is_fenced_at_once_not_at_its_sessions_end(tmp_path: Path) -> None:
    with kraft_cluster(tmp_path, 3, {"broker.session.timeout.ms": str(SESSION_TIMEOUT_MS)}) as cluster:
        with RawClient(cluster.nodes[1].bootstrap) as c:
            controller = int(c.request(metadata_req(allow_create=False)).controller_id)
        victim = next(i for i in sorted(cluster.nodes) if i != controller)
        witness = next(i for i in sorted(cluster.nodes) if i not in (victim, controller))
        assert cluster.broker_ids(witness) == [1, 2, 3]
        node = cluster.nodes[victim]
        assert node.proc is not None
        killed = time.monotonic()
        node.proc.kill()  # its sockets close with it: the controller sees the heartbeat connection go
        node.proc.wait(timeout=10)
        wait_until(lambda: victim not in cluster.broker_ids(witness), timeout=SESSION_TIMEOUT_MS / 1000,
                   interval=0.05, message=f"broker {victim} fenced")
        took = time.monotonic() - killed
        assert took < FENCED_WITHIN_S, f"fenced after {took:.1f} s: the ticks were not woken by the lost connection"
        assert cluster.broker_ids(controller) == sorted(i for i in cluster.nodes if i != victim)
