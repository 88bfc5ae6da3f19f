"""Seeded random runs: several producers (and their zombies) share a few transactional ids
and init, add partitions/offsets, commit and abort at random, while time jumps (timeouts,
expiry), markers complete late or never, and the coordinator fails over (a new machine
restored from the last persisted records). Invariants are checked after every step; then
everything settles. A failing seed reproduces exactly:
`pytest tests/unit/coordinator/txn/test_txn_random.py -k 'seed-17'`."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from itertools import count
from typing import Any

import pytest

from suoi.coordinator.txn import (
    AddOffsetsRequest,
    AddPartitionsRequest,
    EndTxnRequest,
    InitProducerIdRequest,
    Output,
    PersistTxn,
    Reply,
    TxnConfig,
    TxnSnapshot,
    TxnState,
    TxnStateMachine,
    WriteMarkers,
)
from suoi.model import ErrorCode
from suoi.model.types import TopicPartition

SEEDS = int(os.environ.get("SUOI_TXN_SEEDS", "60"))
STEPS = 300
TIDS = ("a", "b", "c")
POOL = [TopicPartition(t, p) for t in ("x", "y") for p in range(3)]
PREPARING = {"PrepareCommit", "PrepareAbort"}
CONFIG = TxnConfig(max_timeout_ms=20_000, id_expiration_ms=200_000)


@dataclass
class Client:
    tid: str
    timeout: int
    pid: int = -1
    epoch: int = -1


@dataclass
class Sim:
    rng: random.Random
    now: int = 1_000
    pids: Any = field(default_factory=lambda: count(100))
    allocated: set[int] = field(default_factory=set)
    tokens: Any = field(default_factory=lambda: count(1))
    issued: int = 0
    answered: dict[Any, Any] = field(default_factory=dict)
    persisted: dict[str, TxnSnapshot | None] = field(default_factory=dict)
    in_flight: dict[str, WriteMarkers] = field(default_factory=dict)  # the runtime's marker writer
    #: ids whose current producer was refused an AddPartitions/AddOffsets (CONCURRENT_TRANSACTIONS)
    #: since its last EndTxn: its next transaction holds nothing, so aborting it succeeds
    refused: set[str] = field(default_factory=set)
    model_parts: dict[str, set[TopicPartition]] = field(default_factory=dict)
    best: dict[str, tuple[int, int]] = field(default_factory=dict)  # tid -> last (pid, epoch) seen
    max_epoch: dict[int, int] = field(default_factory=dict)  # pid -> highest epoch ever held
    clients: list[Client] = field(default_factory=list)
    coordinator_epoch: int = 0
    emitted: int = 0
    entries: int = 0
    m: TxnStateMachine = field(init=False)

    def __post_init__(self) -> None:
        self.m = self._machine()

    def _alloc(self) -> int:
        pid = next(self.pids)
        self.allocated.add(pid)
        return pid

    def _machine(self) -> TxnStateMachine:
        return TxnStateMachine(CONFIG, self._alloc, coordinator_epoch=self.coordinator_epoch)

    # ------------------------------------------------------------------ outputs and invariants
    def apply(self, outs: list[Output], token: Any = None) -> Any:
        replies = [o for o in outs if isinstance(o, Reply)]
        if token is not None:
            assert [r.token for r in replies] == [token]
        before = dict(self.persisted)
        entered: dict[str, TxnSnapshot] = {}
        markers = [o for o in outs if isinstance(o, WriteMarkers)]
        for o in outs:
            if isinstance(o, Reply):
                assert o.token not in self.answered, f"token {o.token} answered twice"
                self.answered[o.token] = o.data
            elif isinstance(o, PersistTxn):
                s = o.snapshot
                if s is not None:
                    assert TxnSnapshot.from_dict(s.to_dict()) == s
                    prev = before.get(o.transactional_id)
                    if s.state in PREPARING and (prev is None or prev.state not in PREPARING):
                        entered[o.transactional_id] = s
                        assert prev is not None and prev.state == "Ongoing"
                        by_client = any(r.api == "EndTxn" for r in replies)
                        # EndTxn keeps the epoch; a fence (InitProducerId, timeout) bumps it
                        assert s.producer_epoch == prev.producer_epoch + (0 if by_client else 1)
                        assert s.partitions == prev.partitions and s.txn_start_ms == prev.txn_start_ms
                    if s.state == "Ongoing" and prev is not None and prev.state == "Ongoing":
                        assert s.txn_start_ms == prev.txn_start_ms
                        assert set(prev.partitions) < set(s.partitions)
                    if s.state.startswith("Complete"):
                        self.model_parts.pop(o.transactional_id, None)
                    if s.state in ("Ongoing", "Empty"):
                        self.refused.discard(o.transactional_id)
                else:
                    self.model_parts.pop(o.transactional_id, None)
                    self.refused.discard(o.transactional_id)
                self.persisted[o.transactional_id] = s
        self.refused -= set(entered)
        # markers: exactly one per entry into Prepare*, matching the persisted record
        assert sorted(w.transactional_id for w in markers) == sorted(entered), (markers, entered)
        for w in markers:
            s = entered[w.transactional_id]
            assert (w.producer_id, w.producer_epoch, w.commit) == (s.producer_id, s.producer_epoch,
                                                                    s.state == "PrepareCommit")
            assert w.partitions == s.partitions
            assert set(w.partitions) == self.model_parts.get(w.transactional_id, set())
            assert w.coordinator_epoch == self.coordinator_epoch
            assert w.transactional_id not in self.in_flight
            self.in_flight[w.transactional_id] = w
        self.emitted += len(markers)
        self.entries += len(entered)
        self.check()
        return self.answered.get(token)

    def check(self) -> None:
        m = self.m
        assert self.emitted == self.entries
        for tid in TIDS:
            md = m.metadata(tid)
            snap = self.persisted.get(tid)
            if md is None:
                assert snap is None
                continue
            # every state change is durable: the machine is what was last persisted
            assert m.snapshot(tid) == snap
            assert md.state not in (TxnState.PREPARE_EPOCH_FENCE, TxnState.DEAD)
            assert md.producer_id in self.allocated
            prev = self.best.get(tid)
            if prev is not None and prev[0] == md.producer_id:
                assert md.producer_epoch >= prev[1], f"{tid}: epoch went back {prev} -> {md.producer_epoch}"
            self.best[tid] = (md.producer_id, md.producer_epoch)
            self.max_epoch[md.producer_id] = max(self.max_epoch.get(md.producer_id, -1), md.producer_epoch)
            assert (md.state.value in PREPARING) == (tid in self.in_flight)
            if md.state is TxnState.ONGOING:
                assert md.partitions == self.model_parts.get(tid)
                assert md.txn_start_ms + md.timeout_ms + 1 >= min(self.now, md.txn_start_ms + md.timeout_ms + 1)

    # ------------------------------------------------------------------ actions
    def token(self) -> int:
        self.issued += 1
        return next(self.tokens)

    def init(self, c: Client, kip360: bool) -> None:
        t = self.token()
        pid, epoch = (c.pid, c.epoch) if kip360 and c.pid >= 0 else (-1, -1)
        r = self.apply(self.m.init_producer_id(
            InitProducerIdRequest(token=t, transactional_id=c.tid, transaction_timeout_ms=c.timeout,
                                  producer_id=pid, producer_epoch=epoch), self.now), t)
        assert r.error_code in (ErrorCode.none, ErrorCode.concurrent_transactions, ErrorCode.producer_fenced), r
        if r.error_code == ErrorCode.none:
            assert (r.producer_id, r.producer_epoch) == self.best[c.tid]
            c.pid, c.epoch = r.producer_id, r.producer_epoch

    def _current(self, c: Client) -> bool:
        md = self.m.metadata(c.tid)
        return md is not None and (md.producer_id, md.producer_epoch) == (c.pid, c.epoch)

    def add(self, c: Client, offsets: bool) -> None:
        t = self.token()
        was_current = self._current(c)
        md = self.m.metadata(c.tid)
        state = md.state.value if md else None
        if offsets:
            part = TopicPartition("__consumer_offsets", self.rng.randrange(3))
            parts: tuple[TopicPartition, ...] = (part,)
            outs = self.m.add_offsets(AddOffsetsRequest(
                token=t, transactional_id=c.tid, producer_id=c.pid, producer_epoch=c.epoch, group_id="g",
                partition=part), self.now)
        else:
            parts = tuple(self.rng.sample(POOL, self.rng.randint(1, 3)))
            outs = self.m.add_partitions(AddPartitionsRequest(
                token=t, transactional_id=c.tid, producer_id=c.pid, producer_epoch=c.epoch, partitions=parts),
                self.now)
        r: Any = next(o.data for o in outs if isinstance(o, Reply))
        if r.error_code == ErrorCode.none:
            self.model_parts.setdefault(c.tid, set()).update(parts)
        self.apply(outs, t)
        if not offsets:
            assert {tp for tp, _ in r.results} == set(parts)
        if r.error_code == ErrorCode.none:
            assert was_current, "a fenced or unknown producer added partitions"
            md = self.m.metadata(c.tid)
            assert md is not None and md.state is TxnState.ONGOING and set(parts) <= md.partitions
        elif state in PREPARING and was_current:
            assert r.error_code == ErrorCode.concurrent_transactions
            self.refused.add(c.tid)
        elif not was_current:
            assert r.error_code in (ErrorCode.producer_fenced, ErrorCode.invalid_producer_id_mapping)

    def end(self, c: Client, commit: bool) -> None:
        t = self.token()
        was_current = self._current(c)
        md = self.m.metadata(c.tid)
        state = md.state.value if md else None
        nothing_open = not commit and state != "Ongoing" and (state == "Empty" or c.tid in self.refused)
        r = self.apply(self.m.end_txn(EndTxnRequest(
            token=t, transactional_id=c.tid, producer_id=c.pid, producer_epoch=c.epoch, commit=commit), self.now), t)
        if not was_current:
            assert r.error_code in (ErrorCode.producer_fenced, ErrorCode.invalid_producer_id_mapping)
            return
        want = "Commit" if commit else "Abort"
        if state in ("Ongoing", "Complete" + want) or nothing_open:
            assert r.error_code == ErrorCode.none, (state, commit, r)
        elif state == "Prepare" + want:
            assert r.error_code == ErrorCode.concurrent_transactions
        else:  # the other outcome was decided (or nothing is open to commit): Kafka's answer
            assert r.error_code == ErrorCode.invalid_txn_state, (state, commit, r)

    def complete_markers(self, tid: str | None = None) -> None:
        if not self.in_flight:
            return
        tid = tid or self.rng.choice(sorted(self.in_flight))
        w = self.in_flight.pop(tid)
        out = self.apply(self.m.markers_written(tid, self.now, producer_epoch=w.producer_epoch))
        assert out is None
        md = self.m.metadata(tid)
        assert md is not None and md.state.value.startswith("Complete") and not md.partitions

    def stale_markers(self) -> None:
        tid = self.rng.choice(TIDS)
        if tid in self.in_flight:
            w = self.in_flight[tid]
            assert self.m.markers_written(tid, self.now, producer_epoch=w.producer_epoch - 1) == []
        else:
            assert self.m.markers_written(tid, self.now) == []
        self.check()

    def advance(self, ms: int) -> None:
        self.now += ms
        self.apply(self.m.poll(self.now))
        for tid in TIDS:
            md = self.m.metadata(tid)
            if md is not None and md.state is TxnState.ONGOING:
                assert md.txn_start_ms + md.timeout_ms >= self.now, "a timed-out transaction is still open"
            if md is not None and md.state.value in ("Empty", "CompleteCommit", "CompleteAbort"):
                assert md.last_update_ms + CONFIG.id_expiration_ms > self.now
        nd = self.m.next_deadline()
        assert nd is None or nd > self.now

    def failover(self) -> None:
        self.coordinator_epoch += 1
        self.m = self._machine()
        self.in_flight.clear()  # the old marker writer is gone; the new machine re-emits
        # `refused` survives: the refusal is in the record (TxnSnapshot.next_txn_refused)
        outs: list[Output] = []
        for _tid, snap in sorted(self.persisted.items()):
            if snap is not None:
                outs += self.m.restore(TxnSnapshot.from_dict(snap.to_dict()), self.now)
        # restore re-emits markers: count each as a new entry into Prepare*
        for o in outs:
            assert isinstance(o, WriteMarkers)
            self.in_flight[o.transactional_id] = o
            self.emitted += 1
            self.entries += 1
        assert sorted(self.in_flight) == sorted(t for t, s in self.persisted.items() if s and s.state in PREPARING)
        self.check()

    # ------------------------------------------------------------------ driver
    def step(self) -> None:
        rng = self.rng
        x = rng.random()
        if x < 0.06 or not self.clients:
            c = Client(tid=rng.choice(TIDS), timeout=rng.choice([5_000, 10_000, 20_000]))
            self.clients.append(c)
            self.init(c, kip360=False)
            return
        current = [c for c in self.clients if self._current(c)]
        c = rng.choice(current if current and rng.random() < 0.75 else self.clients)  # zombies too
        if x < 0.14:
            self.init(c, kip360=rng.random() < 0.6)
        elif x < 0.40:
            self.add(c, offsets=False)
        elif x < 0.48:
            self.add(c, offsets=True)
        elif x < 0.62:
            self.end(c, commit=rng.random() < 0.6)
        elif x < 0.78:
            self.complete_markers()
        elif x < 0.81:
            self.stale_markers()
        elif x < 0.97:
            self.advance(rng.choice([1, 100, 1_000, 4_000, 12_000, 25_000]))
        elif x < 0.985:
            self.advance(rng.choice([CONFIG.id_expiration_ms // 2, CONFIG.id_expiration_ms + 1]))
        else:
            self.failover()

    def settle(self) -> None:
        for tid in sorted(self.in_flight):
            self.complete_markers(tid)
        self.advance(CONFIG.max_timeout_ms + 1)  # every open transaction times out
        for tid in sorted(self.in_flight):
            self.complete_markers(tid)
        assert not self.in_flight and self.m.pending_markers() == []
        for tid in TIDS:
            md = self.m.metadata(tid)
            assert md is None or md.state.value in ("Empty", "CompleteCommit", "CompleteAbort")
        self.advance(CONFIG.id_expiration_ms)
        assert self.m.transactional_ids() == [] and self.m.next_deadline() is None
        assert all(s is None for s in self.persisted.values())
        assert len(self.answered) == self.issued, "a request was never answered"


@pytest.mark.parametrize("seed", range(SEEDS), ids=lambda s: f"seed-{s}")
def test_random_transactions(seed: int) -> None:
    sim = Sim(random.Random(seed))
    for _ in range(STEPS):
        sim.step()
    sim.settle()
    assert sim.emitted == sim.entries
