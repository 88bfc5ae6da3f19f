"""Owner of every topic's partition logs across one or more log directories.

Topic metadata (id, partition count, config overrides) lives in small JSON
files under ``<first log dir>/__suoi_topics/`` written with temp+rename, so a
crash leaves either the old or the new version.  Creation writes metadata
before any partition directory; deletion removes metadata first.  Hence any
partition directory without metadata at start-up is a leftover and is set
aside with a ``-stray`` suffix (Kafka's name) rather than silently adopted by
a future topic of the same name.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from types import MappingProxyType

from suoi.log.clean_shutdown import remove_markers, take_markers, write_marker
from suoi.log.config import LogConfig
from suoi.log.errors import (
    InvalidPartitionsError,
    InvalidTopicError,
    KafkaStorageError,
    TopicExistsError,
    UnknownTopicOrPartitionError,
)
from suoi.log.flushing import FLUSH_THREADS, flush_logs, sync_paths
from suoi.log.log_dirs import PARTITION_DIR, LogDirs, set_aside_name
from suoi.log.log_jobs import LogJobs, remove_trees, set_aside
from suoi.log.partition_log import PartitionLog, wall_clock_ms
from suoi.log.producer_state import snapshot_path
from suoi.log.recovery import RECOVERY_POINT_FILE, RecoveryStats
from suoi.log.replica_move import FUTURE_SUFFIX, ReplicaMove
from suoi.log.scrubber import CorruptionStats
from suoi.log.topic_files import TopicFiles
from suoi.log.topic_info import TopicInfo

__all__ = ["METADATA_DIR", "LogManager", "TopicInfo", "validate_topic_name"]

logger = logging.getLogger("suoi.log")

METADATA_DIR = "__suoi_topics"
_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}")


def validate_topic_name(name: str) -> None:
    """Kafka's rules: 1-249 chars of ``[a-zA-Z0-9._-]``, and not ``.`` or ``..``."""
    if name in (".", ".."):
        raise InvalidTopicError(f"Topic name cannot be '{name}'")
    if not _TOPIC_NAME.fullmatch(name):
        raise InvalidTopicError(
            f"Topic name {name!r} is illegal: it must be 1-249 characters of ASCII "
            "alphanumerics, '.', '_' and '-'"
        )


#: The KRaft metadata log's directory (`__cluster_metadata-0`), owned by the Raft driver.
RAFT_METADATA_PREFIX = "__cluster_metadata-"


