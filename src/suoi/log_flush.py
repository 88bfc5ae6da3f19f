"""The broker's scheduled flushes on the event loop: the flush at a roll (Kafka's: a log's rolled
segments fsynced and its recovery point moved past them, so an unclean restart re-checks only the
active segments), flush.ms / log.flush.interval.ms flushes and the recovery-point checkpoints of
log.flush.offset.checkpoint.interval.ms, their fsyncs on threads (`suoi.log.flushing`'s jobs), awaited.

One after another on the event loop, as it was, a flush of many partitions froze every client and
the node's Raft traffic for as long as the disk took. The log package is sans-IO (no asyncio):
the awaiting lives here, the jobs and their bookkeeping there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress

from suoi.log.flushing import FLUSH_THREADS, L, finish, flush_slices, job_error, sync_paths
from suoi.log.manager import LogManager
from suoi.log.partition_log import PartitionLog
from suoi.log.sync_jobs import SyncJob

__all__ = ["flush_logs_off_loop", "run_flush_loop", "sync_state_off_loop"]

log = logging.getLogger("suoi.log")

#: A tick whose timer fired this early is on time (uvloop's timers round to whole milliseconds).
TIMER_SLACK_S = 0.002


async def run_flush_loop(logs: LogManager, interval_s: float, checkpoint_every_s: float,
                         now_ms: Callable[[], int]) -> None:
    """Until cancelled: the flush at a roll as soon as logs roll (`LogManager.take_rolled`:
    their rolled segments fsynced, the recovery point moved to the active segment's base, as
    Kafka's `UnifiedLog.roll` schedules; the rolls made while one runs make one flush next);
    every ``min(interval_s, checkpoint_every_s)``, flush the logs whose flush.ms passed; every
    ``checkpoint_every_s``, write the recovery points flushes moved and sync them
    (`LogManager.write_recovery_points` + `sync_paths` on a thread)."""
    wake = asyncio.Event()
    logs.on_roll = wake.set
    pool = ThreadPoolExecutor(FLUSH_THREADS, thread_name_prefix="log-flush")
    tick_s = min(interval_s, checkpoint_every_s)
    next_tick = checkpointed = time.monotonic()
    unsynced: list[PartitionLog] = []
    next_tick += tick_s
    try:
        while True:
            with suppress(TimeoutError):  # a tick (asyncio.timeout: no task made per wait, as wait_for's)
                async with asyncio.timeout(max(next_tick - time.monotonic(), 0.0)):
                    await wake.wait()
            wake.clear()
            try:
                stale = logs.take_state_unsynced() + unsynced  # (those that failed: again, with the next)
                if stale:  # state files a truncation, DeleteRecords, retention or the cleaner wrote unsynced
                    unsynced = await sync_state_off_loop(stale, pool=pool)
                rolled = logs.take_rolled()
                if rolled:  # a failed one (logged) is tried again with the next
                    logs.roll_flush_failed(await flush_logs_off_loop(rolled, pool=pool, rolled=True))
                # the loop's timers have 1 ms steps and may fire a rounding early: then it is the
                # tick (it took three timers a tick, the last ones of 0-1 ms, at idle)
                if time.monotonic() < next_tick - TIMER_SLACK_S:
                    continue
                next_tick = time.monotonic() + tick_s
                due = logs.logs_due_for_flush(now_ms())
                if due:
                    await flush_logs_off_loop(due, pool=pool)
                if time.monotonic() - checkpointed >= checkpoint_every_s:
                    checkpointed = time.monotonic()
                    written = logs.write_recovery_points()
                    if written:
                        await asyncio.to_thread(sync_paths, written)
            except Exception:
                log.exception("scheduled flush failed")
    finally:
        logs.on_roll = None
        pool.shutdown(wait=False)


async def flush_logs_off_loop(logs: Sequence[L], threads: int = FLUSH_THREADS, *,
                              pool: ThreadPoolExecutor | None = None, rolled: bool = False) -> list[L]:
    """`flush_logs` for the event loop (the scheduled flushes of log.flush.interval.ms / flush.ms):
    the jobs are made and finished on the loop, a slice at a time, and only their fsyncs run on
    the pool, awaited, so the loop serves everyone (Raft included) meanwhile. What the loop does
    to a log during its fsyncs is kept: appends stay unflushed for the next flush, and a
    truncation leaves the recovery point where it put it (`PartitionLog.flushed`). Cancelled (the
    node stops), fsyncs not started never run and those running are waited for, so no file is
    left pinned, or marked clean unsynced for the final flush to skip. ``rolled``: the flush at
    a roll (`PartitionLog.flush_point`). ``pool``: the caller's threads (else ``threads`` new ones)."""
    failed: list[L] = []
    own = pool is None
    if pool is None:
        pool = ThreadPoolExecutor(max(threads, 1), thread_name_prefix="log-flush")
    try:
        for batch in flush_slices(logs, rolled):
            running = [(log, point, jobs, [pool.submit(job) for job in jobs]) for log, point, jobs in batch]
            waits = [asyncio.wrap_future(f) for *_, futures in running for f in futures]
            try:
                if waits:
                    await asyncio.wait(waits)
            except asyncio.CancelledError:
                for *_, futures in running:
                    for f in futures:
                        f.cancel()
                if waits:
                    await asyncio.wait(waits)
                raise
            finally:
                for log, point, jobs, futures in running:
                    finish(log, point, jobs, [job_error(f) for f in futures], failed)
    finally:
        if own:
            pool.shutdown(wait=False)
    return failed


async def sync_state_off_loop(logs: Sequence[PartitionLog], *, pool: ThreadPoolExecutor | None = None,
                              truncated: bool = False) -> list[PartitionLog]:
    """fsync the state files `logs` wrote unsynced on the loop (`PartitionLog.state_sync_jobs`:
    each file, then the directory; the leader-epoch checkpoints left to a thread) on ``pool``
    (else the loop's default executor), awaited, so the loop serves meanwhile. Returns the logs
    whose sync failed (one ERROR line each); those keep their paths for the next sync.
    ``truncated``: see `PartitionLog.state_sync_jobs`. The jobs go in a few runs of many
    (`_STATE_RUNS`): the first produce burst to 1,000 new partitions makes 1,000 checkpoint
    writes, and a future each cost the loop a wake-up and a callback each. Cancelled (the node
    stops): the runs not started never run and their paths stay owed, to the final flush
    (`LogManager.shutdown`: a log's flush jobs include them)."""
    loop = asyncio.get_running_loop()
    jobs = [(plog, job) for plog in logs for job in plog.state_sync_jobs(truncated=truncated)]
    size = -(-len(jobs) // _STATE_RUNS) if jobs else 1
    runs = [jobs[i:i + size] for i in range(0, len(jobs), size)]
    running = [(run, loop.run_in_executor(pool, _run_jobs, [job for _, job in run])) for run in runs]
    failed: list[PartitionLog] = []
    try:
        if running:
            await asyncio.wait([f for _, f in running])
    except asyncio.CancelledError:
        for _, f in running:
            f.cancel()
        await asyncio.wait([f for _, f in running])
        raise
    finally:
        for run, f in running:
            ran = f.done() and not f.cancelled() and f.exception() is None
            errors = f.result() if ran else [f.exception() if f.done() and not f.cancelled() else None] * len(run)
            for (plog, job), error in zip(run, errors, strict=True):
                job.done(ran and error is None)
                if error is not None:
                    log.error("%s-%d: fsync of its state files failed: %s", plog.topic, plog.partition, error)
                    if plog not in failed:
                        failed.append(plog)
    return failed


#: How many runs `sync_state_off_loop` splits its jobs in (threads of the pool working at once).
_STATE_RUNS = 4


def _run_jobs(jobs: Sequence[SyncJob]) -> list[BaseException | None]:
    """Run `jobs` one after the other (a thread): what each raised, None if it succeeded."""
    errors: list[BaseException | None] = []
    for job in jobs:
        try:
            job()
        except Exception as e:  # noqa: BLE001 - reported per job (its log's ERROR line)
            errors.append(e)
        else:
            errors.append(None)
    return errors
