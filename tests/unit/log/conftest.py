"""Shared fixtures for storage tests: an injectable clock and a log factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from suoi.log.config import LogConfig
from suoi.log.partition_log import PartitionLog
from suoi.protocol.records import build_batch


class Clock:
    """Manually advanced milliseconds clock, so no test ever sleeps."""

    def __init__(self, now: int = 1_700_000_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> int:
        self.now += ms
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def batch(n: int = 3, ts: int = 1000, payload: int = 10, tag: int = 0) -> bytes:
    """A v2 batch of ``n`` records with ``payload``-byte values."""
    return build_batch(
        [(b"k%d" % i, (b"%d-%d-" % (tag, i)).ljust(payload, b"x")) for i in range(n)], timestamp_ms=ts
    )


OpenLog = Callable[..., PartitionLog]


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
