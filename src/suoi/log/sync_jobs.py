"""What a flush is made of, apart from who flushes: the fsync jobs (`SyncJob`: a file of the
handle cache, a leader-epoch checkpoint, a transaction index), where a log's flush began
(`FlushPoint`), and what `flushing` needs of a log (`FlushableLog`).

A module of its own so that the segment and the leader-epoch cache (which make jobs) and
`flushing` (which runs them) depend on it, and `flushing` on no log class: the log package then
has no import ring (flushing -> partition_log -> ... -> segment -> flushing was one).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import NamedTuple, Protocol

from suoi.atomic_file import fsync_dir
from suoi.log.handles import LazyFile

__all__ = ["CallSync", "FileSync", "FlushPoint", "FlushableLog", "PathSync", "StateSync", "SyncJob", "fsync_dir"]


class FlushPoint(NamedTuple):
    """Where a flush began: the log end, the messages unflushed then, the truncations so far.
    ``rolled``: a flush of the rolled segments only (Kafka's flush at a roll), ``end`` being the
    active segment's base offset: the active segment, its messages and flush.ms are left alone."""

    end: int
    messages: int
    truncations: int
    rolled: bool = False


#: Fault-injection seam: tests replace it (``suoi.log.sync_jobs._fsync``) to fail a segment's fsync.
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
        file.syncing += 1

    def __call__(self) -> None:
        _fsync(self.fd)

    def done(self, ok: bool) -> None:
        self.file.syncing -= 1
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


class PathSync(SyncJob):
    """An fsync of a file or directory by path (a partition directory whose entries a roll
    changed, a producer snapshot written at a roll); one deleted meanwhile needs none."""

    __slots__ = ("path",)

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self) -> None:
        with suppress(FileNotFoundError):  # removed since (retention, an older snapshot let go)
            fsync_dir(self.path)


class StateSync(SyncJob):
    """The fsyncs a partition's state files written on the event loop without one still owe (the
    recovery point and log start offset at a truncation, DeleteRecords or retention, the cleaner's
    checkpoint): each file, then the directory (their renames, a truncation's unlinks). `done`
    reports the write generation it covered (``gen``: every write up to it is durable) or, if it
    failed or never ran, hands the paths back for the next one."""

    __slots__ = ("paths", "gen", "report")

    def __init__(self, paths: Sequence[Path], gen: int, report: Callable[[int, Sequence[Path]], None]) -> None:
        self.paths = paths
        self.gen = gen
        self.report = report

    def __call__(self) -> None:
        for path in self.paths:  # the directory last: a file's content is durable before its name
            with suppress(FileNotFoundError):  # replaced or deleted since: its directory's fsync covers it
                fsync_dir(path)

    def done(self, ok: bool) -> None:
        self.report(self.gen if ok else -1, self.paths)


class FlushableLog(Protocol):
    """What `flushing` needs of a log (`PartitionLog` is one)."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    def flush_point(self, rolled: bool = False) -> FlushPoint: ...

    def sync_jobs(self, rolled: bool = False) -> Sequence[SyncJob]: ...

    def flushed(self, point: FlushPoint) -> None: ...
