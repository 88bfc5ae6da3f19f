"""Idempotent-producer state of one partition: the last batches of each producer id.

Kafka's idempotence (KIP-98) lets a producer retry a batch without duplicating it: each
batch carries (producer id, epoch, base sequence), and the partition leader remembers,
per producer, the sequence ranges and offsets of its last five batches. A retry of one
of those is answered with the original offsets and not appended again; a gap in the
sequence is OUT_OF_ORDER_SEQUENCE_NUMBER; an older epoch is INVALID_PRODUCER_EPOCH.

Transactions: a transactional batch starts the producer's ongoing transaction on this
partition (at the batch's first offset) unless one is open; a COMMIT/ABORT marker ends
it (`check_marker` + `complete_txn`). `ongoing_txns` (pid -> first offset) gives the
first unstable offset, hence the last stable offset. A non-transactional batch from a
producer with an open transaction is INVALID_TXN_STATE, as in Kafka.

This class is pure bookkeeping (no I/O): the partition log feeds it batch headers on
append and on recovery, and persists `snapshot()` so that a restart need only replay
the log after the snapshot's offset.
"""

from __future__ import annotations

import collections
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

# The producer-state errors live in log.errors (interpreted): as classes of a module the opt-in
# mypyc build compiles, subclasses of the interpreted LogError lost their error_code.
from suoi.atomic_file import write_atomically
from suoi.log.errors import (
    InvalidProducerEpochError,
    InvalidTxnStateError,
    OutOfOrderSequenceError,
    TransactionCoordinatorFencedError,
)
from suoi.protocol.record_batch import CONTROL_BIT, TRANSACTIONAL_BIT
from suoi.protocol.records import BatchHeader

logger = logging.getLogger("suoi.log")

NO_PRODUCER_ID = -1
NO_SEQUENCE = -1
MAX_CACHED_BATCHES = 5  # what a producer may have in flight (max.in.flight.requests <= 5)
_INT32_MAX = 2**31 - 1


@dataclass(frozen=True, slots=True)
class ProducerView:
    """One producer as DescribeProducers reports it (-1 where unknown)."""

    producer_id: int
    producer_epoch: int
    last_sequence: int
    last_timestamp: int
    coordinator_epoch: int
    current_txn_start_offset: int


class BatchMetadata(NamedTuple):
    """One of a producer's last batches (a NamedTuple: one is made per idempotent batch
    appended, and a frozen dataclass's ``__init__`` costs a ``__setattr__`` per field)."""

    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int
    timestamp: int


@dataclass(slots=True)
class ProducerEntry:
    producer_id: int
    epoch: int
    batches: collections.deque[BatchMetadata] = field(
        default_factory=lambda: collections.deque(maxlen=MAX_CACHED_BATCHES))
    last_timestamp: int = -1
    #: First offset of the producer's ongoing transaction on this partition, -1 if none.
    current_txn_first_offset: int = -1
    #: Coordinator epoch of the last marker, to fence markers from a zombie coordinator.
    coordinator_epoch: int = -1

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else NO_SEQUENCE


_new_metadata = tuple.__new__  # a BatchMetadata without NamedTuple's Python-level __new__


