"""One node per data dir (Kafka's `.lock`): a second node started on a running node's log dir or
metadata log dir refuses to start with one ERROR line naming the dir and exit code 1, and
touches nothing; the first keeps serving. Once the first stops, the second starts on its data.
Before, both ran and appended to the same segment files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from suoi.log.dir_lock import LOCK_FILE, LogDirLockedError
from suoi.protocol.records import build_batch
from suoi.testing import EmbeddedBroker, InProcessNode, free_port
from tests.integration.support import create_topic, kraft_combined_overrides, produce, read_all

TOPIC = "locked"
CLUSTER_ID = "c3VvaS1sb2NrLWRpci10ZXN0"


def _node(home: Path, log_dirs: list[Path], metadata_dir: Path) -> EmbeddedBroker:
    port, cport = free_port(), free_port()
    return EmbeddedBroker(home, port=port, log_dirs=list(log_dirs), overrides=kraft_combined_overrides(
        port, cport, **{"cluster.id": CLUSTER_ID, "metadata.log.dir": str(metadata_dir)}))


def _files(dirs: list[Path]) -> dict[Path, int]:
    """The segment files and meta.properties of ``dirs`` with their sizes (what a second node
    writing there would change; the running node itself does not touch them while idle)."""
    return {p: p.stat().st_size for d in dirs for p in d.rglob("*")
            if p.is_file() and (p.suffix == ".log" or p.name == "meta.properties")}


def _refused(node: EmbeddedBroker, directory: Path) -> None:
    node.launch()
    assert node.proc is not None
    try:
        code = node.proc.wait(30)
    except subprocess.TimeoutExpired:
        node.kill()
        raise AssertionError(f"a second node on {directory} did not refuse to start:\n{node.logs()}") from None
    node.stop()  # reaps it, closes its log file
    logs = node.logs()
    message = (f"Failed to acquire lock on file {LOCK_FILE} in {directory}. A Kafka instance in another "
               "process or thread is using this directory.")
    assert code == 1, logs
    assert [line for line in logs.splitlines() if "ERROR" in line] == [line for line in logs.splitlines()
                                                                      if message in line], logs
    assert logs.count(message) == 1 and "Traceback" not in logs, logs


def test_a_second_node_on_a_locked_dir_refuses_and_the_first_keeps_serving(tmp_path: Path) -> None:
    data, data2, meta = tmp_path / "data", tmp_path / "data2", tmp_path / "meta"
    first = _node(tmp_path / "first", [data, data2], meta)  # JBOD and a metadata dir of its own
    first.start()
    try:
        create_topic(first.bootstrap, TOPIC, partitions=2)
        for p in (0, 1):
            assert produce(first.bootstrap, TOPIC, p, build_batch([(None, b"one")])).error_code == 0
        assert all((d / LOCK_FILE).is_file() for d in (data, data2, meta))
        before = _files([data, data2, meta])
        assert any(p.suffix == ".log" and p.parent.name.startswith(TOPIC) for p in before)

        # the same dirs (other ports): refused on the first log dir
        second = _node(tmp_path / "second", [data, data2], meta)
        _refused(second, data)
        # only the metadata log dir in common: refused on it, its own log dir left unlocked
        third = _node(tmp_path / "third", [tmp_path / "own"], meta)
        _refused(third, meta)

        assert _files([data, data2, meta]) == before
        for p in (0, 1):
            assert produce(first.bootstrap, TOPIC, p, build_batch([(None, b"two")])).error_code == 0
            assert [v for _, v in read_all(first.bootstrap, TOPIC, p)] == [b"one", b"two"]
    finally:
        assert first.stop() == 0

    second.start()  # the dirs are free again: it serves the first node's data
    try:
        for p in (0, 1):
            assert [v for _, v in read_all(second.bootstrap, TOPIC, p)] == [b"one", b"two"]
    finally:
        second.stop()


def test_in_process_nodes_on_one_dir_take_turns(tmp_path: Path) -> None:
    """Tests restart `InProcessNode`s in one process on one dir: a stop releases the locks, a
    restart takes them again, and a second node instance of this same process is refused."""
    node = InProcessNode(tmp_path / "node").start()
    try:
        node.create_topic(TOPIC)
        assert produce(node.bootstrap, TOPIC, 0, build_batch([(None, b"one")])).error_code == 0
        other = InProcessNode(tmp_path / "node")  # other ports, the same log dir
        with pytest.raises(LogDirLockedError, match=str(tmp_path / "node" / "data")):
            other.start()
        assert other.broker is None
        node.restart()
        assert produce(node.bootstrap, TOPIC, 0, build_batch([(None, b"two")])).error_code == 0
        assert [v for _, v in read_all(node.bootstrap, TOPIC)] == [b"one", b"two"]
    finally:
        node.stop()
    with other:
        assert [v for _, v in read_all(other.bootstrap, TOPIC)] == [b"one", b"two"]
