"""The LRU of segment file descriptors (suoi.log.handles): a bounded number open at once,
pinned ones never closed, a closed-for-good file never reopened, and EMFILE survived by
closing idle descriptors. Real files, and a real (lowered) RLIMIT_NOFILE."""

from __future__ import annotations

import errno
import os
import resource
from pathlib import Path

import pytest

from suoi.log.handles import MIN_HANDLES, FileHandles, LazyFile


def _files(tmp_path: Path, handles: FileHandles, n: int) -> list[LazyFile]:
    files = []
    for i in range(n):
        f = LazyFile(tmp_path / f"{i}.log", os.O_RDWR | os.O_CREAT | os.O_APPEND, handles)
        os.write(f.fd, f"file {i}\n".encode())
        files.append(f)
    return files


def test_at_most_limit_descriptors_stay_open(tmp_path: Path) -> None:
    handles = FileHandles(MIN_HANDLES)
    files = _files(tmp_path, handles, 3 * MIN_HANDLES)
    assert handles.open_count == MIN_HANDLES
    assert [f.is_open for f in files] == [False] * (2 * MIN_HANDLES) + [True] * MIN_HANDLES  # the newest
    for i, f in enumerate(files):  # an evicted file reopens on use, with its data
        assert os.pread(f.fd, 100, 0) == f"file {i}\n".encode()
    assert handles.open_count == MIN_HANDLES


def test_pinned_descriptors_are_never_closed(tmp_path: Path) -> None:
    handles = FileHandles(MIN_HANDLES)
    first = _files(tmp_path, handles, 1)[0]
    fd = first.pin()
    more = [LazyFile(tmp_path / f"more-{i}", os.O_RDWR | os.O_CREAT, handles) for i in range(3 * MIN_HANDLES)]
    for f in more:
        assert f.fd >= 0
    assert first.is_open and os.pread(fd, 100, 0) == b"file 0\n"  # still the same descriptor
    first.unpin()
    more[0].fd  # noqa: B018 - reopening one evicts the least recently used unpinned file
    assert not first.is_open


def test_a_closed_file_is_not_reopened(tmp_path: Path) -> None:
    f = _files(tmp_path, FileHandles(), 1)[0]
    f.close()
    with pytest.raises(OSError) as e:
        f.fd  # noqa: B018
    assert e.value.errno == errno.EBADF


def test_out_of_descriptors_closes_idle_ones_and_retries(tmp_path: Path) -> None:
    handles = FileHandles(10_000)  # a bound above what the process may open: EMFILE comes first
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    in_use = len(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + 40, hard))
    try:
        files = _files(tmp_path, handles, 200)  # five times what the lowered limit allows
    finally:
        for f in handles._open.copy():
            f.release_fd()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert [os.pread(f.fd, 100, 0) for f in files[:3]] == [b"file 0\n", b"file 1\n", b"file 2\n"]
    for f in files:
        f.close()


def test_shedding_closes_clean_files_before_dirty_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Closing a dirty file costs an fsync on the event loop first: an older clean one goes instead."""
    handles = FileHandles(MIN_HANDLES)
    files = _files(tmp_path, handles, MIN_HANDLES)
    files[0].dirty = True  # the least recently used, written since its last fsync
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    extra = LazyFile(tmp_path / "extra", os.O_RDWR | os.O_CREAT, handles)
    assert extra.fd >= 0
    assert extra.is_open and files[0].is_open and not files[1].is_open  # the oldest clean one went
    assert synced == []
    for f in [*files[2:], extra]:  # once only dirty ones are open, the oldest is synced and closed
        f.dirty = True
    assert LazyFile(tmp_path / "more", os.O_RDWR | os.O_CREAT, handles).fd >= 0
    assert not files[0].is_open and len(synced) == 1 and not files[0].dirty
    assert all(f.is_open for f in [*files[2:], extra])
