"""The leaders' high watermarks on disk: Kafka's `replication-offset-checkpoint` file in each
log dir (a version line `0`, a count, then `topic partition offset` lines), written atomically
every replica.high.watermark.checkpoint.interval.ms and at shutdown, read at start.

`HighWatermarkCheckpoints` is the replica manager's part: the first time a partition is led or
followed in this run its log's HW comes from the checkpoint (not from the log end: a restarted
leader must not expose records it never knew were committed), and every such partition's HW
is written back periodically from a thread."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from suoi.atomic_file import discard_tmp, write_atomically
from suoi.model import TopicPartition
from suoi.stopping import in_thread_bounded

if TYPE_CHECKING:
    from suoi.log.partition_log import PartitionLog

log = logging.getLogger("suoi.replication")

CHECKPOINT_FILE = "replication-offset-checkpoint"


def read_checkpoint(path: Path) -> dict[tuple[str, int], int]:
    """Kafka's offset checkpoint file: version line `0`, a count, then `topic partition offset`."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        log.warning("cannot read %s: %s", path, exc)
        return {}
    out: dict[tuple[str, int], int] = {}
    try:
        if not lines or lines[0].strip() != "0":
            raise ValueError(f"unknown version line {lines[:1]}")
        count = int(lines[1])
        if len(lines) - 2 < count:
            raise ValueError(f"{count} entries announced, {len(lines) - 2} present")
        for line in lines[2:2 + count]:
            topic, partition, offset = line.rsplit(" ", 2)
            out[(topic, int(partition))] = int(offset)
    except (ValueError, IndexError) as exc:
        log.warning("ignoring malformed %s: %s", path, exc)
        return {}
    return out


def write_checkpoint(path: Path, entries: dict[tuple[str, int], int]) -> None:
    """Write durably, as Kafka's `CheckpointFile`: a temporary file, fsync, rename, fsync of the
    log dir. Blocking: called on a thread (`HighWatermarkCheckpoints.run`, `write_at_shutdown`)."""
    body = f"0\n{len(entries)}\n" + "".join(f"{t} {p} {o}\n" for (t, p), o in sorted(entries.items()))
    write_atomically(path, body)


class HighWatermarkCheckpoints:
    """The checkpointed HWs of this node's replicas (module doc)."""

    def __init__(self, log_dirs: Iterable[str | Path], get_log: Callable[[str, int], PartitionLog | None]) -> None:
        self.log_dirs = [Path(d) for d in log_dirs]
        self._get_log = get_log
        self._checkpointed: dict[tuple[str, int], int] = {}
        #: what the files were last written with (None: not written in this run, or unknown)
        self._written: dict[Path, dict[tuple[str, int], int]] | None = None
        #: partitions whose HW this run took from the checkpoint (and keeps writing back)
        self.initialised: set[TopicPartition] = set()

    def load(self) -> None:
        for directory in self.log_dirs:
            discard_tmp(directory / CHECKPOINT_FILE)  # a write a crash interrupted: never read
            self._checkpointed.update(read_checkpoint(directory / CHECKPOINT_FILE))

    def initialise(self, tp: TopicPartition, plog: PartitionLog) -> bool:
        """The first time `tp` is hosted in this run: its HW from the checkpoint. True if it was."""
        if tp in self.initialised:
            return False
        self.initialised.add(tp)
        plog.hw_follows_leo = False
        plog.set_high_watermark(self._checkpointed.get((tp.topic, tp.partition), 0))
        return True

    def forget(self, tp: TopicPartition) -> None:
        self.initialised.discard(tp)

    async def run(self, interval_s: float) -> None:
        """Every `interval_s` (replica.high.watermark.checkpoint.interval.ms), write the files if
        an HW (or the set of partitions) changed since the last write. Kafka rewrites them on its
        interval regardless; skipped, an idle node's checkpoint costs no thread hand-off,
        temp file, fsync and rename every 5 s (issue 19), and the files say the same."""
        while True:
            await asyncio.sleep(interval_s)
            entries = self._entries()
            if entries == self._written:
                continue
            try:
                await asyncio.to_thread(self._write_files, entries)
                self._written = entries
            except Exception:
                self._written = None  # written in part, maybe: the next one writes every file
                log.exception("writing %s failed", CHECKPOINT_FILE)

    async def write_at_shutdown(self, timeout_s: float) -> None:
        """The last write, bounded (`in_thread_bounded`): abandoned, it still completes or leaves
        the previous file (renamed atomically), an older HW, which is safe."""
        entries = self._entries()
        try:
            await in_thread_bounded(lambda: self._write_files(entries), timeout_s, f"writing {CHECKPOINT_FILE} at shutdown")
        except OSError as exc:
            log.warning("writing %s at shutdown failed: %s", CHECKPOINT_FILE, exc)

    def _entries(self) -> dict[Path, dict[tuple[str, int], int]]:
        out: dict[Path, dict[tuple[str, int], int]] = {d: {} for d in self.log_dirs}
        for tp in self.initialised:
            plog = self._get_log(tp.topic, tp.partition)
            if plog is not None:
                out.setdefault(plog.directory.parent, {})[(tp.topic, tp.partition)] = plog.high_watermark
        return out

    @staticmethod
    def _write_files(entries: dict[Path, dict[tuple[str, int], int]]) -> None:
        for directory, hws in entries.items():
            if directory.is_dir():
                write_checkpoint(directory / CHECKPOINT_FILE, hws)
