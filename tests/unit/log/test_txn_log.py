"""Transactions on the partition log: ongoing transactions, markers, LSO, aborted index."""

from __future__ import annotations

import struct
import weakref

import pytest

from suoi.log.partition_log import PartitionLog
from suoi.log.producer_state import (
    InvalidProducerEpochError,
    InvalidTxnStateError,
    OutOfOrderSequenceError,
    TransactionCoordinatorFencedError,
)
from suoi.log.txn_index import ENTRY_SIZE, AbortedTxn
from suoi.protocol.records import build_batch, decode_end_txn_marker, iter_batches, iter_records
from tests.unit.log.log_helpers import Clock, OpenLog

#: The next sequence of each producer, per log. Weak keys: an entry dies with its log (keyed by
#: id(log), a new log allocated at a dead one's address inherited its sequences: OUT_OF_ORDER_SEQUENCE).
_seq: weakref.WeakKeyDictionary[PartitionLog, dict[int, int]] = weakref.WeakKeyDictionary()


def txn(log: PartitionLog, pid: int, n: int = 2, *, epoch: int = 0, transactional: bool = True) -> tuple[int, int]:
    """Append an ``n``-record batch of producer ``pid``; returns (first, last) offsets."""
    sequences = _seq.setdefault(log, {})
    seq = sequences.get(pid, 0)
    sequences[pid] = seq + n
    info = log.append(build_batch([(None, b"p%d-%d" % (pid, seq + i)) for i in range(n)], producer_id=pid,
                                  producer_epoch=epoch, base_sequence=seq, is_transactional=transactional))
    return info.base_offset, info.last_offset


def plain(log: PartitionLog, n: int = 1) -> tuple[int, int]:
    info = log.append(build_batch([(None, b"x")] * n))
    return info.base_offset, info.last_offset


def txnindex_entries(log: PartitionLog) -> list[tuple[int, ...]]:
    out = []
    for path in sorted(log.directory.glob("*.txnindex")):
        data = path.read_bytes()
        assert len(data) % ENTRY_SIZE == 0
        out += [struct.unpack(">hqqqq", data[i : i + ENTRY_SIZE]) for i in range(0, len(data), ENTRY_SIZE)]
    return out


def test_lso_follows_ongoing_transactions_of_several_producers(open_log: OpenLog) -> None:
    log = open_log()
    assert log.last_stable_offset == 0
    plain(log, 2)  # 0-1
    assert log.last_stable_offset == log.high_watermark == 2
    a_first, _ = txn(log, 1)  # 2-3
    assert log.last_stable_offset == a_first == 2
    b_first, _ = txn(log, 2)  # 4-5
    txn(log, 1)  # joins producer 1's transaction
    plain(log)
    assert log.last_stable_offset == 2
    assert log.producer_state.ongoing_txns == {1: 2, 2: 4}
    commit = log.append_control(1, 0, True, 0)
    assert log.last_stable_offset == b_first == 4
    assert commit.base_offset == commit.last_offset == log.log_end_offset - 1
    log.append_control(2, 0, False, 0)
    assert log.last_stable_offset == log.high_watermark == log.log_end_offset
    # a new transaction of producer 1 starts where its next transactional batch lands
    c_first, _ = txn(log, 1)
    assert log.last_stable_offset == c_first


def test_read_committed_read_stops_at_the_lso(open_log: OpenLog) -> None:
    log = open_log()
    plain(log, 3)  # 0-2
    txn(log, 7)  # 3-4
    plain(log, 2)  # 5-6: visible to read_uncommitted, not yet to read_committed
    lso = log.last_stable_offset
    assert lso == 3
    committed = [r.offset for r in iter_records(log.read(0, 1 << 20, max_offset=lso))]
    assert committed == [0, 1, 2]
    assert log.read(3, 1 << 20, max_offset=lso) == b""
    assert [r.offset for r in iter_records(log.read(0, 1 << 20))] == list(range(7))


def test_abort_writes_a_kafka_format_txnindex_entry(open_log: OpenLog) -> None:
    log = open_log()
    plain(log)  # 0
    first, _ = txn(log, 5, 3)  # 1-3
    marker = log.append_control(5, 0, False, 4)
    assert marker.base_offset == 4
    assert txnindex_entries(log) == [(0, 5, 1, 4, 5)]  # version, pid, first, last, LSO after the marker
    assert log.segments[-1].txn_index.entries == [AbortedTxn(5, 1, 4, 5)]


