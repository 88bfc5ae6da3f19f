import errno
import os
from pathlib import Path

import pytest

from suoi.partition.hw_checkpoint import CHECKPOINT_FILE, HighWatermarkCheckpoints, read_checkpoint, write_checkpoint


def test_round_trip_in_kafkas_format(tmp_path: Path) -> None:
    path = tmp_path / "replication-offset-checkpoint"
    write_checkpoint(path, {("orders", 1): 42, ("my topic-x", 0): 7})
    assert path.read_text().splitlines()[:2] == ["0", "2"]
    assert read_checkpoint(path) == {("orders", 1): 42, ("my topic-x", 0): 7}


def test_missing_or_malformed_files_read_as_empty(tmp_path: Path) -> None:
    assert read_checkpoint(tmp_path / "absent") == {}
    bad = tmp_path / "bad"
    bad.write_text("1\n1\nt 0 5\n")  # unknown version
    assert read_checkpoint(bad) == {}
    bad.write_text("0\n2\nt 0 5\n")  # fewer lines than the count
    assert read_checkpoint(bad) == {}
    bad.write_text("0\n1\nt zero 5\n")
    assert read_checkpoint(bad) == {}


def test_written_as_kafkas_checkpoint_file_fsync_then_the_dir(tmp_path: Path, fsyncs: list[str]) -> None:
    write_checkpoint(tmp_path / CHECKPOINT_FILE, {("t", 0): 5})
    assert fsyncs == ["file", "dir"]


def test_a_failed_write_keeps_the_old_hws_and_a_torn_leftover_is_removed_at_load(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / CHECKPOINT_FILE
    write_checkpoint(path, {("t", 0): 5, ("t", 1): 9})

    def boom(*_args: object) -> None:
        raise OSError(errno.ENOSPC, "injected: no space left")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="injected"):
        write_checkpoint(path, {("t", 0): 50, ("t", 1): 90})
    monkeypatch.undo()
    assert read_checkpoint(path) == {("t", 0): 5, ("t", 1): 9}
    (tmp_path / (CHECKPOINT_FILE + ".tmp")).write_text("0\n2\nt 0 50\nt 1 ")  # a crash mid-write
    hws = HighWatermarkCheckpoints([tmp_path], lambda topic, partition: None)
    hws.load()
    assert hws._checkpointed == {("t", 0): 5, ("t", 1): 9}
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_FILE]
