"""The replica fetcher appends nothing to a log it truncated before the truncation's recovery point
and directory are durable (Kafka's fetcher checkpoints the recovery points right after it
truncates), and syncs them off the event loop: `ReplicaFetcher._durable_truncations`."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from suoi.log import sync_jobs
from suoi.log.config import LogConfig
from suoi.log.partition_log import PartitionLog
from suoi.log.recovery import RECOVERY_POINT_FILE, read_recovery_point
from suoi.model import TopicPartition
from suoi.partition.replica_fetcher import ReplicaFetcher
from tests.unit.conftest import FsyncRecord
from tests.unit.log.log_helpers import batch


def _follower(tmp_path: Path) -> tuple[ReplicaFetcher, Any]:
    log = PartitionLog.open(tmp_path / "t-0", "t", 0, LogConfig(segment_bytes=1400), now_ms=lambda: 0)
    for epoch in (1, 2):
        for _ in range(8):
            log.append(batch(2, payload=120), leader_epoch=epoch)
    log.flush()
    log.checkpoint_recovery_point()
    fetcher = ReplicaFetcher(SimpleNamespace(fetch_wait_max_ms=500, fetch_backoff_s=1.0), 2)  # type: ignore[arg-type]
    replica = SimpleNamespace(plog=log, tp=TopicPartition("t", 0), backoff_until=0.0, fetcher_id=2)
    fetcher.partitions[replica.tp] = replica  # type: ignore[assignment]
    return fetcher, replica


def test_a_truncated_log_is_fetched_again_only_once_its_recovery_point_is_durable(
        tmp_path: Path, fsync_threads: FsyncRecord) -> None:
    fetcher, replica = _follower(tmp_path)
    log: PartitionLog = replica.plog
    other = SimpleNamespace(plog=SimpleNamespace(truncation_unsynced=False), tp=TopicPartition("u", 0))

    async def scenario() -> list[Any]:
        start = fsync_threads.mark()
        log.truncate_to(5, force=True)
        assert log.truncation_unsynced
        ready = await fetcher._durable_truncations([replica, other])  # type: ignore[list-item]
        loop_thread = threading.current_thread()
        assert fsync_threads.paths(loop_thread, since=start) == []
        assert str(log.directory / RECOVERY_POINT_FILE) in fsync_threads.paths(off=loop_thread, since=start)
        return ready

    try:
        assert asyncio.run(asyncio.wait_for(scenario(), 10)) == [replica]  # (`other` is not this fetcher's)
        assert not log.truncation_unsynced and read_recovery_point(log.directory) == log.log_end_offset
    finally:
        log.close()


def test_a_truncation_whose_sync_fails_is_held_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fetcher, replica = _follower(tmp_path)
    log: PartitionLog = replica.plog

    def fail(path: Path | str) -> None:
        raise OSError(5, "injected I/O error")

    monkeypatch.setattr(sync_jobs, "fsync_dir", fail)

    async def scenario() -> list[Any]:
        log.truncate_to(5, force=True)
        return await fetcher._durable_truncations([replica])  # type: ignore[list-item]

    try:
        assert asyncio.run(asyncio.wait_for(scenario(), 10)) == []
        assert replica.backoff_until > 0 and log.truncation_unsynced and log.state_unsynced
    finally:
        monkeypatch.undo()
        log.close()
