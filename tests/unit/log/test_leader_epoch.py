"""Leader-epoch cache (KIP-101/KIP-279): assignment, lookups, persistence and rebuild."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from suoi.log.config import LogConfig
from suoi.log.flushing import flush_logs
from suoi.log.leader_epoch import CHECKPOINT_FILE, UNDEFINED_EPOCH, LeaderEpochCache, load_or_rebuild
from suoi.log.partition_log import PartitionLog
from suoi.protocol.records import iter_batches, verify_crc
from tests.unit.log.log_helpers import OpenLog, batch

U = (-1, -1)


def cache(tmp_path: Path, *entries: tuple[int, int]) -> LeaderEpochCache:
    c = LeaderEpochCache(tmp_path / CHECKPOINT_FILE)
    for e, s in entries:
        c.assign(e, s)
    return c


def test_assign_ignores_non_monotonic_input(tmp_path: Path) -> None:
    c = cache(tmp_path, (0, 0), (1, 5))
    assert not c.assign(1, 7)  # same epoch again
    assert not c.assign(0, 9)  # older epoch
    assert not c.assign(2, 3)  # newer epoch below the latest start
    assert not c.assign(-1, 10)
    assert c.entries == [(0, 0), (1, 5)]
    assert c.latest_epoch == 1
    assert c.assign(3, 5)  # epoch 1 wrote nothing: replaced
    assert c.entries == [(0, 0), (3, 5)]
    assert LeaderEpochCache(None).latest_epoch == UNDEFINED_EPOCH


def test_end_offset_for_kip_279_examples(tmp_path: Path) -> None:
    # KIP-279's scenario: the leader has epochs 0..2 at 0, 10, 20 and LEO 30; epoch 1 is
    # gone from a follower that asks for it: it gets (largest epoch <= 1, start of next).
    c = cache(tmp_path, (0, 0), (2, 10), (4, 20))
    leo = 30
    assert c.end_offset_for(4, leo) == (4, 30)  # latest epoch: the log end offset
    assert c.end_offset_for(2, leo) == (2, 20)
    assert c.end_offset_for(3, leo) == (2, 20)  # not cached: largest epoch below + next start
    assert c.end_offset_for(1, leo) == (0, 10)
    assert c.end_offset_for(0, leo) == (0, 10)
    assert c.end_offset_for(5, leo) == U  # above the latest
    assert c.end_offset_for(-1, leo) == U  # UNDEFINED requested
    assert LeaderEpochCache(None).end_offset_for(0, leo) == U  # empty cache
    c.truncate_from_start(15)
    assert c.entries == [(2, 15), (4, 20)]
    # below the first cached epoch Kafka (KIP-279) answers (requested epoch, first start)
    assert c.end_offset_for(1, leo) == (1, 15)


def test_truncate_from_end_and_start(tmp_path: Path) -> None:
    c = cache(tmp_path, (0, 0), (1, 10), (2, 20))
    c.truncate_from_end(21)
    assert c.entries == [(0, 0), (1, 10), (2, 20)]
    c.truncate_from_end(20)
    assert c.entries == [(0, 0), (1, 10)]
    c.truncate_from_start(10)
    assert c.entries == [(1, 10)]
    c.truncate_from_start(12)
    assert c.entries == [(1, 12)]
    c.truncate_from_start(5)
    assert c.entries == [(1, 12)]
    assert c.epoch_for_offset(11) == UNDEFINED_EPOCH and c.epoch_for_offset(100) == 1


def test_checkpoint_file_is_kafkas_text_format(tmp_path: Path) -> None:
    c = cache(tmp_path, (0, 0), (3, 42))
    assert (tmp_path / CHECKPOINT_FILE).read_text() == "0\n2\n0 0\n3 42\n"
    assert not (tmp_path / (CHECKPOINT_FILE + ".tmp")).exists()
    loaded = LeaderEpochCache.read(tmp_path / CHECKPOINT_FILE)
    assert loaded is not None and loaded.entries == c.entries
    (tmp_path / CHECKPOINT_FILE).write_text("0\n3\n0 0\n3 42\n")  # count mismatch
    assert LeaderEpochCache.read(tmp_path / CHECKPOINT_FILE) is None


def test_append_with_leader_epoch_stamps_batches_and_keeps_crc(open_log: OpenLog) -> None:
    log = open_log()
    log.append(batch(2))  # default: field left as the client sent it (-1), cache untouched
    assert log.leader_epoch_cache.entries == []
    log.append(batch(3), leader_epoch=5)
    log.append(batch(1), leader_epoch=5)
    log.append(batch(2), leader_epoch=7)
    data = log.read(0, 1 << 20)
    epochs = []
    for pos, h in iter_batches(data):
        assert verify_crc(data, pos, h)
        epochs.append((h.base_offset, h.partition_leader_epoch))
    assert epochs == [(0, -1), (2, 5), (5, 5), (6, 7)]
    assert log.leader_epoch_cache.entries == [(5, 2), (7, 6)]
    assert log.leader_epoch_cache.end_offset_for(5, log.log_end_offset) == (5, 6)
    assert not (log.directory / CHECKPOINT_FILE).exists()  # written off the loop: by the flush here
    log.flush()
    assert (log.directory / CHECKPOINT_FILE).read_text() == "0\n2\n5 2\n7 6\n"


def test_cache_persists_and_is_rebuilt_from_headers(open_log: OpenLog) -> None:
    log = open_log(segment_bytes=300)
    for epoch in (1, 1, 2, 2, 4, 4):
        log.append(batch(2, payload=50), leader_epoch=epoch)
    assert len(log.segments) > 2
    expected = [(1, 0), (2, 4), (4, 8)]
    assert log.leader_epoch_cache.entries == expected
    log.close()
    assert open_log(segment_bytes=300).leader_epoch_cache.entries == expected
    path = log.directory / CHECKPOINT_FILE
    path.unlink()
    reopened = open_log(segment_bytes=300)
    assert reopened.leader_epoch_cache.entries == expected
    assert path.read_text() == "0\n3\n1 0\n2 4\n4 8\n"  # written back after the rebuild
    reopened.close()
    path.write_text("garbage")
    assert open_log(segment_bytes=300).leader_epoch_cache.entries == expected


def test_checkpoint_past_the_log_end_is_trimmed_on_open(tmp_path: Path, open_log: OpenLog) -> None:
    log = open_log()
    log.append(batch(2), leader_epoch=1)
    log.close()
    (log.directory / CHECKPOINT_FILE).write_text("0\n2\n1 0\n3 9\n")
    assert open_log().leader_epoch_cache.entries == [(1, 0)]


def test_retention_moves_the_first_epoch_start(open_log: OpenLog) -> None:
    log: PartitionLog = open_log(segment_bytes=300)
    for epoch in (1, 1, 2, 2, 2):
        log.append(batch(2, payload=50), leader_epoch=epoch)
    log.delete_records_before(6)
    assert log.leader_epoch_cache.entries == [(2, 6)]


def test_load_or_rebuild_of_an_empty_log(tmp_path: Path, open_log: OpenLog) -> None:
    log = open_log()
    c = load_or_rebuild(log.directory, log.segments, 0, 0)
    assert c.entries == []


def test_a_new_epoch_on_the_append_path_writes_nothing_and_the_flush_writes_it(
        tmp_path: Path, open_log: OpenLog, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two fsyncs per partition on the event loop, after a leadership change of 1,000 partitions
    # under load, stalled a node for seconds and its Raft quorum lost its leader; the file's
    # write alone (temp file, rename) cost the first produce burst hundreds of ms.
    leader, follower = open_log(), PartitionLog.open(tmp_path / "f-0", "f", 0, LogConfig())
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    leader.append(batch(2), leader_epoch=3)
    follower.append_as_follower(leader.read(0, 1 << 20))
    assert synced == []  # neither the leader's nor the follower's append synced anything
    for log in (leader, follower):
        assert not (log.directory / CHECKPOINT_FILE).exists()  # nor wrote the checkpoint
        assert log.leader_epoch_cache.unsynced and log.state_unsynced
    leader.flush()  # the data flush writes the checkpoint before the recovery point moves
    assert not leader.leader_epoch_cache.unsynced and synced
    assert flush_logs([follower]) == []  # so do the parallel fsyncs of the final flush
    assert not follower.leader_epoch_cache.unsynced
    for log in (leader, follower):
        assert (log.directory / CHECKPOINT_FILE).read_text() == "0\n1\n3 0\n"
    follower.close()


def test_epochs_above_the_recovery_point_are_recovered_when_the_checkpoint_lost_them(open_log: OpenLog) -> None:
    log = open_log()
    log.append(batch(2), leader_epoch=1)
    log.flush()
    log.checkpoint_recovery_point()  # recovery point 2, checkpoint [(1, 0)] synced
    log.append(batch(2), leader_epoch=4)  # checkpoint written without an fsync
    log.close()
    # An OS crash lost that write: the file still has epoch 1 only; epoch 4 is above the recovery point.
    (log.directory / CHECKPOINT_FILE).write_text("0\n1\n1 0\n")
    reopened = open_log()
    assert reopened.leader_epoch_cache.entries == [(1, 0), (4, 2)]
    assert (log.directory / CHECKPOINT_FILE).read_text() == "0\n2\n1 0\n4 2\n"
