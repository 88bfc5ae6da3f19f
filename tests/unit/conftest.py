"""Fixtures shared by the unit tests of several packages."""

from __future__ import annotations

import os
import stat

import pytest


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What each ``os.fsync`` from now on synced, in order: "file" or "dir" (the fsyncs still run)."""
    made: list[str] = []
    real = os.fsync

    def record(fd: int) -> None:
        made.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real(fd)

    monkeypatch.setattr(os, "fsync", record)
    return made


class FsyncRecord:
    """What each ``os.fsync`` synced (its path) and on which thread, in order (`fsync_threads`)."""

    def __init__(self) -> None:
        import threading

        self.made: list[tuple[str, threading.Thread]] = []
        self._lock = threading.Lock()

    def add(self, path: str) -> None:
        import threading

        with self._lock:
            self.made.append((path, threading.current_thread()))

    def mark(self) -> int:
        """Where the record stands now (for `paths`' ``since``)."""
        with self._lock:
            return len(self.made)

    def paths(self, thread: object = None, *, off: object = None, since: int = 0) -> list[str]:
        """The paths synced (after `mark` ``since``) on ``thread`` (any if None), or on any thread but ``off``."""
        with self._lock:
            return [p for p, t in self.made[since:] if (thread is None or t is thread) and (off is None or t is not off)]


@pytest.fixture
def fsync_threads(monkeypatch: pytest.MonkeyPatch) -> FsyncRecord:
    """Every ``os.fsync`` from now on recorded with its path and thread (the fsyncs still run), so a
    test can check that none ran on the event loop's thread."""
    record = FsyncRecord()
    real = os.fsync

    def fsync(fd: int) -> None:
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            path = f"fd:{fd}"
        record.add(path)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return record
