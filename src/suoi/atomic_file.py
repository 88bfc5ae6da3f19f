"""Replacing a small state file so that a crash leaves the old content or the new one, never a
torn mix: the checkpoints, snapshots, meta.properties, Raft's quorum-state and the others
(`src/suoi/log/README.md` lists each file and its durability).

Kafka's recipe (`CheckpointFile.write`, `PropertiesUtils.writePropertiesFile`,
`FileQuorumStateStore`): write a temporary file beside the target (``<name>.tmp``), fsync it,
rename it over the target, fsync the directory (`Utils.atomicMoveWithFallback`). The rename
makes a crash of the process safe on its own; the two fsyncs make the new content survive a
crash of the machine: without the first, the renamed file may come back empty or torn; without
the second, the rename itself may be lost (the old content comes back). Each writer chooses
(`fsync`, `sync_dir`): an fsync costs milliseconds on a busy disk, so a writer on the event loop
that runs often leaves them to a flush thread (`suoi.log.flushing.sync_paths`) or to a loader
that tolerates an old or unreadable file.

A module of its own, importing nothing of suoi, so that `log`, `partition`, `raft`, `cluster`
and the CLI all use it without an import ring. Blocking: call it where the caller's fsyncs may
block (a thread, or a path that already accepts them).
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path

__all__ = ["TMP_SUFFIX", "discard_tmp", "fsync_dir", "tmp_path", "write_atomically"]

#: What a temporary file's name adds to its target's: loaders read targets by their exact names,
#: so a leftover ``.tmp`` (a crash mid-write) is never taken for state.
TMP_SUFFIX = ".tmp"


def tmp_path(path: Path) -> Path:
    """The temporary file `write_atomically` writes before renaming it to `path`."""
    return path.with_name(path.name + TMP_SUFFIX)


def discard_tmp(path: Path) -> bool:
    """Remove the temporary file a crash may have left beside `path`; whether there was one.
    (A leftover is harmless - never read, and truncated by the next write - but clutters.)"""
    try:
        tmp_path(path).unlink()
    except FileNotFoundError:
        return False
    return True


def fsync_dir(path: str | Path) -> None:
    """fsync `path` (a directory, or a file) through a descriptor of its own."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: str | bytes, *, fsync: bool = True, sync_dir: bool | None = None,
                     mode: int | None = None, tmp: Path | None = None) -> None:
    """Replace `path` with `data` (text is written as UTF-8) through a temporary file renamed
    over it: after a crash of the process, the old file or the new one, whole.

    ``fsync``: the temporary file is fsynced before the rename, and (``sync_dir``, by default
    as ``fsync``) the directory after it, so the new content survives a crash of the machine.
    ``mode``: the file's permission bits, set before any byte is written (a secret is never
    readable by others, not even in the temporary file). ``tmp``: another name for the
    temporary file (default `tmp_path`). Raises OSError, after removing the temporary file; the
    old `path` is then untouched (the caller says what failing means)."""
    tmp = tmp_path(path) if tmp is None else tmp
    body = memoryview(data.encode() if isinstance(data, str) else data)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666 if mode is None else mode)
        try:
            if mode is not None:  # also a leftover temporary file's, which O_CREAT leaves as it was
                os.fchmod(fd, mode)
            while body:
                body = body[os.write(fd, body):]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    if fsync if sync_dir is None else sync_dir:
        fsync_dir(path.parent)
