"""Creating and removing partition logs in two halves: file-system work another thread may do,
and the manager's bookkeeping, which stays on the event loop.

A topic of 1,000 partitions costs 1,000 ``mkdir`` when it is created and 1,000 renames and tree
removals when it is deleted; on the event loop that stalled every client of the node for 10-20 ms
slices over a second and a half (creation), or 0.7 s at once (deletion: benchmarks/README.md,
"Topic creation and failover off the loop"). So the KRaft reconciler (`suoi.cluster.log_work`)
splits each into:

* creation: `plan_new_logs` (loop: which partitions, in which log dir; counted there so the next
  plan places around them) -> `make_new_logs` (thread: ``mkdir`` and the empty `PartitionLog`)
  -> `install_new_logs` (loop: the log joins the manager, if its topic still wants it);
* removal: `detach_topic` / `detach_log` (loop: forgotten and closed, nothing written into a
  directory about to go) -> `set_aside` (thread: renamed ``-delete``, Kafka's name, so that a
  topic of the same name can be created at once) -> `remove_trees` (thread, whenever: a node
  that stops first removes the ``-delete`` dirs at its next start).

Thread contract: the thread halves touch only the paths and the new, unshared objects they are
given. A directory that already holds files (a leftover the metadata did not know) is not opened
on the thread: loading its segments opens descriptors through the process-wide LRU
(`suoi.log.handles`), which only the event loop may touch; `install_new_logs` opens it there.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from suoi.log.errors import KafkaStorageError
from suoi.log.log_dirs import set_aside_name
from suoi.log.partition_log import PartitionLog
from suoi.log.recovery import never_written

if TYPE_CHECKING:
    from suoi.log.replica_move import ReplicaMove
    from suoi.log.topic_files import TopicFiles
    from suoi.log.topic_info import TopicInfo

__all__ = ["LogJobs", "NewLog", "make_new_logs", "remove_trees", "set_aside"]

logger = logging.getLogger("suoi.log")


@dataclass(slots=True)
class NewLog:
    """One partition log being created: planned on the loop, made on a thread, installed on the loop."""

    info: TopicInfo
    partition: int
    #: The log dir it goes in: one of the manager's own `Path` objects, whose hash is computed once
    #: (a new `Path` per partition, its parent's hash and the join cost ~30 µs each on the loop).
    log_dir: Path
    #: ``<log_dir>/<topic>-<partition>``, joined on the thread (`make_new_logs`) or by `path_of`.
    path: Path | None = None
    #: The empty log `make_new_logs` made (None: the directory held files, or an error).
    log: PartitionLog | None = None
    error: OSError | None = None


def make_new_logs(jobs: Iterable[NewLog], now_ms: Callable[[], int]) -> None:
    """The thread half of creation: each job's directory and empty log (see the module's contract)."""
    for job in jobs:
        path = job.path = path_of(job)
        try:
            if never_written(path):
                job.log = PartitionLog.open(path, job.info.name, job.partition, job.info.config, now_ms=now_ms)
        except OSError as e:  # out of file descriptors, disk full, ...: KAFKA_STORAGE_ERROR for it
            job.error = e


def path_of(job: NewLog) -> Path:
    return job.path if job.path is not None else job.log_dir / f"{job.info.name}-{job.partition}"


def set_aside(paths: Iterable[Path]) -> list[Path]:
    """The thread half of removal, first step: rename each directory ``...-delete``; returns the new
    names (for `remove_trees`). A directory gone already is skipped."""
    doomed = []
    for path in paths:
        target = set_aside_name(path, uuid.uuid4(), "-delete")
        try:
            os.rename(path, target)
        except FileNotFoundError:
            continue
        except OSError as e:  # left in place: the next start sets it aside as a stray (no metadata)
            logger.warning("cannot rename %s for its removal: %s", path, e)
            continue
        doomed.append(target)
    return doomed


def remove_trees(paths: Iterable[Path]) -> None:
    """The thread half of removal, second step: the renamed directories' files go."""
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