class ProducerStateManager:
    """Producer id -> ProducerEntry for one partition, with expiry."""

    def __init__(self, expiration_ms: int = 86_400_000) -> None:
        self.expiration_ms = expiration_ms
        self.producers: dict[int, ProducerEntry] = {}
        #: producer id -> first offset of its ongoing transaction (mirror of the entries).
        self.ongoing_txns: dict[int, int] = {}

    def check(self, header: BatchHeader) -> BatchMetadata | None:
        """Validate an incoming batch; return the cached metadata if it is a duplicate.

        Raises InvalidProducerEpochError, OutOfOrderSequenceError or (a non-transactional
        batch while the producer has a transaction open) InvalidTxnStateError. Batches
        without a producer id are not tracked and always pass. (Runs for every idempotent
        batch produced: the sequence arithmetic is inline, no helper call per batch.)
        """
        pid = header.producer_id
        if pid == NO_PRODUCER_ID:
            return None
        entry = self.producers.get(pid)
        if entry is None:
            # Unknown producer (new, or its state expired / was removed by retention):
            # accept any sequence, as Kafka has since KIP-360.
            return None
        epoch = header.producer_epoch
        if epoch < entry.epoch:
            raise InvalidProducerEpochError(
                f"producer {pid} epoch {epoch} is older than the current epoch {entry.epoch}")
        first_seq = header.base_sequence
        if first_seq == NO_SEQUENCE:
            pass  # written by a coordinator (TxnOffsetCommit): no sequence to check, as in Kafka
        elif epoch > entry.epoch:
            if first_seq != 0:
                raise OutOfOrderSequenceError(
                    f"producer {pid} new epoch {epoch} must start at sequence 0, got {first_seq}")
        else:
            batches = entry.batches
            if batches:
                last_seq = first_seq + header.last_offset_delta  # sequences wrap from Int32.MAX to 0 (Kafka's incrementSequence)
                if last_seq > _INT32_MAX:
                    last_seq -= _INT32_MAX + 1
                for cached in batches:
                    if cached.first_seq == first_seq and cached.last_seq == last_seq:
                        return cached
                expected = batches[-1].last_seq  # in sequence: the next one, or 0 after Int32.MAX
                if first_seq != expected + 1 and not (first_seq == 0 and expected == _INT32_MAX):
                    raise OutOfOrderSequenceError(
                        f"producer {pid} epoch {epoch}: expected sequence {expected + 1}, got {first_seq}")
        if entry.current_txn_first_offset >= 0 and not header.attributes & TRANSACTIONAL_BIT:
            raise InvalidTxnStateError(
                f"expected a transactional write from producer {pid}: its transaction started at "
                f"offset {entry.current_txn_first_offset} is still open")
        return None

    def update(self, header: BatchHeader, first_offset: int, last_offset: int, timestamp: int) -> None:
        """Record an appended batch (also used when replaying the log on recovery)."""
        pid = header.producer_id
        attributes = header.attributes
        if pid == NO_PRODUCER_ID or attributes & CONTROL_BIT:
            return
        entry = self.producers.get(pid)
        if entry is None or header.producer_epoch > entry.epoch:
            entry = self._entry_at_epoch(pid, header.producer_epoch)
        first_seq = header.base_sequence
        if first_seq != NO_SEQUENCE:
            last_seq = first_seq + header.last_offset_delta  # sequences wrap from Int32.MAX to 0 (Kafka's incrementSequence)
            if last_seq > _INT32_MAX:
                last_seq -= _INT32_MAX + 1
            entry.batches.append(_new_metadata(BatchMetadata, (first_seq, last_seq, first_offset, last_offset,
                                                               timestamp)))
        if timestamp > entry.last_timestamp:
            entry.last_timestamp = timestamp
        if attributes & TRANSACTIONAL_BIT and entry.current_txn_first_offset < 0:
            entry.current_txn_first_offset = first_offset
            self.ongoing_txns[pid] = first_offset

    def _entry_at_epoch(self, pid: int, epoch: int) -> ProducerEntry:
        """The producer's entry, moved to ``epoch`` if newer: a new epoch forgets the
        cached batches (sequences restart) but not an open transaction, as in Kafka."""
        entry = self.producers.get(pid)
        if entry is None:
            entry = ProducerEntry(pid, epoch)
            self.producers[pid] = entry
        elif epoch > entry.epoch:
            entry.epoch = epoch
            entry.batches.clear()
        return entry

    # -- transactions -----------------------------------------------------------------
    def check_marker(self, producer_id: int, producer_epoch: int, coordinator_epoch: int) -> None:
        """Validate a COMMIT/ABORT marker before it is written (Kafka's appendEndTxnMarker):
        an older producer epoch is fenced (a newer one is fine: the coordinator bumps the
        epoch when it aborts a fenced producer's transaction), and so is a marker from a
        coordinator epoch older than the last marker's."""
        entry = self.producers.get(producer_id)
        if entry is None:
            return
        if producer_epoch < entry.epoch:
            raise InvalidProducerEpochError(
                f"marker for producer {producer_id} has epoch {producer_epoch}, older than {entry.epoch}")
        if coordinator_epoch < entry.coordinator_epoch:
            raise TransactionCoordinatorFencedError(
                f"marker for producer {producer_id} from coordinator epoch {coordinator_epoch}, "
                f"older than {entry.coordinator_epoch}")

    def complete_txn(self, producer_id: int, producer_epoch: int, coordinator_epoch: int, timestamp: int) -> int:
        """Apply a written marker (also on replay): end the producer's ongoing transaction.

        Returns the first offset of the transaction it ended, -1 if there was none.
        """
        entry = self._entry_at_epoch(producer_id, producer_epoch)
        first = entry.current_txn_first_offset
        entry.current_txn_first_offset = -1
        entry.coordinator_epoch = coordinator_epoch
        entry.last_timestamp = max(entry.last_timestamp, timestamp)
        self.ongoing_txns.pop(producer_id, None)
        return first

    def first_unstable_offset(self, excluding: int = NO_PRODUCER_ID) -> int | None:
        """Smallest first offset of the ongoing transactions (of other producers than
        ``excluding``), None if there are none."""
        firsts = [off for pid, off in self.ongoing_txns.items() if pid != excluding]
        return min(firsts) if firsts else None

    def describe(self) -> list[ProducerView]:
        """DescribeProducers: every producer known on this partition."""
        return [
            ProducerView(e.producer_id, e.epoch, e.last_seq, e.last_timestamp, e.coordinator_epoch,
                         e.current_txn_first_offset)
            for e in self.producers.values()
        ]

    def expire(self, now_ms: int) -> int:
        """Forget producers idle longer than producer.id.expiration.ms (never one with an
        ongoing transaction: the coordinator's timeout aborts it first)."""
        stale = [pid for pid, e in self.producers.items()
                 if now_ms - e.last_timestamp > self.expiration_ms and e.current_txn_first_offset < 0]
        for pid in stale:
            del self.producers[pid]
        return len(stale)

    def truncate_to(self, first_kept_offset: int) -> None:
        """Drop batches below the log start offset (retention / DeleteRecords); a producer
        with an ongoing transaction is kept (the LSO is clamped to the log start)."""
        for pid in list(self.producers):
            entry = self.producers[pid]
            while entry.batches and entry.batches[0].last_offset < first_kept_offset:
                entry.batches.popleft()
            if not entry.batches and entry.current_txn_first_offset < 0:
                del self.producers[pid]

    # -- persistence (our own JSON format, documented in log/README.md) --------------
    def snapshot(self) -> list[dict[str, Any]]:
        return [
            {"pid": e.producer_id, "epoch": e.epoch, "ts": e.last_timestamp,
             "txn": e.current_txn_first_offset, "ce": e.coordinator_epoch,
             "batches": [[b.first_seq, b.last_seq, b.first_offset, b.last_offset, b.timestamp] for b in e.batches]}
            for e in self.producers.values()
        ]

    def clear(self) -> None:
        self.producers.clear()
        self.ongoing_txns.clear()

    def restore(self, data: list[dict[str, Any]]) -> None:
        self.clear()
        for item in data:
            entry = ProducerEntry(int(item["pid"]), int(item["epoch"]), last_timestamp=int(item["ts"]),
                                  current_txn_first_offset=int(item.get("txn", -1)),
                                  coordinator_epoch=int(item.get("ce", -1)))
            for b in item["batches"]:
                entry.batches.append(BatchMetadata(*map(int, b)))
            self.producers[entry.producer_id] = entry
            if entry.current_txn_first_offset >= 0:
                self.ongoing_txns[entry.producer_id] = entry.current_txn_first_offset


