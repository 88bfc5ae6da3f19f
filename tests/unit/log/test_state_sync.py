"""State files written on the event loop without an fsync and synced on threads (issue 19): a
truncation's recovery point and directory, the log start offset of DeleteRecords / retention, the
leader-epoch checkpoint at a truncation, the cleaner's checkpoint. None of them fsyncs on the
loop's thread; each ends up durable (file, then directory) off it; a later write is never
overtaken by an earlier one; a flush moves the recovery point only once they are durable; and a
leader-epoch checkpoint an OS crash left stale is repaired at open."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from suoi.atomic_file import write_atomically
from suoi.log import sync_jobs
from suoi.log.cleaner import LogCleaner
from suoi.log.cleaner_files import CHECKPOINT_FILE as CLEANER_FILE
from suoi.log.config import LogConfig
from suoi.log.leader_epoch import CHECKPOINT_FILE as EPOCH_FILE
from suoi.log.manager import LogManager
from suoi.log.partition_log import PartitionLog
from suoi.log.recovery import (
    LOG_START_OFFSET_FILE,
    RECOVERY_POINT_FILE,
    read_log_start_offset,
    read_recovery_point,
)
from suoi.log_flush import flush_logs_off_loop, run_flush_loop, sync_state_off_loop
from suoi.protocol.records import build_batch
from tests.unit.conftest import FsyncRecord
from tests.unit.log.log_helpers import Clock, OpenLog, batch


def _fill(log: PartitionLog, epochs: tuple[int, ...] = (1, 2), per_epoch: int = 8) -> None:
    for epoch in epochs:
        for _ in range(per_epoch):
            log.append(batch(2, payload=120), leader_epoch=epoch)
    log.flush()
    log.checkpoint_recovery_point()


async def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def _manager(tmp_path: Path, clock: Clock, **config: object) -> tuple[LogManager, PartitionLog]:
    manager = LogManager([tmp_path / "data"], LogConfig(segment_bytes=1400, **config), now_ms=clock)  # type: ignore[arg-type]
    manager.load()
    manager.create_topic("t", 1)
    log = manager.get_log("t", 0)
    assert log is not None
    return manager, log


def _with_flush_task(manager: LogManager, clock: Clock, body: Callable[[threading.Thread], object]) -> None:
    """Run ``body(loop thread)`` on an event loop with the broker's flush task running."""
    async def scenario() -> None:
        task = asyncio.create_task(run_flush_loop(manager, 3600, 3600, clock))
        await asyncio.sleep(0)  # the task hooks the manager
        try:
            result = body(threading.current_thread())
            if asyncio.iscoroutine(result):
                await result
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_a_truncation_fsyncs_nothing_on_the_loop_and_its_recovery_point_and_dir_end_up_durable(
        tmp_path: Path, clock: Clock, fsync_threads: FsyncRecord) -> None:
    manager, log = _manager(tmp_path, clock)
    _fill(log)
    assert read_recovery_point(log.directory) == log.log_end_offset
    cut = log.segments[1].base_offset + 2

    async def body(loop_thread: threading.Thread) -> None:
        start = fsync_threads.mark()
        log.truncate_to(cut, force=True)
        assert log.truncation_unsynced and log.leader_epoch_cache.unsynced
        assert read_recovery_point(log.directory) == log.log_end_offset  # written at once, unsynced
        await _until(lambda: not log.truncation_unsynced)  # the flush task synced it
        assert fsync_threads.paths(loop_thread, since=start) == []
        synced = fsync_threads.paths(off=loop_thread, since=start)
        rp = str(log.directory / RECOVERY_POINT_FILE)
        assert rp in synced and str(log.directory) in synced
        assert synced.index(rp) < len(synced) - 1 - synced[::-1].index(str(log.directory))  # file, then dir
        # the epoch checkpoint is written and fsynced by the flush task too (as Kafka's async flush)
        assert f"{log.directory / EPOCH_FILE}.tmp" in synced  # fsynced before its rename
        assert not log.leader_epoch_cache.unsynced and not log.state_unsynced
        assert await flush_logs_off_loop([log]) == []
        assert fsync_threads.paths(loop_thread, since=start) == []

    try:
        _with_flush_task(manager, clock, body)
        assert (log.directory / EPOCH_FILE).read_text().split("\n")[1:3] == ["1", "1 0"]  # epoch 2 started past the cut
    finally:
        manager.close()


def test_two_truncations_back_to_back_leave_the_latest_content_on_disk(tmp_path: Path, clock: Clock,
                                                                       fsync_threads: FsyncRecord) -> None:
    manager, log = _manager(tmp_path, clock)
    _fill(log, epochs=(1, 2, 3))

    async def body(loop_thread: threading.Thread) -> None:
        start = fsync_threads.mark()
        first = log.segments[2].base_offset + 2
        log.truncate_to(first, force=True)
        log.truncate_to(log.segments[1].base_offset + 2, force=True)  # before the first one's sync ran
        await _until(lambda: not log.truncation_unsynced)
        assert await flush_logs_off_loop([log]) == []
        assert fsync_threads.paths(loop_thread, since=start) == []

    try:
        _with_flush_task(manager, clock, body)
        assert read_recovery_point(log.directory) == log.log_end_offset
        entries = [tuple(map(int, line.split())) for line in (log.directory / EPOCH_FILE).read_text().split("\n")[2:]
                   if line]
        assert entries == [tuple(e) for e in log.leader_epoch_cache.entries] == [(1, 0)]
        assert not any(p.name.endswith(".tmp") for p in log.directory.iterdir())
    finally:
        manager.close()


