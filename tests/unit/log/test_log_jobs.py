"""log_jobs: partition logs made on a worker thread and installed on the loop, in that order;
what changed between the two halves (the topic deleted or created again, the log dir failed, a
directory that already held data) decides what is installed."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest

from suoi.log.config import LogConfig
from suoi.log.errors import KafkaStorageError
from suoi.log.log_jobs import make_new_logs, remove_trees, set_aside
from suoi.log.manager import LogManager
from tests.unit.log.log_helpers import Clock, batch


def _manager(dirs: list[Path], clock: Clock) -> LogManager:
    m = LogManager(dirs, LogConfig(segment_bytes=1 << 20), now_ms=clock)
    m.load()
    return m


def _host(m: LogManager, name: str, partitions: int, topic_id: uuid.UUID | None = None) -> uuid.UUID:
    topic_id = topic_id or uuid.uuid4()
    m.host_partitions(name, topic_id, partitions, set(range(partitions)), {}, open_logs=False)
    return topic_id


def _on_a_thread(jobs: list, clock: Clock) -> None:  # type: ignore[type-arg]
    t = threading.Thread(target=make_new_logs, args=(jobs, clock))
    t.start()
    t.join(10)


def test_logs_made_on_a_thread_are_installed_and_spread(tmp_path: Path, clock: Clock) -> None:
    dirs = [tmp_path / "a", tmp_path / "b"]
    m = _manager(dirs, clock)
    _host(m, "t", 6)
    jobs = m.plan_new_logs("t", m.missing_partitions("t"))
    assert [j.partition for j in jobs] == list(range(6))
    assert {j.log_dir for j in jobs} == set(dirs)  # placed as they were planned, not all in one dir
    assert m.get_log("t", 0) is None  # not before the install
    _on_a_thread(jobs, clock)
    assert all(j.log is not None and j.path is not None and j.path.is_dir() for j in jobs)
    assert m.install_new_logs(jobs) == (6, [], None)
    assert m.missing_partitions("t") == []
    log = m.get_log("t", 5)
    assert log is not None and log.append(batch(3)).last_offset == 2
    assert m.plan_new_logs("t", range(6)) == []  # nothing left to make


def test_a_topic_deleted_or_recreated_meanwhile_gets_nothing(tmp_path: Path, clock: Clock) -> None:
    m = _manager([tmp_path / "a"], clock)
    _host(m, "gone", 2)
    _host(m, "reborn", 2)
    gone_jobs = m.plan_new_logs("gone", [0, 1])
    reborn_jobs = m.plan_new_logs("reborn", [0, 1])
    _on_a_thread(gone_jobs + reborn_jobs, clock)
    assert m.detach_topic("gone") == []  # nothing installed yet
    _host(m, "reborn", 2)  # a new topic id under the same name
    installed, unwanted, error = m.install_new_logs(gone_jobs + reborn_jobs)
    assert (installed, error) == (0, None)
    assert sorted(unwanted) == sorted(j.path for j in gone_jobs + reborn_jobs if j.path is not None)
    assert m.get_log("reborn", 0) is None and m.missing_partitions("reborn") == [0, 1]
    remove_trees(set_aside(unwanted))
    assert not list((tmp_path / "a").glob("gone-*")) and not list((tmp_path / "a").glob("reborn-*"))


def test_a_directory_holding_data_is_opened_on_the_loop_with_it(tmp_path: Path, clock: Clock) -> None:
    m = _manager([tmp_path / "a"], clock)
    topic_id = _host(m, "kept", 1)
    log = m.open_partition("kept", 0)
    log.append(batch(4))
    path = m.detach_log("kept", 0)  # forgotten, but its directory stays (nothing renamed yet)
    assert path is not None and m.missing_partitions("kept") == [0]
    _host(m, "kept", 1, topic_id)
    jobs = m.plan_new_logs("kept", [0])
    _on_a_thread(jobs, clock)
    assert jobs[0].log is None and jobs[0].error is None  # left to the loop: its segments need descriptors
    assert m.install_new_logs(jobs) == (1, [], None)
    reopened = m.get_log("kept", 0)
    assert reopened is not None and reopened.log_end_offset == 4


def test_a_failed_dir_or_a_failed_mkdir(tmp_path: Path, clock: Clock) -> None:
    m = _manager([tmp_path / "a", tmp_path / "b"], clock)
    _host(m, "t", 4)
    jobs = m.plan_new_logs("t", [0, 1, 2, 3])
    blocked = next(j for j in jobs if j.log_dir == tmp_path / "b")
    (tmp_path / "b" / f"t-{blocked.partition}").write_text("a file where the directory goes")
    offline = next(j for j in jobs if j.log_dir == tmp_path / "a")
    _on_a_thread(jobs, clock)
    assert blocked.error is not None
    m.mark_offline(tmp_path / "a", "test")
    installed, unwanted, error = m.install_new_logs(jobs)
    assert error is not None and ("t", blocked.partition) in m.failed  # KAFKA_STORAGE_ERROR until retried
    assert m.is_offline("t", offline.partition) and offline.path in unwanted
    assert installed == sum(1 for j in jobs if j.log_dir == tmp_path / "b") - 1


def test_every_log_dir_offline_fails_the_plan_and_notes_it(tmp_path: Path, clock: Clock) -> None:
    m = _manager([tmp_path / "a"], clock)
    _host(m, "t", 3)
    m.mark_offline(tmp_path / "a", "test")
    with pytest.raises(KafkaStorageError):
        m.plan_new_logs("t", [0, 1, 2])
    assert sorted(k for k in m.failed if k[0] == "t") == [("t", 0), ("t", 1), ("t", 2)]  # answered and retried
