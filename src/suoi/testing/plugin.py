"""pytest plugin (entry point `suoi`): fixtures for an embedded broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from suoi.testing.embedded import EmbeddedBroker
from suoi.testing.inprocess import InProcessCluster, InProcessNode


@pytest.fixture
def suoi_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A fresh broker for one test; stopped (and its data removed) afterwards."""
    broker = EmbeddedBroker(tmp_path_factory.mktemp("suoi"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def _node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessNode]:
    with InProcessNode(tmp_path_factory.mktemp("suoi-node")) as node:
        yield node


#: An in-process KRaft node (`suoi.testing.InProcessNode`) per test, module or session;
#: `node.bootstrap` for clients, `node.create_topic(name, partitions)` to make topics.
suoi_node = pytest.fixture(_node, name="suoi_node")
suoi_module_node = pytest.fixture(_node, name="suoi_module_node", scope="module")
suoi_session_node = pytest.fixture(_node, name="suoi_session_node", scope="session")


@pytest.fixture
def suoi_bootstrap(suoi_node: InProcessNode) -> str:
    """The "host:port" of a fresh in-process node, for `bootstrap_servers=`."""
    return suoi_node.bootstrap


@pytest.fixture(scope="module")
def suoi_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCluster]:
    """Three in-process KRaft nodes forming one quorum, shared by a module's tests."""
    with InProcessCluster(3, tmp_path_factory.mktemp("suoi-cluster")) as cluster:
        yield cluster
