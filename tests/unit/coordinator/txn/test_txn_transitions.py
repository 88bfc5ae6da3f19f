"""AddPartitionsToTxn, AddOffsetsToTxn, EndTxn and marker completion: each transition and
each error code."""

from __future__ import annotations

import pytest

from suoi.coordinator.txn import AddPartitionsResult, IllegalTransition, PersistTxn, Reply, TxnState, WriteMarkers
from suoi.coordinator.txn.state import VALID_PREVIOUS, TxnMetadata
from suoi.model import ErrorCode

from .txn_helpers import TID, Harness, tp


def ongoing(h: Harness, *tps: object) -> tuple[int, int]:
    pid, e = h.ready()
    assert h.add(pid, e, *(tps or (tp(),))).error_code == 0  # type: ignore[arg-type]
    return pid, e


# ---------------------------------------------------------------------- AddPartitionsToTxn


def test_add_partitions_starts_the_transaction() -> None:
    h = Harness()
    pid, e = h.ready()
    h.now = 5_000
    r = h.add(pid, e, tp("a", 0), tp("a", 1))
    assert r == AddPartitionsResult(error_code=0, results=((tp("a", 0), 0), (tp("a", 1), 0)))
    assert isinstance(h.last[0], PersistTxn) and isinstance(h.last[1], Reply)
    snap = h.persisted[TID]
    assert snap is not None and snap.state == "Ongoing" and snap.txn_start_ms == 5_000
    assert snap.partitions == (tp("a", 0), tp("a", 1))
    h.now = 6_000
    h.add(pid, e, tp("b", 0))
    snap = h.persisted[TID]
    assert snap is not None and snap.txn_start_ms == 5_000 and snap.last_update_ms == 6_000
    assert snap.partitions == (tp("a", 0), tp("a", 1), tp("b", 0))


def test_adding_known_partitions_answers_at_once_without_persisting() -> None:
    h = Harness()
    pid, e = ongoing(h, tp("a", 0), tp("a", 1))
    r = h.add(pid, e, tp("a", 1))
    assert r.error_code == 0 and h.last == [h.last[0]] and isinstance(h.last[0], Reply)


def test_add_partitions_errors() -> None:
    h = Harness()
    assert h.add(1, 0, tid="nope").error_code == ErrorCode.invalid_producer_id_mapping
    pid, e = h.ready()
    r = h.add(pid + 1, e, tp("a"), tp("b"))
    assert r.error_code == ErrorCode.invalid_producer_id_mapping
    assert r.results == ((tp("a"), ErrorCode.invalid_producer_id_mapping), (tp("b"), ErrorCode.invalid_producer_id_mapping))
    assert h.add(pid, e + 1).error_code == ErrorCode.producer_fenced
    assert h.add(pid, e - 1).error_code == ErrorCode.producer_fenced
    assert h.add(pid, e, tid="").error_code == ErrorCode.invalid_request
    assert h.state() == "Empty"
    h.add(pid, e)
    h.end(pid, e)
    assert h.add(pid, e, tp("z")).error_code == ErrorCode.concurrent_transactions
    h.written()
    h.add(pid, e)  # a new transaction after CompleteCommit
    h.end(pid, e, commit=False)
    assert h.add(pid, e, tp("z")).error_code == ErrorCode.concurrent_transactions


def test_add_after_complete_starts_a_new_transaction_with_a_new_start_time() -> None:
    h = Harness()
    pid, e = ongoing(h)
    h.end(pid, e)
    h.written()
    h.now += 10
    h.add(pid, e, tp("x"))
    md = h.m.metadata(TID)
    assert md is not None and md.state is TxnState.ONGOING and md.txn_start_ms == h.now
    assert md.partitions == {tp("x")}


