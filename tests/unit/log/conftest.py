"""Shared fixtures for storage tests: an injectable clock and a log factory."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from suoi.log import sync_jobs
from suoi.log.config import LogConfig
from suoi.log.partition_log import PartitionLog
from tests.unit.log.log_helpers import Clock, OpenLog


@pytest.fixture
def clock() -> Clock:
    return Clock()




@pytest.fixture
def open_log(tmp_path: Path, clock: Clock) -> Iterator[OpenLog]:
    """Open (or reopen) the partition log at ``tmp_path/t-0``; closes all at teardown."""
    opened: list[PartitionLog] = []

    def factory(**config: object) -> PartitionLog:
        log = PartitionLog.open(tmp_path / "t-0", "t", 0, LogConfig(**config), now_ms=clock)  # type: ignore[arg-type]
        opened.append(log)
        return log

    yield factory
    for log in opened:
        log.close()


@pytest.fixture
def held_fsyncs(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """(an fsync started, let them finish): every flush fsync of a segment's files waits for the test."""
    started, release = threading.Event(), threading.Event()
    real = sync_jobs._fsync

    def fsync(fd: int) -> None:
        started.set()
        release.wait(10)
        real(fd)

    monkeypatch.setattr(sync_jobs, "_fsync", fsync)
    return started, release