def test_abort_entry_records_the_lso_held_back_by_another_transaction(open_log: OpenLog) -> None:
    log = open_log()
    txn(log, 1)  # 0-1
    txn(log, 2)  # 2-3
    log.append_control(2, 0, False, 0)  # 4
    assert txnindex_entries(log) == [(0, 2, 2, 4, 0)]
    log.append_control(1, 0, False, 0)  # 5
    assert txnindex_entries(log)[1] == (0, 1, 0, 5, 6)


def test_commit_and_markers_without_a_transaction_leave_no_entry(open_log: OpenLog) -> None:
    log = open_log()
    txn(log, 1)
    log.append_control(1, 0, True, 0)
    end = log.log_end_offset
    info = log.append_control(9, 0, False, 0)  # producer 9 never wrote here: Kafka still writes it
    assert info.base_offset == end and log.log_end_offset == end + 1
    assert txnindex_entries(log) == []
    assert not list(log.directory.glob("*.txnindex"))
    assert log.last_stable_offset == log.log_end_offset


def test_marker_bytes_are_a_kafka_control_batch(open_log: OpenLog, clock: Clock) -> None:
    log = open_log()
    txn(log, 3, epoch=2)
    info = log.append_control(3, 2, True, 17)
    data = log.read(info.base_offset, 1 << 20)
    [(pos, h)] = list(iter_batches(data))
    assert (h.magic, h.attributes, h.compression) == (2, 0x30, 0)
    assert (h.producer_id, h.producer_epoch, h.base_sequence, h.records_count) == (3, 2, -1, 1)
    assert h.base_offset == info.base_offset and h.max_timestamp == clock.now
    [rec] = list(iter_records(data))
    assert rec.key == b"\x00\x00\x00\x01"  # version 0, COMMIT
    assert rec.value == struct.pack(">hi", 0, 17)
    marker = decode_end_txn_marker(data, pos, h)
    assert marker is not None and marker.commit and marker.coordinator_epoch == 17
    abort = log.append_control(3, 2, False, 17)
    [rec] = list(iter_records(log.read(abort.base_offset, 1 << 20)))
    assert rec.key == b"\x00\x00\x00\x00"


def test_aborted_transactions_overlapping_a_fetch_range(open_log: OpenLog) -> None:
    log = open_log()
    a = txn(log, 1)  # 0-1
    log.append_control(1, 0, False, 0)  # 2
    plain(log)  # 3
    b = txn(log, 2)  # 4-5
    c = txn(log, 3)  # 6-7
    log.append_control(2, 0, False, 0)  # 8
    log.append_control(3, 0, True, 0)  # 9 (committed: not listed)
    d = txn(log, 4)  # 10-11
    log.append_control(4, 0, False, 0)  # 12
    assert (a, b, c, d) == ((0, 1), (4, 5), (6, 7), (10, 11))

    def pids(lo: int, hi: int) -> list[tuple[int, int]]:
        return [(t.producer_id, t.first_offset) for t in log.aborted_transactions(lo, hi)]

    end = log.log_end_offset
    assert pids(0, end) == [(1, 0), (2, 4), (4, 10)]
    assert pids(0, 1) == [(1, 0)]
    assert pids(2, 4) == [(1, 0)]  # the marker of txn 1 is at 2: still overlaps
    assert pids(3, 4) == []
    assert pids(3, 5) == [(2, 4)]
    assert pids(9, 10) == []
    assert pids(9, 11) == [(4, 10)]
    assert pids(13, 13) == []


def test_aborted_transactions_span_segments(open_log: OpenLog) -> None:
    log = open_log()
    txn(log, 1)  # 0-1, its abort marker lands in a later segment
    log.roll()
    plain(log)  # 2
    txn(log, 2)  # 3-4
    log.roll()
    log.append_control(2, 0, False, 0)  # 5
    log.append_control(1, 0, False, 0)  # 6
    assert len(log.segments) == 3
    assert [(t.producer_id, t.first_offset) for t in log.aborted_transactions(0, 2)] == [(1, 0)]
    assert [(t.producer_id, t.first_offset) for t in log.aborted_transactions(2, 3)] == [(1, 0)]
    assert [(t.producer_id, t.first_offset) for t in log.aborted_transactions(3, 7)] == [(2, 3), (1, 0)]
    assert [p.name for p in log.directory.glob("*.txnindex")] == [f"{5:020d}.txnindex"]


