"""Elections and leadership changes of the Raft node: Vote and pre-vote (KIP-996) on both sides,
the unattached/prospective/candidate timers, BeginQuorumEpoch and EndQuorumEpoch from the
receiving voter's side, and a resigned leader's EndQuorumEpoch retries."""

from __future__ import annotations

from suoi.raft.core import RaftNodeCore, _Pending
from suoi.raft.messages import (
    BeginQuorumEpochRequest,
    BeginQuorumEpochResponse,
    EndQuorumEpochRequest,
    EndQuorumEpochResponse,
    ErrorCode,
    VoteRequest,
    VoteResponse,
)
from suoi.raft.state import (
    Candidate,
    Follower,
    Leader,
    Prospective,
    Resigned,
    Unattached,
)


class VotingMixin(RaftNodeCore):
    # ======================================================================== timers
    def _poll_unattached(self, role: Unattached) -> None:
        if self.is_voter:
            if self._now >= role.election_deadline:
                self._start_election(role.retries)
                self._poll_again()
        elif self._now >= role.next_discovery:
            # An observer finds the leader by asking any voter (the answer names the leader).
            target = self.rng.choice(sorted(self.voters))
            self._send(target, self._fetch_request(max_wait=0))
            role.next_discovery = self._now + self.config.election_timeout_ms

    def _poll_election(self, role: Prospective | Candidate) -> None:
        now = self._now
        if now >= role.election_deadline:
            if isinstance(role, Prospective):
                if role.retained_leader is not None:
                    self._to_follower(role.epoch, role.retained_leader)
                else:
                    un = Unattached(role.epoch, role.voted_id, now + self._backoff(role.retries + 1))
                    un.retries = role.retries + 1
                    self._set_role(un)
            else:
                self._start_election(role.retries + 1)
            return self._poll_again()
        if isinstance(role, Candidate) and role.backing_off:
            return None
        self._send_unanswered(
            role.last_sent,
            [v for v in self.voters if v != self.node_id and v not in role.granted and v not in role.rejected],
            VoteRequest(
                cluster_id=self.config.cluster_id,
                replica_epoch=role.epoch,
                replica_id=self.node_id,
                last_offset_epoch=self.log.last_epoch,
                last_offset=self.log.end_offset,
                pre_vote=isinstance(role, Prospective),
            ),
        )
        return None

    def _poll_resigned(self, role: Resigned) -> None:
        now = self._now
        if now >= role.election_deadline:
            self._start_election(role.retries + 1)
            return self._poll_again()
        self._send_unanswered(
            role.last_sent,
            role.unacked,
            EndQuorumEpochRequest(
                cluster_id=self.config.cluster_id,
                leader_id=self.node_id,
                leader_epoch=role.epoch,
                preferred_successors=role.preferred_successors,
            ),
        )
        return None

    # ======================================================================== requests
    def _vote_response(self, error: ErrorCode, granted: bool = False) -> VoteResponse:
        return VoteResponse(
            error_code=error,
            leader_id=self._leader_id_or_sentinel(),
            leader_epoch=self.role.epoch,
            vote_granted=granted,
        )

    def _log_up_to_date(self, last_epoch: int, last_offset: int) -> bool:
        return (last_epoch, last_offset) >= (self.log.last_epoch, self.log.end_offset)

    def _handle_vote_request(self, req: VoteRequest) -> VoteResponse:
        if not self._cluster_ok(req.cluster_id):
            return self._vote_response(ErrorCode.inconsistent_cluster_id)
        if req.replica_id not in self.voters or not self.is_voter:
            return self._vote_response(ErrorCode.inconsistent_voter_set)
        bad_epoch = req.last_offset_epoch > req.replica_epoch if req.pre_vote else req.last_offset_epoch >= req.replica_epoch
        if req.last_offset < 0 or req.last_offset_epoch < 0 or bad_epoch or req.replica_id == self.node_id:
            return self._vote_response(ErrorCode.invalid_request)
        if req.replica_epoch < self.role.epoch:
            return self._vote_response(ErrorCode.fenced_leader_epoch)
        log_ok = self._log_up_to_date(req.last_offset_epoch, req.last_offset)
        if req.pre_vote:
            # KIP-996: answer "would you vote for me in replica_epoch + 1?" without any state change.
            return self._vote_response(ErrorCode.none, log_ok and self._can_grant_pre_vote())
        if req.replica_epoch > self.role.epoch:
            self._to_unattached(req.replica_epoch)
        role = self.role
        granted = False
        if isinstance(role, Unattached | Prospective) and role.voted_id in (None, req.replica_id) and log_ok:
            granted = True
            if not (isinstance(role, Unattached) and role.voted_id == req.replica_id):
                self._to_unattached(role.epoch, req.replica_id)  # persisted before we answer
        return self._vote_response(ErrorCode.none, granted)

    def _can_grant_pre_vote(self) -> bool:
        role = self.role
        if isinstance(role, Leader):
            return False
        if isinstance(role, Follower):
            if role.leader_resigned or role.last_fetch_ok_ms is None:
                return True
            return self._now - role.last_fetch_ok_ms >= self.config.fetch_timeout_ms
        return True

    def _validate_voter_only(self, leader_id: int, epoch: int) -> ErrorCode | None:
        if leader_id not in self.voters or not self.is_voter:
            return ErrorCode.inconsistent_voter_set
        if epoch < self.role.epoch:
            return ErrorCode.fenced_leader_epoch
        if leader_id == self.node_id:
            return ErrorCode.invalid_request
        if epoch == self.role.epoch and self.role.leader_id is not None and self.role.leader_id != leader_id:
            return ErrorCode.invalid_request  # a second leader for our epoch: refuse, never follow it
        return None

    def _accept_leader_epoch(self, cluster_id: str | None, leader_id: int, epoch: int) -> ErrorCode | None:
        """Begin/EndQuorumEpoch: validate the sender and, if it is valid, learn its epoch and leadership."""
        err = (
            ErrorCode.inconsistent_cluster_id if not self._cluster_ok(cluster_id) else self._validate_voter_only(leader_id, epoch)
        )
        if err is None:
            self._maybe_transition(leader_id, epoch)
        return err

    def _handle_begin_epoch(self, req: BeginQuorumEpochRequest) -> BeginQuorumEpochResponse:
        err = self._accept_leader_epoch(req.cluster_id, req.leader_id, req.leader_epoch)
        return BeginQuorumEpochResponse(
            error_code=err or ErrorCode.none, leader_id=self._leader_id_or_sentinel(), leader_epoch=self.role.epoch
        )

    def _handle_end_epoch(self, req: EndQuorumEpochRequest) -> EndQuorumEpochResponse:
        err = self._accept_leader_epoch(req.cluster_id, req.leader_id, req.leader_epoch)
        if err is None:
            role = self.role
            if isinstance(role, Follower) and role.leader_id == req.leader_id and role.epoch == req.leader_epoch:
                role.leader_resigned = True
                succ = list(req.preferred_successors)
                pos = succ.index(self.node_id) if self.node_id in succ else len(succ)
                delay = (
                    0
                    if pos == 0
                    else min(
                        self.config.election_backoff_max_ms,
                        (self.config.election_backoff_max_ms >> max(0, len(succ) - 1)) << (pos - 1),
                    )
                )
                role.fetch_deadline = min(role.fetch_deadline, self._now + delay)
        return EndQuorumEpochResponse(
            error_code=err or ErrorCode.none, leader_id=self._leader_id_or_sentinel(), leader_epoch=self.role.epoch
        )

    # ======================================================================== responses
    def _handle_vote_response(self, source: int, pending: _Pending, msg: VoteResponse, current: bool) -> None:
        req = pending.request
        assert isinstance(req, VoteRequest)
        role = self.role
        if (
            current
            and req.pre_vote
            and isinstance(role, Prospective)
            and msg.error_code == ErrorCode.none
            and msg.vote_granted
            and msg.leader_epoch <= role.epoch
        ):
            # A pre-vote grant binds nobody, so one from a voter still in an older epoch counts.
            role.record(source, True)
            if role.won:
                self._to_candidate(role.retries)
            return
        if self._maybe_transition(msg.leader_id, msg.leader_epoch):
            return
        if not current or msg.error_code != ErrorCode.none:
            return
        role = self.role
        if isinstance(role, Candidate) and not req.pre_vote and msg.leader_epoch == role.epoch:
            role.record(source, msg.vote_granted)
            if role.won:
                self._to_leader(role)
            elif role.lost and not role.backing_off:
                role.backing_off = True
                role.election_deadline = self._now + self._backoff(role.retries + 1)
        elif isinstance(role, Prospective) and req.pre_vote:
            role.record(source, msg.vote_granted)
