"""Open file descriptors of segment and index files: opened on use, closed when idle.

A partition keeps at least three files (``.log``, ``.index``, ``.timeindex``); holding them
all open puts a node with a few thousand partitions over ``ulimit -n`` (``EMFILE``), after
which it can neither create partitions nor accept connections. Instead every such file is a
`LazyFile` whose descriptor lives in one process-wide LRU (`HANDLES`): opened by the first
syscall that needs it, closed again when more than `FileHandles.limit` are open and it is the
least recently used one that nobody pins.

Contract: take ``lazy.fd`` right at the syscall (``os.pread(lazy.fd, ...)``) and never keep the
number across another file's opening; the log runs on the event loop thread, so a
descriptor can only be closed while another file is being opened, never during a syscall
that uses it. A descriptor handed out for later use (a zero-copy ``sendfile`` of file
regions) must be pinned (`LazyFile.pin` / `unpin`): pinned files are never evicted, and one
closed for good while pinned (its segment deleted by retention, rolled away by the cleaner) keeps
its descriptor until the last `unpin`, so a queued send reads the inode it was checked on, never
a descriptor number reused by another file. `truncate` counts the cuts (`cut_since`): a region
read before a cut below its end is not sent (``suoi.protocol.file_records``). Closing
a descriptor does not lose data: writes are in the page cache, and an ``fsync`` through a
later descriptor of the same file flushes them (Linux keeps dirty pages per inode); a file
written since its last fsync is synced before its descriptor is closed, so no writeback
error can slip past a later flush.

The bound comes from ``ulimit -n`` (`configure`, called once at start, which logs what it
allows): half of the soft limit is left for sockets, the metadata log, checkpoints and
everything else. If opening still fails with ``EMFILE``/``ENFILE``, idle descriptors are shed
and the open retried once before the error reaches the caller (as KAFKA_STORAGE_ERROR).
"""

from __future__ import annotations

import errno
import logging
import os
import resource
from collections import OrderedDict
from itertools import islice
from pathlib import Path

__all__ = ["HANDLES", "FileHandles", "LazyFile", "configure"]

logger = logging.getLogger("suoi.log")

#: Never bound the cache below this (a handful of partitions must always be usable).
MIN_HANDLES = 16
#: `FileHandles.shed` looks this far past the oldest descriptors for clean ones (no fsync to close).
_SHED_WINDOW = 64


