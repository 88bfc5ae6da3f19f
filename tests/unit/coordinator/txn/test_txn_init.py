"""InitProducerId: new ids, epoch bumps, fencing an ongoing transaction, KIP-360 retries,
epoch exhaustion, and the error codes (checked against kio)."""

from __future__ import annotations

import pytest

from suoi.coordinator.records import java_string_hash
from suoi.coordinator.txn import (
    MAX_PRODUCER_EPOCH,
    PersistTxn,
    Reply,
    TxnConfig,
    TxnSnapshot,
    WriteMarkers,
    for_version,
    txn_partition_for,
)
from suoi.model import ErrorCode

from .txn_helpers import TID, TIMEOUT, Harness, tp


@pytest.mark.parametrize(
    ("api", "old", "new"),
    [("InitProducerId", 3, 4), ("AddPartitionsToTxn", 1, 2), ("AddOffsetsToTxn", 1, 2), ("EndTxn", 1, 2)],
)
def test_producer_fenced_maps_to_invalid_producer_epoch_for_old_versions(api: str, old: int, new: int) -> None:
    assert for_version(api, old, ErrorCode.producer_fenced) == ErrorCode.invalid_producer_epoch
    assert for_version(api, new, ErrorCode.producer_fenced) == ErrorCode.producer_fenced
    assert for_version(api, 0, ErrorCode.concurrent_transactions) == ErrorCode.concurrent_transactions


def test_txn_partition_is_kafkas() -> None:
    assert java_string_hash("a") == 97
    assert txn_partition_for("a") == 97 % 50
    assert txn_partition_for("a", 10) == 7
    neg = next(s for s in (f"tx-{i}" for i in range(1000)) if java_string_hash(s) < 0)
    assert txn_partition_for(neg) == abs(java_string_hash(neg)) % 50


def test_new_id_gets_a_producer_id_and_epoch_0_after_persisting() -> None:
    h = Harness()
    r = h.init()
    assert (r.error_code, r.producer_id, r.producer_epoch) == (0, 1000, 0)
    assert isinstance(h.last[0], PersistTxn) and isinstance(h.last[1], Reply)
    snap = h.persisted[TID]
    assert snap is not None and snap.state == "Empty" and snap.producer_epoch == 0 and snap.timeout_ms == TIMEOUT
    assert h.state() == "Empty"


def test_reinit_bumps_the_epoch_of_the_same_producer_id() -> None:
    h = Harness()
    h.init()
    r = h.init(timeout=5_000)
    assert (r.error_code, r.producer_id, r.producer_epoch) == (0, 1000, 1)
    md = h.m.metadata(TID)
    assert md is not None and md.timeout_ms == 5_000 and md.last_producer_epoch == -1


def test_reinit_after_complete_commit_bumps() -> None:
    h = Harness()
    pid, e = h.ready()
    h.add(pid, e)
    h.end(pid, e)
    h.written()
    r = h.init()
    assert (r.error_code, r.producer_id, r.producer_epoch) == (0, pid, e + 1)


@pytest.mark.parametrize("timeout", [0, -1, 900_001])
def test_invalid_transaction_timeout(timeout: int) -> None:
    h = Harness()
    assert h.init(timeout=timeout).error_code == ErrorCode.invalid_transaction_timeout
    assert h.m.metadata(TID) is None and not h.last[:-1]


def test_max_timeout_is_configurable() -> None:
    h = Harness(TxnConfig(max_timeout_ms=1_000))
    assert h.init(timeout=1_001).error_code == ErrorCode.invalid_transaction_timeout
    assert h.init(timeout=1_000).error_code == ErrorCode.none


def test_empty_transactional_id_and_half_given_producer_are_invalid_requests() -> None:
    h = Harness()
    assert h.init(tid="").error_code == ErrorCode.invalid_request
    assert h.init(pid=5).error_code == ErrorCode.invalid_request
    assert h.init(epoch=5).error_code == ErrorCode.invalid_request


def test_idempotent_producer_without_transactional_id() -> None:
    h = Harness()
    r1, r2 = h.init(tid=None), h.init(tid=None)
    assert (r1.error_code, r1.producer_epoch, r2.producer_epoch) == (0, 0, 0)
    assert r1.producer_id != r2.producer_id
    assert h.persisted == {} and h.m.transactional_ids() == []


def test_init_while_preparing_is_concurrent_transactions() -> None:
    h = Harness()
    pid, e = h.ready()
    h.add(pid, e)
    h.end(pid, e, commit=True)
    assert h.init().error_code == ErrorCode.concurrent_transactions
    assert h.state() == "PrepareCommit" and h.persists() == [] and h.emitted_markers() == []
    h.written()
    r = h.init()
    assert (r.error_code, r.producer_epoch) == (0, e + 1)


