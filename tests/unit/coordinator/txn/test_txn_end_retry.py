"""EndTxn against Kafka's answers (TransactionCoordinator.endTransactionWithTV1) for every state,
result and producer identity, on the coordinator that saw the transaction ("live") and on one
that took the `__transaction_state` partition over and restored the last record ("reloaded"),
including a retried EndTxn after the coordinator moved twice and after a timeout abort.

Kafka V1, for the current producer id: a wrong epoch is PRODUCER_FENCED whatever the state;
Ongoing prepares; a Complete* state answers its own result NONE (a retry) and the other
INVALID_TXN_STATE; a Prepare* state answers its own result CONCURRENT_TRANSACTIONS and the other
INVALID_TXN_STATE; Empty is INVALID_TXN_STATE (suoi: an abort there succeeds, see the package
README). Another producer id (or an unknown transactional id) is INVALID_PRODUCER_ID_MAPPING.
"""

from __future__ import annotations

import pytest

from suoi.coordinator.txn import TxnSnapshot
from suoi.model import ErrorCode

from .txn_helpers import TID, TIMEOUT, Harness, tp

E = ErrorCode
STATES = ("Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort")

#: (state, commit) -> the answer with the current producer id and epoch. Kafka V1 everywhere but
#: ("Empty", abort): Kafka answers INVALID_TXN_STATE, suoi NONE (aborting nothing; what Kafka's
#: transaction protocol V2 answers for an abort with the current epoch in Empty).
CURRENT = {
    ("Empty", True): E.invalid_txn_state,
    ("Empty", False): E.none,
    ("Ongoing", True): E.none,
    ("Ongoing", False): E.none,
    ("PrepareCommit", True): E.concurrent_transactions,
    ("PrepareCommit", False): E.invalid_txn_state,
    ("PrepareAbort", True): E.invalid_txn_state,
    ("PrepareAbort", False): E.concurrent_transactions,
    ("CompleteCommit", True): E.none,
    ("CompleteCommit", False): E.invalid_txn_state,
    ("CompleteAbort", True): E.invalid_txn_state,
    ("CompleteAbort", False): E.none,
}
#: the state after an answer (unchanged unless Ongoing prepared)
AFTER = {("Ongoing", True): "PrepareCommit", ("Ongoing", False): "PrepareAbort"}

#: (producer id offset, epoch offset) -> the answer whatever the state and result
IDENTITY = {
    (0, -1): E.producer_fenced,  # a zombie's epoch
    (0, +1): E.producer_fenced,  # an epoch the coordinator never gave out
    (1, 0): E.invalid_producer_id_mapping,  # another producer id
}

ROWS = [(s, c, 0, 0, CURRENT[s, c]) for s in STATES for c in (True, False)] + [
    (s, c, dp, de, code) for s in STATES for c in (True, False) for (dp, de), code in IDENTITY.items()
]


def reach(h: Harness, state: str) -> tuple[int, int]:
    """Drive `h` to `state` with epoch 1 (so epoch - 1 is a real earlier epoch): (pid, epoch)."""
    h.ready()
    pid, e = h.ready()
    assert e == 1
    if state != "Empty":
        assert h.add(pid, e, tp("a", 0), tp("b", 1)).error_code == E.none
    if state.startswith(("Prepare", "Complete")):
        assert h.end(pid, e, commit=state.endswith("Commit")).error_code == E.none
    if state.startswith("Complete"):
        h.written()
    assert h.state() == state
    return pid, e


def reload(h: Harness) -> Harness:
    """A coordinator that took the partition over: a fresh machine restored from the last
    record `h` wrote (to the log and back through its JSON value; it is that log's last record
    for the id until the new machine writes one). Markers it re-emits are written only when
    the test says so (`written()`)."""
    record = h.persisted[TID]
    assert record is not None
    moved = Harness(now=h.now + 10, first_pid=5000)
    moved.persisted[TID] = record
    moved.record(moved.m.restore(TxnSnapshot.from_dict(record.to_dict()), moved.now))
    return moved


