"""The scheduled flush (log.flush.interval.ms, log.flush.offset.checkpoint.interval.ms): its fsyncs
run on the flush threads while the event loop goes on serving, and the data and the recovery points
end up on disk. One after another on the loop, a flush of many partitions froze every client and
the node's Raft traffic for as long as the disk took."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from suoi.log import sync_jobs
from suoi.log.recovery import RECOVERY_POINT_FILE
from suoi.protocol.records import build_batch
from suoi.testing import InProcessNode
from tests.conftest import wait_until
from tests.integration.support import api_versions_req, produce_req
from tests.rawclient import RawClient

PARTITIONS = 3


def _recovery_point(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except FileNotFoundError:
        return 0


def test_scheduled_flushes_sync_off_the_loop_while_the_node_answers(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    in_fsync, release = threading.Event(), threading.Event()
    threads: set[str] = set()
    real_fsync = sync_jobs._fsync

    def held_fsync(fd: int) -> None:  # the disk is slow: every fsync waits until the test lets it go
        threads.add(threading.current_thread().name)
        in_fsync.set()
        release.wait(10)
        real_fsync(fd)

    monkeypatch.setattr(sync_jobs, "_fsync", held_fsync)
    overrides = {"log.flush.interval.ms": "20", "log.flush.scheduler.interval.ms": "20",
                 "log.flush.offset.checkpoint.interval.ms": "20"}
    with InProcessNode(tmp_path, overrides=overrides) as node:
        node.create_topic("flushed", partitions=PARTITIONS)
        with RawClient(node.bootstrap, timeout=5) as client:
            for p in range(PARTITIONS):
                answer = client.request(produce_req("flushed", p, build_batch([(None, b"v%d" % p)] * (p + 1)), acks=1))
                assert answer.responses[0].partition_responses[0].error_code == 0
            assert in_fsync.wait(10), "no scheduled flush reached an fsync"
            # A flush is held in its fsyncs: the node still answers (its loop is not the one waiting).
            assert client.request(api_versions_req()).error_code == 0
            release.set()
        logs = tmp_path / "data"
        for p in range(PARTITIONS):  # each log's data flushed, its recovery point moved and written
            wait_until(lambda p=p: _recovery_point(logs / f"flushed-{p}" / RECOVERY_POINT_FILE) == p + 1,
                       message=f"the recovery point of flushed-{p}")
    assert threads and all(name.startswith("log-flush") for name in threads), threads


def test_a_rolled_segment_is_flushed_and_the_recovery_point_passes_it(tmp_path: Path) -> None:
    """Default flush settings (no flush.ms, no flush.messages): as in Kafka, a roll schedules a
    flush of the log, so the recovery point moves past the sealed segments and a crash re-checks
    only the active one."""
    with InProcessNode(tmp_path, overrides={"log.flush.offset.checkpoint.interval.ms": "50"}) as node:
        node.create_topic("rolled", configs={"segment.bytes": "2000"})
        with RawClient(node.bootstrap, timeout=5) as client:
            for i in range(16):  # ~500 bytes a batch: a roll every 4 batches
                answer = client.request(produce_req("rolled", 0, build_batch([(None, b"%d" % i * 100)] * 4), acks=1))
                assert answer.responses[0].partition_responses[0].error_code == 0
        directory = tmp_path / "data" / "rolled-0"
        bases = sorted(int(p.stem) for p in directory.glob("*.log"))
        assert len(bases) >= 3, bases
        wait_until(lambda: _recovery_point(directory / RECOVERY_POINT_FILE) >= bases[-1],
                   message="the recovery point past the sealed segments")