class FileHandles:
    """An LRU of the open `LazyFile`s, at most `limit` of them unpinned-and-open at once."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = max(limit, MIN_HANDLES)
        self._open: OrderedDict[LazyFile, None] = OrderedDict()

    @property
    def open_count(self) -> int:
        return len(self._open)

    def open(self, lazy: LazyFile) -> int:
        try:
            fd = os.open(lazy.path, lazy.flags, 0o644)
        except OSError as e:
            if e.errno not in (errno.EMFILE, errno.ENFILE):
                raise
            shed = self.shed(max(len(self._open) // 2, 1))
            logger.warning("out of file descriptors opening %s: closed %d idle segment files and retrying",
                           lazy.path, shed)
            fd = os.open(lazy.path, lazy.flags, 0o644)
        if len(self._open) >= self.limit:  # (before it joins: it is never its own victim)
            self.shed(len(self._open) + 1 - self.limit)
        self._open[lazy] = None
        return fd

    def touch(self, lazy: LazyFile) -> None:
        self._open.move_to_end(lazy)

    def forget(self, lazy: LazyFile) -> None:
        self._open.pop(lazy, None)

    def shed(self, count: int) -> int:
        """Close up to `count` least recently used unpinned descriptors; returns how many.

        A file written since its last fsync is synced before its descriptor closes: Linux
        reports a writeback error to the descriptors open when it happens, so closing first
        could let a later `fsync` through a new descriptor miss it. If that sync fails, the
        descriptor stays open (the error is the next flush's to report).

        That fsync runs here, on the event loop (issue 19: 5-100+ ms on a busy disk, every client
        waiting), so clean files go first: among the `_SHED_WINDOW` oldest candidates, a dirty one
        is closed only if too few clean ones are there. It is not moved to a thread: the shedding
        happens inside an ``open`` that needs the slot now, the descriptor would stay open (over
        the bound) until the thread is done, and the file's state (``dirty``, ``syncing``, the
        descriptor) belongs to the loop, which a thread cannot hand it back to in this sans-IO
        module; and it is rare - only past the bound, half of ``ulimit -n``."""
        window = list(islice((f for f in self._open if not f.pins), count + _SHED_WINDOW))  # oldest first
        victims = [f for f in window if not (f.dirty or f.syncing)][:count]
        if len(victims) < count:
            victims += [f for f in window if f.dirty or f.syncing][: count - len(victims)]
        closed = 0
        for f in victims:
            try:
                f.fsync()
            except OSError as e:
                logger.warning("keeping %s open: fsync before closing it failed: %s", f.path, e)
                continue
            f.release_fd()
            closed += 1
        return closed


class LazyFile:
    """A file of a segment whose descriptor `HANDLES` opens on demand (see the module doc)."""

    __slots__ = ("_fd", "_handles", "_lowest_cut", "closed", "cuts", "dirty", "flags", "path", "pins", "syncing")

    def __init__(self, path: str | Path, flags: int, handles: FileHandles | None = None) -> None:
        self.path = path
        self.flags = flags
        self.pins = 0
        #: Written since the last `fsync` (set by the writers), so idle files are not reopened to sync.
        self.dirty = False
        #: fsyncs of it in flight on a flush thread (`sync_jobs.FileSync`): it is not dirty meanwhile,
        #: yet not on disk either, so a flush on this thread (flush.messages) must still sync it.
        self.syncing = 0
        #: `close`d for good (the segment was closed or deleted): `fd` raises instead of reopening.
        self.closed = False
        self._fd = -1
        self._handles = handles or HANDLES
        #: How many times the file was cut (`truncate`), and the lowest position ever cut to.
        self.cuts = 0
        self._lowest_cut = 1 << 62

    @property
    def fd(self) -> int:
        """The open descriptor (opened now if it was closed); use it at once."""
        if self._fd < 0 or self.closed:
            if self.closed:  # (a closed file's descriptor may live on while pinned: not for new use)
                raise OSError(errno.EBADF, f"{self.path} is closed")
            self._fd = self._handles.open(self)
        else:
            self._handles.touch(self)
        return self._fd

    @property
    def is_open(self) -> bool:
        return self._fd >= 0

    def pin(self) -> int:
        """Keep the descriptor open until `unpin`; returns it."""
        fd = self.fd
        self.pins += 1
        return fd

    def unpin(self) -> None:
        self.pins = max(self.pins - 1, 0)
        if self.closed and not self.pins:
            self.release_fd()  # closed while a send held it

    def truncate(self, size: int) -> None:
        """Cut the file to ``size`` bytes (``ftruncate``), noting the cut for `cut_since`."""
        os.ftruncate(self.fd, size)
        self.dirty = True
        self.note_cut(size)

    def note_cut(self, size: int) -> None:
        """The bytes from ``size`` on leave the log (cut, or the file deleted by a truncation)."""
        self.cuts += 1
        self._lowest_cut = min(self._lowest_cut, size)

    def cut_since(self, cuts: int, end: int) -> bool:
        """Whether the file may have been cut below ``end`` since `cuts` was read (conservative:
        any cut since then, when some cut ever went below ``end``)."""
        return cuts != self.cuts and self._lowest_cut < end

    def fsync(self) -> None:
        if self.dirty or self.syncing:
            os.fsync(self.fd)
            self.dirty = False

    def close(self) -> None:
        """Close for good (see `closed`); a pinned descriptor is closed by the last `unpin`."""
        self.closed = True
        if not self.pins:
            self.release_fd()

    def release_fd(self) -> None:
        """Close the descriptor (the file stays usable: the next `fd` reopens it)."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            self._handles.forget(self)
            os.close(fd)

    # Hashed and compared by identity (object's own, in C: the LRU's `move_to_end` on every
    # write hashes it; a Python `__hash__` cost a call there).


HANDLES = FileHandles()


def configure(handles: FileHandles = HANDLES) -> int:
    """Size `handles` from ``ulimit -n`` (raising the soft limit to the hard one first, as the
    JVM does for Kafka) and log one line saying what it allows; returns the bound."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    handles.limit = max(soft // 2, MIN_HANDLES)
    logger.info("ulimit -n is %d: up to %d segment/index files open at once (idle ones are closed and "
                "reopened on use), the rest for connections and other files", soft, handles.limit)
    return handles.limit
