"""Idempotent producer bookkeeping: duplicates, sequence gaps, epochs, snapshots."""

from __future__ import annotations

import pytest

from suoi.log.producer_state import (
    InvalidProducerEpochError,
    OutOfOrderSequenceError,
    ProducerStateManager,
)
from suoi.protocol.records import build_batch, parse_batch_header


def header(pid: int, epoch: int, seq: int, count: int = 2):  # type: ignore[no-untyped-def]
    from suoi.protocol.records import SimpleRecord

    recs = [SimpleRecord(key=None, value=b"v%d" % i) for i in range(count)]
    try:
        data = build_batch(recs, producer_id=pid, producer_epoch=epoch, base_sequence=seq)
    except TypeError:
        data = build_batch([(None, b"v%d" % i) for i in range(count)],  # type: ignore[arg-type]
                           producer_id=pid, producer_epoch=epoch, base_sequence=seq)
    return parse_batch_header(data, 0)


def test_retry_of_a_recent_batch_is_a_duplicate_with_its_offsets() -> None:
    psm = ProducerStateManager()
    for i in range(6):
        h = header(7, 0, i * 2)
        assert psm.check(h) is None
        psm.update(h, 100 + i * 2, 101 + i * 2, 1000)
    dup = psm.check(header(7, 0, 10))
    assert dup is not None and (dup.first_offset, dup.last_offset) == (110, 111)
    # only the last five batches are remembered; the first is out of the window
    with pytest.raises(OutOfOrderSequenceError):
        psm.check(header(7, 0, 0))


def test_gap_in_sequence_is_out_of_order() -> None:
    psm = ProducerStateManager()
    h = header(1, 0, 0)
    psm.update(h, 0, 1, 1)
    with pytest.raises(OutOfOrderSequenceError):
        psm.check(header(1, 0, 5))
    assert psm.check(header(1, 0, 2)) is None


def test_old_epoch_is_fenced_and_new_epoch_restarts_at_zero() -> None:
    psm = ProducerStateManager()
    psm.update(header(1, 3, 0), 0, 1, 1)
    with pytest.raises(InvalidProducerEpochError):
        psm.check(header(1, 2, 2))
    with pytest.raises(OutOfOrderSequenceError):
        psm.check(header(1, 4, 9))
    assert psm.check(header(1, 4, 0)) is None


def test_unknown_producer_accepts_any_sequence_and_untracked_batches_pass() -> None:
    psm = ProducerStateManager()
    assert psm.check(header(99, 0, 1234)) is None
    assert psm.check(header(-1, -1, -1)) is None


def test_snapshot_restore_and_expiry() -> None:
    psm = ProducerStateManager(expiration_ms=1000)
    psm.update(header(5, 1, 0), 10, 11, 500)
    psm.update(header(6, 0, 0), 12, 13, 2000)
    other = ProducerStateManager(expiration_ms=1000)
    other.restore(psm.snapshot())
    dup = other.check(header(5, 1, 0))
    assert dup is not None and dup.first_offset == 10
    assert other.expire(now_ms=2200) == 1
    assert set(other.producers) == {6}
    other.truncate_to(14)
    assert other.producers == {}