def test_delete_records_and_retention_sync_the_log_start_offset_off_the_loop(
        tmp_path: Path, clock: Clock, fsync_threads: FsyncRecord) -> None:
    manager, log = _manager(tmp_path, clock, retention_bytes=3000)
    _fill(log)

    async def body(loop_thread: threading.Thread) -> None:
        start = fsync_threads.mark()
        log.delete_records_before(5)
        await _until(lambda: not log.state_unsynced)
        assert read_log_start_offset(log.directory) == 5
        assert str(log.directory / LOG_START_OFFSET_FILE) in fsync_threads.paths(off=loop_thread, since=start)
        assert manager.apply_retention(clock()) > 0  # retention.bytes: the oldest segments go
        log_start = log.log_start_offset
        assert log_start > 5
        await _until(lambda: not log.state_unsynced)
        assert read_log_start_offset(log.directory) == log_start
        assert fsync_threads.paths(loop_thread, since=start) == []

    try:
        _with_flush_task(manager, clock, body)
    finally:
        manager.close()


def test_a_flush_moves_the_recovery_point_only_once_the_truncation_is_durable(
        open_log: OpenLog, monkeypatch: pytest.MonkeyPatch) -> None:
    log = open_log(segment_bytes=1400)
    _fill(log)
    log.truncate_to(log.segments[1].base_offset + 2, force=True)
    cut_rp = log._recovery_point
    log.append(batch(2, payload=120), leader_epoch=3)  # (the fetcher would not; the flush must still order them)
    real = sync_jobs.fsync_dir

    def fail_state(path: Path | str) -> None:
        if Path(path).name == RECOVERY_POINT_FILE:
            raise OSError(5, "injected I/O error")
        real(path)

    monkeypatch.setattr(sync_jobs, "fsync_dir", fail_state)
    assert asyncio.run(flush_logs_off_loop([log])) == [log]  # the flush failed with it
    assert log._recovery_point == cut_rp and log.truncation_unsynced and log.state_unsynced
    monkeypatch.setattr(sync_jobs, "fsync_dir", real)
    assert asyncio.run(flush_logs_off_loop([log])) == []  # the paths came back to the next flush
    assert log._recovery_point == log.log_end_offset and not log.truncation_unsynced


def test_the_cleaner_checkpoint_is_written_on_the_loop_and_synced_off_it(open_log: OpenLog,
                                                                         fsync_threads: FsyncRecord) -> None:
    log = open_log(segment_bytes=600, cleanup_policy="compact")
    for i in range(30):
        log.append(build_batch([(b"k%d" % (i % 3), b"v" * 60)]))
    log.roll()
    main = threading.current_thread()
    assert LogCleaner().clean(log, 0, force=True) is not None
    checkpoint = str(log.directory / CLEANER_FILE)
    assert (log.directory / CLEANER_FILE).exists() and checkpoint not in fsync_threads.paths(main)
    assert log.state_unsynced
    assert asyncio.run(sync_state_off_loop([log])) == []
    assert checkpoint in fsync_threads.paths(off=main) and not log.state_unsynced


def test_a_stale_epoch_checkpoint_an_os_crash_left_is_repaired_from_the_batches_at_open(open_log: OpenLog) -> None:
    log = open_log(segment_bytes=1400)
    _fill(log, epochs=(1, 2))
    stale = (log.directory / EPOCH_FILE).read_text()  # [1@0, 2@16]
    cut = 6
    log.truncate_to(cut, force=True)
    for _ in range(12):  # a new leader's epoch 3 rewrites from the cut, past where epoch 2 began
        log.append(batch(2, payload=120), leader_epoch=3)
    end = log.log_end_offset
    log.close()
    # an OS crash lost the truncation's unsynced checkpoint; its recovery point was synced before
    # the fetcher appended (truncation_unsynced), and nothing was flushed since
    write_atomically(log.directory / EPOCH_FILE, stale)
    write_atomically(log.directory / RECOVERY_POINT_FILE, f"{cut}\n")
    reopened = open_log(segment_bytes=1400)
    assert reopened.log_end_offset == end
    assert [tuple(e) for e in reopened.leader_epoch_cache.entries] == [(1, 0), (3, cut)]


def test_a_clean_stop_syncs_the_state_files_still_owed(tmp_path: Path, clock: Clock, fsync_threads: FsyncRecord) -> None:
    """No flush task ran (or it was cancelled): the final flush of a clean stop syncs them before the
    clean-shutdown marker, so the next start may trust the files."""
    manager, log = _manager(tmp_path, clock)
    _fill(log)
    log.delete_records_before(3)
    log.truncate_to(log.segments[-1].base_offset + 2, force=True)
    assert log.state_unsynced and log.truncation_unsynced
    start = fsync_threads.mark()
    assert manager.shutdown()  # (a thread of the stopping broker)
    synced = fsync_threads.paths(since=start)
    for name in (LOG_START_OFFSET_FILE, RECOVERY_POINT_FILE, f"{EPOCH_FILE}.tmp"):  # (the checkpoint: written then)
        assert str(log.directory / name) in synced
    assert not log.state_unsynced and not log.truncation_unsynced
    assert (tmp_path / "data" / "clean-shutdown").exists()