def test_add_offsets_adds_the_offsets_partition() -> None:
    h = Harness()
    pid, e = h.ready()
    r = h.offsets(pid, e, partition=12)
    assert r.error_code == 0
    md = h.m.metadata(TID)
    assert md is not None and md.state is TxnState.ONGOING and md.partitions == {tp("__consumer_offsets", 12)}
    assert h.offsets(pid, e, partition=12).error_code == 0 and len(h.last) == 1
    assert h.offsets(pid, e + 1).error_code == ErrorCode.producer_fenced
    assert h.offsets(pid + 1, e).error_code == ErrorCode.invalid_producer_id_mapping
    assert h.offsets(pid, e, tid="other").error_code == ErrorCode.invalid_producer_id_mapping
    h.end(pid, e)
    assert h.offsets(pid, e).error_code == ErrorCode.concurrent_transactions
    assert h.emitted_markers() == []
    assert h.markers[-1].partitions == (tp("__consumer_offsets", 12),)


# ----------------------------------------------------------------------------------- EndTxn


@pytest.mark.parametrize("commit", [True, False])
def test_end_txn_prepares_persists_replies_then_writes_markers(commit: bool) -> None:
    h = Harness()
    pid, e = ongoing(h, tp("b", 2), tp("a", 1))
    r = h.end(pid, e, commit=commit)
    assert r.error_code == 0
    persist, reply, markers = h.last
    assert isinstance(persist, PersistTxn) and isinstance(reply, Reply)
    assert persist.snapshot is not None and persist.snapshot.state == ("PrepareCommit" if commit else "PrepareAbort")
    assert markers == WriteMarkers(transactional_id=TID, producer_id=pid, producer_epoch=e, commit=commit,
                                   partitions=(tp("a", 1), tp("b", 2)), coordinator_epoch=3)
    out = h.written()
    assert len(out) == 1 and isinstance(out[0], PersistTxn) and out[0].snapshot is not None
    assert out[0].snapshot.state == ("CompleteCommit" if commit else "CompleteAbort")
    assert out[0].snapshot.partitions == () and out[0].snapshot.producer_epoch == e
    md = h.m.metadata(TID)
    assert md is not None and not md.partitions


# (state reached, commit asked) -> expected code
END_TABLE = [
    ("Empty", True, ErrorCode.invalid_txn_state),
    ("Empty", False, ErrorCode.none),  # nothing open: aborting nothing succeeds
    ("PrepareCommit", True, ErrorCode.concurrent_transactions),
    ("PrepareCommit", False, ErrorCode.invalid_txn_state),
    ("PrepareAbort", True, ErrorCode.invalid_txn_state),
    ("PrepareAbort", False, ErrorCode.concurrent_transactions),
    ("CompleteCommit", True, ErrorCode.none),
    ("CompleteCommit", False, ErrorCode.invalid_txn_state),
    ("CompleteAbort", True, ErrorCode.invalid_txn_state),
    ("CompleteAbort", False, ErrorCode.none),
]


@pytest.mark.parametrize(("state", "commit", "code"), END_TABLE)
def test_end_txn_retries_and_invalid_states(state: str, commit: bool, code: ErrorCode) -> None:
    h = Harness()
    pid, e = h.ready()
    if state != "Empty":
        h.add(pid, e)
        h.end(pid, e, commit=state.endswith("Commit"))
        if state.startswith("Complete"):
            h.written()
    assert h.state() == state
    n_markers = len(h.markers)
    assert h.end(pid, e, commit=commit).error_code == code
    assert len(h.last) == 1 and h.state() == state and len(h.markers) == n_markers


