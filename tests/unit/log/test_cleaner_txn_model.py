"""The cleaner, which takes aborted transactions from the abort indexes (`cleaner_txn`), against a
model that finds them from the markers in the log, over seeded random histories: committed,
aborted and open transactions of several producers interleaved with plain and idempotent batches,
tombstones, rolls at random points, several cleanings with the clock moved past tombstones'
delete horizons in between.

After every cleaning, what a read_uncommitted reader sees (offset, key, value of every record),
the markers (offset, producer, COMMIT/ABORT) and what a read_committed reader sees (the log's own
abort index applied, as a fetch does) must equal the model's. The model is also run with the
algorithm before this change (a pass over the planned batches; a transaction whose marker lay
beyond them kept as it was and never a key's latest value): both leave read_committed readers
the same latest value for every key, and when no transaction straddles the planned range's end
(so that the old pass knew every outcome) the two outputs are identical.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from suoi.log.cleaner import LogCleaner
from suoi.log.cleaner_files import read_checkpoint
from suoi.log.config import LogConfig
from suoi.log.partition_log import PartitionLog
from suoi.protocol.records import build_batch, decode_end_txn_marker, iter_batches, iter_records
from tests.unit.log.log_helpers import Clock, OpenLog

DAY = 86_400_000
COMPACT = {"cleanup_policy": ("compact",), "segment_bytes": 10_000_000}
KEYS = [b"k%d" % i for i in range(6)]
TXN_PIDS = (1, 2, 3)
IDEMPOTENT_PID = 9

Record = tuple[int, bytes | None, bytes | None]


@dataclass(frozen=True)
class Batch:
    base: int
    last: int
    pid: int
    transactional: bool
    control: bool
    commit: bool | None  # a marker's kind
    horizon: bool
    base_ts: int
    records: tuple[Record, ...]


def batches(log: PartitionLog) -> list[Batch]:
    data = log.read(log.log_start_offset, 1 << 30)
    out = []
    for pos, h in iter_batches(data):
        raw = data[pos : pos + h.size]
        marker = decode_end_txn_marker(data, pos, h) if h.is_control else None
        recs = () if h.is_control else tuple((r.offset, r.key, r.value) for r in iter_records(raw))
        out.append(Batch(h.base_offset, h.last_offset, h.producer_id, h.is_transactional, h.is_control,
                         None if marker is None else marker.commit, h.has_delete_horizon, h.base_timestamp,
                         recs))  # type: ignore[arg-type]
    return out


def outcomes(log_batches: list[Batch]) -> dict[int, tuple[bool | None, int | None]]:
    """base offset of each transactional data batch -> (committed?, marker offset); (None, None)
    for a transaction still open. From the markers, as a consumer would reconstruct them."""
    pending: dict[int, list[int]] = {}
    out: dict[int, tuple[bool | None, int | None]] = {}
    for b in log_batches:
        if not b.transactional:
            continue
        if not b.control:
            pending.setdefault(b.pid, []).append(b.base)
        elif b.commit is not None:
            for base in pending.pop(b.pid, []):
                out[base] = (b.commit, b.base)
    for bases in pending.values():
        for base in bases:
            out[base] = (None, None)
    return out


def expected(log_batches: list[Batch], first_dirty: int, end: int, now: int, *,
             old_pass_end: int | None = None) -> tuple[list[Record], list[Record]]:
    """(records, read_committed records) after a cleaning of ``[start, end)``; ``old_pass_end``:
    model the algorithm before the abort index (outcomes known only for markers below it)."""
    txn = outcomes(log_batches)

    def kind(b: Batch) -> str:
        if not b.transactional or b.control or b.base >= end:
            return "data"
        commit, marker = txn[b.base]
        if old_pass_end is not None and (marker is None or marker >= old_pass_end):
            return "undecided"
        assert commit is not None, "an open transaction below the LSO"
        return "data" if commit else "aborted"

    latest: dict[bytes, int] = {}
    for b in log_batches:
        if first_dirty <= b.base < end and kind(b) == "data":
            for off, key, _ in b.records:
                if key is not None:
                    latest[key] = off
    records: list[Record] = []
    committed: list[Record] = []
    for b in log_batches:
        k = kind(b)
        if b.base >= end or k == "undecided":
            kept = list(b.records)
        elif k == "aborted":
            kept = []
        else:
            expired = b.horizon and now >= b.base_ts
            kept = [r for r in b.records if r[1] is not None and r[0] >= latest.get(r[1], -1)
                    and not (r[2] is None and expired)]
        records += kept
        if not (b.transactional and not b.control and txn[b.base][0] is False):
            committed += kept
    return records, committed


def read_committed(log: PartitionLog, log_batches: list[Batch]) -> list[Record]:
    """What a read_committed fetch serves: the log's abort index entries applied to its batches."""
    aborted = log.aborted_transactions(log.log_start_offset, log.log_end_offset)
    out: list[Record] = []
    for b in log_batches:
        if b.transactional and any(t.producer_id == b.pid and t.first_offset <= b.base <= t.last_offset
                                   for t in aborted):
            continue
        out += b.records
    return out


