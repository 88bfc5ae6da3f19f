"""The leader-epoch checkpoint written and fsynced off the event loop (`LeaderEpochCache.write`,
`CheckpointSync`): on the flush task's thread after the first append, in order, before a flush's
recovery point passes it; and a crash before that write repaired at the next open."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from suoi.log import leader_epoch
from suoi.log.flushing import flush_logs
from suoi.log.leader_epoch import CHECKPOINT_FILE
from suoi.log.partition_log import PartitionLog
from suoi.log_flush import sync_state_off_loop
from tests.unit.conftest import FsyncRecord
from tests.unit.log.log_helpers import OpenLog, batch


def test_first_append_has_the_flush_task_write_the_checkpoint_on_its_thread(
        open_log: OpenLog, fsync_threads: FsyncRecord) -> None:
    log = open_log()
    woken: list[bool] = []
    log.on_state_write = lambda: woken.append(True)  # the log manager's hook wakes the flush task
    log.leader_epoch_cache.assign(4, 0, durable=False)  # a leadership change: nothing written
    assert woken == []
    log.append(batch(2), leader_epoch=4)
    path = log.directory / CHECKPOINT_FILE
    assert woken == [True] and log.state_unsynced and not path.exists()
    assert fsync_threads.paths() == []

    async def flush_task() -> list[PartitionLog]:
        return await sync_state_off_loop([log])

    assert asyncio.run(flush_task()) == []
    assert path.read_text() == "0\n1\n4 0\n"
    assert not log.state_unsynced and not log.leader_epoch_cache.unsynced
    main = threading.main_thread()
    off_loop = fsync_threads.paths(off=main)  # written and fsynced on a pool thread, then its directory
    assert off_loop == [f"{path}.tmp", str(log.directory)]
    assert fsync_threads.paths(main) == []


def test_two_new_epochs_end_in_the_file_whichever_write_runs_last(open_log: OpenLog) -> None:
    log = open_log()
    log.append(batch(2), leader_epoch=3)
    first = log.state_sync_jobs()  # snapshot [(3, 0)], taken on the loop
    log.append(batch(2), leader_epoch=5)
    second = log.state_sync_jobs()  # snapshot [(3, 0), (5, 2)]
    assert len(first) == len(second) == 1  # the checkpoint's write (file and directory fsynced)
    for job in (*second, *first):  # the older snapshot's thread runs last: it must not win
        job()
        job.done(True)
    assert (log.directory / CHECKPOINT_FILE).read_text() == "0\n2\n3 0\n5 2\n"
    log.append(batch(1), leader_epoch=6)
    for job in log.state_sync_jobs():
        job()
        job.done(True)
    assert (log.directory / CHECKPOINT_FILE).read_text() == "0\n3\n3 0\n5 2\n6 4\n"


def test_a_flush_writes_the_checkpoint_itself_while_another_write_is_in_flight(open_log: OpenLog) -> None:
    log = open_log()
    log.append(batch(2), leader_epoch=3)
    in_flight = log.state_sync_jobs()  # the flush task's write, taken but not run yet
    assert not log.leader_epoch_cache.unsynced and log.leader_epoch_cache.syncing == 1
    assert flush_logs([log]) == []  # its own CheckpointSync: written before the recovery point moves
    assert (log.directory / CHECKPOINT_FILE).read_text() == "0\n1\n3 0\n"
    assert log.checkpoint_recovery_point() and log.flush_point().end == 2
    for job in in_flight:  # runs late: the same snapshot is on disk, nothing rewritten
        job()
        job.done(True)
    assert log.leader_epoch_cache.syncing == 0
    assert (log.directory / CHECKPOINT_FILE).read_text() == "0\n1\n3 0\n"


def test_the_recovery_point_stays_below_an_epoch_whose_checkpoint_write_failed(
        open_log: OpenLog, monkeypatch: pytest.MonkeyPatch) -> None:
    log = open_log()
    log.append(batch(2), leader_epoch=3)

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(leader_epoch, "write_atomically", broken)
    assert flush_logs([log]) == [log]
    assert not log.checkpoint_recovery_point()  # not moved past offset 0, where epoch 3 starts
    assert log.leader_epoch_cache.unsynced and log.state_unsynced  # the next flush writes it
    monkeypatch.undo()
    assert flush_logs([log]) == []
    assert log.checkpoint_recovery_point()
    assert (log.directory / CHECKPOINT_FILE).read_text() == "0\n1\n3 0\n"


@pytest.mark.parametrize("older_file", [False, True])
def test_a_crash_before_the_deferred_write_is_repaired_from_the_batches(
        open_log: OpenLog, older_file: bool) -> None:
    log = open_log()
    log.append(batch(2), leader_epoch=1)
    if older_file:  # the first epoch made it to disk, with the recovery point past it
        assert flush_logs([log]) == []
        log.checkpoint_recovery_point()
    log.append(batch(2), leader_epoch=4)
    log.append(batch(1), leader_epoch=6)
    path = log.directory / CHECKPOINT_FILE
    assert path.exists() == older_file  # the crash: the deferred write never ran, no close
    if older_file:
        assert path.read_text() == "0\n1\n1 0\n"
    reopened = PartitionLog.open(Path(log.directory), log.topic, log.partition, log.config)
    assert reopened.leader_epoch_cache.entries == [(1, 0), (4, 2), (6, 4)]
    assert path.read_text() == "0\n3\n1 0\n4 2\n6 4\n"  # written back at the open
    assert not reopened.leader_epoch_cache.unsynced
    reopened.close()
