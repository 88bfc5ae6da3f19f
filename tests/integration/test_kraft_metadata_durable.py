"""The metadata log's fsyncs run off the event loop (raft_driver's flush thread); what the
controller commits must still be durable: topics created on a 3-node KRaft cluster (real
processes) exist, with their partitions and leaders, after every node is SIGKILLed and
started again (recovery from the metadata log on disk)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.kraft_cluster import kraft_cluster
from tests.integration.support import create_topic, unique

pytestmark = [pytest.mark.timeout(150), pytest.mark.slow]


def test_created_topics_commit_and_survive_a_crash_of_every_node(tmp_path: Path) -> None:
    with kraft_cluster(tmp_path) as cluster:
        topics = {unique("durable-a"): 3, unique("durable-b"): 1, unique("durable-c"): 2}
        for k, (name, partitions) in enumerate(topics.items()):
            create_topic(cluster.nodes[1 + k % 3].bootstrap, name, partitions=partitions)
        for name, partitions in topics.items():
            cluster.wait_leaders(name, partitions)
        for node in cluster.nodes.values():
            node.kill()
        cluster.start()
        for name, partitions in topics.items():
            leaders = cluster.wait_leaders(name, partitions, timeout=30)
            assert sorted(leaders) == list(range(partitions))
            assert all(leader in cluster.nodes for leader, _ in leaders.values())
        # and the metadata log still takes new changes after the restart
        late = unique("durable-late")
        create_topic(cluster.nodes[2].bootstrap, late, partitions=2)
        assert sorted(cluster.wait_leaders(late, 2)) == [0, 1]
