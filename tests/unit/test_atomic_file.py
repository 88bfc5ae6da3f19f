"""`suoi.atomic_file.write_atomically`: a failure anywhere before the rename leaves the old file
whole and no temporary file behind; the fsyncs asked for are made (file, then directory)."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from suoi import atomic_file
from suoi.atomic_file import TMP_SUFFIX, discard_tmp, write_atomically


def _boom(*_args: object) -> None:
    raise OSError(errno.EIO, "injected I/O error")


def test_text_and_bytes_replace_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state"
    write_atomically(path, "héllo\n")
    assert path.read_bytes() == "héllo\n".encode()
    write_atomically(path, b"\x00\x01" * 70_000)  # several writes' worth
    assert path.read_bytes() == b"\x00\x01" * 70_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]


@pytest.mark.parametrize("failing", ["replace", "fsync", "write"])
def test_a_failure_before_the_rename_leaves_the_old_file_and_no_temporary(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str) -> None:
    path = tmp_path / "leader-epoch-checkpoint"
    write_atomically(path, "0\n1\n0 0\n")
    monkeypatch.setattr(os, failing, _boom)
    with pytest.raises(OSError, match="injected"):
        write_atomically(path, "0\n2\n0 0\n5 100\n")
    monkeypatch.undo()
    assert path.read_text() == "0\n1\n0 0\n"
    assert not tmp_path.joinpath("leader-epoch-checkpoint" + TMP_SUFFIX).exists()


def test_a_failed_directory_fsync_is_raised_after_the_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The new content is in place (the rename happened) but the caller learns it may not last."""
    path = tmp_path / "replication-offset-checkpoint"
    calls: list[int] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 2:  # the directory's
            raise OSError(errno.EIO, "injected I/O error")
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match="injected"):
        write_atomically(path, "0\n0\n")
    assert path.read_text() == "0\n0\n"
    assert not tmp_path.joinpath(path.name + TMP_SUFFIX).exists()


@pytest.mark.parametrize(("fsync", "sync_dir", "expected"), [
    (True, None, ["file", "dir"]),
    (True, False, ["file"]),
    (False, None, []),
    (False, True, ["dir"]),
])
def test_the_fsyncs_asked_for_are_made(tmp_path: Path, fsyncs: list[str],
                                       fsync: bool, sync_dir: bool | None, expected: list[str]) -> None:
    write_atomically(tmp_path / "f", "x", fsync=fsync, sync_dir=sync_dir)
    assert fsyncs == expected


def test_mode_is_set_before_any_byte_even_over_a_leftover_temporary(tmp_path: Path) -> None:
    path = tmp_path / "client.properties"
    leftover = tmp_path / ".client.properties.tmp"
    leftover.write_text("torn")
    leftover.chmod(0o644)
    write_atomically(path, "sasl.password=secret\n", fsync=False, mode=0o600, tmp=leftover)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "sasl.password=secret\n"
    assert not leftover.exists()


def test_discard_tmp_removes_only_the_leftover(tmp_path: Path) -> None:
    path = tmp_path / "quorum-state"
    path.write_text("{}")
    assert discard_tmp(path) is False
    leftover = tmp_path / "quorum-state.tmp"
    leftover.write_text("{")
    assert atomic_file.tmp_path(path) == leftover
    assert discard_tmp(path) is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["quorum-state"]
