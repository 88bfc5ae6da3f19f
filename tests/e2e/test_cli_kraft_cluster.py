"""`suoi topics` against a 3-node KRaft cluster (combined mode) while metadata moves: a topic
is described right after `Created topic ...` through any node, and after SIGKILL of the active
controller the survivors stop naming it at once and `--describe` through a survivor answers
(issue 11, bug 7: it hung for the tools' 10 s timeout while brokers named the dead node)."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.e2e.cli import ok
from tests.integration.kraft_cluster import KRaftCluster, kraft_cluster
from tests.integration.support import metadata_req, unique
from tests.rawclient import RawClient


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KRaftCluster]:
    with kraft_cluster(Path(tmp_path_factory.mktemp("kraft-cli"))) as c:
        yield c


def controller_named_by(cluster: KRaftCluster, node: int) -> int:
    with RawClient(cluster.nodes[node].bootstrap) as c:
        return int(c.request(metadata_req(allow_create=False)).controller_id)


def describe(bootstrap: str, topic: str) -> list[str]:
    return ok("topics", "--describe", "--topic", topic, "--bootstrap-server", bootstrap).splitlines()


def test_describe_right_after_create_through_any_node(cluster: KRaftCluster) -> None:
    for i in range(3):
        topic = unique("orders")
        via = cluster.nodes[1 + i % 3].bootstrap
        other = cluster.nodes[1 + (i + 1) % 3].bootstrap
        created = ok("topics", "--create", "--topic", topic, "--partitions", "2", "--bootstrap-server", via)
        assert created == f"Created topic {topic}.\n"
        for bootstrap in (via, other):
            lines = describe(bootstrap, topic)
            assert re.match(rf"Topic: {topic}\tTopicId: \S+\tPartitionCount: 2\tReplicationFactor: 1\t", lines[0]), lines
            assert len(lines) == 3


@pytest.mark.slow
def test_describe_through_a_survivor_after_sigkill_of_the_controller(cluster: KRaftCluster) -> None:
    topic = unique("orders")
    ok("topics", "--create", "--topic", topic, "--partitions", "3", "--bootstrap-server", cluster.bootstrap)
    dead = wait_until(lambda: controller_named_by(cluster, 1), message="a controller named")
    assert dead in cluster.nodes
    survivors = [i for i in cluster.nodes if i != dead]
    wait_until(lambda: all(controller_named_by(cluster, i) == dead for i in survivors), message="agreed controller")

    cluster.nodes[dead].proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    # The quorum elects a new leader only after the fetch timeout (2 s); meanwhile the survivors
    # must not send admin clients to the dead node: they name a live one (themselves: they forward).
    wait_until(lambda: all(controller_named_by(cluster, i) != dead for i in survivors), timeout=1.0,
               interval=0.01, message="survivors no longer naming the dead controller")
    assert time.monotonic() - killed < 1.5

    for survivor in survivors:
        start = time.monotonic()
        lines = describe(cluster.nodes[survivor].bootstrap, topic)
        assert lines[0].startswith(f"Topic: {topic}\t") and len(lines) == 4, lines
        assert time.monotonic() - start < 8.0  # well within the tool's 10 s timeout

    def new_controller() -> int | None:  # both survivors name the same one (while electing, each names itself)
        named = {controller_named_by(cluster, i) for i in survivors}
        return named.pop() if len(named) == 1 and named <= set(survivors) else None

    wait_until(new_controller, timeout=15, message="one new controller named by both survivors")
    after = ok("topics", "--create", "--topic", f"{topic}-b", "--bootstrap-server", cluster.nodes[survivors[0]].bootstrap)
    assert after == f"Created topic {topic}-b.\n"
