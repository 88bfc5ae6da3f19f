"""A partition directory with no file in it (created, never written) reopens without reading
anything back, and behaves exactly like a new log: appends, leader epochs and producer state
are kept across the next restart (issue 13: restart with 10,000 empty partitions)."""

from __future__ import annotations

from pathlib import Path

from suoi.log.config import LogConfig
from suoi.log.partition_log import PartitionLog
from suoi.log.recovery import never_written
from suoi.protocol.records import build_batch


def test_an_empty_directory_reopens_as_a_new_log_and_keeps_what_is_written_next(tmp_path: Path) -> None:
    directory = tmp_path / "t-0"
    assert never_written(directory)  # missing
    log = PartitionLog.open(directory, "t", 0, LogConfig())
    log.close()
    assert directory.is_dir() and list(directory.iterdir()) == [] and never_written(directory)

    log = PartitionLog.open(directory, "t", 0, LogConfig())  # the fast path: nothing read
    assert (log.log_start_offset, log.log_end_offset, log.leader_epoch_cache.entries) == (0, 0, [])
    log.append(build_batch([(b"k", b"v1"), (b"k", b"v2")]), leader_epoch=3)
    log.flush()
    log.close()
    assert not never_written(directory)

    log = PartitionLog.open(directory, "t", 0, LogConfig())  # full recovery again: the data is there
    try:
        assert log.log_end_offset == 2
        assert [(e.epoch, e.start_offset) for e in log.leader_epoch_cache.entries] == [(3, 0)]
    finally:
        log.close()
