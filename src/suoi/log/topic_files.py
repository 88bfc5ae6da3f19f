"""The topic files (``__suoi_topics/<topic-id>.json``, `LogManager`) written off the event loop.

A topic's file is written when it is created, grows or changes configs, and removed when it is
deleted; the reconciler does that for every topic of a metadata change, on the event loop. Each
write is durable (temp file, fsync, rename, fsync of the directory: Kafka's ``partition.metadata``
is fsynced too), because a start that finds a partition directory without its topic file sets the
data aside as ``-stray``, and a torn file would stop the start. One fsync per topic on the loop
froze every client for as long as the disk took (5-100 ms on a busy one), a thousand new topics
for seconds. So one thread does them all, in the order asked: a later write or the removal of a
file is never overtaken by an earlier one (one FIFO queue, one worker). The caller goes on at
once; `drain` waits for what is queued (a clean stop, `LogManager.close`), and a failed write
is logged (an ERROR line) - the metadata log, which the node replays at start, still has it.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from suoi.atomic_file import fsync_dir, write_atomically

__all__ = ["TopicFiles"]

logger = logging.getLogger("suoi.log")


def _write(path: Path, text: str) -> None:
    try:
        write_atomically(path, text)
    except OSError as e:
        logger.error("cannot write the topic file %s: %s", path, e)


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
        fsync_dir(path.parent)
    except OSError as e:
        logger.error("cannot remove the topic file %s: %s", path, e)


class TopicFiles:
    """One worker thread writing and removing topic files in the order asked (thread-safe; the
    thread starts with the first write and ends at `drain`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._last: Future[None] | None = None

    def write(self, path: Path, text: str) -> None:
        self._submit(_write, path, text)

    def remove(self, path: Path) -> None:
        self._submit(_remove, path)

    def _submit(self, fn: object, *args: object) -> None:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="topic-files")
            self._last = self._pool.submit(fn, *args)  # type: ignore[arg-type]

    def drain(self) -> None:
        """Wait until every write asked so far is done (the thread then ends)."""
        with self._lock:
            pool, self._pool, self._last = self._pool, None, None
        if pool is not None:
            pool.shutdown(wait=True)

    @property
    def pending(self) -> bool:
        """Writes are queued or running."""
        last = self._last
        return last is not None and not last.done()
