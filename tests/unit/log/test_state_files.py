"""The small state files of a partition and of the log manager (README "State files"): a write a
crash interrupted leaves a ``.tmp`` that the next open never reads and removes; a failed write
keeps the old file; the abort index is cut in place; a clean stop syncs what close wrote."""

from __future__ import annotations

import errno
import json
import os
import threading
from pathlib import Path

import pytest

from suoi.log import flushing
from suoi.log.cleaner_files import CleanerCheckpoint, read_checkpoint, write_checkpoint
from suoi.log.config import LogConfig
from suoi.log.errors import KafkaStorageError
from suoi.log.leader_epoch import CHECKPOINT_FILE as EPOCH_FILE
from suoi.log.manager import METADATA_DIR, LogManager
from suoi.log.meta_properties import META_FILE, read_meta, write_meta
from suoi.log.producer_state import snapshot_offsets, snapshot_path
from suoi.log.recovery import (
    LOG_START_OFFSET_FILE,
    RECOVERY_POINT_FILE,
    read_recovery_point,
    write_recovery_point,
)
from suoi.log.txn_index import ENTRY_SIZE, AbortedTxn, TransactionIndex
from suoi.protocol.records import build_batch
from tests.unit.conftest import FsyncRecord
from tests.unit.log.log_helpers import Clock, OpenLog, batch


def _boom(*_args: object) -> None:
    raise OSError(errno.EIO, "injected I/O error")


def _state(log: object) -> tuple[object, ...]:
    return (log.log_start_offset, log.log_end_offset, log.leader_epoch_cache.entries,  # type: ignore[attr-defined]
            log.aborted_transactions(0, 1 << 62), log.describe_producers())  # type: ignore[attr-defined]


def test_temporary_files_a_crash_left_are_never_read_and_are_removed_at_open(open_log: OpenLog) -> None:
    log = open_log(segment_bytes=4096)
    log.append(batch(3), leader_epoch=3)
    log.append(build_batch([(None, b"t")], producer_id=7, producer_epoch=0, base_sequence=0,
                           is_transactional=True), leader_epoch=3)
    log.append_control(7, 0, False, 0, leader_epoch=3)  # an ABORT: a .txnindex entry
    log.roll()  # a producer snapshot
    log.append(batch(2), leader_epoch=5)
    log.delete_records_before(1)  # log-start-offset
    log.flush()
    before = _state(log)
    assert before[3] and before[4] and len(before[2]) == 2  # an aborted txn, a producer, two epochs
    log.close()
    directory = log.directory
    snapshot = snapshot_path(directory, snapshot_offsets(directory)[-1])
    torn = {EPOCH_FILE: "0\n9\n1 ", RECOVERY_POINT_FILE: "12", LOG_START_OFFSET_FILE: "",
            snapshot.name: '{"version": 3, "offset": 99, "produ', "00000000000000000000.txnindex": "\xff" * 40,
            "cleaner-offset-checkpoint": '{"first_dirty'}
    for name, text in torn.items():
        (directory / (name + ".tmp")).write_text(text)
    assert _state(open_log(segment_bytes=4096)) == before
    assert sorted(p.name for p in directory.glob("*.tmp")) == []


def test_a_failed_offset_file_write_keeps_the_old_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_recovery_point(tmp_path, 40)
    for failing in ("fsync", "replace"):
        with monkeypatch.context() as m:
            m.setattr(os, failing, _boom)
            with pytest.raises(KafkaStorageError):
                write_recovery_point(tmp_path, 90)
        assert read_recovery_point(tmp_path) == 40
    assert sorted(p.name for p in tmp_path.iterdir()) == [RECOVERY_POINT_FILE]
    write_recovery_point(tmp_path, 90, durable=False)
    assert read_recovery_point(tmp_path) == 90


