"""`suoi cluster` process handling with stand-in processes (no broker): a node just started
counts as running (its /proc command line is briefly empty while it execs), a node that dies
while starting is reported with its exit code or signal and only its own output, and picked
ports stay out of the ephemeral range."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from suoi.cli import cluster_layout as layout
from suoi.cli import cluster_procs as procs
from suoi.cli.common import CliError

SLEEPER = "import sys, time; print('up', flush=True); time.sleep(60)"


@dataclass
class StandinCluster(layout.Cluster):
    """A cluster whose nodes run `program` (python -c) with the node's config path as argument."""

    program: str = SLEEPER

    def command(self, node_id: int) -> list[str]:
        return [sys.executable, "-c", self.program, str(self.config_path(node_id))]


@pytest.fixture
def clusters() -> Iterator[list[StandinCluster]]:
    made: list[StandinCluster] = []
    yield made
    for c in made:
        procs.stop_pids(c, [n for n in c.nodes if n.pid is not None], sig=signal.SIGKILL, timeout=5)


def standin_cluster(clusters: list[StandinCluster], tmp_path: Path, program: str = SLEEPER) -> StandinCluster:
    # a broker port nobody listens on: wait_ready keeps waiting until the stand-in exits
    node = layout.Node(1, ["broker"], layout.free_ports(1)[0], None)
    c = StandinCluster(tmp_path, layout.new_cluster_id(), [node], program=program)
    clusters.append(c)
    return c


def test_a_node_counts_as_running_from_the_moment_it_is_spawned(tmp_path: Path,
                                                                  clusters: list[StandinCluster]) -> None:
    # Popen returns once exec closed the close-on-exec pipe, before the kernel has set up the
    # new argv: /proc/<pid>/cmdline may still be empty then. Neither check may call it gone.
    for i in range(25):
        c = standin_cluster(clusters, tmp_path / f"c{i}")
        node = c.nodes[0]
        procs.spawn(c, node)
        assert procs.node_running(c, node)
        assert procs.exit_description(node) is None
    for _ in range(25):
        config = tmp_path / "node-9" / "server.properties"
        p = subprocess.Popen([sys.executable, "-c", SLEEPER, str(config)], stdout=subprocess.DEVNULL)
        try:
            assert procs.pid_running(p.pid, config)
        finally:
            p.kill()
            p.wait(10)


def test_exit_code_and_only_this_runs_output_are_reported(tmp_path: Path, clusters: list[StandinCluster]) -> None:
    c = standin_cluster(clusters, tmp_path, "import sys; print('bind failed', flush=True); sys.exit(3)")
    c.log_path(1).parent.mkdir(parents=True)
    c.log_path(1).write_text("INFO suoi.cluster: node 1 is unfenced\n")  # an earlier run's last words
    procs.spawn(c, c.nodes[0])
    with pytest.raises(CliError) as err:
        procs.wait_ready(c, c.nodes, 30)
    msg = str(err.value)
    assert "node 1" in msg and "exited while starting (exit code 3;" in msg and msg.endswith(": bind failed"), msg
    assert not procs.node_running(c, c.nodes[0])


def test_a_node_killed_by_a_signal_says_so(tmp_path: Path, clusters: list[StandinCluster]) -> None:
    c = standin_cluster(clusters, tmp_path, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    c.log_path(1).parent.mkdir(parents=True)
    c.log_path(1).write_text("INFO suoi.cluster: node 1 is unfenced\n")
    procs.spawn(c, c.nodes[0])
    with pytest.raises(CliError) as err:
        procs.wait_ready(c, c.nodes, 30)
    msg = str(err.value)
    assert "killed by signal 9 (SIGKILL)" in msg and msg.endswith(": no output") and "unfenced" not in msg, msg


def test_stop_pids_reaps_a_spawned_node(tmp_path: Path, clusters: list[StandinCluster]) -> None:
    c = standin_cluster(clusters, tmp_path)
    procs.spawn(c, c.nodes[0])
    assert procs.stop_pids(c, c.nodes, timeout=5) == {1: "stopped"}
    assert not procs.node_running(c, c.nodes[0])
    assert procs.exit_description(c.nodes[0]) == "killed by signal 15 (SIGTERM)"


def test_picked_ports_avoid_the_ephemeral_range() -> None:
    lo, hi = layout.ephemeral_port_range()
    assert 0 < lo <= hi <= 65535
    ports = layout.free_ports(40)
    assert len(set(ports)) == 40
    assert all(p >= layout.PICK_PORT_LOW and not lo <= p <= hi for p in ports), (lo, hi, ports)
    assert all(not layout.port_in_use(p) for p in ports[:5])
