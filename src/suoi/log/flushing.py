"""The final flush of a clean stop, and the scheduled flushes: every log's unflushed files
fsynced, many at once (`flush_logs` on a thread at the stop, `flush_logs_off_loop` awaited by
the broker's flush task).

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

import asyncio
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from suoi.log.handles import LazyFile

if TYPE_CHECKING:
    from suoi.log.partition_log import PartitionLog
    from suoi.log.partition_log_state import FlushPoint

__all__ = ["FLUSH_THREADS", "CallSync", "FileSync", "SyncJob", "flush_logs", "flush_logs_off_loop", "fsync_dir",
           "sync_paths"]

logger = logging.getLogger("suoi.log")

#: fsyncs in flight at once (1,000 dirty partitions: 4-5x faster than one at a time here).
FLUSH_THREADS = 8
#: Most descriptors pinned at once (the handle cache's limit must not be pushed far past).
PIN_MAX = 512
#: Fault-injection seam: tests replace it (``suoi.log.flushing._fsync``) to fail a segment's fsync.
_fsync = os.fsync


class SyncJob:
    """One fsync that may run on any thread (`__call__`); `done` runs on the caller's."""

    __slots__ = ()

    def __call__(self) -> None:
        raise NotImplementedError

    def done(self, ok: bool) -> None:
        """After the fsync (``ok``: it succeeded), on the thread that made the job."""


class FileSync(SyncJob):
    """An fsync of a handle-cached `LazyFile`: its descriptor pinned until `done`, and marked clean
    now (a write from here on marks it dirty again, for the next flush)."""

    __slots__ = ("fd", "file")

    def __init__(self, file: LazyFile) -> None:
        self.file = file
        self.fd = file.pin()
        file.dirty = False

    def __call__(self) -> None:
        _fsync(self.fd)

    def done(self, ok: bool) -> None:
        self.file.unpin()
        if not ok:
            self.file.dirty = True


class CallSync(SyncJob):
    """A thread-safe flush of something that opens its own descriptor (the transaction index)."""

    __slots__ = ("call",)

    def __init__(self, call: Callable[[], None]) -> None:
        self.call = call

    def __call__(self) -> None:
        self.call()


def fsync_dir(path: str | Path) -> None:
    """fsync `path` (a directory, or a file) through a descriptor of its own."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_Slice = list[tuple["PartitionLog", "FlushPoint", list[SyncJob]]]


def _slices(logs: Sequence[PartitionLog]) -> Iterator[_Slice]:
    """(log, where its flush starts, its jobs) in slices of at most PIN_MAX jobs (a log's jobs
    stay together)."""
    batch: _Slice = []
    pinned = 0
    for log in logs:
        if pinned >= PIN_MAX:
            yield batch
            batch, pinned = [], 0
        point = log.flush_point()
        try:
            jobs = log.sync_jobs()
        except OSError as e:  # writing an index's pending entries failed
            logger.error("%s-%d: cannot flush: %s", log.topic, log.partition, e)
            continue
        batch.append((log, point, jobs))
        pinned += len(jobs)
    if batch:
        yield batch


def _finish(log: PartitionLog, point: FlushPoint, jobs: Sequence[SyncJob], errors: Sequence[BaseException | None],
            failed: list[PartitionLog]) -> None:
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


def flush_logs(logs: Sequence[PartitionLog], threads: int = FLUSH_THREADS) -> list[PartitionLog]:
    """fsync what every log in `logs` has not flushed, `threads` fsyncs at a time, and move each
    log's recovery point to the end it had (as `PartitionLog.flush`). Returns the logs whose
    flush failed (logged here, one ERROR line each): their data may not all be on disk."""
    failed: list[PartitionLog] = []
    with ThreadPoolExecutor(max(threads, 1), thread_name_prefix="log-flush") as pool:
        for batch in _slices(logs):
            running: list[tuple[PartitionLog, FlushPoint, list[SyncJob], list[Future[None]]]] = [
                (log, point, jobs, [pool.submit(job) for job in jobs]) for log, point, jobs in batch]
            for log, point, jobs, futures in running:
                _finish(log, point, jobs, [_error(f) for f in futures], failed)
    return failed


async def flush_logs_off_loop(logs: Sequence[PartitionLog], threads: int = FLUSH_THREADS) -> list[PartitionLog]:
    """`flush_logs` for the event loop (the scheduled flushes of log.flush.interval.ms / flush.ms):
    the jobs are made and finished on the loop, a slice at a time, and only their fsyncs run on
    the pool, awaited, so the loop serves everyone (Raft included) meanwhile. What the loop does
    to a log during its fsyncs is kept: appends stay unflushed for the next flush, and a
    truncation leaves the recovery point where it put it (`PartitionLog.flushed`). Cancelled (the
    node stops), fsyncs not started never run and those running are waited for, so no file is
    left pinned, or marked clean unsynced for the final flush to skip."""
    failed: list[PartitionLog] = []
    pool = ThreadPoolExecutor(max(threads, 1), thread_name_prefix="log-flush")
    try:
        for batch in _slices(logs):
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
                    _finish(log, point, jobs, [_error(f) for f in futures], failed)
    finally:
        pool.shutdown(wait=False)
    return failed


def _error(future: Future[None]) -> BaseException | None:
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