def last_values(records: list[Record]) -> dict[bytes | None, bytes | None]:
    return {key: value for _, key, value in records}


class History:
    """Random appends to one log: plain, idempotent and transactional batches, markers, rolls."""

    def __init__(self, log: PartitionLog, rng: random.Random) -> None:
        self.log, self.rng = log, rng
        self.seq: dict[int, int] = {}
        self.open: set[int] = set()
        self.n = 0

    def _records(self) -> list[tuple[bytes, bytes | None]]:
        self.n += 1
        rng = self.rng
        return [(rng.choice(KEYS), None if rng.random() < 0.15 else b"v%d-%d" % (self.n, i))
                for i in range(rng.randint(1, 3))]

    def _produce(self, pid: int, transactional: bool) -> None:
        seq = self.seq.get(pid, 0)
        recs = self._records()
        self.log.append(build_batch(recs, timestamp_ms=1000, producer_id=pid, producer_epoch=0,  # type: ignore[arg-type]
                                    base_sequence=seq, is_transactional=transactional))
        self.seq[pid] = seq + len(recs)

    def step(self) -> None:
        rng, log = self.rng, self.log
        action = rng.random()
        if action < 0.25:
            log.append(build_batch(self._records(), timestamp_ms=1000))  # type: ignore[arg-type]
        elif action < 0.32:
            self._produce(IDEMPOTENT_PID, False)
        elif action < 0.65:
            pid = rng.choice(TXN_PIDS)
            self._produce(pid, True)
            self.open.add(pid)
        elif action < 0.88:
            pid = rng.choice(TXN_PIDS)
            log.append_control(pid, 0, rng.random() < 0.55, 0)  # a marker with no transaction too
            self.open.discard(pid)
        else:
            log.roll()

    def close_all(self) -> None:
        for pid in sorted(self.open):
            self.log.append_control(pid, 0, self.rng.random() < 0.5, 0)
        self.open.clear()


def check_clean(log: PartitionLog, clock: Clock) -> bool:
    """Clean once and compare with the models; whether a transaction straddled the planned end."""
    before = batches(log)
    first_dirty = read_checkpoint(log.directory).first_dirty_offset
    if not log.log_start_offset <= first_dirty <= log.log_end_offset:
        first_dirty = log.log_start_offset
    result = LogCleaner().clean(log, clock.now, force=True)
    after = batches(log)
    if result is None:
        assert after == before
        return False
    end, pass_end = result.end_offset, result.plan.segments[-1].next_offset
    records, committed = expected(before, first_dirty, end, clock.now)
    assert [r for b in after for r in b.records] == records
    assert [(b.base, b.pid, b.commit) for b in after if b.control] == [
        (b.base, b.pid, b.commit) for b in before if b.control]
    assert read_committed(log, after) == committed
    old_records, old_committed = expected(before, first_dirty, end, clock.now, old_pass_end=pass_end)
    assert last_values(old_committed) == last_values(committed)
    txn = outcomes(before)
    straddles = any(b.base < end and (txn[b.base][1] or 0) >= pass_end
                    for b in before if b.transactional and not b.control)
    if not straddles:
        assert old_records == records
    return straddles


def run(log: PartitionLog, clock: Clock, seed: int) -> tuple[int, int]:
    """Four rounds of random appends, each followed by a cleaning, then one more after every
    tombstone's horizon; returns (cleanings where a transaction straddled the planned end,
    aborted transactions written)."""
    rng = random.Random(seed)
    history = History(log, rng)
    straddled = 0
    for round_ in range(4):
        for _ in range(rng.randint(10, 40)):
            history.step()
        if round_ == 3:
            history.close_all()
        log.roll()
        if rng.random() < 0.5:
            history.step()  # something in the active segment: a marker there may end a cleaned transaction
        straddled += check_clean(log, clock)
        if rng.random() < 0.5:
            clock.advance(DAY + 1)  # tombstones cleaned once become removable
    clock.advance(DAY + 1)
    straddled += check_clean(log, clock)
    return straddled, sum(b.commit is False for b in batches(log))


SEEDS = range(40)


@pytest.mark.parametrize("seed", SEEDS)
def test_cleaning_with_the_abort_index_matches_the_model(seed: int, open_log: OpenLog, clock: Clock) -> None:
    run(open_log(**COMPACT), clock, seed)


def test_the_seeds_cover_straddling_and_aborted_transactions(tmp_path: Path, clock: Clock) -> None:
    """The random histories do hit the cases that matter (else the model test proves little)."""
    straddled = aborted = 0
    for seed in SEEDS:
        log = PartitionLog.open(tmp_path / str(seed), "t", 0, LogConfig(**COMPACT), now_ms=clock)  # type: ignore[arg-type]
        try:
            s, a = run(log, clock, seed)
        finally:
            log.close()
        straddled += s > 0
        aborted += a > 0
    assert straddled >= 20 and aborted >= 35, (straddled, aborted)
