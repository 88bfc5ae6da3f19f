"""`.lock` on a node's dirs (Kafka's FileLock): exclusive within one process too (flock locks
belong to the open file description), all-or-nothing over JBOD dirs, released and taken again,
and never taken for a partition or a formatted dir by the log manager or `storage format`."""

from __future__ import annotations

from pathlib import Path

import pytest

from suoi.log.config import LogConfig
from suoi.log.dir_lock import LOCK_FILE, DirLocks, LogDirLockedError
from suoi.log.manager import LogManager
from suoi.log.meta_properties import StorageLayout, format_storage, random_uuid, read_meta


def test_a_second_holder_in_the_same_process_is_refused_until_the_first_releases(tmp_path: Path) -> None:
    first, second = DirLocks(), DirLocks()
    first.acquire([tmp_path / "a"])  # created if missing
    assert (tmp_path / "a" / LOCK_FILE).is_file()
    with pytest.raises(LogDirLockedError, match=rf"Failed to acquire lock on file \.lock in {tmp_path / 'a'}\. "
                                                "A Kafka instance in another process or thread"):
        second.acquire([tmp_path / "a"])
    assert second.held == []
    first.release()
    first.release()  # idempotent
    second.acquire([tmp_path / "a"])
    assert second.held == [tmp_path / "a"]
    second.release()


def test_jbod_is_all_or_nothing_and_a_dir_named_twice_is_locked_once(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    other = DirLocks()
    other.acquire([b])
    node = DirLocks()
    with pytest.raises(LogDirLockedError) as refused:
        node.acquire([a, b, c])
    assert refused.value.directory == b
    assert node.held == [] and not c.exists()  # a released again; c, after the refusal, untouched
    probe = DirLocks()
    probe.acquire([a])  # a is free
    probe.release()
    other.release([b])
    node.acquire([a, b, a, tmp_path / "x" / ".." / "b"])  # the metadata dir is the first log dir by default
    assert sorted(node.held) == [a, b]
    node.release([b])  # a failed dir's lock is let go, the others stay
    with pytest.raises(LogDirLockedError):
        DirLocks().acquire([a])
    DirLocks().acquire([b])
    node.release()


def test_the_lock_file_is_not_a_partition_and_does_not_stop_a_format(tmp_path: Path) -> None:
    locks = DirLocks()
    locks.acquire([tmp_path / "a", tmp_path / "meta"])
    try:
        cluster_id = random_uuid()
        layout = StorageLayout.of([tmp_path / "a"], tmp_path / "meta", 1, None, [1])
        assert len(format_storage(layout, cluster_id)) == 2  # kafka-storage format refuses formatted dirs only
        assert [(read_meta(d) or {}).get("cluster.id") for d in (tmp_path / "a", tmp_path / "meta")] == [cluster_id] * 2
        manager = LogManager([tmp_path / "a"], LogConfig(segment_bytes=1 << 20))
        manager.load()
        manager.create_topic("t", 1)
        manager.close()
        manager = LogManager([tmp_path / "a"], LogConfig(segment_bytes=1 << 20))
        manager.load()
        assert sorted(manager.topics()) == ["t"] and manager.get_log("t", 0) is not None
        assert sorted(p.name for p in (tmp_path / "a").iterdir() if "stray" in p.name or p.name == LOCK_FILE) == [
            LOCK_FILE]
        manager.close()
    finally:
        locks.release()
