"""The log dirs of a node (JBOD): placing, moving and failing replicas across directories.

`LogDirs` is the part of `LogManager` that knows several log dirs exist: AlterReplicaLogDirs'
moves (the copy itself is `replica_move`), the start-up resumption of an interrupted move, and
a failed dir taken offline with its replicas (KIP-858). It works on the manager's state (its
logs, moves and offline sets), declared below; split from ``manager.py`` to keep both small.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from suoi.log.errors import KafkaStorageError, UnknownTopicOrPartitionError
from suoi.log.partition_log import PartitionLog
from suoi.log.replica_move import FUTURE_SUFFIX, ReplicaMove, copy_tail

__all__ = ["FUTURE_DIR", "PARTITION_DIR", "LogDirs", "probe_log_dirs", "set_aside_name"]

logger = logging.getLogger("suoi.log")

PARTITION_DIR = re.compile(r"(.+)-(\d+)")
FUTURE_DIR = re.compile(r"(.+)-(\d+)\.[0-9a-f]{32}" + re.escape(FUTURE_SUFFIX))


class LogDirs:
    """Log-dir operations of `LogManager` (a mixin: the state is the manager's)."""

    log_dirs: list[Path]
    offline_dirs: set[Path]
    _logs: dict[tuple[str, int], PartitionLog]
    _moves: dict[tuple[str, int], ReplicaMove]
    _preferred_dirs: dict[tuple[str, int], Path]
    _offline: set[tuple[str, int]]
    _now_ms: Callable[[], int]
    #: Partition logs per log dir, so placing a new one (`_least_loaded_dir`) costs O(dirs).
    _dir_load: dict[Path, int]

    def _count_dir(self, directory: Path, delta: int) -> None:
        if directory in self._dir_load:
            self._dir_load[directory] += delta

    def _least_loaded_dir(self) -> Path:
        """Kafka places a new partition in the online log dir holding the fewest (O(dirs): the
        counts are kept as logs come and go)."""
        online = [d for d in self.log_dirs if d not in self.offline_dirs]
        if not online:
            raise KafkaStorageError(errno.EIO, "every log dir is offline")
        return min(online, key=lambda d: self._dir_load[d])

    def configured_log_dir(self, path: str) -> Path | None:
        """The configured log dir named by an absolute ``path`` (AlterReplicaLogDirs), if any."""
        if not os.path.isabs(path):
            return None
        wanted = os.path.normpath(path)
        return next((d for d in self.log_dirs
                     if os.path.normpath(d.absolute()) == wanted or str(d.resolve()) == wanted), None)

    def is_offline(self, topic: str, partition: int) -> bool:
        """The replica was in a log dir that failed (answer KAFKA_STORAGE_ERROR for it)."""
        return (topic, partition) in self._offline

    def check_log_dirs(self, failures: list[tuple[Path, OSError]] | None = None) -> list[tuple[str, int]]:
        """Take the online log dirs that failed `probe_log_dirs` offline (probed here when
        `failures` is None; the broker probes in a thread, off the event loop, and passes them).
        Returns the replicas that went offline."""
        if failures is None:
            failures = probe_log_dirs([d for d in self.log_dirs if d not in self.offline_dirs])
        lost: list[tuple[str, int]] = []
        for d, exc in failures:
            if d not in self.offline_dirs:
                lost += self.mark_offline(d, exc.strerror or str(exc))
        return lost

    def mark_offline(self, log_dir: Path, reason: str) -> list[tuple[str, int]]:
        """Take a failed log dir offline: its replicas are closed and forgotten (answered with
        KAFKA_STORAGE_ERROR), moves to or from it are abandoned, no new replica goes there."""
        self.offline_dirs.add(log_dir)
        for move in [m for m in self._moves.values() if log_dir in (m.source.parent, m.target_dir)]:
            self.cancel_move(move)
        lost = sorted(key for key, log in self._logs.items() if log.directory.parent == log_dir)
        for key in lost:
            log = self._logs.pop(key)
            for segment in log.segments:  # not log.close(): no producer snapshot into a failed dir
                with contextlib.suppress(OSError):
                    segment.close()
            self._offline.add(key)
            self._count_dir(log_dir, -1)
        logger.error("log dir %s failed (%s): taken offline with its %d replicas", log_dir, reason, len(lost))
        return lost

    def moves(self) -> list[ReplicaMove]:
        return list(self._moves.values())

    def begin_move(self, topic: str, partition: int, target: Path) -> ReplicaMove | None:
        """Start moving a replica to log dir ``target`` (None: it is there already). The caller
        runs `replica_move.copy_bulk(move)` off the event loop, then `finish_move(move)`. A
        move to another dir in progress is abandoned first, as Kafka does."""
        key = (topic, partition)
        log = self._logs.get(key)
        if log is None:
            self._preferred_dirs[key] = target  # where it goes if it is created here later
            raise UnknownTopicOrPartitionError(f"Replica {topic}-{partition} is not hosted here.")
        current = self._moves.get(key)
        if current is not None:
            if current.target_dir == target:
                return current
            self.cancel_move(current)
        if log.directory.parent == target:
            return None
        future = set_aside_name(target / log.directory.name, uuid.uuid4(), FUTURE_SUFFIX)
        move = self._moves[key] = ReplicaMove(topic, partition, log.directory, future)
        move.copied_up_to = log.log_start_offset
        return move

    def _resume_move(self, future: Path) -> None:
        """A ``-future`` copy found at start-up: the move was interrupted. It is resumed (the
        caller runs it, see `moves()`), as Kafka does, or dropped if the replica is gone."""
        m = FUTURE_DIR.fullmatch(future.name)
        log = self._logs.get((m.group(1), int(m.group(2)))) if m else None
        if m is None or log is None or log.directory.parent == future.parent:
            logger.warning("removing %s: no replica to move there", future)
            shutil.rmtree(future, ignore_errors=True)
            return
        key = (m.group(1), int(m.group(2)))
        if key in self._moves:  # two interrupted moves of one replica: resume one
            shutil.rmtree(future, ignore_errors=True)
            return
        self._moves[key] = ReplicaMove(key[0], key[1], log.directory, future, copied_up_to=log.log_start_offset)
        logger.info("resuming the move of replica %s-%d to %s", key[0], key[1], future.parent)

    def cancel_move(self, move: ReplicaMove) -> None:
        move.cancelled = True
        if self._moves.get((move.topic, move.partition)) is move:
            del self._moves[(move.topic, move.partition)]
        shutil.rmtree(move.future, ignore_errors=True)

    def finish_move(self, move: ReplicaMove, *, remove_old: bool = True) -> bool:
        """Swap the caught-up copy in (call on the thread that appends, so nothing is appended
        meanwhile). False when the move was cancelled or the replica is gone. ``remove_old=False``:
        the old dir is set aside as `ReplicaMove.doomed` for the caller to remove (on a thread)."""
        key = (move.topic, move.partition)
        log = self._logs.get(key)
        if move.cancelled or self._moves.get(key) is not move or log is None or log.directory != move.source:
            self.cancel_move(move)
            return False
        high_watermark, follows = log.high_watermark, log.hw_follows_leo
        log.close()
        final = move.target_dir / move.source.name
        try:
            copy_tail(move)
            os.rename(move.future, final)
        except OSError:
            self._reopen(log, move.source, high_watermark, follows)
            self.cancel_move(move)
            raise
        del self._moves[key]
        self._count_dir(move.source.parent, -1)
        self._count_dir(move.target_dir, 1)
        move.doomed = set_aside_name(move.source, uuid.uuid4(), "-delete")
        os.rename(move.source, move.doomed)
        if remove_old:
            shutil.rmtree(move.doomed, ignore_errors=True)
        self._reopen(log, final, high_watermark, follows)
        logger.info("moved replica %s-%d from %s to %s", move.topic, move.partition, move.source.parent,
                    move.target_dir)
        return True

    def _reopen(self, log: PartitionLog, directory: Path, high_watermark: int, follows: bool) -> None:
        """Reopen ``log`` from ``directory`` keeping the object (replication holds it)."""
        fresh = PartitionLog.open(directory, log.topic, log.partition, log.config, now_ms=self._now_ms,
                                  hw_follows_leo=follows)
        state = vars(fresh)
        state["on_roll"] = log.on_roll  # the log manager's hooks stay
        state["on_state_write"] = log.on_state_write
        vars(log).clear()
        vars(log).update(state)
        if not follows:
            log.set_high_watermark(high_watermark)


def set_aside_name(path: Path, unique: uuid.UUID, suffix: str) -> Path:
    """``<topic>-<partition>.<uuid><suffix>``, truncating the topic like Kafka
    does so the name stays within the 255-byte file name limit."""
    m = PARTITION_DIR.fullmatch(path.name)
    topic, partition = (m.group(1), m.group(2)) if m else (path.name, "")
    tail = f"-{partition}.{unique.hex}{suffix}" if m else f".{unique.hex}{suffix}"
    return path.with_name(topic[: 255 - len(tail)] + tail)


def probe_log_dirs(dirs: list[Path]) -> list[tuple[Path, OSError]]:
    """Probe each dir with a small write (create, write, unlink); the ones that fail. A full
    disk (ENOSPC, EDQUOT, EFBIG) is not a failed dir: its appends fail with KAFKA_STORAGE_ERROR
    until space returns (Kafka would take it offline). Touches no node state, so it runs in a
    thread: file creation and unlink wait for the file system's journal, which can take long
    on a busy or failing disk, and every client would wait behind it on the event loop."""
    failures: list[tuple[Path, OSError]] = []
    for d in dirs:
        probe = d / ".suoi-log-dir-check"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, b"ok")
            finally:
                os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                failures.append((d, exc))
    return failures
