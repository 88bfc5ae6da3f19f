"""The KRaft test cluster's first start survives a port taken between its pick and the node's bind
(another test worker's node took it: the flake seen in test_admin_cluster under load)."""

from __future__ import annotations

from pathlib import Path

import pytest

from suoi.testing.embedded import PortTakenError
from tests.conftest import taken_port
from tests.integration.kraft_cluster import KRaftCluster


def test_first_start_picks_new_ports_when_one_was_taken(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cluster = KRaftCluster(tmp_path, 1, {"num.partitions": "2"})
    cluster.nodes[1].overrides["default.replication.factor"] = "1"  # a test's own edit survives the re-pick
    taken = cluster.controller_ports[1]
    with taken_port(taken):
        try:
            cluster.start()
            node = cluster.nodes[1]
            assert cluster.controller_ports[1] != taken
            assert node.overrides["controller.quorum.voters"] == f"1@127.0.0.1:{cluster.controller_ports[1]}"
            assert (node.overrides["num.partitions"], node.overrides["default.replication.factor"]) == ("2", "1")
            assert cluster.broker_ids(1) == [1]
            assert "address already in use" in node.logs().lower()  # the first launch's refusal
            assert [r.levelname for r in caplog.records if "was taken" in r.getMessage()] == ["WARNING"]
        finally:
            cluster.stop()


def test_a_started_cluster_keeps_its_ports(tmp_path: Path) -> None:
    """After the first start a node's ports are known to its peers and clients: no re-pick."""
    cluster = KRaftCluster(tmp_path, 1)
    try:
        cluster.start()
        cluster.stop()
        port = cluster.nodes[1].port
        with taken_port(port), pytest.raises(PortTakenError):
            cluster.start()
        assert cluster.nodes[1].port == port
    finally:
        cluster.stop()
