"""Log replication of the Raft node. Leader side: answering Fetch (validation against the log,
parking long polls, replica progress, the high watermark), BeginQuorumEpoch resends and
check-quorum. Follower side: the fetch loop and applying Fetch responses (append, truncate to a
diverging epoch, or switch to fetching a snapshot)."""

from __future__ import annotations

from suoi.raft.core import RaftNodeCore, _Pending
from suoi.raft.log import RaftSafetyError
from suoi.raft.messages import (
    BeginQuorumEpochRequest,
    Entry,
    Envelope,
    ErrorCode,
    FetchRequest,
    FetchResponse,
    FetchSnapshotRequest,
    Message,
)
from suoi.raft.state import (
    Follower,
    Leader,
    Unattached,
    majority,
)


class ReplicationMixin(RaftNodeCore):
    # ======================================================================== leader side
    def _begin_epoch_due(self, role: Leader, voter: int) -> int:
        """When the leader should (re)send BeginQuorumEpoch to ``voter``: until acknowledged, and
        again whenever the voter has not fetched for half the fetch timeout."""
        half = self.config.fetch_timeout_ms // 2
        p = role.replicas[voter]
        last = role.begin_last_sent.get(voter)
        if voter not in role.begin_acked:
            return self._now if last is None else last + self.config.request_timeout_ms
        base = max(p.last_fetch_ms, last if last is not None else -1, role.became_leader_ms)
        return base + half

    def _poll_leader(self, role: Leader) -> None:
        now = self._now
        if role.parked:
            for rid, (env, expiry) in list(role.parked.items()):
                if now >= expiry:
                    del role.parked[rid]
                    self._respond_fetch(env, allow_park=False)
        if self.config.check_quorum and len(self.voters) > 1 and now >= role.check_quorum_deadline:
            if len(role.fetched_since_check) >= majority(len(self.voters)):
                role.fetched_since_check = {self.node_id}
                role.check_quorum_deadline = now + self.config.check_quorum_timeout_ms
            else:
                self._to_resigned()
                return self._poll_resigned(self.role)  # type: ignore[arg-type]
        for v in sorted(self.voters):
            if v != self.node_id and now >= self._begin_epoch_due(role, v):
                role.begin_last_sent[v] = now
                self._send(
                    v, BeginQuorumEpochRequest(cluster_id=self.config.cluster_id, leader_id=self.node_id, leader_epoch=role.epoch)
                )
        return None

    def _maybe_advance_hw(self, role: Leader) -> None:
        m = role.majority_end_offset(self.node_id, self.log.flushed_end)
        if m > role.epoch_start_offset and m > self.high_watermark:
            self.high_watermark = m
            self._wake_parked(role)

    def _wake_parked(self, role: Leader) -> None:
        if not role.parked:
            return
        parked = list(role.parked.values())
        role.parked.clear()
        for env, _ in parked:
            self._respond_fetch(env, allow_park=False)

    def _respond_fetch(self, env: Envelope, allow_park: bool) -> None:
        resp = self._handle_fetch_request(env.message, env, allow_park=allow_park)  # type: ignore[arg-type]
        if resp is not None:
            self._out.append(Envelope(self.node_id, env.source, env.correlation_id, resp))

    def _fetch_error(self, error: ErrorCode) -> FetchResponse:
        return FetchResponse(
            error_code=error,
            leader_id=self._leader_id_or_sentinel(),
            leader_epoch=self.role.epoch,
            high_watermark=self.high_watermark if self.is_leader else -1,
            log_start_offset=self.log.start_offset,
        )

    def _handle_fetch_request(self, req: FetchRequest, env: Envelope, allow_park: bool) -> FetchResponse | None:
        if not self._cluster_ok(req.cluster_id):
            return self._fetch_error(ErrorCode.inconsistent_cluster_id)
        if (
            req.max_wait_ms < 0
            or req.fetch_offset < 0
            or req.last_fetched_epoch < 0
            or req.last_fetched_epoch > req.current_leader_epoch
            or req.replica_id == self.node_id
        ):
            return self._fetch_error(ErrorCode.invalid_request)
        err = self._validate_leader_only(req.current_leader_epoch)
        if err is not None:
            return self._fetch_error(err)
        role = self.role
        assert isinstance(role, Leader)
        rid = req.replica_id
        if rid in self.voters:
            role.fetched_since_check.add(rid)
            role.begin_acked.add(rid)
        valid = self.log.validate_offset_and_epoch(req.fetch_offset, req.last_fetched_epoch)
        hw_before = self.high_watermark
        records: tuple[Entry, ...] = ()
        if valid.kind == "valid":
            records = tuple(self.log.read(req.fetch_offset, max_entries=self.config.fetch_max_entries))
            if rid >= 0:
                self._update_replica(role, rid, req.fetch_offset)
            # Park only a replica with nothing to learn: no entries, and it already knows our high
            # watermark (KIP-1166). Without the second test, the follower whose fetch arrives just
            # after another one committed an entry would hear of the commit only when its long
            # poll expires (fetch_max_wait_ms later), as in Kafka <= 4.0 (KAFKA-14145).
            knows_hw = req.high_watermark >= self.high_watermark and self.high_watermark == hw_before
            if allow_park and not records and req.max_wait_ms > 0 and knows_hw and self.role is role:
                role.parked[rid if rid >= 0 else -env.correlation_id - 2] = (env, self._now + req.max_wait_ms)
                return None
        return FetchResponse(
            error_code=ErrorCode.none,
            leader_id=self.node_id,
            leader_epoch=role.epoch,
            high_watermark=self.high_watermark,
            log_start_offset=self.log.start_offset,
            diverging_epoch=valid.diverging,
            snapshot_id=valid.snapshot_id,
            records=records,
        )

    def _update_replica(self, role: Leader, rid: int, fetch_offset: int) -> None:
        now = self._now
        p = role.progress(rid)
        leader_end = self.log.end_offset
        if fetch_offset >= leader_end:
            p.last_caught_up_ms = now
        elif p.last_fetch_leader_end > 0 and fetch_offset >= p.last_fetch_leader_end:
            p.last_caught_up_ms = max(p.last_caught_up_ms, p.last_fetch_ms)
        p.last_fetch_leader_end = leader_end
        p.last_fetch_ms = now
        p.end_offset = fetch_offset
        if rid in self.voters:
            self._maybe_advance_hw(role)

    # ======================================================================== follower side
    def _poll_follower(self, role: Follower) -> None:
        now = self._now
        if now >= role.fetch_deadline:
            if self.is_voter:
                self._start_election(0)
            else:
                self._set_role(Unattached(role.epoch, role.voted_id, now))
            return self._poll_again()
        # The next Fetch carries the log end as the offset the leader counts toward its high
        # watermark: it leaves only once the log is durable (Kafka's follower flushes first too).
        if role.inflight is None and now >= role.next_fetch_ms and self.log_durable:
            if role.snapshot is not None:
                sid, buf = role.snapshot
                req: Message = FetchSnapshotRequest(
                    cluster_id=self.config.cluster_id,
                    replica_id=self.node_id,
                    current_leader_epoch=role.epoch,
                    snapshot_id=sid,
                    position=len(buf),
                    max_bytes=self.config.fetch_snapshot_max_bytes,
                )
            else:
                req = self._fetch_request(self.config.fetch_max_wait_ms)
            role.inflight = self._send(role.leader_id, req)  # type: ignore[arg-type]
        return None

    def _handle_fetch_response(self, pending: _Pending, msg: FetchResponse, current: bool) -> None:
        req = pending.request
        assert isinstance(req, FetchRequest)
        if self._maybe_transition(msg.leader_id, msg.leader_epoch):
            return
        role = self.role
        if not current or not isinstance(role, Follower):
            return
        if msg.error_code != ErrorCode.none:
            role.next_fetch_ms = self._now + self.config.retry_backoff_ms
            return
        if req.fetch_offset != self.log.end_offset:
            return  # our log moved since we asked; ask again
        if msg.diverging_epoch is not None:
            point = self.log.truncation_point(msg.diverging_epoch)
            if point < self.high_watermark:
                raise RaftSafetyError(
                    f"node {self.node_id}: leader asks to truncate to {point}, below high watermark {self.high_watermark}"
                )
            self.log.truncate_to(point)
        elif msg.snapshot_id is not None:
            if msg.snapshot_id.end_offset <= self.log.start_offset:
                return
            role.snapshot = (msg.snapshot_id, bytearray())
        else:
            if msg.records:
                if msg.records[0].offset != self.log.end_offset:
                    return
                self.log.append(msg.records)
            if msg.high_watermark >= 0:
                hw = min(msg.high_watermark, self.log.end_offset)
                if hw > self.high_watermark:
                    self.high_watermark = hw
        self._fetched_ok(role)
