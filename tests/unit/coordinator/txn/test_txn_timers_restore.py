"""Transaction timeouts, transactional-id expiration, restore on load, snapshots,
DescribeTransactions and ListTransactions."""

from __future__ import annotations

import json

import pytest

from suoi.coordinator.txn import (
    PersistTxn,
    TopicPartitions,
    TxnConfig,
    TxnListing,
    TxnSnapshot,
    WriteMarkers,
)
from suoi.model import ErrorCode

from .txn_helpers import TID, TIMEOUT, Harness, tp

DAY = 86_400_000


# ----------------------------------------------------------------------------------- timeouts


def test_ongoing_transaction_past_its_timeout_is_fenced_and_aborted() -> None:
    h = Harness()
    pid, e = h.ready()
    start = h.now
    h.add(pid, e, tp("a"))
    assert h.m.next_deadline() == start + TIMEOUT + 1
    assert h.advance(TIMEOUT) == []  # exactly at the timeout: not yet longer than it
    out = h.advance(1)
    persist, markers = out
    assert isinstance(persist, PersistTxn) and persist.snapshot is not None
    assert persist.snapshot.state == "PrepareAbort" and persist.snapshot.producer_epoch == e + 1
    assert markers == WriteMarkers(transactional_id=TID, producer_id=pid, producer_epoch=e + 1, commit=False,
                                   partitions=(tp("a"),), coordinator_epoch=3)
    assert h.end(pid, e).error_code == ErrorCode.producer_fenced
    assert h.add(pid, e, tp("b")).error_code == ErrorCode.producer_fenced
    h.written()
    assert h.state() == "CompleteAbort"
    assert h.advance(10 * TIMEOUT) == []
    r = h.init()
    assert (r.error_code, r.producer_epoch) == (0, e + 2)


def test_completed_transaction_is_not_timed_out() -> None:
    h = Harness()
    pid, e = h.ready()
    h.add(pid, e)
    h.end(pid, e)
    assert h.advance(2 * TIMEOUT) == []
    assert h.state() == "PrepareCommit"


def test_timeout_counts_from_the_start_of_the_transaction_not_the_last_add() -> None:
    h = Harness()
    pid, e = h.ready()
    h.add(pid, e, tp("a"))
    h.advance(TIMEOUT - 1)
    h.add(pid, e, tp("b"))
    assert len(h.advance(2)) == 2


# --------------------------------------------------------------------------------- expiration


def test_idle_transactional_id_expires_with_a_tombstone() -> None:
    h = Harness(TxnConfig(id_expiration_ms=DAY))
    pid, e = h.ready()
    assert h.advance(DAY - 1) == []
    out = h.advance(1)
    assert out == [PersistTxn(TID, None)]
    assert h.m.metadata(TID) is None
    assert h.m.describe([TID])[0].error_code == ErrorCode.transactional_id_not_found
    assert h.add(pid, e).error_code == ErrorCode.invalid_producer_id_mapping
    r = h.init()
    assert r.producer_id != pid and r.producer_epoch == 0


