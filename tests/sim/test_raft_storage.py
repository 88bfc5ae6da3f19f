"""FileStorage (quorum-state JSON, log segments, snapshots) and the sans-IO rule for suoi.raft."""

from __future__ import annotations

import ast
import errno
import json
import os
import random
from pathlib import Path

import pytest

from suoi.raft import Entry, FileStorage, MemoryStorage, QuorumStateData, RaftNode, SnapshotId
from tests.sim.harness import CONFIG

RAFT_SRC = Path(__file__).resolve().parents[2] / "src" / "suoi" / "raft"


def entries(start: int, n: int, epoch: int = 1) -> list[Entry]:
    return [Entry(start + i, epoch, f"p{start + i}".encode(), control=(start + i) % 5 == 0) for i in range(n)]


def test_quorum_state_round_trip_and_kafka_like_format(tmp_path: Path) -> None:
    s = FileStorage(tmp_path)
    assert s.read_quorum_state() == QuorumStateData()
    s.write_quorum_state(QuorumStateData(7, 2, None))
    assert json.loads((tmp_path / "quorum-state").read_text()) == {
        "leaderId": -1,
        "leaderEpoch": 7,
        "votedId": 2,
        "data_version": 0,
    }
    s.write_quorum_state(QuorumStateData(7, 2, 3))
    assert FileStorage(tmp_path).read_quorum_state() == QuorumStateData(7, 2, 3)
    assert not list(tmp_path.glob("*.tmp"))



def test_a_failed_quorum_state_write_keeps_the_vote_and_a_torn_leftover_is_not_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kafka's FileQuorumStateStore: fsync, atomic move, the temporary file removed either way."""
    s = FileStorage(tmp_path)
    s.write_quorum_state(QuorumStateData(4, 1, 1))

    def boom(*_args: object) -> None:
        raise OSError(errno.EIO, "injected I/O error")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="injected"):
        s.write_quorum_state(QuorumStateData(5, 2, None))
    monkeypatch.undo()
    assert not list(tmp_path.glob("*.tmp"))
    (tmp_path / "quorum-state.tmp").write_text('{"leaderId": 2, "leaderEp')  # a crash mid-write
    assert FileStorage(tmp_path).read_quorum_state() == QuorumStateData(4, 1, 1)
    assert not list(tmp_path.glob("*.tmp"))

def test_log_append_flush_reopen_truncate(tmp_path: Path) -> None:
    s = FileStorage(tmp_path, segment_bytes=100)
    s.append(entries(0, 10))
    s.flush()
    assert len(list(tmp_path.glob("*.log"))) > 1  # rolled
    s.truncate(6)
    s.append(entries(6, 2, epoch=2))
    s.flush()
    s.close()
    sid, log = FileStorage(tmp_path, segment_bytes=100).read_log()
    assert sid is None
    assert log == entries(0, 6) + entries(6, 2, epoch=2)
    with pytest.raises(ValueError):
        FileStorage(tmp_path).append(entries(9, 1))


def test_torn_tail_is_cut_at_recovery(tmp_path: Path) -> None:
    s = FileStorage(tmp_path)
    s.append(entries(0, 4))
    s.flush()
    s.close()
    seg = next(tmp_path.glob("*.log"))
    data = seg.read_bytes()
    seg.write_bytes(data[:-3])  # a torn last record
    s2 = FileStorage(tmp_path)
    assert s2.read_log()[1] == entries(0, 3)
    s2.append(entries(3, 1, epoch=2))
    s2.flush()
    assert FileStorage(tmp_path).read_log()[1] == entries(0, 3) + entries(3, 1, epoch=2)
    # a flipped bit fails the CRC: the log ends before it
    data = seg.read_bytes()
    seg.write_bytes(data[:20] + bytes([data[20] ^ 1]) + data[21:])
    assert FileStorage(tmp_path).read_log()[1] == []


def test_snapshot_moves_log_start_and_deletes_segments(tmp_path: Path) -> None:
    s = FileStorage(tmp_path, segment_bytes=60)
    s.append(entries(0, 12))
    s.flush()
    n_before = len(list(tmp_path.glob("*.log")))
    sid = SnapshotId(8, 1)
    s.write_snapshot(sid, b"state")
    assert len(list(tmp_path.glob("*.log"))) < n_before
    assert (tmp_path / "00000000000000000008-0000000001.checkpoint").read_bytes() == b"state"
    assert s.read_snapshot(sid) == b"state" and s.read_snapshot(SnapshotId(4, 1)) is None
    got_sid, log = FileStorage(tmp_path, segment_bytes=60).read_log()
    assert got_sid == sid and log == entries(8, 4)
    # a snapshot beyond the log end (installed from the leader) leaves an empty log there
    s.truncate(8)
    s.flush()
    s.write_snapshot(SnapshotId(20, 3), b"later")
    s.append(entries(20, 2, epoch=3))
    s.flush()
    assert FileStorage(tmp_path).read_log() == (SnapshotId(20, 3), entries(20, 2, epoch=3))
    assert len(list(tmp_path.glob("*.checkpoint"))) == 2  # the latest two are kept


