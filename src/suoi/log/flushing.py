"""The final flush of a clean stop: every log's unflushed files fsynced, many at once.

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
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from suoi.log.handles import LazyFile

if TYPE_CHECKING:
    from suoi.log.partition_log import PartitionLog

__all__ = ["FLUSH_THREADS", "CallSync", "FileSync", "SyncJob", "flush_logs", "fsync_dir", "sync_paths"]

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


def _slices(logs: Sequence[PartitionLog]) -> Iterator[list[tuple[PartitionLog, int, list[SyncJob]]]]:
    """(log, its end offset, its jobs) in slices of at most PIN_MAX jobs (a log's jobs stay together)."""
    batch: list[tuple[PartitionLog, int, list[SyncJob]]] = []
    pinned = 0
    for log in logs:
        if pinned >= PIN_MAX:
            yield batch
            batch, pinned = [], 0
        end = log.log_end_offset
        try:
            jobs = log.sync_jobs()
        except OSError as e:  # writing an index's pending entries failed
            logger.error("%s-%d: cannot flush: %s", log.topic, log.partition, e)
            continue
        batch.append((log, end, jobs))
        pinned += len(jobs)
    if batch:
        yield batch


def flush_logs(logs: Sequence[PartitionLog], threads: int = FLUSH_THREADS) -> list[PartitionLog]:
    """fsync what every log in `logs` has not flushed, `threads` fsyncs at a time, and move each
    log's recovery point to the end it had (as `PartitionLog.flush`). Returns the logs whose
    flush failed (logged here, one ERROR line each): their data may not all be on disk."""
    failed: list[PartitionLog] = []
    with ThreadPoolExecutor(max(threads, 1), thread_name_prefix="log-flush") as pool:
        for batch in _slices(logs):
            running: list[tuple[PartitionLog, int, list[SyncJob], list[Future[None]]]] = [
                (log, end, jobs, [pool.submit(job) for job in jobs]) for log, end, jobs in batch]
            for log, end, jobs, futures in running:
                errors = [f.exception() for f in futures]
                for job, error in zip(jobs, errors, strict=True):
                    job.done(error is None)
                error = next((e for e in errors if e is not None), None)
                if error is None:
                    log.flushed(end)
                else:
                    logger.error("%s-%d: fsync failed: %s", log.topic, log.partition, error)
                    failed.append(log)
    return failed


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