class LogManager(LogDirs, LogJobs):
    """Creates, opens, deletes and maintains partition logs (moving them between log dirs, and
    taking failed dirs offline: `LogDirs`)."""

    def __init__(
        self,
        log_dirs: list[Path],
        default_config: LogConfig,
        now_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        if not log_dirs:
            raise ValueError("at least one log dir is required")
        self.log_dirs = [Path(d) for d in log_dirs]
        self.default_config = default_config
        self._now_ms = now_ms
        self._meta_dir = self.log_dirs[0] / METADATA_DIR
        self._topics: dict[str, TopicInfo] = {}
        #: by the topic id's int: every Fetch v13+ partition looks its topic up here, and a UUID
        #: key costs two Python calls (`__hash__`, `__eq__`) per lookup where an int hashes in C
        self._by_id: dict[int, TopicInfo] = {}
        self._logs: dict[tuple[str, int], PartitionLog] = {}
        #: `get_log` by its (topic, partition) key (a TopicPartition is one) without a Python call:
        #: a Fetch checks each partition it resolved before still holds this log (`fetch_resolve`)
        self.log_of: Callable[[tuple[str, int]], PartitionLog | None] = self._logs.get
        #: Corruption counters (scrubber, repairs) for a metrics endpoint.
        self.corruption = CorruptionStats()
        #: Replicas being moved to another log dir (AlterReplicaLogDirs), see `replica_move`.
        self._moves: dict[tuple[str, int], ReplicaMove] = {}
        #: Where replicas not created yet go (AlterReplicaLogDirs before the replica exists, as
        #: kafka-reassign-partitions does with log_dirs); forgotten once used or at restart.
        self._preferred_dirs: dict[tuple[str, int], Path] = {}
        #: Log dirs taken offline after they failed, and the replicas that were in them (KIP-858).
        self.offline_dirs: set[Path] = set()
        self._offline: set[tuple[str, int]] = set()
        #: Hosted partitions whose log could not be created (KAFKA_STORAGE_ERROR) -> why; retried
        #: by the next `open_partition` of it.
        self.failed: dict[tuple[str, int], str] = {}
        #: Partition logs per log dir, so placing a new one (`_least_loaded_dir`) costs O(dirs).
        self._dir_load: dict[Path, int] = dict.fromkeys(self.log_dirs, 0)
        #: Logs rolled since their last flush at a roll (`take_rolled`): many rolls, one flush.
        self._rolled: dict[tuple[str, int], PartitionLog] = {}
        #: Logs whose state files were written unsynced on the loop (`take_state_unsynced`).
        self._state_unsynced: dict[tuple[str, int], PartitionLog] = {}
        #: Called (on the event loop) when a log rolls or writes a state file: the flush task wakes.
        self.on_roll: Callable[[], None] | None = None
        #: What the last `load` recovered (segments re-scanned / loaded from their indexes).
        self.recovery = RecoveryStats()
        #: The topic files' writes; their fsyncs in order on a thread of their own (`_write_meta`).
        self.topic_files = TopicFiles()
        for d in self.log_dirs:
            d.mkdir(parents=True, exist_ok=True)
        self._meta_dir.mkdir(exist_ok=True)

    # ------------------------------------------------------------------ start-up

    def load(self) -> None:
        """Reopen (and recover) every partition of every persisted topic."""
        for meta in sorted(self._meta_dir.glob("*.json")):
            try:  # an OS crash may leave a new one empty (`topic_files`): the metadata log still has it
                raw = json.loads(meta.read_text())
            except ValueError as e:
                logger.error("ignoring the unreadable topic file %s: %s", meta, e)
                continue
            overrides = {str(k): str(v) for k, v in raw.get("configs", {}).items()}
            info = TopicInfo(
                name=raw["name"],
                topic_id=uuid.UUID(raw["topic_id"]),
                partitions=int(raw["partitions"]),
                configs=MappingProxyType(overrides),
                config=LogConfig.from_topic_configs(self.default_config, overrides),
                hosted=frozenset(raw["hosted"]) if raw.get("hosted") is not None else None,
            )
            self._register(info)
        futures: list[Path] = []
        existing = self._scan_partition_dirs(futures)
        clean = take_markers(self.log_dirs)
        started = time.perf_counter()
        for info in self._topics.values():
            for p in range(info.partitions):
                if info.hosts(p):
                    path = existing.get((info.name, p))
                    self._open_partition(info, p, path, clean=path is not None and path.parent in clean)
        for future in futures:
            self._resume_move(future)
        for (topic, p), path in existing.items():
            owner = self._topics.get(topic)
            if owner is None or not owner.hosts(p):
                stray = set_aside_name(path, uuid.uuid4(), "-stray")
                logger.warning("partition dir %s has no topic metadata, renaming to %s", path, stray.name)
                path.rename(stray)
        if clean:  # from now on a crash is recovered again
            remove_markers(clean)
            logger.info("%s stopped cleanly: their logs' last segments were not re-scanned",
                        ", ".join(sorted(map(str, clean))))
        if self.recovery.scanned_segments:  # after an unclean stop (only then: a line fewer at each start)
            logger.info("log recovery: %s; %d logs opened in %.3f s", self.recovery, len(self._logs),
                        time.perf_counter() - started)

    def _scan_partition_dirs(self, futures: list[Path]) -> dict[tuple[str, int], Path]:
        """Partition dirs by (topic, partition); ``-future`` copies are added to ``futures``."""
        found: dict[tuple[str, int], Path] = {}
        for d in self.log_dirs:
            for child in d.iterdir():
                if not child.is_dir() or child.name == METADATA_DIR or child.name.startswith(RAFT_METADATA_PREFIX):
                    continue  # the Raft metadata log lives beside partitions but is not one
                if child.name.endswith("-delete"):
                    shutil.rmtree(child, ignore_errors=True)  # interrupted deletion
                    continue
                if child.name.endswith(FUTURE_SUFFIX):
                    futures.append(child)
                    continue
                m = PARTITION_DIR.fullmatch(child.name)
                if not m:
                    continue
                key = (m.group(1), int(m.group(2)))
                if key in found:  # a move was swapped in but the old copy not yet removed: both are whole
                    logger.warning("partition %s-%d is in %s and %s; keeping the first", *key, found[key], child)
                    shutil.rmtree(child, ignore_errors=True)
                    continue
                found[key] = child
        return found

    # ------------------------------------------------------------------ topics

    def create_topic(
        self,
        name: str,
        partitions: int,
        configs: Mapping[str, str] | None = None,
        *,
        topic_id: uuid.UUID | None = None,
        open_logs: bool = True,
    ) -> TopicInfo:
        """Create a topic and its empty partition logs (with ``open_logs=False`` the caller
        creates the logs, a few at a time: `missing_partitions` / `open_partition`).

        Validation happens before anything touches the disk, in Kafka's order:
        name, existence, partition count, configs.
        """
        validate_topic_name(name)
        if name in self._topics:
            raise TopicExistsError(f"Topic '{name}' already exists.")
        if partitions < 1:
            raise InvalidPartitionsError(f"Number of partitions must be larger than 0 (got {partitions}).")
        overrides = {str(k): str(v) for k, v in (configs or {}).items()}
        config = LogConfig.from_topic_configs(self.default_config, overrides)
        info = TopicInfo(name, topic_id or uuid.uuid4(), partitions, MappingProxyType(overrides), config)
        self._write_meta(info)
        self._register(info)
        if open_logs:
            for p in range(partitions):
                self._open_partition(info, p, None)
        return info

    def create_partitions(self, name: str, total: int, *, open_logs: bool = True) -> TopicInfo:
        """Grow a topic to ``total`` partitions (CreatePartitions; ``open_logs`` as in `create_topic`)."""
        info = self._require(name)
        if total <= info.partitions:
            raise InvalidPartitionsError(
                f"Topic currently has {info.partitions} partitions, which is higher than or "
                f"equal to the requested {total}."
            )
        new = TopicInfo(info.name, info.topic_id, total, info.configs, info.config, info.hosted)
        self._write_meta(new)
        self._register(new)
        if open_logs:
            for p in range(info.partitions, total):
                self._open_partition(new, p, None)
        return new

    def alter_topic_configs(self, name: str, configs: Mapping[str, str]) -> TopicInfo:
        """Replace a topic's overrides; live logs pick up the new config at once."""
        info = self._require(name)
        overrides = {str(k): str(v) for k, v in configs.items()}
        config = LogConfig.from_topic_configs(self.default_config, overrides)
        new = TopicInfo(info.name, info.topic_id, info.partitions, MappingProxyType(overrides), config, info.hosted)
        self._write_meta(new)
        self._register(new)
        for p in range(new.partitions):
            if (name, p) in self._logs:
                self._logs[(name, p)].config = config
        return new

    def host_partitions(self, name: str, topic_id: uuid.UUID, partitions: int, hosted: set[int] | frozenset[int],
                        configs: Mapping[str, str], *, open_logs: bool = True,
                        detached: list[Path] | None = None) -> TopicInfo:
        """Make this node hold exactly `hosted` partitions of a topic the cluster metadata
        describes (creating, reconfiguring or removing local logs as needed). With
        ``open_logs=False`` new partitions get no log yet: the caller creates them (`log_jobs`,
        `missing_partitions` lists them), between other work. With `detached`, the logs to
        remove are only detached, their directories appended there for the caller to remove
        off the event loop (`log_jobs.set_aside`) before it creates any log.

        A topic whose id changed under the same name was deleted and re-created: the old
        data goes first.
        """
        old = self._topics.get(name)
        if old is not None and old.topic_id != topic_id:
            gone = self.detach_topic(name)
            if detached is None:
                remove_trees(set_aside(gone))
            else:
                detached += gone
            old = None
        overrides = {str(k): str(v) for k, v in configs.items()}
        config = LogConfig.from_topic_configs(self.default_config, overrides)
        info = TopicInfo(name, topic_id, partitions, MappingProxyType(overrides), config, frozenset(hosted))
        if old != info:
            self._write_meta(info)
            self._register(info)
        if open_logs:
            for p in self.missing_partitions(name):
                self._open_partition(info, p, None)
        for p in sorted(hosted):
            log = self._logs.get((name, p))
            if log is not None:
                log.config = config
        for p in range(old.partitions if old is not None else 0):
            if p not in hosted:
                if detached is None:
                    self._remove_log(name, p)
                elif (path := self.detach_log(name, p)) is not None:
                    detached.append(path)
        return info

    def missing_partitions(self, name: str) -> list[int]:
        """Partitions of `name` this node hosts that have no open log yet (see `host_partitions`)."""
        info = self._topics.get(name)
        if info is None:
            return []
        hosted = range(info.partitions) if info.hosted is None else sorted(info.hosted)
        # a replica whose dir failed stays offline until restart, not re-created elsewhere (Kafka's rule)
        return [p for p in hosted if (name, p) not in self._logs and (name, p) not in self._offline]

    def open_partition(self, name: str, partition: int) -> PartitionLog:
        """Create (or open) the log of a hosted partition that has none yet."""
        log = self._logs.get((name, partition))
        if log is None:
            info = self._require(name)
            if not info.hosts(partition):
                raise UnknownTopicOrPartitionError(f"{name}-{partition} is not hosted here")
            try:
                self._open_partition(info, partition, None)
            except KafkaStorageError as e:
                self.failed.update(dict.fromkeys(((name, p) for p in self.missing_partitions(name)), str(e)))
                raise
            self.failed.pop((name, partition), None)
            log = self._logs[(name, partition)]
        return log

    def _remove_log(self, name: str, partition: int) -> None:
        """Remove a local log now, Kafka-style via a ``-delete`` dir (the reconciler does it off
        the event loop instead: `log_jobs`)."""
        path = self.detach_log(name, partition)
        if path is not None:
            remove_trees(set_aside([path]))

    def delete_topic(self, name: str) -> TopicInfo:
        """Forget the topic, then remove its data Kafka-style via ``-delete`` dirs (now; the
        reconciler does it off the event loop instead: `log_jobs`)."""
        info = self._require(name)
        remove_trees(set_aside(self.detach_topic(name)))
        return info

    def topics(self) -> dict[str, TopicInfo]:
        return dict(self._topics)

    def topic(self, name: str) -> TopicInfo | None:
        return self._topics.get(name)

    def topic_by_id(self, topic_id: uuid.UUID) -> TopicInfo | None:
        return self._by_id.get(topic_id.int)

    def get_log(self, topic: str, partition: int) -> PartitionLog | None:
        return self._logs.get((topic, partition))

    # ------------------------------------------------------------------ housekeeping

    def apply_retention(self, now_ms: int | None = None) -> int:
        """Run retention on every log; returns the number of segments deleted."""
        now = self._now_ms() if now_ms is None else now_ms
        deleted = 0
        for log in self._logs.values():
            deleted += log.apply_retention(now)
            log.expire_producers(now)
        return deleted

    def all_logs(self) -> list[PartitionLog]:
        """Every open partition log (e.g. for the scrubber)."""
        return list(self._logs.values())

    def known_corrupt_batches(self) -> int:
        """Bad batches found in local logs (by reads, recovery or the scrubber) and still there."""
        return sum(len(seg.corrupt) for log in self._logs.values() for seg in log.segments)

    def compactable_logs(self) -> list[PartitionLog]:
        """Logs with ``compact`` in cleanup.policy, for the log cleaner (see ``suoi.log.cleaner``)."""
        return [log for log in self._logs.values() if log.config.compacts]

    def flush_due(self, now_ms: int | None = None) -> int:
        """Flush logs whose ``flush.ms`` has elapsed; returns how many flushed."""
        now = self._now_ms() if now_ms is None else now_ms
        return sum(1 for log in self._logs.values() if log.maybe_flush(now))

    def logs_due_for_flush(self, now_ms: int) -> list[PartitionLog]:
        """The logs whose ``flush.ms`` has elapsed (the broker's flush task flushes them with
        `flushing.flush_logs_off_loop`, fsyncs off the event loop)."""
        return [log for log in self._logs.values() if log.flush_is_due(now_ms)]

    def take_rolled(self) -> list[PartitionLog]:
        """The logs rolled since the last call (each once, however often it rolled) that are still
        open here, for their flush at a roll (`flush_point(rolled=True)`, fsyncs off the loop)."""
        rolled, self._rolled = self._rolled, {}
        return [log for key, log in rolled.items() if self._logs.get(key) is log and log.rolled_unflushed]

    def roll_flush_failed(self, logs: list[PartitionLog]) -> None:
        """Their flush at a roll failed (logged): tried again with the next ones."""
        self._rolled.update(((log.topic, log.partition), log) for log in logs)

    def _note_roll(self, log: PartitionLog) -> None:
        self._rolled[(log.topic, log.partition)] = log
        if self.on_roll is not None:
            self.on_roll()

    def _note_state_write(self, log: PartitionLog) -> None:
        self._state_unsynced[(log.topic, log.partition)] = log
        if self.on_roll is not None:
            self.on_roll()

    def take_state_unsynced(self) -> list[PartitionLog]:
        """The open logs whose state files wait for their fsync (the flush task's, each once)."""
        noted, self._state_unsynced = self._state_unsynced, {}
        return [log for key, log in noted.items() if self._logs.get(key) is log and log.state_unsynced]

    def write_recovery_points(self) -> list[Path]:
        """The periodic checkpoint (log.flush.offset.checkpoint.interval.ms) without fsyncs: writes
        each recovery point a flush moved, returns the files and dirs to sync (`flushing.sync_paths`,
        threads). A crash before may lose a new point: recovery from an older one, slower but safe."""
        return [path for log in self._logs.values() if log.checkpoint_recovery_point(durable=False)
                for path in (log.directory / RECOVERY_POINT_FILE, log.directory)]

    def flush(self) -> None:
        for log in self._logs.values():
            log.flush()

    def shutdown(self, threads: int = FLUSH_THREADS) -> bool:
        """The end of a clean stop: flush every log (`threads` fsyncs at a time, `flush_logs`),
        close them, and mark each log dir whose logs all flushed as cleanly stopped (its next
        start trusts its indexes, `clean_shutdown`). Returns whether every online dir was marked."""
        logs = list(self._logs.values())
        unflushed = {log.directory.parent for log in flush_logs(logs, threads)}
        self.close(durable=False)  # the recovery points and producer snapshots are synced below, all at once
        written = {path: log.directory.parent for log in logs  # -> its log dir
                   for path in (log.directory / RECOVERY_POINT_FILE, snapshot_path(log.directory, log.log_end_offset),
                                log.directory)}
        unflushed.update(written[path] for path in sync_paths(list(written), threads))
        marked = [write_marker(d) for d in self.log_dirs if d not in self.offline_dirs and d not in unflushed]
        return all(marked) and len(marked) == len(self.log_dirs)

    def close(self, *, durable: bool = True) -> None:
        """Close every log (``durable``: see `PartitionLog.close`); the topic files' writes end."""
        self.topic_files.drain()
        for move in list(self._moves.values()):
            self.cancel_move(move)
        for log in self._logs.values():
            log.close(durable=durable)
        self._logs.clear()
        self._dir_load = dict.fromkeys(self.log_dirs, 0)

    # ------------------------------------------------------------------ internals

    def _require(self, name: str) -> TopicInfo:
        info = self._topics.get(name)
        if info is None:
            raise UnknownTopicOrPartitionError(f"Topic '{name}' does not exist.")
        return info

    def _register(self, info: TopicInfo) -> None:
        self._topics[info.name] = info
        self._by_id[info.topic_id.int] = info

    def _open_partition(self, info: TopicInfo, partition: int, path: Path | None, *, clean: bool = False) -> None:
        if path is None:
            preferred = self._preferred_dirs.pop((info.name, partition), None)
            if preferred is None or preferred in self.offline_dirs:
                preferred = self._least_loaded_dir()
            path = preferred / f"{info.name}-{partition}"
        try:
            log = PartitionLog.open(path, info.name, partition, info.config, now_ms=self._now_ms, clean=clean,
                                    stats=self.recovery)
        except KafkaStorageError:
            raise
        except OSError as e:  # out of file descriptors, disk full, ...: KAFKA_STORAGE_ERROR, not a crash
            raise KafkaStorageError(e.errno, f"cannot open the log of {info.name}-{partition} in {path}: {e.strerror}") from e
        self._install(log, path.parent)

    def _install(self, log: PartitionLog, log_dir: Path) -> None:
        """Add an opened log, with the manager's hooks (rolls and state writes wake the flush task)."""
        log.on_roll = partial(self._note_roll, log)
        log.on_state_write = partial(self._note_state_write, log)
        self._logs[(log.topic, log.partition)] = log
        self._count_dir(log_dir, 1)

    def _meta_path(self, info: TopicInfo) -> Path:
        """Named by topic id: a 249-char topic name plus a suffix would not fit NAME_MAX."""
        return self._meta_dir / f"{info.topic_id.hex}.json"

    def _write_meta(self, info: TopicInfo) -> None:
        doc = {
            "version": 1,
            "name": info.name,
            "topic_id": str(info.topic_id),
            "partitions": info.partitions,
            "configs": dict(info.configs),
            "hosted": sorted(info.hosted) if info.hosted is not None else None,
        }
        # written now, fsynced (file and directory) in order on the topic files' thread (`topic_files`)
        self.topic_files.write(self._meta_path(info), json.dumps(doc, indent=1, sort_keys=True))