@pytest.mark.parametrize("reloaded", [False, True], ids=["live", "reloaded"])
@pytest.mark.parametrize(("state", "commit", "pid_off", "epoch_off", "code"), ROWS)
def test_end_txn_answers_as_kafka(state: str, commit: bool, pid_off: int, epoch_off: int, code: ErrorCode,
                                  reloaded: bool) -> None:
    h = Harness()
    pid, e = reach(h, state)
    if reloaded:
        h = reload(h)
        assert h.state() == state
    n_markers = len(h.markers)
    assert h.end(pid + pid_off, e + epoch_off, commit=commit).error_code == code
    prepared = code == E.none and state == "Ongoing"
    assert h.state() == (AFTER[state, commit] if prepared else state)
    assert len(h.markers) == n_markers + prepared  # only a prepare writes markers
    if not prepared:
        assert len(h.last) == 1  # the reply only: nothing persisted


@pytest.mark.parametrize("persisted", ["Ongoing", "PrepareCommit", "CompleteCommit"])
def test_commit_retried_after_two_coordinator_moves_completes(persisted: str) -> None:
    """EndTxn(commit) reaches coordinator A; A dies with `persisted` as the id's last replicated
    record (the PrepareCommit not yet replicated; replicated but its markers unwritten; or all
    done and only the reply lost). B restores it, C restores what B wrote. librdkafka resends
    EndTxn(commit) at each: never INVALID_TXN_STATE; the answer is NONE once committed, and the
    transaction commits exactly once."""
    a = Harness()
    pid, e = reach(a, persisted)
    b = reload(a)
    # B took over; the client's retry arrives (after its load: before, the runtime answers
    # COORDINATOR_LOAD_IN_PROGRESS without asking the machine)
    first = b.end(pid, e)
    if persisted == "PrepareCommit":
        assert first.error_code == E.concurrent_transactions  # B is writing the markers it found
        assert len(b.markers) == 1
    else:
        assert first.error_code == E.none
    assert b.state() in ("PrepareCommit", "CompleteCommit")
    # B dies before (or after) completing: C restores B's last record
    c = reload(b)
    assert c.end(pid, e).error_code in (E.none, E.concurrent_transactions)
    if c.state() == "PrepareCommit":
        assert c.markers and c.markers[-1].commit and c.markers[-1].producer_epoch == e
        c.written()
    assert c.state() == "CompleteCommit"
    assert c.end(pid, e).error_code == E.none
    assert c.end(pid, e).error_code == E.none  # and again
    # the producer goes on with the same epoch (V1 keeps it)
    assert c.add(pid, e, tp("a", 2)).error_code == E.none
    assert c.end(pid, e, commit=False).error_code == E.none


@pytest.mark.parametrize("moves", [0, 1, 2])
def test_commit_retried_after_a_timeout_abort_is_fenced(moves: int) -> None:
    """The transaction timed out (at the old or the new coordinator): Kafka fences the producer
    (epoch + 1) and aborts, so the client's EndTxn(commit) retry - and an abort too - is
    PRODUCER_FENCED (fatal to librdkafka, as it should be: the commit did not happen), never
    INVALID_TXN_STATE, whether the abort is being written or done, on any coordinator."""
    h = Harness()
    pid, e = reach(h, "Ongoing")
    h.advance(TIMEOUT + 1)
    assert h.state() == "PrepareAbort" and h.m.metadata(TID).producer_epoch == e + 1  # type: ignore[union-attr]
    for _ in range(moves):
        h = reload(h)
    for commit in (True, False):
        assert h.end(pid, e, commit=commit).error_code == E.producer_fenced
    h.written()
    assert h.state() == "CompleteAbort"
    for _ in range(moves):
        h = reload(h)
    for commit in (True, False):
        assert h.end(pid, e, commit=commit).error_code == E.producer_fenced
    assert h.state() == "CompleteAbort"
    # the producer re-initialises (KIP-360 bump from its own epoch is refused: it was fenced)
    assert h.init(pid=pid, epoch=e).error_code == E.producer_fenced
    r = h.init()
    assert (r.error_code, r.producer_id, r.producer_epoch) == (E.none, pid, e + 2)