def test_node_restarts_from_file_storage(tmp_path: Path) -> None:
    s = FileStorage(tmp_path)
    node = RaftNode(1, [1], s, CONFIG, random.Random(1))
    node.poll(node.next_deadline())
    node.append([b"a", b"b"])
    node.poll(node._now)
    assert node.is_leader and node.high_watermark == 3
    sid = node.create_snapshot(2, b"snap")
    s.close()
    again = RaftNode(1, [1], FileStorage(tmp_path), CONFIG, random.Random(1))
    assert again.role_name == "resigned" and again.epoch == 1  # it was the leader of epoch 1
    assert again.latest_snapshot_id == sid and [e.payload for e in again.log.entries] == [b"b"]
    again.poll(again.next_deadline())
    again.poll(again.next_deadline())
    assert again.is_leader and again.epoch == 2


def test_memory_storage_crash_keeps_only_flushed() -> None:
    s = MemoryStorage()
    s.append(entries(0, 3))
    s.flush()
    s.append(entries(3, 2))
    s.truncate(1)
    s.crash()
    assert s.entries == entries(0, 3)
    s.append(entries(3, 3))
    s.crash(random.Random(1))  # may keep a prefix of unflushed appends
    assert s.entries[:3] == entries(0, 3) and len(s.entries) <= 6


FORBIDDEN = {"asyncio", "socket", "threading", "time", "selectors", "datetime", "concurrent", "multiprocessing"}
IO_ALLOWED = {"file_storage.py"}  # the injected persistence may use os/pathlib


def test_raft_core_is_sans_io() -> None:
    files = sorted(RAFT_SRC.glob("*.py"))
    assert files
    problems = []
    for path in files:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in FORBIDDEN or (top in {"os", "pathlib"} and path.name not in IO_ALLOWED):
                    problems.append(f"{path.name} imports {name}")
                # the persistence may also use suoi.atomic_file (a leaf: it imports nothing of suoi)
                allowed = {"raft", "model", "atomic_file"} if path.name in IO_ALLOWED else {"raft", "model"}
                if top == "suoi" and name.split(".")[1] not in allowed:
                    problems.append(f"{path.name} imports {name} (raft may use only suoi.model)")
            # global randomness: random.random(), random.choice(), ... (random.Random is fine)
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "random"
                and node.attr != "Random"
            ):
                problems.append(f"{path.name}:{node.lineno} uses random.{node.attr}")
    assert problems == []


def test_a_flush_job_fsyncs_what_was_written_when_it_began_while_the_log_moves_on(tmp_path: Path) -> None:
    """begin_flush writes the buffers; its job (run later, as on the driver's flush thread) owns
    its descriptors, so rolls, truncations and deleted segments in between do not break it."""
    s = FileStorage(tmp_path, segment_bytes=100)
    s.append(entries(0, 10))  # several segments
    job = s.begin_flush()
    assert job is not None
    segments = sorted(tmp_path.glob("*.log"))
    assert len(segments) >= 2
    assert sum(p.stat().st_size for p in segments) > 0  # written at begin_flush, before the fsync
    s.truncate(3)  # deletes the later segments while the job holds them open
    s.append(entries(3, 5, epoch=2))  # rolls again
    job()  # fsync + close its own descriptors: no EBADF, no effect on the log
    s.append(entries(8, 1, epoch=2))
    second = s.begin_flush()
    assert second is not None
    second()
    s.close()
    assert FileStorage(tmp_path, segment_bytes=100).read_log() == (None, entries(0, 3) + entries(3, 6, epoch=2))
    assert FileStorage(tmp_path / "nofsync", fsync=False).begin_flush() is None


def test_memory_storage_makes_a_flush_durable_only_when_its_job_runs(tmp_path: Path) -> None:
    s = MemoryStorage()
    s.append(entries(0, 4))
    job = s.begin_flush()
    assert job is not None
    s.append(entries(4, 2))
    s.crash()  # before the fsync completed: nothing survives
    assert s.entries == []
    s.append(entries(0, 4))
    job = s.begin_flush()
    assert job is not None
    s.append(entries(4, 2))
    job()
    s.crash()
    assert s.entries == entries(0, 4)  # what the job covered, not what came after
    s.append(entries(4, 2))
    stale = s.begin_flush()
    s.flush()  # a synchronous flush overtakes the job in flight
    s.truncate(2)
    assert stale is not None
    stale()  # completes late: must not bring back an older image
    s.crash()
    assert s.entries == entries(0, 6)
