"""Fixtures for fault-injection tests: a ReplicatedCluster per test (nodes as real processes,
peer links through a fault-injecting proxy). When a test fails, every cluster it started is
dumped (processes, cuts, proxy counters, log tails) into its report, then killed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.faults.cluster import ReplicatedCluster


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome: Any = yield
    report = outcome.get_result()
    if report.failed:
        for cluster in getattr(item, "_suoi_clusters", ()):
            try:
                text = cluster.dump()
            except Exception as exc:  # a dump must never hide the failure itself
                text = f"(dump failed: {exc!r})"
            report.sections.append((f"suoi cluster ({report.when})", text))


@pytest.fixture
def make_cluster(tmp_path: Any, request: pytest.FixtureRequest) -> Iterator[Callable[..., ReplicatedCluster]]:
    """`make_cluster(nodes=3, overrides={...}, node_overrides={1: {...}})` starts a cluster and
    waits until every node lists every node; all are killed at teardown."""
    clusters: list[ReplicatedCluster] = []
    request.node._suoi_clusters = clusters

    def make(nodes: int = 3, **kwargs: Any) -> ReplicatedCluster:
        cluster = ReplicatedCluster(tmp_path / f"cluster-{len(clusters) + 1}", nodes, **kwargs)
        clusters.append(cluster)
        return cluster.start()

    try:
        yield make
    finally:
        for cluster in clusters:
            cluster.close()


@pytest.fixture
def cluster(make_cluster: Callable[..., ReplicatedCluster]) -> ReplicatedCluster:
    """A started 3-node cluster (every node broker and controller)."""
    return make_cluster()
