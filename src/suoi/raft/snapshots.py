"""Snapshots of the Raft node (KIP-630): the state machine's snapshot API, FetchSnapshot on the
leader, and a follower assembling and installing the leader's snapshot chunk by chunk."""

from __future__ import annotations

from suoi.raft.core import RaftNodeCore, _Pending
from suoi.raft.log import RaftSafetyError
from suoi.raft.messages import (
    ErrorCode,
    FetchSnapshotRequest,
    FetchSnapshotResponse,
    SnapshotId,
)
from suoi.raft.state import (
    Follower,
    Leader,
)


class SnapshotMixin(RaftNodeCore):
    # ======================================================================== public API
    @property
    def latest_snapshot_id(self) -> SnapshotId | None:
        return self.log.snapshot_id

    def read_snapshot(self, snapshot_id: SnapshotId) -> bytes | None:
        return self.log.read_snapshot(snapshot_id)

    def create_snapshot(self, end_offset: int, data: bytes) -> SnapshotId:
        """Store the state machine's snapshot of every entry below ``end_offset`` (which must be
        committed) and delete that prefix of the log."""
        if end_offset > self.high_watermark:
            raise ValueError(f"snapshot end {end_offset} is above the high watermark {self.high_watermark}")
        if end_offset <= self.log.start_offset:
            raise ValueError(f"snapshot end {end_offset} is not after the log start {self.log.start_offset}")
        sid = SnapshotId(end_offset, self.log.epoch_before(end_offset))
        self.log.create_snapshot(sid, data)
        return sid

    # ======================================================================== leader side
    def _handle_fetch_snapshot(self, req: FetchSnapshotRequest) -> FetchSnapshotResponse:
        def error(code: ErrorCode) -> FetchSnapshotResponse:
            return FetchSnapshotResponse(
                error_code=code,
                leader_id=self._leader_id_or_sentinel(),
                leader_epoch=self.role.epoch,
                snapshot_id=req.snapshot_id,
            )

        if not self._cluster_ok(req.cluster_id):
            return error(ErrorCode.inconsistent_cluster_id)
        if req.replica_id == self.node_id or req.max_bytes <= 0:
            return error(ErrorCode.invalid_request)
        err = self._validate_leader_only(req.current_leader_epoch)
        if err is not None:
            return error(err)
        role = self.role
        assert isinstance(role, Leader)
        if req.replica_id in self.voters:
            role.fetched_since_check.add(req.replica_id)
        data = self.log.read_snapshot(req.snapshot_id)
        if data is None:
            return error(ErrorCode.snapshot_not_found)
        if req.position < 0 or (req.position >= len(data) and not (req.position == 0 and not data)):
            return error(ErrorCode.position_out_of_range)
        chunk = data[req.position : req.position + req.max_bytes]
        return FetchSnapshotResponse(
            error_code=ErrorCode.none,
            leader_id=self.node_id,
            leader_epoch=role.epoch,
            snapshot_id=req.snapshot_id,
            size=len(data),
            position=req.position,
            unaligned_records=chunk,
        )

    # ======================================================================== follower side
    def _handle_fetch_snapshot_response(self, pending: _Pending, msg: FetchSnapshotResponse, current: bool) -> None:
        if self._maybe_transition(msg.leader_id, msg.leader_epoch):
            return
        role = self.role
        if not current or not isinstance(role, Follower):
            return
        if msg.error_code != ErrorCode.none:
            if msg.error_code in (ErrorCode.snapshot_not_found, ErrorCode.position_out_of_range):
                role.snapshot = None  # start over from a fresh Fetch
            role.next_fetch_ms = self._now + self.config.retry_backoff_ms
            return
        if role.snapshot is None:
            return
        sid, buf = role.snapshot
        if msg.snapshot_id != sid or msg.position != len(buf):
            return
        buf.extend(msg.unaligned_records)
        self._fetched_ok(role)
        if len(buf) >= msg.size:
            role.snapshot = None
            last = self.log.entry(sid.end_offset - 1)
            keeps_log = last is not None and last.epoch == sid.epoch
            if not keeps_log and self.high_watermark > sid.end_offset:
                raise RaftSafetyError(f"snapshot {sid} would discard committed entries below {self.high_watermark}")
            self.log.install_snapshot(sid, bytes(buf))
            self.high_watermark = max(self.high_watermark, sid.end_offset)