def test_ongoing_reloaded_past_its_timeout_is_fenced_before_the_retry() -> None:
    """The new coordinator loads an Ongoing transaction already past its timeout (the moves
    took longer): its first poll fences and aborts it, and the client's EndTxn(commit) is
    PRODUCER_FENCED, as Kafka's abortTimedOutTransactions leaves it."""
    a = Harness()
    pid, e = reach(a, "Ongoing")
    a.now += TIMEOUT + 5
    b = reload(a)
    assert b.m.next_deadline() is not None and b.m.next_deadline() <= b.now  # type: ignore[operator]
    out = b.advance(0)
    assert [m.commit for m in b.markers] == [False] and out
    assert b.state() == "PrepareAbort" and b.m.metadata(TID).producer_epoch == e + 1  # type: ignore[union-attr]
    assert b.end(pid, e).error_code == E.producer_fenced


def test_abort_of_a_next_transaction_whose_add_was_lost_in_the_move() -> None:
    """The fault run's fatal error (cbefore-1: "kill 2, kill 1"; a transactional writer aborting
    every other transaction): transaction N committed, the coordinator died while transaction
    N+1's AddPartitionsToTxn was outstanding; librdkafka counts an add that failed in transport
    as possibly received and sends EndTxn(abort) on abort_transaction(); the new coordinator
    has only N's CompleteCommit record (same producer id and epoch: V1 does not bump) and
    answers INVALID_TXN_STATE, as Kafka V1 does - fatal to librdkafka. Not a commit retry: the
    same coordinator answers N's retried commit NONE. Pinned here so a change is deliberate: the
    record cannot tell this abort from one of N itself (see the package README)."""
    a = Harness()
    pid, e = reach(a, "PrepareCommit")
    b = reload(a)  # first move: B completes N
    b.written()
    c = reload(b)  # second move; N+1's add never reached a machine
    assert c.end(pid, e, commit=True).error_code == E.none  # a retry of N's commit
    assert c.end(pid, e, commit=False).error_code == E.invalid_txn_state
    assert c.state() == "CompleteCommit" and len(c.markers) == 0


@pytest.mark.parametrize("complete_at", ["first", "second"])
def test_abort_after_a_refused_add_survives_two_coordinator_moves(complete_at: str) -> None:
    """The same run's likelier sequence: N's EndTxn(commit) answered, N's markers slow (their
    partitions' leaders were being killed), N+1's AddPartitionsToTxn refused CONCURRENT_TRANSACTIONS
    by coordinator B, B killed, C loads. Before the fix the refusal was remembered only in B's
    memory and C answered the abort INVALID_TXN_STATE (fatal); the refusal is now in the record
    B wrote, so C answers as B would: NONE, N still committed, nothing written for the abort."""
    a = Harness()
    pid, e = reach(a, "PrepareCommit")
    b = reload(a)  # first move: B re-emits N's commit markers
    assert b.add(pid, e, tp("c", 0)).error_code == E.concurrent_transactions
    assert b.persists() and b.persisted[TID].next_txn_refused  # type: ignore[union-attr]
    if complete_at == "first":
        b.written()
    c = reload(b)  # second move
    if complete_at == "second":
        assert [m.commit for m in c.markers] == [True]
        c.written()
    assert c.state() == "CompleteCommit"
    assert c.end(pid, e, commit=False).error_code == E.none
    assert c.state() == "CompleteCommit" and len(c.last) == 1
    # the producer's next real transaction clears the evidence (in the record too)
    assert c.add(pid, e, tp("c", 1)).error_code == E.none
    assert c.persisted[TID] is not None and not c.persisted[TID].next_txn_refused  # type: ignore[union-attr]
    assert c.end(pid, e).error_code == E.none
    c.written()
    assert reload(c).end(pid, e, commit=False).error_code == E.invalid_txn_state