def test_activity_postpones_expiration_and_open_transactions_never_expire() -> None:
    h = Harness(TxnConfig(id_expiration_ms=DAY, max_timeout_ms=3 * DAY))
    r = h.init(timeout=3 * DAY)  # long enough that the transaction stays open
    pid, e = r.producer_id, r.producer_epoch
    h.advance(DAY // 2)
    h.add(pid, e)
    assert h.advance(2 * DAY) == [] and h.state() == "Ongoing"
    h.end(pid, e)
    assert h.advance(2 * DAY) == [] and h.state() == "PrepareCommit"
    h.written()
    done = h.now
    assert h.advance(DAY - 1) == []
    assert h.advance(1) == [PersistTxn(TID, None)]
    assert h.now == done + DAY


# ------------------------------------------------------------------------------------ restore


def snap(state: str, **kw: object) -> TxnSnapshot:
    fields: dict = dict(transactional_id=TID, producer_id=55, last_producer_id=55, producer_epoch=4,
                        last_producer_epoch=-1, timeout_ms=TIMEOUT, state=state, partitions=(tp("a"), tp("b", 3)),
                        txn_start_ms=500, last_update_ms=900)
    fields.update(kw)
    return TxnSnapshot(**fields)


@pytest.mark.parametrize("state", ["PrepareCommit", "PrepareAbort"])
def test_restore_of_a_preparing_transaction_re_emits_its_markers(state: str) -> None:
    h = Harness()
    out = h.record(h.m.restore(snap(state), h.now))
    assert out == [WriteMarkers(transactional_id=TID, producer_id=55, producer_epoch=4,
                                commit=state == "PrepareCommit", partitions=(tp("a"), tp("b", 3)),
                                coordinator_epoch=3)]
    assert h.init().error_code == ErrorCode.concurrent_transactions
    h.written()
    assert h.state() == state.replace("Prepare", "Complete")
    assert h.end(55, 4, commit=state == "PrepareCommit").error_code == ErrorCode.none


def test_restore_of_an_ongoing_transaction_keeps_its_timeout() -> None:
    h = Harness(now=10_000)
    assert h.m.restore(snap("Ongoing"), h.now) == []
    assert h.m.next_deadline() == 500 + TIMEOUT + 1
    assert h.add(55, 4, tp("c")).error_code == 0
    out = h.advance(500 + TIMEOUT + 1 - h.now)
    assert [type(o) for o in out] == [PersistTxn, WriteMarkers]
    assert out[1].partitions == (tp("a"), tp("b", 3), tp("c"))  # type: ignore[union-attr]


def test_restore_of_completed_and_empty_then_continue() -> None:
    h = Harness()
    assert h.m.restore(snap("CompleteCommit", partitions=()), h.now) == []
    r = h.init(pid=55, epoch=4)
    assert (r.error_code, r.producer_id, r.producer_epoch) == (0, 55, 5)
    h.m.unload([TID])
    assert h.m.metadata(TID) is None and h.m.next_deadline() is None


def test_restore_replaces_and_refuses_transient_states() -> None:
    h = Harness()
    h.m.restore(snap("Ongoing"), h.now)
    h.m.restore(snap("Empty", partitions=(), txn_start_ms=-1), h.now)
    assert h.state() == "Empty"
    for bad in ("PrepareEpochFence", "Dead", "Bogus"):
        with pytest.raises(ValueError, match="cannot load"):
            h.m.restore(snap(bad), h.now)


def test_snapshot_round_trips_through_json() -> None:
    s = snap("PrepareAbort")
    assert TxnSnapshot.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_persisted_snapshot_restores_the_same_machine_state() -> None:
    h = Harness()
    pid, e = h.ready()
    h.add(pid, e, tp("x", 1), tp("y", 2))
    last = h.persisted[TID]
    assert last is not None
    h2 = Harness()
    h2.m.restore(TxnSnapshot.from_dict(last.to_dict()), h.now)
    assert h2.m.snapshot(TID) == h.m.snapshot(TID) == last


# --------------------------------------------------------------------------- describe / list


def test_describe() -> None:
    h = Harness()
    pid, e = h.ready()
    h.now = 2_000
    h.add(pid, e, tp("b", 1), tp("a", 2), tp("a", 0))
    ok, missing, empty = h.m.describe([TID, "nope", ""])
    assert ok.error_code == 0 and ok.state == "Ongoing" and ok.producer_id == pid and ok.producer_epoch == e
    assert ok.transaction_timeout_ms == TIMEOUT and ok.transaction_start_time_ms == 2_000
    assert ok.topics == (TopicPartitions(topic="a", partitions=(0, 2)), TopicPartitions(topic="b", partitions=(1,)))
    assert missing.error_code == ErrorCode.transactional_id_not_found
    assert empty.error_code == ErrorCode.invalid_request


def test_list_transactions_with_filters() -> None:
    h = Harness()
    p1, e1 = h.ready("t1")
    p2, e2 = h.ready("t2")
    h.ready("t3")
    h.now = 10_000
    h.add(p1, e1, tid="t1")
    h.now = 20_000
    h.add(p2, e2, tid="t2")
    h.end(p2, e2, tid="t2")
    every = h.m.list_transactions()
    assert [(t.transactional_id, t.state) for t in every.transactions] == [
        ("t1", "Ongoing"), ("t2", "PrepareCommit"), ("t3", "Empty")]
    r = h.m.list_transactions(["Ongoing", "PrepareCommit", "Nonsense"])
    assert [t.transactional_id for t in r.transactions] == ["t1", "t2"]
    assert r.unknown_state_filters == ("Nonsense",)
    assert h.m.list_transactions(producer_id_filters=[p2]).transactions == (
        TxnListing(transactional_id="t2", producer_id=p2, state="PrepareCommit"),)
    long_running = h.m.list_transactions(["Ongoing", "PrepareCommit"], duration_filter_ms=15_000, now_ms=30_000)
    assert [t.transactional_id for t in long_running.transactions] == ["t1"]
    with pytest.raises(ValueError):
        h.m.list_transactions(duration_filter_ms=0)