def test_non_transactional_write_during_a_transaction_is_invalid_txn_state(open_log: OpenLog) -> None:
    log = open_log()
    txn(log, 1)
    with pytest.raises(InvalidTxnStateError) as exc:
        log.append(build_batch([(None, b"x")], producer_id=1, producer_epoch=0, base_sequence=2))
    assert exc.value.error_code == 48
    log.append_control(1, 0, True, 0)
    log.append(build_batch([(None, b"x")], producer_id=1, producer_epoch=0, base_sequence=2))


def test_marker_epochs(open_log: OpenLog) -> None:
    log = open_log()
    txn(log, 1, epoch=3)
    with pytest.raises(InvalidProducerEpochError):
        log.append_control(1, 2, False, 0)
    assert log.last_stable_offset == 0
    # the coordinator fences with a bumped epoch: accepted, and the old epoch is now stale
    log.append_control(1, 4, False, 5)
    assert log.last_stable_offset == log.log_end_offset
    with pytest.raises(InvalidProducerEpochError):
        log.append(build_batch([(None, b"z")], producer_id=1, producer_epoch=3, base_sequence=2,
                               is_transactional=True))
    with pytest.raises(TransactionCoordinatorFencedError) as fenced:
        log.append_control(1, 4, True, 4)
    assert fenced.value.error_code == 52
    with pytest.raises(OutOfOrderSequenceError):  # new epoch without earlier batches
        log.append(build_batch([(None, b"z")], producer_id=1, producer_epoch=5, base_sequence=7,
                               is_transactional=True))
    log.append(build_batch([(None, b"z")], producer_id=1, producer_epoch=4, base_sequence=0, is_transactional=True))
    [view] = log.describe_producers()
    assert (view.producer_id, view.producer_epoch, view.last_sequence, view.coordinator_epoch,
            view.current_txn_start_offset) == (1, 4, 0, 5, log.log_end_offset - 1)


def test_describe_producers(open_log: OpenLog, clock: Clock) -> None:
    log = open_log()
    txn(log, 1, 3)
    plain(log)
    log.append(build_batch([(None, b"i")], producer_id=2, producer_epoch=1, base_sequence=0, timestamp_ms=5))
    views = {v.producer_id: v for v in log.describe_producers()}
    assert (views[1].producer_epoch, views[1].last_sequence, views[1].current_txn_start_offset) == (0, 2, 0)
    assert (views[2].last_sequence, views[2].last_timestamp, views[2].current_txn_start_offset) == (0, 5, -1)
    assert views[1].coordinator_epoch == -1
    log.append_control(1, 0, True, 2)
    views = {v.producer_id: v for v in log.describe_producers()}
    assert (views[1].current_txn_start_offset, views[1].coordinator_epoch, views[1].last_timestamp) == (
        -1, 2, clock.now)


def test_expiry_keeps_producers_with_an_open_transaction(open_log: OpenLog, clock: Clock) -> None:
    log = open_log(producer_id_expiration_ms=1000)
    txn(log, 1)
    log.append(build_batch([(None, b"i")], producer_id=2, producer_epoch=0, base_sequence=0))
    assert log.expire_producers(clock.now + 10_000 + 2**40) == 1
    assert set(log.producer_state.producers) == {1}
    assert log.last_stable_offset == 0


def test_retention_deletes_the_txnindex_with_its_segment_and_clamps_the_lso(open_log: OpenLog) -> None:
    log = open_log()
    txn(log, 1)  # 0-1: left open
    txn(log, 2)  # 2-3
    log.append_control(2, 0, False, 0)  # 4
    log.roll()
    plain(log)  # 5
    assert len(list(log.directory.glob("*.txnindex"))) == 1
    log.delete_records_before(5)
    assert not list(log.directory.glob("*.txnindex"))
    assert log.log_start_offset == 5
    assert log.last_stable_offset == 5  # producer 1's transaction began below the log start
    assert log.aborted_transactions(5, 6) == []
