"""Moving a replica between log dirs (AlterReplicaLogDirs): bulk copy, appends meanwhile, swap."""

from __future__ import annotations

from pathlib import Path

import pytest

from suoi.log import replica_move
from suoi.log.config import LogConfig
from suoi.log.manager import LogManager
from suoi.log.partition_log import PartitionLog
from suoi.log.replica_move import ReplicaMove, catch_up, copy_bulk
from suoi.protocol.records import iter_records
from tests.unit.log.log_helpers import Clock, batch


def test_a_moved_replica_keeps_every_record_and_its_identity(tmp_path: Path, clock: Clock) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    m = LogManager([a, b], LogConfig(segment_bytes=300), now_ms=clock)
    m.load()
    m.create_topic("t", 1)
    log = m.get_log("t", 0)
    assert log is not None and log.directory.parent == a
    for i in range(6):
        log.append(batch(3, tag=i))  # several segments
    move = m.begin_move("t", 0, b)
    assert move is not None and move.future.name.endswith("-future") and m.moves() == [move]
    copy_bulk(move)
    for i in range(6, 9):
        log.append(batch(3, tag=i))  # appended after the bulk copy: the swap brings them over
    end, segments = log.log_end_offset, len(log.segments)
    assert m.finish_move(move)
    assert m.get_log("t", 0) is log and log.directory == b / "t-0"  # same object, new dir
    assert (log.log_end_offset, len(log.segments)) == (end, segments) == (27, segments) and segments > 2
    assert not (a / "t-0").exists() and m.moves() == [] and not list(b.glob("*-future"))
    m.take_rolled()
    log.append(batch(3, tag=9))
    assert m.take_rolled() == [log]  # the reopened log's rolls still reach the flush at a roll
    m.close()
    again = LogManager([a, b], LogConfig(segment_bytes=300), now_ms=clock)
    again.load()
    reopened = again.get_log("t", 0)
    assert reopened is not None and reopened.directory == b / "t-0" and reopened.log_end_offset == 30
    assert again.begin_move("t", 0, b) is None  # already there
    again.close()

def test_an_interrupted_move_is_resumed_at_start(tmp_path: Path, clock: Clock) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    m = LogManager([a, b], LogConfig(), now_ms=clock)
    m.load()
    m.create_topic("t", 1)
    m.get_log("t", 0).append(batch(3))  # type: ignore[union-attr]
    move = m.begin_move("t", 0, b)
    assert move is not None
    copy_bulk(move)
    m.get_log("t", 0).close()  # type: ignore[union-attr]  # a crash before the swap: the copy stays on disk
    (b / "gone-0.0123456789abcdef0123456789abcdef-future").mkdir()  # a move of a replica that is gone
    again = LogManager([a, b], LogConfig(), now_ms=clock)
    again.load()
    log = again.get_log("t", 0)
    assert log is not None and log.directory == a / "t-0" and log.log_end_offset == 3  # serving from where it was
    (resumed,) = again.moves()
    assert (resumed.topic, resumed.partition, resumed.future) == ("t", 0, move.future)
    assert not (b / "gone-0.0123456789abcdef0123456789abcdef-future").exists()
    log.append(batch(2))
    copy_bulk(resumed)
    assert again.finish_move(resumed)
    assert log.directory == b / "t-0" and log.log_end_offset == 5 and again.moves() == []
    again.close()


def test_a_truncation_during_the_copy_is_not_mistaken_for_appends(tmp_path: Path, clock: Clock) -> None:
    """A follower that diverged truncates and appends other batches at the same place while its
    replica is copied: the swap must bring the rewritten bytes, not append after stale ones."""
    m, log, move = _copied(tmp_path, clock, LogConfig(), 4)
    log.truncate_to(6, force=True)
    for i in range(10, 14):
        log.append(batch(3, tag=i, payload=12))  # longer than what they replace
    expected = log.read(0, 1 << 20, max_offset=log.log_end_offset)
    assert m.finish_move(move)
    assert log.directory == tmp_path / "b" / "t-0" and log.read(0, 1 << 20, max_offset=log.log_end_offset) == expected
    m.close()


def _copied(tmp_path: Path, clock: Clock, config: LogConfig, batches: int) -> tuple[LogManager, PartitionLog, ReplicaMove]:
    """A manager over dirs a and b, topic t's log in a with ``batches`` batches, bulk-copied to b."""
    m = LogManager([tmp_path / "a", tmp_path / "b"], config, now_ms=clock)
    m.load()
    m.create_topic("t", 1)
    log = m.get_log("t", 0)
    assert log is not None
    for i in range(batches):
        log.append(batch(3, tag=i))
    move = m.begin_move("t", 0, tmp_path / "b")
    assert move is not None
    copy_bulk(move)
    return m, log, move


def test_the_swap_copies_only_what_the_catch_up_did_not(tmp_path: Path, clock: Clock,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The tail appended during the bulk copy is copied (and fsynced) by `catch_up` on a worker
    thread; `finish_move`, on the event loop, copies only what came after and what the close rewrote."""
    m, log, move = _copied(tmp_path, clock, LogConfig(segment_bytes=300), 3)
    a = tmp_path / "a"
    for i in range(3, 12):
        log.append(batch(3, tag=i))  # new sealed segments meanwhile: the catch-up's
    catch_up(move)
    log.append(batch(3, tag=12))  # after it: the swap's
    copied: list[str] = []
    real_whole, real_append = replica_move._copy_whole, replica_move._append_from
    monkeypatch.setattr(replica_move, "_copy_whole", lambda s, d: (copied.append(s.name), real_whole(s, d))[1])
    monkeypatch.setattr(replica_move, "_append_from", lambda s, d, n: (copied.append(s.name), real_append(s, d, n))[1])
    sealed = [seg.log_path.name for seg in log.segments[:-1]]
    assert m.finish_move(move, remove_old=False)
    assert not set(sealed[:-1]) & set(copied), copied  # sealed segments (but the last rolled) were already there
    assert move.doomed is not None and move.doomed.exists() and not (a / "t-0").exists()
    assert log.directory == tmp_path / "b" / "t-0" and log.log_end_offset == 39
    assert [r.offset for r in iter_records(log.read(0, 1 << 20))] == list(range(39))
    m.close()
