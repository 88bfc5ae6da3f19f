"""Kafka's `.lock` on each log dir and the metadata log dir: one node per directory.

Why: two nodes started on one data dir (a second `make run`, a copied config) would both
append to the same segment files and overwrite each other's checkpoints, and the broker epoch
recorded in the metadata dir (`suoi.cluster.previous_epoch`) is trusted only because the last
process on that dir wrote it. Kafka's LogManager and KafkaRaftManager take an exclusive
`FileLock` on `<dir>/.lock` at start and refuse to start when another process holds one; suoi
does the same with `flock(LOCK_EX | LOCK_NB)`.

`flock` locks belong to the open file description, so a second node in the same process (tests,
`suoi.testing.InProcessNode`) opening the file again conflicts too, as it must; the node releases
its locks when it stops so that a restart in the same process takes them again. The file is
empty, left in place (as Kafka leaves it) and is not a directory, so the partition-dir scan,
retention and DescribeLogDirs never take it for a partition.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["LOCK_FILE", "DirLocks", "LogDirLockedError"]

LOCK_FILE = ".lock"


class LogDirLockedError(OSError):
    """Another node (process or thread) holds the lock of a directory: refuse to start."""

    def __init__(self, directory: Path) -> None:
        super().__init__(f"Failed to acquire lock on file {LOCK_FILE} in {directory}. A Kafka instance in "
                         "another process or thread is using this directory.")
        self.directory = directory


class DirLocks:
    """The locks a node holds on its directories, by directory."""

    def __init__(self) -> None:
        self._fds: dict[Path, int] = {}

    @property
    def held(self) -> list[Path]:
        return list(self._fds)

    def acquire(self, directories: Iterable[Path]) -> None:
        """Lock every directory (created if missing) or none: on the first one another node holds,
        the ones taken here are released and `LogDirLockedError` is raised. A directory named twice
        (the metadata dir is the first log dir unless metadata.log.dir is set) is locked once."""
        taken: list[Path] = []
        try:
            for d in directories:
                key = Path(os.path.realpath(d))
                if key in self._fds:
                    continue
                self._fds[key] = _lock(Path(d))
                taken.append(key)
        except BaseException:
            self.release(taken)
            raise

    def release(self, directories: Iterable[Path] | None = None) -> None:
        """Unlock ``directories`` (all when None); idempotent. Closing the descriptor drops the lock."""
        keys = list(self._fds) if directories is None else [Path(os.path.realpath(d)) for d in directories]
        for key in keys:
            fd = self._fds.pop(key, None)
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)


def _lock(directory: Path) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LogDirLockedError(directory) from None
    except BaseException:
        os.close(fd)
        raise
    return fd
