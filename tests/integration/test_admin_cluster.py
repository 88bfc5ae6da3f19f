"""The admin endpoint in a 3-node KRaft cluster (issue 15): readiness is 503 while a node has no
quorum to register with and 200 once it serves; killing a follower of an RF=3 partition makes the
leader report it under-replicated within replica.lag.time.max.ms, and back to 0 once it rejoins."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from tests.conftest import wait_until
from tests.e2e.admin_scrape import get, get_json, scrape, value
from tests.e2e.helpers import ck_produce
from tests.integration.kraft_cluster import CLUSTER_ID, KRaftCluster

LAG_MS = 1500


def _under_replicated(base: str) -> float | None:
    return value(scrape(base), "kafka_server_replicamanager_underreplicatedpartitions")


@pytest.mark.slow
def test_readiness_and_under_replicated_partitions(tmp_path: Path) -> None:
    cluster = KRaftCluster(tmp_path, 3, overrides={"replica.lag.time.max.ms": str(LAG_MS)}, admin=True)

    def launch() -> None:
        admin = cluster.admin
        node = cluster.nodes[1].launch()  # alone: one voter of three has no quorum, so it cannot register
        # the process starts, then loads the admin app ADMIN_LOAD_WAIT_S later: on a loaded 2-CPU
        # runner each takes seconds (the ci run's failure: no answer 15 s after the node started)
        node.wait_started()  # every port bound (a port taken meanwhile: first_start picks new ones)
        assert f"node.id=1 cluster.id={CLUSTER_ID} started" in node.logs()
        status, body = wait_until(lambda: _answer(f"{admin[1]}/v1/status/ready"), timeout=45, message="admin up")
        assert status == 503 and not body["ready"], body
        assert body["reason"] in ("loading logs; listeners not bound yet",  # discovering the quorum
                                  "not registered with the controller yet"), body
        for i in (2, 3):
            cluster.nodes[i].launch()
        for node in cluster.nodes.values():
            node.wait_ready()

    try:
        cluster.first_start(launch)
        admin = cluster.admin
        cluster.wait_registered()
        for base in admin.values():
            wait_until(lambda base=base: get(f"{base}/v1/status/ready")[0] == 200, timeout=20, message="ready")

        admin_client = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin_client.create_topics([NewTopic("replicated", 1, 3)])["replicated"].result(timeout=20)
        leader = cluster.wait_leaders("replicated", 1)[0][0]
        wait_until(lambda: _under_replicated(admin[leader]) == 0, timeout=20, message="ISR complete")
        quorum_leader = value(scrape(admin[leader]), "kafka_server_raft_metrics_current_leader")
        victim = next(i for i in cluster.nodes if i not in (leader, quorum_leader))

        cluster.nodes[victim].kill()
        ck_produce(cluster.bootstrap, "replicated", [{"value": b"after the kill", "partition": 0}],
                   {"acks": "1"})  # the leader's log moves on without the victim
        wait_until(lambda: _under_replicated(admin[leader]) == 1, timeout=LAG_MS / 1000 + 15,
                   message="under-replicated after a follower died")
        status, body = get_json(f"{admin[leader]}/v1/partitions")
        row = next(p for p in body["partitions"] if p["topic"] == "replicated")
        assert (row["leader"], row["replicas"], row["isr"], row["under_replicated"]) == (True, 3, 2, True)
        assert (value(scrape(admin[leader]), "kafka_server_replicamanager_isrshrinks_total") or 0) >= 1

        cluster.nodes[victim].start()
        wait_until(lambda: _under_replicated(admin[leader]) == 0, timeout=30, message="back in the ISR")
        assert (value(scrape(admin[leader]), "kafka_server_replicamanager_isrexpands_total") or 0) >= 1
    finally:
        cluster.stop()


def _answer(url: str) -> tuple[int, dict[str, object]] | None:
    try:
        return get_json(url)
    except OSError:  # not listening yet
        return None