@pytest.mark.parametrize("offsets", [False, True])
def test_abort_after_a_refused_add_aborts_the_empty_next_transaction(offsets: bool) -> None:
    """librdkafka's sequence in the e2e flake (a leader just back from a restart made the
    COMMIT markers slow): commit answered, next transaction's AddPartitionsToTxn (or
    AddOffsetsToTxn) refused with CONCURRENT_TRANSACTIONS while the markers are written, then
    abort_transaction(): librdkafka sends EndTxn(abort) because it *sent* an add, and a fatal
    INVALID_TXN_STATE killed the producer. Nothing of that next transaction is here, so the
    abort succeeds; the commit's markers and outcome are untouched."""
    h = Harness()
    pid, e = ongoing(h, tp("a", 0))
    assert h.end(pid, e).error_code == 0
    n_markers = len(h.markers)
    refused = h.offsets(pid, e) if offsets else h.add(pid, e, tp("a", 1))
    assert refused.error_code == ErrorCode.concurrent_transactions
    assert h.end(pid, e, commit=False).error_code == ErrorCode.none
    assert h.last == [h.last[0]] and h.state() == "PrepareCommit" and len(h.markers) == n_markers
    assert h.persisted[TID] is not None and h.persisted[TID].state == "PrepareCommit"  # type: ignore[union-attr]
    h.written()
    assert h.state() == "CompleteCommit"
    assert h.end(pid, e, commit=False).error_code == ErrorCode.none  # a retry of that abort
    assert h.state() == "CompleteCommit" and len(h.last) == 1
    # the producer carries on: a transaction that adds partitions is a real one again
    assert h.add(pid, e, tp("a", 2)).error_code == 0
    assert h.end(pid, e).error_code == 0
    assert h.end(pid, e, commit=False).error_code == ErrorCode.invalid_txn_state
    h.written()
    assert h.end(pid, e, commit=False).error_code == ErrorCode.invalid_txn_state


def test_a_refused_add_is_written_to_the_transaction_log() -> None:
    """Why a new coordinator (after a move) can apply the rule above: the first refused add
    writes the record again with `next_txn_refused` (suoi's field; Kafka persists nothing for
    CONCURRENT_TRANSACTIONS), so "abort of the empty next transaction" and "abort of the
    transaction that committed" leave different records, and a coordinator restored from them
    answers NONE and Kafka's INVALID_TXN_STATE respectively."""
    runs = []
    for refused_add in (True, False):
        h = Harness()
        pid, e = ongoing(h, tp("a", 0))
        assert h.end(pid, e).error_code == 0
        if refused_add:
            assert h.add(pid, e, tp("a", 1)).error_code == ErrorCode.concurrent_transactions
            assert len(h.persists()) == 1 and h.persists()[0].snapshot.next_txn_refused  # type: ignore[union-attr]
            assert h.add(pid, e, tp("a", 1)).error_code == ErrorCode.concurrent_transactions
            assert h.persists() == []  # once
        h.written()
        runs.append((h, pid, e))
    (refused, pid, e), (plain, _, _) = runs
    record, plain_record = refused.persisted[TID], plain.persisted[TID]
    assert record is not None and plain_record is not None and record.state == plain_record.state == "CompleteCommit"
    assert record.next_txn_refused and not plain_record.next_txn_refused
    for rec, code in ((record, ErrorCode.none), (plain_record, ErrorCode.invalid_txn_state)):
        moved = Harness(now=refused.now)
        assert moved.record(moved.m.restore(rec, moved.now)) == []
        assert moved.end(pid, e, commit=False).error_code == code
    assert refused.end(pid, e, commit=False).error_code == ErrorCode.none  # the coordinator that refused it


def test_abort_of_the_transaction_that_committed_stays_invalid_txn_state() -> None:
    """Without a refused add since the commit, an abort may be for the very transaction that
    committed (a client that gave up on its commit): answering NONE would tell it that
    committed records were aborted, so it gets Kafka's INVALID_TXN_STATE."""
    h = Harness()
    pid, e = ongoing(h)
    h.end(pid, e)
    assert h.end(pid, e, commit=False).error_code == ErrorCode.invalid_txn_state
    h.written()
    assert h.end(pid, e, commit=False).error_code == ErrorCode.invalid_txn_state
    # a refused add from a fenced epoch proves nothing about the current producer
    assert h.add(pid, e + 1).error_code == ErrorCode.producer_fenced
    assert h.end(pid, e, commit=False).error_code == ErrorCode.invalid_txn_state