# -- snapshot files ---------------------------------------------------------------------
# `<20-digit offset>.snapshot` in the partition directory: JSON of `snapshot()`, valid for
# the log up to (excluding) that offset. Written at segment roll and at clean close, so
# a restart replays only the batch headers after the newest usable snapshot.

SNAPSHOT_SUFFIX = ".snapshot"
KEEP_SNAPSHOTS = 2
#: 3: written since the follower fix, its abort indexes below it are whole (`txn_upgrade`);
#: 2 added "txn"/"ce". Readers of every version ignore the field.
SNAPSHOT_VERSION = 3


class LoadedSnapshot(NamedTuple):
    """Where replay starts (the snapshot's offset, 0 without one) and the snapshot's version (0: none)."""

    offset: int
    version: int


def snapshot_offsets(directory: Path) -> list[int]:
    return sorted(int(p.stem) for p in directory.glob(f"*{SNAPSHOT_SUFFIX}") if p.stem.isdigit())


def snapshot_path(directory: Path, offset: int) -> Path:
    """The snapshot valid for the log below `offset`."""
    return directory / f"{offset:020d}{SNAPSHOT_SUFFIX}"


def write_snapshot(directory: Path, offset: int, state: ProducerStateManager) -> None:
    """Written without an fsync (at a roll, on the event loop): the roll's flush syncs it on a
    thread (`PartitionLog.sync_jobs`), and a clean stop with the recovery points
    (`LogManager.shutdown`). Until then an OS crash may leave it empty or torn: `load_snapshot`
    then skips it for an older one (or replays the whole log), as Kafka's CRC check does."""
    path = snapshot_path(directory, offset)
    doc = {"version": SNAPSHOT_VERSION, "offset": offset, "producers": state.snapshot()}
    write_atomically(path, json.dumps(doc), fsync=False)
    for old in snapshot_offsets(directory)[:-KEEP_SNAPSHOTS]:
        (directory / f"{old:020d}{SNAPSHOT_SUFFIX}").unlink(missing_ok=True)


def load_snapshot(directory: Path, state: ProducerStateManager, log_end_offset: int) -> LoadedSnapshot:
    """Restore the newest snapshot not past the log end; return the offset to replay from
    (and the snapshot's version).

    Snapshots beyond the log end (the log was truncated by recovery) or unreadable ones
    are deleted; with none usable, replay starts at 0 (the whole log).
    """
    for offset in reversed(snapshot_offsets(directory)):
        path = directory / f"{offset:020d}{SNAPSHOT_SUFFIX}"
        if offset <= log_end_offset:
            try:
                data = json.loads(path.read_text())
                state.restore(data["producers"])
                return LoadedSnapshot(offset, int(data.get("version", 1)))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                logger.warning("%s: ignoring unreadable producer snapshot (%s)", path, exc)
        path.unlink(missing_ok=True)
    state.clear()
    return LoadedSnapshot(0, 0)
