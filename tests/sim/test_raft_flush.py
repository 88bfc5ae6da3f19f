"""The two-step flush (``async_flush``: the driver runs the fsync off the event loop) keeps
Raft's durability rules: the leader counts its own log toward the high watermark only up to
what a completed flush covered, a follower sends its next Fetch (whose offset the leader
counts) only once its flush completed, and a truncation made while a flush ran caps what that
flush may claim. The whole-quorum version of these rules is the simulation's
``check_durable_majority``."""

from __future__ import annotations

import random

from suoi.raft import (
    BeginQuorumEpochRequest,
    Entry,
    Envelope,
    ErrorCode,
    FetchRequest,
    FetchResponse,
    MemoryStorage,
    RaftLog,
    RaftNode,
)
from tests.sim.harness import CONFIG


def test_the_leader_counts_its_own_log_only_once_its_flush_completed() -> None:
    storage = MemoryStorage()
    node = RaftNode(1, [1], storage, CONFIG, random.Random(1), now_ms=0, async_flush=True)
    node.poll(0)
    assert node.is_leader and node.log.end_offset == 1  # its LeaderChange entry
    assert node.high_watermark == 0 and node.wants_flush
    assert node.next_deadline() > 0  # a flush to do is the driver's business, not a busy poll
    job = node.begin_flush()
    assert not node.wants_flush  # one flush at a time
    node.poll(1)
    assert node.high_watermark == 0  # not fsynced yet
    node.append([b"a", b"b"])
    assert job.run is not None
    job.run()
    node.flush_done(job, 2)
    assert node.high_watermark == 1  # what the job covered, not the appends made while it ran
    assert storage.durable_end() == 1
    assert node.wants_flush
    second = node.begin_flush()
    assert second.run is not None
    second.run()
    node.flush_done(second, 3)
    assert node.high_watermark == 3 == storage.durable_end()
    node.flush_done(second, 4)  # a job reported twice (or a stale one) changes nothing
    assert node.high_watermark == 3


def test_a_follower_fetches_only_once_its_flush_completed_and_a_crash_loses_the_rest() -> None:
    storage = MemoryStorage()
    node = RaftNode(2, [1, 2, 3], storage, CONFIG, random.Random(2), now_ms=0, async_flush=True)
    out = node.handle(Envelope(1, 2, 7, BeginQuorumEpochRequest(cluster_id=None, leader_id=1, leader_epoch=1)), 1)
    fetches = [e for e in out if isinstance(e.message, FetchRequest)]
    assert len(fetches) == 1 and fetches[0].message.fetch_offset == 0
    records = (Entry(0, 1, b"leader-change", control=True), Entry(1, 1, b"a"))
    answer = FetchResponse(error_code=ErrorCode.none, leader_id=1, leader_epoch=1, high_watermark=0, records=records)
    out = node.handle(Envelope(1, 2, fetches[0].correlation_id, answer), 2)
    assert node.log.end_offset == 2
    assert not any(isinstance(e.message, FetchRequest) for e in out)  # not durable yet: no ack
    assert not any(isinstance(e.message, FetchRequest) for e in node.poll(50))
    job = node.begin_flush()
    assert job.run is not None
    job.run()
    out = node.flush_done(job, 51)
    again = [e.message for e in out if isinstance(e.message, FetchRequest)]
    assert len(again) == 1 and again[0].fetch_offset == 2  # acked once on disk
    # entries fetched after that, with the crash before their flush completed: lost, never acked
    more = FetchResponse(error_code=ErrorCode.none, leader_id=1, leader_epoch=1, high_watermark=2,
                         records=(Entry(2, 1, b"b"),))
    corr = next(e.correlation_id for e in out if isinstance(e.message, FetchRequest))
    out = node.handle(Envelope(1, 2, corr, more), 52)
    assert not any(isinstance(e.message, FetchRequest) for e in out)
    node.begin_flush()  # its fsync never completes
    storage.crash()
    assert [e.offset for e in RaftNode(2, [1, 2, 3], storage, CONFIG, random.Random(3)).log.entries] == [0, 1]


def test_a_truncation_while_a_flush_runs_caps_what_that_flush_made_durable() -> None:
    storage = MemoryStorage()
    log = RaftLog(storage)
    log.append([Entry(i, 1, b"x") for i in range(5)])
    job = log.begin_flush()
    log.truncate_to(3)  # a leader of a later epoch diverges at 3
    log.append([Entry(3, 2, b"y"), Entry(4, 2, b"y"), Entry(5, 2, b"y")])
    assert job.run is not None
    job.run()
    assert log.flush_done(job)
    assert log.flushed_end == 3  # not 5: offsets 3-4 on disk are the old epoch's
    assert log.dirty and log.flush_inflight is None