def test_end_txn_identity_errors() -> None:
    h = Harness()
    assert h.end(1, 0, tid="unknown").error_code == ErrorCode.invalid_producer_id_mapping
    pid, e = ongoing(h)
    assert h.end(pid + 1, e).error_code == ErrorCode.invalid_producer_id_mapping
    assert h.end(pid, e + 1).error_code == ErrorCode.producer_fenced
    assert h.end(pid, e, tid="").error_code == ErrorCode.invalid_request
    assert h.state() == "Ongoing"


def test_zombie_is_fenced_after_a_new_producer_initialises() -> None:
    h = Harness()
    pid, e = h.ready()
    h.add(pid, e)
    h.end(pid, e)
    h.written()
    new = h.init()
    assert new.producer_epoch == e + 1
    assert h.add(pid, e).error_code == ErrorCode.producer_fenced
    assert h.offsets(pid, e).error_code == ErrorCode.producer_fenced
    assert h.end(pid, e).error_code == ErrorCode.producer_fenced
    assert h.add(pid, new.producer_epoch).error_code == ErrorCode.none


def test_markers_written_is_ignored_unless_preparing_or_for_another_epoch() -> None:
    h = Harness()
    assert h.written("nope") == []
    pid, e = ongoing(h)
    assert h.written() == []
    h.end(pid, e)
    assert h.written(epoch=e + 1) == []
    assert h.state() == "PrepareCommit"
    assert len(h.written(epoch=e)) == 1
    assert h.written() == []
    assert h.state() == "CompleteCommit"


def test_pending_markers_lists_preparing_transactions() -> None:
    h = Harness()
    pid, e = ongoing(h)
    assert h.m.pending_markers() == []
    h.end(pid, e)
    assert h.m.pending_markers() == [h.markers[-1]]


def test_illegal_transitions_are_refused() -> None:
    md = TxnMetadata(transactional_id="x", producer_id=1, timeout_ms=1)
    with pytest.raises(IllegalTransition):
        md.transition(TxnState.PREPARE_COMMIT)
    assert VALID_PREVIOUS[TxnState.PREPARE_ABORT] == {TxnState.ONGOING, TxnState.PREPARE_EPOCH_FENCE}


@pytest.mark.parametrize("commit", [True, False])
def test_completing_while_markers_are_written_and_the_refused_requests_then_succeed(commit: bool) -> None:
    """`completing` is what the runtime holds a CONCURRENT_TRANSACTIONS answer on (instead of the
    client backing off retry.backoff.ms): true exactly from EndTxn to `markers_written`, and each
    request refused meanwhile (a retried EndTxn, the next transaction's adds, InitProducerId)
    succeeds when run again after it, as the runtime does."""
    h = Harness()
    assert not h.m.completing(TID)
    pid, e = ongoing(h)
    assert not h.m.completing(TID)
    assert h.end(pid, e, commit=commit).error_code == ErrorCode.none
    assert h.m.completing(TID)
    refused = (h.end(pid, e, commit=commit), h.add(pid, e, tp("u")), h.offsets(pid, e), h.init(pid=pid, epoch=e))
    assert [r.error_code for r in refused] == [ErrorCode.concurrent_transactions] * 4
    assert h.m.completing(TID)  # refusals change nothing
    h.written()
    assert not h.m.completing(TID)
    assert h.end(pid, e, commit=commit).error_code == ErrorCode.none  # the retried EndTxn
    assert h.add(pid, e, tp("u")).error_code == ErrorCode.none
    assert h.offsets(pid, e).error_code == ErrorCode.none
    assert h.state() == "Ongoing"
    assert not h.m.completing("unknown")