def test_the_cleaner_checkpoint_round_trips_and_a_failed_write_keeps_the_old(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_checkpoint(tmp_path, CleanerCheckpoint(120, 5000))
    assert read_checkpoint(tmp_path) == CleanerCheckpoint(120, 5000)
    monkeypatch.setattr(os, "replace", _boom)
    with pytest.raises(KafkaStorageError, match="injected"):
        write_checkpoint(tmp_path, CleanerCheckpoint(300, -1))
    monkeypatch.undo()
    assert read_checkpoint(tmp_path) == CleanerCheckpoint(120, 5000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cleaner-offset-checkpoint"]


def test_meta_properties_are_written_durably_and_a_leftover_is_not_read(tmp_path: Path, fsyncs: list[str]) -> None:
    (tmp_path / (META_FILE + ".tmp")).write_text("cluster.id=someone-else\nnode.id=9\n")
    write_meta(tmp_path, "IVT1Seu3QjacxS7oBTKhDQ", 1)
    assert fsyncs == ["file", "dir"]  # as Kafka's PropertiesUtils.writePropertiesFile(..., fsync=true)
    meta = read_meta(tmp_path)
    assert meta is not None and (meta["cluster.id"], meta["node.id"]) == ("IVT1Seu3QjacxS7oBTKhDQ", "1")
    assert sorted(p.name for p in tmp_path.iterdir()) == [META_FILE]


def _aborted(last: int) -> AbortedTxn:
    return AbortedTxn(producer_id=last, first_offset=last - 2, last_offset=last, last_stable_offset=last + 1)


def test_the_abort_index_is_cut_in_place_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "00000000000000000000.txnindex"
    index = TransactionIndex(path)
    index.extend([_aborted(10), _aborted(20), _aborted(30)])
    index.flush()
    inode = path.stat().st_ino
    index.truncate_from(20)
    assert index.entries == [_aborted(10)]
    assert path.stat().st_ino == inode and path.stat().st_size == ENTRY_SIZE  # the same file, cut
    assert index.dirty  # the cut is synced by the next flush
    assert TransactionIndex(path).entries == [_aborted(10)]
    assert list(tmp_path.iterdir()) == [path]
    index.truncate_from(0)
    assert not path.exists()


def test_a_torn_abort_index_tail_is_cut_in_place(tmp_path: Path) -> None:
    path = tmp_path / "00000000000000000000.txnindex"
    path.write_bytes(_aborted(10).encode() + _aborted(20).encode() + b"\x00\x00\x01")
    inode = path.stat().st_ino
    assert TransactionIndex(path).entries == [_aborted(10), _aborted(20)]
    assert path.stat().st_ino == inode and path.stat().st_size == 2 * ENTRY_SIZE


def _manager(tmp_path: Path, clock: Clock) -> LogManager:
    m = LogManager([tmp_path / "logs"], LogConfig(segment_bytes=4096), now_ms=clock)
    m.load()
    return m


def test_a_clean_stop_syncs_the_producer_snapshots_and_the_topic_files(
        tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    m = _manager(tmp_path, clock)
    m.create_topic("t", 2)
    for p in range(2):
        log = m.get_log("t", p)
        assert log is not None
        log.append(build_batch([(None, b"x")], producer_id=p + 1, producer_epoch=0, base_sequence=0))
    snapshots = [snapshot_path(m.get_log("t", p).directory, 1) for p in range(2)]  # type: ignore[union-attr]
    synced: list[Path] = []
    real = flushing.fsync_dir

    def record(path: str | Path) -> None:
        synced.append(Path(path))
        real(path)

    monkeypatch.setattr(flushing, "fsync_dir", record)
    assert m.shutdown()
    assert all(s.exists() for s in snapshots)
    assert set(snapshots) <= set(synced)  # written at close without an fsync: synced with the recovery points
    assert not m.topic_files.pending  # the topic files' writes (each durable on its own) were waited for
    topics = m.log_dirs[0] / METADATA_DIR
    (topics / (next(topics.glob("*.json")).name + ".tmp")).write_text('{"name": "ghost", "topic')
    again = _manager(tmp_path, clock)
    assert sorted(again.topics()) == ["t"]  # the torn temporary topic file is not a topic
    again.close()


def test_topic_files_are_written_at_once_and_synced_off_the_calling_thread(
        tmp_path: Path, clock: Clock, fsync_threads: FsyncRecord) -> None:
    """The reconciler writes them on the event loop (at once: a process crash keeps them): their fsyncs
    (file, then directory) run on the topic files' thread; a change or a removal right after a write
    is never overtaken by it."""
    m = _manager(tmp_path, clock)
    start = fsync_threads.mark()
    m.create_topic("t", 1)
    m.alter_topic_configs("t", {"retention.ms": "1000"})
    m.create_topic("gone", 1)
    m.delete_topic("gone")
    topics = m.log_dirs[0] / METADATA_DIR
    [path] = [topics / f"{m.topics()['t'].topic_id.hex}.json"]
    m.topic_files.drain()
    assert fsync_threads.paths(threading.current_thread(), since=start) == []
    synced = fsync_threads.paths(since=start)
    assert synced[:2] == [str(path), str(topics)]  # the file, then its dir
    assert sorted(p.name for p in topics.iterdir()) == [path.name]  # "gone" removed after its write
    assert json.loads(path.read_text())["configs"] == {"retention.ms": "1000"}  # the later write won
    m.close()


def test_an_empty_topic_file_an_os_crash_left_is_skipped(tmp_path: Path, clock: Clock,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """A new topic file's rename may reach the disk before its data (its fsync runs on a thread):
    the start skips it with an ERROR line instead of refusing to start."""
    m = _manager(tmp_path, clock)
    m.create_topic("kept", 1)
    m.close()
    (m.log_dirs[0] / METADATA_DIR / "0123456789abcdef0123456789abcdef.json").write_text("")
    again = _manager(tmp_path, clock)
    assert sorted(again.topics()) == ["kept"]
    assert any("unreadable topic file" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)
    again.close()