def test_init_during_ongoing_fences_aborts_and_answers_concurrent_transactions() -> None:
    h = Harness()
    pid, e = h.ready()
    h.add(pid, e, tp("a", 0), tp("b", 1))
    r = h.init()
    assert r.error_code == ErrorCode.concurrent_transactions and r.producer_id == -1
    persist, reply, markers = h.last
    assert isinstance(persist, PersistTxn) and isinstance(reply, Reply) and isinstance(markers, WriteMarkers)
    assert persist.snapshot is not None and persist.snapshot.state == "PrepareAbort"
    assert persist.snapshot.producer_epoch == e + 1
    assert markers == WriteMarkers(transactional_id=TID, producer_id=pid, producer_epoch=e + 1, commit=False,
                                   partitions=(tp("a", 0), tp("b", 1)), coordinator_epoch=3)
    # the zombie is fenced
    assert h.add(pid, e, tp("c")).error_code == ErrorCode.producer_fenced
    assert h.end(pid, e).error_code == ErrorCode.producer_fenced
    # the new producer retries until the abort completes
    assert h.init().error_code == ErrorCode.concurrent_transactions
    assert h.emitted_markers() == []
    h.written()
    assert h.state() == "CompleteAbort"
    r = h.init()
    assert (r.error_code, r.producer_id, r.producer_epoch) == (0, pid, e + 2)
    assert h.end(pid, e + 1, commit=False).error_code == ErrorCode.producer_fenced


# ------------------------------------------------------------------------- KIP-360 retries


def test_kip360_bump_with_current_epoch_and_retry_returns_the_same() -> None:
    h = Harness()
    pid, e = h.ready()
    r = h.init(pid=pid, epoch=e)
    assert (r.error_code, r.producer_id, r.producer_epoch) == (0, pid, e + 1)
    md = h.m.metadata(TID)
    assert md is not None and md.last_producer_epoch == e
    persisted_before = len(h.persisted)
    r2 = h.init(pid=pid, epoch=e)  # the response was lost: same answer, no second bump
    assert (r2.error_code, r2.producer_id, r2.producer_epoch) == (0, pid, e + 1)
    assert len(h.persisted) == persisted_before
    # a producer that re-initialised without its epoch forgets the last epoch
    h.init()
    assert h.init(pid=pid, epoch=e).error_code == ErrorCode.producer_fenced


def test_kip360_stale_epoch_or_unknown_producer_id_is_fenced() -> None:
    h = Harness()
    pid, _ = h.ready()
    h.init()
    h.init()  # epoch 2
    assert h.init(pid=pid, epoch=0).error_code == ErrorCode.producer_fenced
    assert h.init(pid=pid + 77, epoch=2).error_code == ErrorCode.producer_fenced
    md = h.m.metadata(TID)
    assert md is not None and md.producer_epoch == 2


def test_kip360_new_id_with_a_producer_is_accepted() -> None:
    # a producer recovering from UNKNOWN_PRODUCER_ID on a coordinator that never saw the id
    h = Harness()
    r = h.init(pid=42, epoch=7)
    assert (r.error_code, r.producer_id, r.producer_epoch) == (0, 1000, 0)


# -------------------------------------------------------------------------- epoch exhaustion


def _exhausted(h: Harness, epoch: int = MAX_PRODUCER_EPOCH - 1, state: str = "Empty") -> None:
    h.record(h.m.restore(TxnSnapshot(transactional_id=TID, producer_id=7, last_producer_id=7, producer_epoch=epoch,
                                      last_producer_epoch=-1, timeout_ms=TIMEOUT, state=state, last_update_ms=h.now),
                         h.now))


def test_epoch_overflow_allocates_a_new_producer_id() -> None:
    h = Harness()
    _exhausted(h, MAX_PRODUCER_EPOCH - 2)
    r = h.init()
    assert (r.producer_id, r.producer_epoch) == (7, MAX_PRODUCER_EPOCH - 1)  # the last usable epoch
    r = h.init()
    assert (r.error_code, r.producer_id, r.producer_epoch) == (0, 1000, 0)
    md = h.m.metadata(TID)
    assert md is not None and md.last_producer_id == 7 and md.last_producer_epoch == -1


def test_epoch_overflow_with_kip360_retry_across_the_rotation() -> None:
    h = Harness()
    _exhausted(h)
    r = h.init(pid=7, epoch=MAX_PRODUCER_EPOCH - 1)
    assert (r.error_code, r.producer_id, r.producer_epoch) == (0, 1000, 0)
    r = h.init(pid=7, epoch=MAX_PRODUCER_EPOCH - 1)  # retry: same answer
    assert (r.error_code, r.producer_id, r.producer_epoch) == (0, 1000, 0)


def test_fencing_at_the_last_epoch_then_rotation() -> None:
    h = Harness()
    _exhausted(h)
    e = MAX_PRODUCER_EPOCH - 1
    assert h.add(7, e).error_code == 0
    assert h.init().error_code == ErrorCode.concurrent_transactions
    assert h.emitted_markers()[0].producer_epoch == MAX_PRODUCER_EPOCH
    h.written()
    r = h.init()
    assert (r.error_code, r.producer_id, r.producer_epoch) == (0, 1000, 0)