class LogJobs:
    """The loop halves, a mixin of `LogManager` (its state, declared here)."""

    _topics: dict[str, TopicInfo]
    _by_id: dict[int, TopicInfo]
    _logs: dict[tuple[str, int], PartitionLog]
    _preferred_dirs: dict[tuple[str, int], Path]
    _offline: set[tuple[str, int]]
    offline_dirs: set[Path]
    failed: dict[tuple[str, int], str]
    _now_ms: Callable[[], int]

    _moves: dict[tuple[str, int], ReplicaMove]
    topic_files: TopicFiles

    if TYPE_CHECKING:  # the manager's (and `LogDirs`') methods these use
        def _count_dir(self, directory: Path, delta: int) -> None: ...
        def _least_loaded_dir(self) -> Path: ...
        def _open_partition(self, info: TopicInfo, partition: int, path: Path | None, *,
                            clean: bool = False) -> None: ...
        def _install(self, log: PartitionLog, log_dir: Path) -> None: ...
        def cancel_move(self, move: ReplicaMove) -> None: ...
        def _meta_path(self, info: TopicInfo) -> Path: ...

    @property
    def now_ms(self) -> Callable[[], int]:
        return self._now_ms

    def plan_new_logs(self, name: str, partitions: Sequence[int]) -> list[NewLog]:
        """Those of `partitions` (from `missing_partitions`) still missing a log, each placed in
        a log dir (and counted there)."""
        info = self._topics.get(name)
        if info is None:
            return []
        jobs: list[NewLog] = []
        for p in partitions:
            key = (name, p)
            if key in self._logs or key in self._offline or not info.hosts(p):
                continue
            preferred = self._preferred_dirs.pop((name, p), None)
            if preferred is None or preferred in self.offline_dirs:
                try:
                    preferred = self._least_loaded_dir()
                except KafkaStorageError as e:  # every log dir offline: KAFKA_STORAGE_ERROR, retried
                    self.failed.update(dict.fromkeys(((name, q) for q in partitions), str(e)))
                    for job in jobs:  # the placement counts given back: nothing is made
                        self._count_dir(job.log_dir, -1)
                    raise
            self._count_dir(preferred, 1)
            jobs.append(NewLog(info, p, preferred))
        return jobs

    def install_new_logs(self, jobs: Iterable[NewLog]) -> tuple[int, list[Path], KafkaStorageError | None]:
        """Make the jobs' logs the manager's: (how many, directories nobody wants any more - their
        topic was deleted or re-created meanwhile, remove them -, the first error). A log whose
        directory held files is opened (recovered) here, on the loop; a failed one is noted in
        `failed` (its clients get KAFKA_STORAGE_ERROR until a later round creates it)."""
        installed, unwanted = 0, []
        first: KafkaStorageError | None = None
        for job in jobs:
            key = (job.info.name, job.partition)
            current = self._topics.get(job.info.name)
            wanted = (current is not None and current.topic_id == job.info.topic_id and current.hosts(job.partition)
                      and key not in self._logs)
            offline = job.log_dir in self.offline_dirs
            self._count_dir(job.log_dir, -1)
            if not wanted or offline:
                if offline and wanted:
                    self._offline.add(key)  # KAFKA_STORAGE_ERROR, as for the dir's other replicas
                if job.log is not None:
                    unwanted.append(path_of(job))
                continue
            assert current is not None
            try:
                if job.error is not None:
                    raise KafkaStorageError(job.error.errno or 0, f"cannot open the log of {key[0]}-{key[1]} in "
                                                                  f"{path_of(job)}: {job.error.strerror or job.error}")
                if job.log is None:
                    self._open_partition(current, job.partition, path_of(job))
                else:
                    job.log.config = current.config  # (a config change meanwhile: the next round sets it too)
                    self._install(job.log, job.log_dir)
            except KafkaStorageError as e:
                self.failed[key] = str(e)
                first = first or e
                continue
            self.failed.pop(key, None)
            installed += 1
        return installed, unwanted, first

    def detach_log(self, name: str, partition: int) -> Path | None:
        """Forget and close a local log whose directory is about to be removed (`set_aside`);
        returns that directory (None: no log here)."""
        move = self._moves.get((name, partition))
        if move is not None:
            self.cancel_move(move)
        self._offline.discard((name, partition))
        log = self._logs.pop((name, partition), None)
        if log is None:
            return None
        self._count_dir(log.directory.parent, -1)
        log.discard()
        return log.directory

    def forget_topic(self, name: str) -> TopicInfo | None:
        """Forget a topic (its metadata file first, Kafka's order), not yet its logs: the caller
        detaches them next (`detach_log` each, a few at a time between other work: they answer
        UNKNOWN_TOPIC_OR_PARTITION meanwhile, their topic gone from the image)."""
        info = self._topics.get(name)
        if info is None:
            return None
        self.topic_files.remove(self._meta_path(info))
        del self._topics[name]
        for key in [k for k in self.failed if k[0] == name]:
            del self.failed[key]
        self._by_id.pop(info.topic_id.int, None)
        return info

    def detach_topic(self, name: str) -> list[Path]:
        """`forget_topic` and `detach_log` of every partition at once; returns the directories,
        for `set_aside` and `remove_trees`."""
        info = self.forget_topic(name)
        if info is None:
            return []
        return [path for p in range(info.partitions) if (path := self.detach_log(name, p)) is not None]
