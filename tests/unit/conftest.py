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
