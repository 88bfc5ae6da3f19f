"""`flush_logs_off_loop`: the scheduled flush's fsyncs run on threads while the loop goes
on; what the loop did to a log meanwhile (appends, a truncation) is not claimed as flushed."""

from __future__ import annotations

import asyncio
import threading

from suoi.log.recovery import read_recovery_point
from suoi.log_flush import flush_logs_off_loop
from tests.unit.log.log_helpers import OpenLog, batch


def _flush_while(log_action, open_log: OpenLog, held: tuple[threading.Event, threading.Event]):  # type: ignore[no-untyped-def]
    started, release = held
    log = open_log()
    log.append(batch(2))
    log.append(batch(2))

    async def scenario() -> list[object]:
        task = asyncio.create_task(flush_logs_off_loop([log]))
        assert await asyncio.to_thread(started.wait, 10)
        try:
            log_action(log)  # on the loop, while the fsyncs are held on their threads
        finally:
            release.set()
        return await asyncio.wait_for(task, 10)

    assert asyncio.run(scenario()) == []
    return log


def test_appends_during_the_fsyncs_stay_unflushed(open_log: OpenLog,
                                                  held_fsyncs: tuple[threading.Event, threading.Event]) -> None:
    log = _flush_while(lambda log: log.append(batch(3)), open_log, held_fsyncs)
    assert log.flush_point().end == 7 and log.flush_point().messages == 3  # the later append is owed
    assert log.checkpoint_recovery_point()
    assert read_recovery_point(log.directory) == 4  # the end when the flush began


def test_a_truncation_during_the_fsyncs_keeps_the_recovery_point_it_set(
        open_log: OpenLog, held_fsyncs: tuple[threading.Event, threading.Event]) -> None:
    def rewrite(log) -> None:  # type: ignore[no-untyped-def]
        log.truncate_to(2, force=True)  # a diverged follower
        log.append(batch(1))  # offset 2 again, other data, not flushed

    log = _flush_while(rewrite, open_log, held_fsyncs)
    assert log.flush_point().end == 3
    assert read_recovery_point(log.directory) <= 2  # never 4: offsets 2-3 were rewritten since
    log.checkpoint_recovery_point()
    assert read_recovery_point(log.directory) <= 2
