"""The flush at a roll (Kafka's `UnifiedLog.roll` -> ``flushUptoOffsetExclusive(newSegment.baseOffset)``):
the rolled segments fsynced off the event loop, the recovery point moved to the active segment's
base and never back, many rolls before it runs = one flush, and a truncation meanwhile claims
nothing (`PartitionLog.flushed`)."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from suoi.log import handles
from suoi.log.config import LogConfig
from suoi.log.manager import LogManager
from suoi.log.partition_log import PartitionLog
from suoi.log.recovery import read_recovery_point
from suoi.log.sync_jobs import FileSync, FlushPoint
from suoi.log_flush import flush_logs_off_loop, run_flush_loop
from tests.unit.log.log_helpers import Clock, OpenLog, batch

Held = tuple[threading.Event, threading.Event]


def _roll_until(log: PartitionLog, segments: int) -> None:
    while len(log.segments) < segments:
        log.append(batch(2, payload=120))


def test_a_roll_flush_syncs_the_rolled_segments_up_to_the_active_base(open_log: OpenLog, clock: Clock) -> None:
    log = open_log(segment_bytes=700)
    log.append(batch(2))
    assert not log.rolled_unflushed and not log.flush_is_due(clock.advance(10_000))  # nothing rolled, no flush.ms
    _roll_until(log, 3)
    log.append(batch(1))  # in the active segment
    assert log.rolled_unflushed and not log.flush_is_due(clock.now)  # asked for by the roll, not by flush.ms
    active = log.segments[-1]
    point = log.flush_point(rolled=True)
    assert point == FlushPoint(active.base_offset, 0, 0, True)
    messages = log._unflushed_messages
    assert asyncio.run(flush_logs_off_loop([log], rolled=True)) == []
    assert log._recovery_point == active.base_offset < log.log_end_offset
    assert not log.rolled_unflushed
    assert log._unflushed_messages == messages  # the active segment's messages are still owed
    assert active._file.dirty  # not synced: it takes writes on
    assert log.checkpoint_recovery_point()
    assert read_recovery_point(log.directory) == active.base_offset
    log.flush()  # a full flush moves it to the log end; a later roll flush never moves it back
    end = log.log_end_offset
    log.flushed(FlushPoint(active.base_offset, 0, 0, True))
    assert log._recovery_point == end


def _manager(tmp_path: Path, clock: Clock) -> LogManager:
    manager = LogManager([tmp_path / "data"], LogConfig(segment_bytes=700), now_ms=clock)
    manager.load()
    manager.create_topic("t", 1)
    return manager


def test_many_rolls_make_one_flush_and_it_runs_off_the_loop(tmp_path: Path, clock: Clock, held_fsyncs: Held,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The flush task wakes at a roll; the rolls made while its fsyncs run are one flush after it."""
    started, release = held_fsyncs
    manager = _manager(tmp_path, clock)
    log = manager.get_log("t", 0)
    assert log is not None
    points: list[FlushPoint] = []
    real_flushed = PartitionLog.flushed
    monkeypatch.setattr(PartitionLog, "flushed", lambda self, p: (points.append(p), real_flushed(self, p)))

    async def scenario() -> None:
        task = asyncio.create_task(run_flush_loop(manager, 3600, 3600, clock))
        await asyncio.sleep(0)  # the task hooks the manager's rolls
        _roll_until(log, 2)
        assert await asyncio.to_thread(started.wait, 10)  # the first flush holds its fsyncs
        _roll_until(log, 6)  # four more rolls meanwhile, on the loop, which is not blocked
        release.set()
        for _ in range(1000):
            if log._recovery_point == log.segments[-1].base_offset:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        asyncio.run(asyncio.wait_for(scenario(), 20))
        assert [p.end for p in points] == [log.segments[1].base_offset, log.segments[-1].base_offset]
        assert all(p.rolled for p in points)
        assert manager.on_roll is None and not log.rolled_unflushed
    finally:
        manager.close()


def test_a_truncation_racing_the_roll_flush_claims_nothing(open_log: OpenLog, held_fsyncs: Held) -> None:
    """A follower truncates (and rolls again) while the flush's fsyncs run: the recovery point stays
    where the truncation put it and the segments rolled since stay owed, then flush next time."""
    started, release = held_fsyncs
    log = open_log(segment_bytes=700)
    _roll_until(log, 4)
    end = log.segments[-1].base_offset
    cut = log.segments[1].base_offset + 1

    async def scenario() -> list[PartitionLog]:
        task = asyncio.create_task(flush_logs_off_loop([log], rolled=True))
        assert await asyncio.to_thread(started.wait, 10)
        try:
            log.truncate_to(cut, force=True)  # offsets from `cut` on are rewritten below `end`
            _roll_until(log, 4)
        finally:
            release.set()
        return await asyncio.wait_for(task, 10)

    assert asyncio.run(scenario()) == []
    assert log._recovery_point <= cut < end
    assert log.rolled_unflushed  # the segments rolled after the truncation were not in that flush
    assert asyncio.run(flush_logs_off_loop([log], rolled=True)) == []
    assert log._recovery_point == log.segments[-1].base_offset


def test_a_flush_on_the_loop_syncs_a_file_whose_fsync_is_in_flight(open_log: OpenLog,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """flush.messages flushes in the append: a file a roll flush's thread is syncing is not dirty,
    yet not on disk either, so it is synced again rather than claimed."""
    log = open_log(segment_bytes=700)
    _roll_until(log, 2)
    file = log.segments[0]._file
    job = FileSync(file)  # as a roll flush made it: marked clean, fsync not run yet
    calls: list[int] = []
    monkeypatch.setattr(handles.os, "fsync", lambda fd: calls.append(fd))
    file.fsync()
    assert calls, "the in-flight file was skipped"
    job.done(True)
    calls.clear()
    file.fsync()
    assert calls == []  # synced, nothing written since
    assert os.path.exists(file.path)


def test_the_final_flush_syncs_a_file_whose_fsync_is_in_flight(open_log: OpenLog) -> None:
    """The stop cancels the flush task (a bounded wait) while a roll flush's fsync may still run:
    the final flush must not take that file as clean and mark the log dir cleanly stopped unsynced."""
    log = open_log(segment_bytes=700)
    _roll_until(log, 2)
    in_flight = log.sync_jobs(rolled=True)  # as a roll flush made them (their fsyncs not done)
    sealed = log.segments[0]._file
    assert not sealed.dirty and sealed.syncing == 1
    final = log.sync_jobs()
    assert any(getattr(job, "file", None) is sealed for job in final)
    for job in (*final, *in_flight):
        job()
        job.done(True)
    assert sealed.syncing == 0
    again = log.sync_jobs()
    for job in again:
        job.done(False)  # not run: the files stay owed
    assert not any(getattr(job, "file", None) is sealed for job in again)  # synced: clean now
