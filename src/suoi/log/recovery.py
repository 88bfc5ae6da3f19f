"""Opening a partition log: recovering its segments from the directory, the persisted
log start offset, and rebuilding producer state from the newest snapshot and the log tail.

Segments wholly below the recovery point (the log end offset at the last flush, persisted in
the ``recovery-point`` file: Kafka's recovery-point-offset-checkpoint, per partition) are
trusted if their indexes are consistent - reads and the scrubber still check their batches.
Every segment holding offsets at or above it, and always the last one, is fully re-scanned
with CRC checks, because an unclean shutdown may have torn or lost any unflushed write -
unless the log dir's last stop was clean (`clean_shutdown.py`: its marker is written only once
every log was flushed and closed), which lets the last segment load like the others. If
recovery truncates a sealed segment, all later segments are dropped: their offsets no longer
follow on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from suoi.atomic_file import TMP_SUFFIX, write_atomically
from suoi.log import transactions as txns
from suoi.log import txn_upgrade
from suoi.log.cleaner_files import CHECKPOINT_FILE as CLEANER_CHECKPOINT_FILE
from suoi.log.cleaner_files import complete_swaps
from suoi.log.config import LogConfig
from suoi.log.errors import KafkaStorageError
from suoi.log.producer_state import ProducerStateManager, load_snapshot
from suoi.log.segment import LogSegment
from suoi.log.txn_upgrade import TxnIndexCheck

logger = logging.getLogger("suoi.log")

LOG_START_OFFSET_FILE = "log-start-offset"
RECOVERY_POINT_FILE = "recovery-point"


@dataclass(slots=True)
class RecoveryStats:
    """What opening logs did (`LogManager.load` logs one line of it): segments re-scanned with
    CRC checks (holding offsets at or above their log's recovery point, or the last one after
    an unclean stop) and their bytes, and segments loaded from their indexes. The flush at a roll
    keeps the re-scanned ones to the active segments after a crash."""

    scanned_segments: int = 0
    scanned_bytes: int = 0
    loaded_segments: int = 0

    def __str__(self) -> str:
        return (f"{self.scanned_segments} segments ({self.scanned_bytes} bytes) re-scanned from their logs' "
                f"recovery points, {self.loaded_segments} loaded from their indexes")


def never_written(directory: Path) -> bool:
    """The partition directory is missing or holds no file: a new partition, or one nothing
    was ever written to (a restart with 10,000 empty partitions then reads nothing back)."""
    try:
        with os.scandir(directory) as entries:
            return next(entries, None) is None
    except FileNotFoundError:
        return True


def recover_segments(directory: Path, topic: str, partition: int, config: LogConfig, *,
                     empty: bool = False, clean: bool = False,
                     stats: RecoveryStats | None = None) -> tuple[list[LogSegment], int]:
    """Create ``directory`` if needed and recover its segments; returns them (at least one)
    and the log start offset. ``empty``: `never_written` said so, there is nothing to recover.
    ``clean``: the log dir's last stop was clean (`suoi.log.clean_shutdown`): everything was
    flushed, so every segment, the last one too, is loaded from its indexes (`LogSegment.load`,
    which still falls back to a full scan when they disagree with the log)."""
    interval = config.index_interval_bytes
    try:
        directory.mkdir(parents=True)
    except FileExistsError:
        pass
    else:
        empty = True
    if empty:  # nothing to recover, no file made yet (topics are created in thousands)
        fresh = LogSegment.fresh_segment(directory, 0, index_interval_bytes=interval)
        fresh.contiguous = not config.compacts
        return [fresh], 0
    complete_swaps(directory)  # finish or undo an interrupted log-cleaner swap
    bases = sorted(
        int(p.stem) for p in directory.glob("*.log") if len(p.stem) == 20 and p.stem.isdigit()
    )
    known = {f"{b:020d}" for b in bases}
    for p in directory.iterdir():
        if (p.suffix in (".index", ".timeindex", ".txnindex") and p.stem not in known) or p.suffix == TMP_SUFFIX:
            p.unlink()  # an orphan index, or a state file's write a crash interrupted (never read)
    # A log that was ever compacted has gaps between batches (the cleaner's checkpoint says so).
    contiguous = not config.compacts and not (directory / CLEANER_CHECKPOINT_FILE).exists()
    recovery_point = read_recovery_point(directory)
    segments: list[LogSegment] = []
    for i, base in enumerate(bases):
        seg = LogSegment(directory, base, index_interval_bytes=interval)
        seg.contiguous = contiguous
        is_last = i == len(bases) - 1
        unflushed = not clean and (is_last or bases[i + 1] > recovery_point)
        truncated = seg.recover() if unflushed else seg.load(active=is_last)
        if stats is not None:
            if unflushed:
                stats.scanned_segments += 1
                stats.scanned_bytes += seg.size
            else:
                stats.loaded_segments += 1
        if unflushed and not is_last:
            seg.seal()
        elif seg.corrupt and not is_last:
            seg.next_offset = max(seg.next_offset, bases[i + 1])  # the rest is there, unreadable
        if not is_last and not truncated:
            seg.seal_memory()
        segments.append(seg)
        if truncated and not is_last:
            logger.warning(
                "%s-%d: segment %d was corrupt, dropping %d later segments",
                topic, partition, base, len(bases) - i - 1,
            )  # fmt: skip
            for later in bases[i + 1 :]:
                LogSegment(directory, later, index_interval_bytes=interval).delete()
            break
    if not segments:  # nothing was ever written (orphan index files went above): still no file needed
        segments.append(LogSegment.fresh_segment(directory, 0, index_interval_bytes=interval))
        segments[0].contiguous = contiguous
    log_start = segments[0].base_offset
    persisted = read_log_start_offset(directory)
    if persisted is not None:
        log_start = min(max(log_start, persisted), segments[-1].next_offset)
    return segments, log_start


def rebuild_producer_state(
    directory: Path, segments: Sequence[LogSegment], state: ProducerStateManager, log_end_offset: int, log_start_offset: int
) -> TxnIndexCheck:
    """Load the newest producer snapshot, then replay batch headers after it (and the
    control batches, which also rebuild the transaction indexes from there). A snapshot
    older than the follower fix over transactional batches is not trusted: everything is
    replayed from the log start (`txn_upgrade`)."""
    snapshot = load_snapshot(directory, state, log_end_offset)
    first = segments[0].base_offset
    verdict = txn_upgrade.check(segments, snapshot.offset, snapshot.version)
    if verdict is TxnIndexCheck.REBUILT:
        state.clear()
        start = first
    else:
        start = max(snapshot.offset, first)
    for seg in segments:
        if seg.next_offset <= start:
            continue
        seg.txn_index.truncate_from(start)
        for pos, h in seg.positioned_headers_from(start):
            if h.producer_id >= 0 and h.base_offset >= start:
                if h.is_control:
                    txns.replay_control(state, seg, pos, h)
                else:
                    state.update(h, h.base_offset, h.last_offset, h.max_timestamp)
    state.truncate_to(log_start_offset)
    return verdict


def write_log_start_offset(directory: Path, log_start_offset: int, *, durable: bool = True) -> None:
    """Atomic temp+rename, so a crash leaves either the old or the new value (``durable``: the
    file fsynced before the rename; else the caller has it synced later)."""
    _write_offset_file(directory / LOG_START_OFFSET_FILE, log_start_offset, "log start offset", durable=durable)


def read_log_start_offset(directory: Path) -> int | None:
    return _read_offset_file(directory / LOG_START_OFFSET_FILE)


def write_recovery_point(directory: Path, offset: int, *, durable: bool = True) -> None:
    """Persist the recovery point (everything below ``offset`` is on disk). ``durable=False``:
    no fsync before the rename (the final flush syncs all the files at once after; until then a
    crash may leave an empty file, which reads as 0: recover everything, slow but safe)."""
    _write_offset_file(directory / RECOVERY_POINT_FILE, offset, "recovery point", durable=durable)


def read_recovery_point(directory: Path) -> int:
    """The persisted recovery point; 0 (check everything) if missing or malformed."""
    return max(_read_offset_file(directory / RECOVERY_POINT_FILE) or 0, 0)


def _write_offset_file(path: Path, offset: int, what: str, *, durable: bool = True) -> None:
    """One offset in a text file, written temp+rename (with an fsync before, if ``durable``). The
    directory is not synced here (callers run on the event loop): an OS crash may lose the rename
    and bring the previous value back (README, "State files")."""
    try:
        write_atomically(path, f"{offset}\n", fsync=durable, sync_dir=False)
    except OSError as e:
        raise KafkaStorageError(e.errno, f"cannot persist {what}: {e.strerror}") from e


def _read_offset_file(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
