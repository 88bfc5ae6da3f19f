"""Moving a replica to another log dir (AlterReplicaLogDirs, JBOD): the *future* replica.

As Kafka does, the copy is built beside the data as ``<topic>-<partition>.<uuid>-future`` in the
target dir while the replica keeps serving, then swapped in:

1. `copy_bulk` (a worker thread): every file of the partition as it is now, remembering each
   file's identity (inode) and copied size;
2. `catch_up` (a worker thread): `copy_tail` of the live partition - what was appended during
   the bulk copy (a whole tail of a busy partition) copied and fsynced off the event loop;
3. `LogManager.finish_move` (the event loop, so no append runs meanwhile): close the log (indexes
   trimmed, producer snapshot written), bring the copy up to date (`copy_tail`: appended bytes
   of the same file, whole files that are new, replaced or shrank; files gone are removed),
   fsync, rename the copy to ``<topic>-<partition>`` in the target dir, set the old dir aside
   and reopen the log in place; the caller removes the old dir (`ReplicaMove.doomed`) on a thread.

What step 3 copies is what the loop appended since step 2 (milliseconds of it) and the files
the close rewrites (the active segment's indexes, the recovery point, the producer snapshot,
the leader-epoch checkpoint); their fsyncs stay on the loop (issue 19: a handful, once per
move): the copy must be durable before the rename that makes it the replica, and the old dir
may go only after that. Moving them to a thread would need the swap made in two durable
steps with a marker that start-up reads (which of two copies to keep), in `LogManager`'s scan.

A stop or crash before the rename leaves a ``-future`` dir: the next start resumes the move
(copying again over it, as Kafka resumes future replicas; the replica serves from its old dir
meanwhile). A crash between the rename and the removal leaves two complete, identical copies:
start-up keeps one.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from suoi.atomic_file import fsync_dir  # fsyncs any path opened read-only, files too

__all__ = ["FUTURE_SUFFIX", "ReplicaMove", "catch_up", "copy_bulk", "copy_tail"]

FUTURE_SUFFIX = "-future"


@dataclass(slots=True)
class ReplicaMove:
    topic: str
    partition: int
    source: Path  # the partition dir being moved
    future: Path  # the copy under construction in the target log dir
    #: file name -> (inode, bytes copied, source mtime in ns) of what the copy holds.
    copied: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    #: The log end offset the copy reaches (for DescribeLogDirs' offset lag): set by the bulk copy.
    copied_up_to: int = 0
    cancelled: bool = False
    #: The old dir, set aside by `finish_move` for the caller to remove (``-delete``: start-up
    #: removes one a stop left behind).
    doomed: Path | None = None

    @property
    def target_dir(self) -> Path:
        return self.future.parent


def _copy_whole(src: Path, dst: Path) -> int:
    shutil.copyfile(src, dst)
    fsync_dir(dst)
    return os.stat(dst).st_size


def _append_from(src: Path, dst: Path, start: int) -> int:
    with open(src, "rb") as fin, open(dst, "ab") as fout:
        fin.seek(start)
        shutil.copyfileobj(fin, fout, 1024 * 1024)
        fout.flush()
        os.fsync(fout.fileno())
    return os.stat(dst).st_size


def _same_tail(src: Path, dst: Path, size: int, span: int = 4096) -> bool:
    """Whether the last bytes the copy holds are still the source's (not truncated and rewritten
    since: a follower that diverged truncates and appends other batches at the same place)."""
    start = max(size - span, 0)
    with open(src, "rb") as a, open(dst, "rb") as b:
        a.seek(start)
        b.seek(start)
        return a.read(size - start) == b.read(size - start)


def copy_bulk(move: ReplicaMove) -> None:
    """Copy every file of the partition as it is now (in a worker thread; files that vanish
    meanwhile, e.g. segments deleted by retention, are skipped)."""
    move.future.mkdir(parents=True, exist_ok=True)
    for entry in sorted(os.scandir(move.source), key=lambda e: e.name):
        if move.cancelled:
            return
        if not entry.is_file():
            continue
        try:
            st = entry.stat()
            size = _copy_whole(Path(entry.path), move.future / entry.name)
        except FileNotFoundError:
            continue
        # the size copied may exceed st_size (appended meanwhile): `copy_tail` checks the tail
        move.copied[entry.name] = (st.st_ino, size, st.st_mtime_ns)


def catch_up(move: ReplicaMove) -> None:
    """`copy_tail` of the partition while it serves (a worker thread): files deleted meanwhile
    (retention, a roll's cleanup) are skipped, and `finish_move` copies the rest."""
    if not move.cancelled:
        copy_tail(move, live=True)


def copy_tail(move: ReplicaMove, *, live: bool = False) -> None:
    """Make the copy identical to the (closed) source: log files that only grew get the new
    bytes, other changed files are copied whole, files gone from the source are removed.
    ``live``: the source is still open (`catch_up`): a file may vanish under the copy."""
    present = set()
    for entry in os.scandir(move.source):
        if not entry.is_file():
            continue
        present.add(entry.name)
        try:
            _copy_file(move, entry)
        except FileNotFoundError:
            if not live:
                raise
    for name in [n for n in os.listdir(move.future) if n not in present]:
        os.unlink(move.future / name)
        move.copied.pop(name, None)
    fsync_dir(move.future)


def _copy_file(move: ReplicaMove, entry: os.DirEntry[str]) -> None:
    """Bring one file of the copy up to date (see `copy_tail`)."""
    st = entry.stat()
    src, dst = Path(entry.path), move.future / entry.name
    known = move.copied.get(entry.name)
    if known == (st.st_ino, st.st_size, st.st_mtime_ns) and dst.exists():
        return  # untouched since it was copied (indexes are rewritten in place: mtime tells)
    if (known is not None and known[0] == st.st_ino and st.st_size >= known[1] and entry.name.endswith(".log")
            and dst.exists() and _same_tail(src, dst, known[1])):
        size = _append_from(src, dst, known[1]) if st.st_size > known[1] else known[1]
    else:
        size = _copy_whole(src, dst)
    move.copied[entry.name] = (st.st_ino, size, st.st_mtime_ns)
