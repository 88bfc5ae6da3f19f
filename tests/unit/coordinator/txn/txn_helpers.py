"""A driver for TxnStateMachine: a manual clock, numbered tokens, a counting producer-id
allocator, and a record of every output (asserting that no token is answered twice and
that every request is answered by its own call)."""

from __future__ import annotations

from itertools import count
from typing import Any

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
    TxnStateMachine,
    WriteMarkers,
)
from suoi.model.types import TopicPartition

TID = "txn-1"
TIMEOUT = 60_000


def tp(topic: str = "t", partition: int = 0) -> TopicPartition:
    return TopicPartition(topic, partition)


class Harness:
    def __init__(self, config: TxnConfig | None = None, now: int = 1_000, first_pid: int = 1000) -> None:
        self.pids = count(first_pid)
        self.m = TxnStateMachine(config or TxnConfig(), lambda: next(self.pids), coordinator_epoch=3)
        self.now = now
        self.tokens = count(1)
        self.replies: dict[Any, Any] = {}
        self.persisted: dict[str, TxnSnapshot | None] = {}  # last record per id
        self.markers: list[WriteMarkers] = []
        self.last: list[Output] = []

    # ------------------------------------------------------------------ plumbing
    def record(self, outs: list[Output], token: Any = None) -> list[Output]:
        self.last = outs
        answered = [o for o in outs if isinstance(o, Reply)]
        if token is not None:
            assert [r.token for r in answered] == [token], f"token {token} not answered exactly once: {outs}"
        seen_reply = False
        for o in outs:
            if isinstance(o, Reply):
                assert o.token not in self.replies, f"token {o.token} answered twice"
                self.replies[o.token] = o.data
                seen_reply = True
            elif isinstance(o, PersistTxn):
                assert not seen_reply, f"PersistTxn after a Reply in {outs}"
                self.persisted[o.transactional_id] = o.snapshot
            elif isinstance(o, WriteMarkers):
                self.markers.append(o)
        return outs

    def persists(self) -> list[PersistTxn]:
        return [o for o in self.last if isinstance(o, PersistTxn)]

    def emitted_markers(self) -> list[WriteMarkers]:
        return [o for o in self.last if isinstance(o, WriteMarkers)]

    # ------------------------------------------------------------------ requests
    def init(self, tid: str | None = TID, timeout: int = TIMEOUT, pid: int = -1, epoch: int = -1) -> Any:
        t = next(self.tokens)
        req = InitProducerIdRequest(token=t, transactional_id=tid, transaction_timeout_ms=timeout,
                                    producer_id=pid, producer_epoch=epoch)
        self.record(self.m.init_producer_id(req, self.now), t)
        return self.replies[t]

    def add(self, pid: int, epoch: int, *tps: TopicPartition, tid: str = TID) -> Any:
        t = next(self.tokens)
        req = AddPartitionsRequest(token=t, transactional_id=tid, producer_id=pid, producer_epoch=epoch,
                                   partitions=tps or (tp(),))
        self.record(self.m.add_partitions(req, self.now), t)
        return self.replies[t]

    def offsets(self, pid: int, epoch: int, group: str = "g", partition: int = 7, tid: str = TID) -> Any:
        t = next(self.tokens)
        req = AddOffsetsRequest(token=t, transactional_id=tid, producer_id=pid, producer_epoch=epoch, group_id=group,
                                partition=TopicPartition("__consumer_offsets", partition))
        self.record(self.m.add_offsets(req, self.now), t)
        return self.replies[t]

    def end(self, pid: int, epoch: int, commit: bool = True, tid: str = TID) -> Any:
        t = next(self.tokens)
        req = EndTxnRequest(token=t, transactional_id=tid, producer_id=pid, producer_epoch=epoch, commit=commit)
        self.record(self.m.end_txn(req, self.now), t)
        return self.replies[t]

    def written(self, tid: str = TID, epoch: int | None = None) -> list[Output]:
        return self.record(self.m.markers_written(tid, self.now, producer_epoch=epoch))

    def advance(self, ms: int) -> list[Output]:
        self.now += ms
        return self.record(self.m.poll(self.now))

    def state(self, tid: str = TID) -> str | None:
        md = self.m.metadata(tid)
        return None if md is None else md.state.value

    def ready(self, tid: str = TID) -> tuple[int, int]:
        """InitProducerId and return (pid, epoch)."""
        r = self.init(tid)
        assert r.error_code == 0, r
        return r.producer_id, r.producer_epoch
