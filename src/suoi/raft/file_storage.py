"""File-backed :class:`~suoi.raft.storage.RaftStorage` for a real node.

Directory layout (one metadata log per directory)::

    quorum-state                              JSON, replaced atomically (tmp + fsync + rename)
    00000000000000000000.log                  log segment named by the offset of its first entry
    00000000000000004096.log
    00000000000000004000-0000000007.checkpoint  snapshot: every entry below offset 4000, last epoch 7

``quorum-state`` mirrors Kafka's file: ``{"leaderId": 1, "leaderEpoch": 7, "votedId": 1,
"data_version": 0}`` (-1 for "none").

A segment is a sequence of records, each::

    length  u32   bytes after this field (crc + body)
    crc     u32   zlib.crc32 of body
    body:   offset i64 | epoch i32 | flags u8 (bit 0 = control) | payload

all big-endian. Recovery scans every segment and stops at the first record that is short, fails
its CRC, or is not the next offset; the file is truncated there and later segments are deleted
(a torn tail is just an unflushed append). Entries below the latest snapshot's end offset are
ignored; segments entirely below it are deleted when the snapshot is written.

Appends are buffered; ``truncate`` rewrites file lengths at once. Both are made durable by the
next flush: ``begin_flush()`` writes the buffered bytes (on the caller's thread, the event loop:
a write to the page cache) and returns the job that fsyncs every segment changed since the last
flush and the directory. The job owns the file descriptors it fsyncs (opened by
``begin_flush``), so it may run on another thread while appends, truncations, rolls and
snapshots go on: fsync covers whatever was written to the file before it started, and a file
unlinked meanwhile is fsynced harmlessly through its open descriptor. A roll no longer fsyncs
the closed segment on the spot: it stays in the set of segments the next flush fsyncs.
``flush()`` is ``begin_flush()`` plus its job, on the caller's thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from suoi.atomic_file import write_atomically
from suoi.raft.messages import Entry, SnapshotId
from suoi.raft.storage import FlushRun, QuorumStateData

__all__ = ["FileStorage"]

_HEAD = struct.Struct(">II")
_BODY = struct.Struct(">qiB")
_QUORUM_STATE = "quorum-state"


@dataclass
class _Segment:
    base: int
    path: Path
    positions: list[int] = field(default_factory=list)  # file position of each entry
    size: int = 0

    @property
    def end(self) -> int:
        return self.base + len(self.positions)


def _encode(e: Entry) -> bytes:
    body = _BODY.pack(e.offset, e.epoch, 1 if e.control else 0) + e.payload
    return _HEAD.pack(len(body) + 4, zlib.crc32(body)) + body


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_and_close(fds: list[int], dir_fd: int | None) -> None:
    """The blocking half of a flush: fsync each segment's descriptor, then the directory's (so a
    new segment's name is durable with its data; as `_fsync_dir`, a filesystem that cannot fsync
    a directory is no error), and close them all, whatever fails."""
    try:
        for fd in fds:
            os.fsync(fd)
        if dir_fd is not None:
            with contextlib.suppress(OSError):
                os.fsync(dir_fd)
    finally:
        for fd in fds:
            os.close(fd)
        if dir_fd is not None:
            os.close(dir_fd)


def _atomic_write(path: Path, data: bytes, fsync: bool) -> None:
    """Kafka's `FileQuorumStateStore` / snapshot freeze: temp file, fsync, rename, fsync of the
    directory (through `_fsync_dir`: one that cannot be fsynced is no error)."""
    write_atomically(path, data, fsync=fsync, sync_dir=False)
    if fsync:
        _fsync_dir(path.parent)


class FileStorage:
    SNAPSHOTS_KEPT = 2

    def __init__(self, directory: str | os.PathLike[str], *, segment_bytes: int = 8 << 20, fsync: bool = True) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self._segments: list[_Segment] = []
        self._active: BinaryIO | None = None
        self._unsynced: set[Path] = set()  # segments written or truncated since the last flush began
        self._handed_off: list[Path] = []  # what the last begin_flush's job fsyncs (maybe not yet)
        for tmp in self.dir.glob("*.tmp"):
            tmp.unlink()
        self._recover()

    # --- quorum state ------------------------------------------------------------------------
    def read_quorum_state(self) -> QuorumStateData:
        path = self.dir / _QUORUM_STATE
        if not path.exists():
            return QuorumStateData()
        d = json.loads(path.read_text())
        return QuorumStateData(
            epoch=int(d["leaderEpoch"]),
            voted_id=None if d.get("votedId", -1) < 0 else int(d["votedId"]),
            leader_id=None if d.get("leaderId", -1) < 0 else int(d["leaderId"]),
        )

    def write_quorum_state(self, state: QuorumStateData) -> None:
        data = {
            "leaderId": -1 if state.leader_id is None else state.leader_id,
            "leaderEpoch": state.epoch,
            "votedId": -1 if state.voted_id is None else state.voted_id,
            "data_version": 0,
        }
        _atomic_write(self.dir / _QUORUM_STATE, json.dumps(data).encode(), self.fsync)

    # --- snapshots ---------------------------------------------------------------------------
    def _snapshot_path(self, sid: SnapshotId) -> Path:
        return self.dir / f"{sid.end_offset:020d}-{sid.epoch:010d}.checkpoint"

    def snapshot_ids(self) -> list[SnapshotId]:
        ids = []
        for p in self.dir.glob("*.checkpoint"):
            end, _, epoch = p.stem.partition("-")
            ids.append(SnapshotId(int(end), int(epoch)))
        return sorted(ids)

    def latest_snapshot_id(self) -> SnapshotId | None:
        ids = self.snapshot_ids()
        return ids[-1] if ids else None

    def write_snapshot(self, snapshot_id: SnapshotId, data: bytes) -> None:
        self._flush_active()
        _atomic_write(self._snapshot_path(snapshot_id), bytes(data), self.fsync)
        for old in self.snapshot_ids()[: -self.SNAPSHOTS_KEPT]:
            self._snapshot_path(old).unlink(missing_ok=True)
        start = snapshot_id.end_offset
        keep: list[_Segment] = []
        for seg in self._segments:
            if seg.end <= start:
                if self._segments and seg is self._segments[-1]:
                    self._close_active()
                seg.path.unlink(missing_ok=True)
            else:
                keep.append(seg)
        self._segments = keep
        if self.fsync:
            _fsync_dir(self.dir)

    def read_snapshot(self, snapshot_id: SnapshotId) -> bytes | None:
        try:
            return self._snapshot_path(snapshot_id).read_bytes()
        except FileNotFoundError:
            return None

    # --- log ---------------------------------------------------------------------------------
    def _recover(self) -> None:
        paths = sorted(self.dir.glob("*.log"))
        segments: list[_Segment] = []
        broken = False
        for p in paths:
            if broken:
                p.unlink()
                continue
            base = int(p.stem)
            if segments and segments[-1].end != base:
                broken = True
                p.unlink()
                continue
            seg = _Segment(base, p)
            data = p.read_bytes()
            pos = 0
            while pos + _HEAD.size <= len(data):
                length, crc = _HEAD.unpack_from(data, pos)
                end = pos + 4 + length
                if length < 4 + _BODY.size or end > len(data):
                    break
                body = data[pos + _HEAD.size : end]
                if zlib.crc32(body) != crc:
                    break
                offset, _, _ = _BODY.unpack_from(body)
                if offset != seg.end:
                    break
                seg.positions.append(pos)
                pos = end
            if pos != len(data):
                with open(p, "r+b") as f:
                    f.truncate(pos)
                broken = True
            seg.size = pos
            if seg.positions or not broken:
                segments.append(seg)
            else:
                p.unlink()
        self._segments = [s for s in segments if s.positions]
        for s in segments:
            if not s.positions and s.path.exists():
                s.path.unlink()

    def read_log(self) -> tuple[SnapshotId | None, list[Entry]]:
        self._flush_active()
        sid = self.latest_snapshot_id()
        start = sid.end_offset if sid else 0
        entries: list[Entry] = []
        for seg in self._segments:
            if seg.end <= start:
                continue
            data = seg.path.read_bytes()
            for i, pos in enumerate(seg.positions):
                if seg.base + i < start:
                    continue
                length, _ = _HEAD.unpack_from(data, pos)
                body = data[pos + _HEAD.size : pos + 4 + length]
                offset, epoch, flags = _BODY.unpack_from(body)
                entries.append(Entry(offset, epoch, bytes(body[_BODY.size :]), bool(flags & 1)))
        if entries and entries[0].offset != start:
            entries = []  # a gap between the snapshot and the log: the log is useless
        return sid, entries

    def _end(self) -> int | None:
        return self._segments[-1].end if self._segments else None

    def append(self, entries: Sequence[Entry]) -> None:
        for e in entries:
            end = self._end()
            if end is not None and e.offset != end:
                raise ValueError(f"append at {e.offset} but log ends at {end}")
            seg = self._segments[-1] if self._segments else None
            if seg is None or seg.size >= self.segment_bytes:
                self._close_active()
                seg = _Segment(e.offset, self.dir / f"{e.offset:020d}.log")
                self._segments.append(seg)
            if self._active is None:
                self._active = open(seg.path, "ab")  # noqa: SIM115 - kept open across appends
            rec = _encode(e)
            self._unsynced.add(seg.path)
            seg.positions.append(seg.size)
            seg.size += len(rec)
            self._active.write(rec)

    def truncate(self, end_offset: int) -> None:
        self._close_active()
        keep: list[_Segment] = []
        for seg in self._segments:
            if seg.base >= end_offset:
                seg.path.unlink(missing_ok=True)
            elif seg.end > end_offset:
                n = end_offset - seg.base
                seg.size = seg.positions[n]
                del seg.positions[n:]
                with open(seg.path, "r+b") as f:
                    f.truncate(seg.size)
                self._unsynced.add(seg.path)
                keep.append(seg)
            else:
                keep.append(seg)
        self._segments = keep

    def flush(self) -> None:
        # Durable when this returns, even if the job of the last begin_flush has not run yet.
        self._unsynced.update(self._handed_off)
        run = self.begin_flush()
        if run is not None:
            run()

    def begin_flush(self) -> FlushRun | None:
        self._flush_active()
        unsynced, self._unsynced = sorted(self._unsynced), set()
        self._handed_off = unsynced
        if not self.fsync:
            return None
        fds: list[int] = []
        try:
            for path in unsynced:
                try:
                    fds.append(os.open(path, os.O_RDONLY))
                except FileNotFoundError:
                    continue  # deleted since (truncated away, or below a snapshot): the dir fsync covers it
        except OSError:
            for fd in fds:
                os.close(fd)
            raise
        try:
            dir_fd: int | None = os.open(self.dir, os.O_RDONLY)
        except OSError:
            dir_fd = None
        return lambda: _fsync_and_close(fds, dir_fd)

    def _flush_active(self) -> None:
        if self._active is not None:
            self._active.flush()

    def _close_active(self) -> None:
        """Close the active segment's writer (a roll, a truncation): its bytes are written, and
        its path stays in ``_unsynced`` for the next flush to fsync."""
        if self._active is not None:
            self._active.flush()
            self._active.close()
            self._active = None

    def close(self) -> None:
        self.flush()
        self._close_active()
