"""The topic files (``__suoi_topics/<topic-id>.json``, `LogManager`): their fsyncs off the event loop.

A topic's file is written when it is created, grows or changes configs, and removed when it is
deleted; the reconciler does that for every topic of a metadata change, on the event loop. One fsync
per topic there froze every client for as long as the disk took (5-100 ms on a busy one; a thousand
new topics, seconds). So the write itself (temp file, rename) and a removal happen at once on the
caller's thread - a crash of the process right after still finds the new file, and the file's
writes are in the caller's order - and their fsyncs (the file by its name, then the directory) run
on one thread of their own, in the order asked (`drain` waits for them: a clean stop). Durable then,
as Kafka's ``partition.metadata``. An OS crash before that may lose the rename (the partition dirs
are set aside as ``-stray`` at the next start, as before) or leave the new file empty (a new name
whose data was not written yet): `LogManager.load` skips an unreadable topic file with an ERROR line
rather than refusing to start; the metadata log the node replays has the topic.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

from suoi.atomic_file import fsync_dir, write_atomically

__all__ = ["TopicFiles"]

logger = logging.getLogger("suoi.log")


def _sync(path: Path) -> None:
    """fsync the file (its current content: a later write's, if one came since) and its directory."""
    try:
        with suppress(FileNotFoundError):  # removed since: the directory's fsync covers that
            fsync_dir(path)
        fsync_dir(path.parent)
    except OSError as e:
        logger.error("cannot sync the topic file %s: %s", path, e)


class TopicFiles:
    """The topic files' writes, and one worker thread syncing them in the order asked (thread-safe;
    the thread starts with the first write and ends at `drain`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._last: Future[None] | None = None

    def write(self, path: Path, text: str) -> None:
        """Replace the file now (temp, rename; raises OSError), its fsyncs on the thread."""
        write_atomically(path, text, fsync=False, sync_dir=False)
        self._submit(path)

    def remove(self, path: Path) -> None:
        """Remove the file now, the directory's fsync on the thread."""
        path.unlink(missing_ok=True)
        self._submit(path)

    def _submit(self, path: Path) -> None:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="topic-files")
            self._last = self._pool.submit(_sync, path)

    def drain(self) -> None:
        """Wait until every write so far is synced (the thread then ends)."""
        with self._lock:
            pool, self._pool, self._last = self._pool, None, None
        if pool is not None:
            pool.shutdown(wait=True)

    @property
    def pending(self) -> bool:
        """fsyncs are queued or running."""
        last = self._last
        return last is not None and not last.done()
