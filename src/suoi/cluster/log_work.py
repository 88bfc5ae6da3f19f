"""The reconciler's file-system work on a worker thread: creating and removing partition logs.

Creating a topic of 1,000 partitions is 1,000 ``mkdir``; deleting it, 1,000 renames and tree
removals. Done on the event loop, that held every client of the node (a 0.7 s stall for one
deletion, 10-20 ms slices over 1.4 s for one creation; benchmarks/README.md, "Topic creation and
failover off the loop"). Here the syscalls run on the loop's default executor (the node's
`to_thread` pool: no thread per partition, one job in flight per reconciler round), `CHUNK`
partitions per job, and only the bookkeeping stays on the loop (`suoi.log.log_jobs`).

Ordering: the reconciler applies images one round after another and awaits these jobs inside its
round, so a later image about the same partitions (a deletion, a leadership change, the topic
created again) is applied after the logs are in place; leadership (`ReplicaManager.apply`) is
handed out only once they are, and until then the partition's clients get
NOT_LEADER_OR_FOLLOWER, as from a Kafka broker that has not applied the change yet. A removal's
renames finish before anything of the round is created, so a topic re-created under the same
name never meets its predecessor's files; the renamed trees are removed in the background.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from suoi.cluster.pacing import Pacer
from suoi.log.log_jobs import NewLog, make_new_logs, remove_trees, set_aside
from suoi.log.manager import LogManager

__all__ = ["CHUNK", "INLINE", "LogRemovals", "detach_topic", "open_missing_logs"]

log = logging.getLogger("suoi.cluster")

#: Partitions per worker job: ~10-20 ms of ``mkdir`` and object making on the thread, short
#: enough that a deletion arriving meanwhile waits little, long enough that the loop's share
#: (installing the chunk) stays a few hundred µs.
CHUNK = 64

#: Up to this many new logs of a topic are made on the loop, in the round's first slice: ~0.15 ms
#: each, less than the hop to a thread and back, and the partitions lead before the node reads its
#: next request (a client producing right after CreateTopics' answer is not sent away with
#: NOT_LEADER_OR_FOLLOWER for a topic of a few partitions, as before this module).
INLINE = 16


async def open_missing_logs(logs: LogManager, topic: str, pacer: Pacer | None = None) -> int:
    """Create the logs of `topic`'s hosted partitions that have none yet, `CHUNK` at a time on a
    worker thread (the next chunk made while the loop installs the last); returns how many.
    Raises `KafkaStorageError` (e.g. out of file descriptors) after the last chunk if any could
    not be created; those stay missing (their clients get KAFKA_STORAGE_ERROR) and are retried
    by a later round (`LogManager.failed`)."""
    pacer = pacer or Pacer()
    loop = asyncio.get_running_loop()
    missing = logs.missing_partitions(topic)
    created, first = 0, None
    unwanted: list[Path] = []
    # Two chunks in flight: the next is made on a thread while the loop installs the last one.
    # (cancelled, the node is stopping: a chunk in the making is left to its thread, never installed)
    making: tuple[list[NewLog], asyncio.Future[None]] | None = None
    if len(missing) <= INLINE:  # (the loop below then has nothing to do)
        jobs = logs.plan_new_logs(topic, missing)
        make_new_logs(jobs, logs.now_ms)
        created, unwanted, first = logs.install_new_logs(jobs)
        missing = []
    for i in range(0, len(missing) + CHUNK, CHUNK):
        jobs = logs.plan_new_logs(topic, missing[i:i + CHUNK]) if i < len(missing) else []
        made = making
        making = (jobs, loop.run_in_executor(None, make_new_logs, jobs, logs.now_ms)) if jobs else None
        if made is None:
            continue
        await made[1]
        done, leftovers, error = logs.install_new_logs(made[0])
        created += done
        unwanted += leftovers
        first = first or error
        await pacer.tick()
    if unwanted:  # its topic went meanwhile (not by a round: e.g. a log dir taken offline)
        await loop.run_in_executor(None, lambda: remove_trees(set_aside(unwanted)))
    if first is not None:
        raise first
    return created


async def detach_topic(logs: LogManager, name: str, pacer: Pacer) -> list[Path]:
    """`LogManager.detach_topic` between other clients' requests (a topic of 5,000 partitions took
    ~80 ms of the loop at once); returns the directories to set aside."""
    info = logs.forget_topic(name)
    if info is None:
        return []
    paths = []
    for p in range(info.partitions):
        path = logs.detach_log(name, p)
        if path is not None:
            paths.append(path)
        await pacer.tick()
    return paths


class LogRemovals:
    """Directories of detached logs (`LogManager.detach_topic` / `detach_log`): renamed on a worker
    thread when `set_aside` is awaited, then removed in the background, one job at a time."""

    def __init__(self) -> None:
        self.pending: list[Path] = []
        self._tail: asyncio.Future[None] | None = None

    async def set_aside(self) -> None:
        """Rename every pending directory ``-delete`` (awaited: nothing is created before) and
        queue their removal."""
        if not self.pending:
            return
        paths, self.pending = self.pending, []
        loop = asyncio.get_running_loop()
        doomed = await loop.run_in_executor(None, set_aside, paths)
        previous = self._tail

        async def remove() -> None:
            if previous is not None:
                await asyncio.wait([previous])
            await loop.run_in_executor(None, remove_trees, doomed)

        self._tail = loop.create_task(remove(), name="remove-deleted-logs")
        self._tail.add_done_callback(self._removed)

    @staticmethod
    def _removed(task: asyncio.Future[None]) -> None:
        if not task.cancelled() and task.exception() is not None:  # the next start removes them
            log.warning("removing deleted partition directories failed: %s", task.exception())

    async def drain(self) -> None:
        """Until the removals queued so far are done (tests, a stopping node)."""
        if self._tail is not None:
            await asyncio.wait([self._tail])

