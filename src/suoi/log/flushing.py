"""The final flush of a clean stop, and the scheduled flushes: every log's unflushed files
fsynced, many at once (`flush_logs` on a thread at the stop; the broker's flush task,
`suoi.log_flush`, awaits the same jobs on the event loop: `flush_slices`, `finish`).

A serial fsync per file waits out a whole device round trip each (and, on ext4, a journal
commit): a node with 1,000 partitions owes ~2,000-4,000 of them (segment, index files) and took
10-30 s to stop under load, past its bounded flush, so it stopped unflushed and its next start
recovered everything. The disk takes concurrent fsyncs as one queue: with `FLUSH_THREADS` in
flight the same flush takes a fraction of that.

Only the fsync syscalls run on the pool's threads. Everything else - writing an index's pending
entries, taking the descriptor from the handle cache (`handles.py`, not thread-safe) and
pinning it so the cache cannot close it meanwhile, the log's flush bookkeeping - stays on the
calling thread, a slice of logs at a time (`PIN_MAX` descriptors pinned at most).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from suoi.log.sync_jobs import FlushableLog, FlushPoint, SyncJob, fsync_dir

__all__ = ["FLUSH_THREADS", "L", "finish", "flush_logs", "flush_slices", "job_error", "sync_paths"]

logger = logging.getLogger("suoi.log")

#: fsyncs in flight at once (1,000 dirty partitions: 4-5x faster than one at a time here).
FLUSH_THREADS = 8
#: Most descriptors pinned at once (the handle cache's limit must not be pushed far past).
PIN_MAX = 512
#: A log of the caller's type (`PartitionLog`): what failed is handed back as such.
L = TypeVar("L", bound=FlushableLog)
_Slice = list[tuple[L, FlushPoint, Sequence[SyncJob]]]


def flush_slices(logs: Sequence[L], rolled: bool = False) -> Iterator[_Slice[L]]:
    """(log, where its flush starts, its jobs) in slices of at most PIN_MAX jobs (a log's jobs
    stay together). ``rolled``: the flush at a roll, of the rolled segments only."""
    batch: _Slice[L] = []
    pinned = 0
    for log in logs:
        if pinned >= PIN_MAX:
            yield batch
            batch, pinned = [], 0
        point = log.flush_point(rolled)
        try:
            jobs = log.sync_jobs(rolled)
        except OSError as e:  # writing an index's pending entries failed
            logger.error("%s-%d: cannot flush: %s", log.topic, log.partition, e)
            continue
        batch.append((log, point, jobs))
        pinned += len(jobs)
    if batch:
        yield batch


def finish(log: L, point: FlushPoint, jobs: Sequence[SyncJob], errors: Sequence[BaseException | None],
            failed: list[L]) -> None:
    """After a log's fsyncs: release the jobs, then move its recovery point, or log the failure."""
    for job, error in zip(jobs, errors, strict=True):
        job.done(error is None)
    error = next((e for e in errors if e is not None), None)
    if error is None:
        log.flushed(point)
    elif isinstance(error, CancelledError):  # the node stops: the final flush syncs what did not
        pass
    else:
        logger.error("%s-%d: fsync failed: %s", log.topic, log.partition, error)
        failed.append(log)


def flush_logs(logs: Sequence[L], threads: int = FLUSH_THREADS) -> list[L]:
    """fsync what every log in `logs` has not flushed, `threads` fsyncs at a time, and move each
    log's recovery point to the end it had (as `PartitionLog.flush`). Returns the logs whose
    flush failed (logged here, one ERROR line each): their data may not all be on disk."""
    failed: list[L] = []
    with ThreadPoolExecutor(max(threads, 1), thread_name_prefix="log-flush") as pool:
        for batch in flush_slices(logs):
            running: list[tuple[L, FlushPoint, Sequence[SyncJob], list[Future[None]]]] = [
                (log, point, jobs, [pool.submit(job) for job in jobs]) for log, point, jobs in batch]
            for log, point, jobs, futures in running:
                finish(log, point, jobs, [job_error(f) for f in futures], failed)
    return failed


def job_error(future: Future[None]) -> BaseException | None:
    """What a job's fsync raised (a job cancelled before it ran did not sync: an error too)."""
    return CancelledError() if future.cancelled() else future.exception()


def _sync_path(path: Path) -> tuple[Path, OSError | None]:
    try:
        fsync_dir(path)
    except FileNotFoundError:  # e.g. no recovery point: the log was never written
        pass
    except OSError as e:
        return path, e
    return path, None


def sync_paths(paths: Sequence[Path], threads: int = FLUSH_THREADS) -> list[Path]:
    """fsync each of `paths` (files or directories, by path), `threads` at a time: files written
    without an fsync (the recovery points at close) and directories whose entries changed.
    Returns those that failed (one ERROR line each); a missing path is skipped."""
    with ThreadPoolExecutor(max(threads, 1), thread_name_prefix="log-flush") as pool:
        failed = [(path, e) for path, e in pool.map(_sync_path, paths) if e is not None]
    for path, e in failed:
        logger.error("fsync of %s failed: %s", path, e)
    return [path for path, _ in failed]
