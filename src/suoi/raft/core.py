"""What every part of the Raft node shares: its state, the role transitions, sending, the
listeners, and the checks and messages more than one part uses.

`RaftNodeCore` is the base of the mixins (`voting`, `replication`, `snapshots`) that
`node.RaftNode` combines; `node` also holds the public API and the dispatch of inbound messages
and timers. Sans-IO like the rest of the package: time comes in as ``now_ms``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from suoi.model.errors import KafkaError
from suoi.raft.config import RaftConfig
from suoi.raft.log import FlushJob, RaftLog, RaftSafetyError
from suoi.raft.messages import (
    NO_LEADER,
    Entry,
    Envelope,
    ErrorCode,
    FetchRequest,
    LeaderAndEpoch,
    Message,
    SnapshotId,
)
from suoi.raft.state import (
    Candidate,
    Follower,
    Leader,
    Prospective,
    Resigned,
    Role,
    Unattached,
)
from suoi.raft.storage import QuorumStateData, RaftStorage

__all__ = ["NotLeaderError", "RaftListener", "RaftNodeCore", "decode_leader_change", "encode_leader_change"]


class NotLeaderError(KafkaError):
    """``append`` on a node that is not the leader (or not in the caller's epoch)."""

    error_code = ErrorCode.not_leader_or_follower

    def __init__(self, leader: LeaderAndEpoch) -> None:
        super().__init__(f"not the leader; current view {leader}")
        self.leader = leader


class RaftListener(Protocol):
    """Receives the committed log in order (Kafka's RaftClient.Listener). Calls happen inside
    ``handle``/``poll``; a listener must not call back into the node from them."""

    def on_commit(self, entries: list[Entry]) -> None: ...

    def on_load_snapshot(self, snapshot_id: SnapshotId, data: bytes) -> None: ...

    def on_leader_change(self, leader: LeaderAndEpoch) -> None: ...


def encode_leader_change(leader_id: int, voters: Iterable[int], granting: Iterable[int]) -> bytes:
    """Payload of the LeaderChange control entry (our JSON form of Kafka's LeaderChangeMessage)."""
    return json.dumps(
        {"type": "LeaderChange", "leader_id": leader_id, "voters": sorted(voters), "granting_voters": sorted(granting)},
        separators=(",", ":"),
    ).encode()


def decode_leader_change(payload: bytes) -> dict:
    return json.loads(payload)


@dataclass(slots=True)
class _Pending:
    correlation_id: int
    destination: int
    token: int  # role generation that sent it
    sent_ms: int
    request: Message


_FENCE_ERRORS = (ErrorCode.fenced_leader_epoch, ErrorCode.not_leader_or_follower, ErrorCode.unknown_leader_epoch)


class RaftNodeCore:
    """State and transitions of one quorum member; see :class:`suoi.raft.node.RaftNode`."""

    def __init__(
        self,
        node_id: int,
        voters: Iterable[int],
        storage: RaftStorage,
        config: RaftConfig | None = None,
        rng: random.Random | None = None,
        *,
        now_ms: int = 0,
        async_flush: bool = False,
    ) -> None:
        self.node_id = node_id
        #: False: the node flushes its log itself, at the start of each step (tests). True: the
        #: driver does (``wants_flush`` / ``begin_flush`` / ``flush_done``), so the fsync can run
        #: on another thread while the node keeps answering.
        self.async_flush = async_flush
        self.voters = frozenset(voters)
        if not self.voters:
            raise ValueError("at least one voter is required")
        self.is_voter = node_id in self.voters
        self.config = config or RaftConfig()
        self.rng = rng if rng is not None else random.Random(node_id)
        self.storage = storage
        self.log = RaftLog(storage)
        self.high_watermark = self.log.start_offset  # entries below it are committed
        self._now = now_ms
        self._out: list[Envelope] = []
        self._inflight: dict[int, _Pending] = {}
        self._next_correlation = self.rng.getrandbits(30) << 1
        self._token = 0
        self._listeners: list[list] = []  # [listener, next offset, last leader view]
        self._qs = storage.read_quorum_state()
        self.role: Role = self._initial_role(self._qs)

    # ======================================================================== read-only views
    @property
    def epoch(self) -> int:
        return self.role.epoch

    @property
    def leader_and_epoch(self) -> LeaderAndEpoch:
        """The epoch's leader as this node knows it. A prospective (pre-vote, KIP-996) still names
        the leader it followed, as Kafka's ProspectiveState does: the pre-vote only asks whether
        an election would be granted, and under load a follower runs one for 1-2 s while its
        leader lives (naming none, the node's controller id went to -1 and a stopping broker's
        controlled shutdown gave up). `live_leader_id` stays None meanwhile."""
        role = self.role
        leader = role.retained_leader if isinstance(role, Prospective) else role.leader_id
        return LeaderAndEpoch(leader, role.epoch)

    @property
    def is_leader(self) -> bool:
        return isinstance(self.role, Leader)

    @property
    def live_leader_id(self) -> int | None:
        """The leader as far as this node can tell it is alive and leading: itself when leader; for
        a follower, its leader unless that one resigned or the last request to it failed in
        transport (a crashed leader keeps its epoch until the fetch timeout, ~2 s, and admin
        clients sent to it would wait in vain); None while an election runs."""
        role = self.role
        if isinstance(role, Leader):
            return self.node_id
        if isinstance(role, Follower) and not (role.leader_unreachable or role.leader_resigned):
            return role.leader_id
        return None

    @property
    def role_name(self) -> str:
        return self.role.name

    @property
    def log_end_offset(self) -> int:
        return self.log.end_offset

    @property
    def log_start_offset(self) -> int:
        return self.log.start_offset

    # ======================================================================== provided by the mixins
    # Declared here so each part type-checks on its own; ``node.RaftNode`` combines the parts.
    def _poll_again(self) -> None:  # node.RaftNode
        raise NotImplementedError

    def _poll_resigned(self, role: Resigned) -> None:  # voting.VotingMixin
        raise NotImplementedError

    def _wake_parked(self, role: Leader) -> None:  # replication.ReplicationMixin
        raise NotImplementedError

    def _maybe_advance_hw(self, role: Leader) -> None:  # replication.ReplicationMixin
        raise NotImplementedError

    # ======================================================================== roles
    def _rand_election_timeout(self) -> int:
        t = self.config.election_timeout_ms
        return t + self.rng.randrange(t)

    def _backoff(self, retries: int) -> int:
        cap = self.config.election_backoff_max_ms
        return min(cap, self.config.retry_backoff_ms * self.rng.randrange(1, 2 << min(20, max(0, retries - 1))))

    def _initial_role(self, qs: QuorumStateData) -> Role:
        now = self._now
        # The only voter has nobody to wait for: it stands at once (as Kafka's KafkaRaftClient
        # does), so a single node (`make run`) serves in milliseconds, not after 1-2 s.
        election = now if self.voters == {self.node_id} else now + self._rand_election_timeout()
        if qs.leader_id == self.node_id and self.is_voter:
            others = tuple(sorted(self.voters - {self.node_id}))
            return Resigned(qs.epoch, self.node_id, others, election)
        if qs.leader_id is not None and qs.leader_id != self.node_id:
            return Follower(qs.epoch, qs.leader_id, qs.voted_id, now + self.config.fetch_timeout_ms)
        return Unattached(qs.epoch, qs.voted_id, election)

    def _persist(self, epoch: int, voted_id: int | None, leader_id: int | None) -> None:
        qs = QuorumStateData(epoch, voted_id, leader_id)
        if qs.epoch < self._qs.epoch:
            raise RaftSafetyError(f"epoch would go back from {self._qs.epoch} to {epoch}")
        if qs != self._qs:
            self.storage.write_quorum_state(qs)
            self._qs = qs

    def _set_role(self, role: Role) -> None:
        old = self.role
        self.role = role
        self._token += 1
        if isinstance(old, Leader):
            # Answer parked fetches now (with the error that tells them about the new state).
            self._wake_parked(old)

    def _to_unattached(self, epoch: int, voted_id: int | None = None) -> None:
        self._persist(epoch, voted_id, None)
        self._set_role(Unattached(epoch, voted_id, self._now + self._rand_election_timeout()))

    def _to_follower(self, epoch: int, leader_id: int) -> None:
        voted = self.role.voted_id if epoch == self.role.epoch else None
        self._persist(epoch, voted, leader_id)
        self._set_role(Follower(epoch, leader_id, voted, self._now + self.config.fetch_timeout_ms))

    def _start_election(self, retries: int) -> None:
        if not self.is_voter:
            return
        if self.config.pre_vote:
            self._to_prospective(retries)
        else:
            self._to_candidate(retries)

    def _to_prospective(self, retries: int) -> None:
        old = self.role
        # the leader it followed, to name and go back to if the pre-vote fails; not one that resigned
        retained = old.leader_id if isinstance(old, Follower) and not old.leader_resigned else None
        role = Prospective(
            old.epoch,
            self.voters,
            self.node_id,
            self._now + self._rand_election_timeout(),
            retries,
            voted_id=old.voted_id,
            leader_id=retained,
        )
        self._set_role(role)
        if role.won:
            self._to_candidate(retries)

    def _to_candidate(self, retries: int) -> None:
        epoch = self.role.epoch + 1
        role = Candidate(epoch, self.voters, self.node_id, self._now + self._rand_election_timeout(), retries)
        if not role.won:  # the only voter wins at once: its leader state, written next, is the one write
            self._persist(epoch, self.node_id, None)
        self._set_role(role)
        if role.won:
            self._to_leader(role)

    def _to_leader(self, candidate: Candidate) -> None:
        epoch = candidate.epoch
        self._persist(epoch, self.node_id, self.node_id)
        start = self.log.end_offset
        role = Leader(epoch, self.node_id, self.voters, start, self._now, self._now + self.config.check_quorum_timeout_ms)
        self._set_role(role)
        payload = encode_leader_change(self.node_id, self.voters, candidate.granted)
        self.log.append([Entry(start, epoch, payload, control=True)])

    def _to_resigned(self) -> None:
        role = self.role
        assert isinstance(role, Leader)
        others = [v for v in self.voters if v != self.node_id]
        others.sort(key=lambda v: (-role.replicas[v].end_offset, v))
        self._set_role(Resigned(role.epoch, self.node_id, tuple(others), self._now + self._rand_election_timeout()))

    def _maybe_transition(self, leader_id: int | None, epoch: int) -> bool:
        """Kafka's maybeHandleCommonResponse: learn a newer epoch, or the leader of ours.
        Returns True if the message was about another (newer or older) epoch."""
        if leader_id is not None and leader_id < 0:
            leader_id = None
        if epoch > self.role.epoch:
            if leader_id is not None and leader_id != self.node_id:
                self._to_follower(epoch, leader_id)
            else:
                self._to_unattached(epoch)
            return True
        if epoch < self.role.epoch:
            return True
        if leader_id is not None and leader_id != self.node_id and self.role.leader_id is None:
            self._to_follower(epoch, leader_id)
            return True
        return False

    # ======================================================================== flushing
    @property
    def wants_flush(self) -> bool:
        """The log has changes that are not durable and no flush is in flight."""
        log = self.log
        return log.flush_inflight is None and (log.dirty or log.flushed_end < log.end_offset)

    @property
    def log_durable(self) -> bool:
        """Everything in the log (appends and truncations) is durable: a follower fetches only
        then, so the fetch offset it reports (which the leader counts toward the high watermark)
        is on its disk."""
        log = self.log
        return log.flush_inflight is None and not log.dirty and log.flushed_end >= log.end_offset

    def _flush_if_sync(self) -> None:
        if not self.async_flush and self.wants_flush:
            job = self.log.begin_flush()
            if job.run is not None:
                job.run()
            self._on_flushed(job)

    def _on_flushed(self, job: FlushJob) -> None:
        """A flush completed: the leader may now count more of its own log (high watermark)."""
        if self.log.flush_done(job) and isinstance(self.role, Leader):
            self._maybe_advance_hw(self.role)

    # ======================================================================== sending
    def _fetched_ok(self, role: Follower) -> None:
        """A follower got a valid Fetch or FetchSnapshot answer: the leader is alive, fetch again now."""
        role.fetch_deadline = self._now + self.config.fetch_timeout_ms
        role.last_fetch_ok_ms = self._now
        role.next_fetch_ms = self._now
        role.leader_unreachable = False

    def _send(self, destination: int, message: Message) -> int:
        corr = self._next_correlation
        self._next_correlation += 1
        self._inflight[corr] = _Pending(corr, destination, self._token, self._now, message)
        self._out.append(Envelope(self.node_id, destination, corr, message))
        return corr

    def _resend_due(self, last_sent: dict[int, int], destination: int) -> int:
        """When a request to ``destination`` last sent at ``last_sent[destination]`` may go again."""
        rt = self.config.request_timeout_ms
        return last_sent.get(destination, -rt) + rt

    def _send_unanswered(self, last_sent: dict[int, int], destinations: Iterable[int], message: Message) -> None:
        """Send ``message`` to each destination (in id order) whose request is due again."""
        now = self._now
        for v in sorted(destinations):
            if now >= self._resend_due(last_sent, v):
                last_sent[v] = now
                self._send(v, message)

    def _fetch_request(self, max_wait: int) -> FetchRequest:
        return FetchRequest(
            cluster_id=self.config.cluster_id,
            replica_id=self.node_id,
            current_leader_epoch=self.role.epoch,
            fetch_offset=self.log.end_offset,
            last_fetched_epoch=self.log.last_epoch,
            log_start_offset=self.log.start_offset,
            max_wait_ms=max_wait,
            high_watermark=self.high_watermark,
        )

    # ======================================================================== listeners
    def _has_undelivered(self) -> bool:
        return any(entry[1] < self.high_watermark or entry[2] != self.leader_and_epoch for entry in self._listeners)

    def _deliver(self) -> None:
        for entry in self._listeners:
            listener, nxt, last_view = entry
            if nxt < self.log.start_offset and self.log.snapshot_id is not None:
                sid = self.log.snapshot_id
                data = self.log.read_snapshot(sid)
                if data is not None:
                    listener.on_load_snapshot(sid, data)
                    nxt = sid.end_offset
            if nxt < self.high_watermark:
                batch = self.log.read(nxt, self.high_watermark)
                if batch:
                    listener.on_commit(batch)
                    nxt = batch[-1].offset + 1
            entry[1] = nxt
            view = self.leader_and_epoch
            if view != last_view:
                entry[2] = view
                listener.on_leader_change(view)

    # ======================================================================== shared checks
    def _cluster_ok(self, cluster_id: str | None) -> bool:
        return cluster_id is None or self.config.cluster_id is None or cluster_id == self.config.cluster_id

    def _leader_id_or_sentinel(self) -> int:
        """The leader an answer names. A resigned leader names none (Kafka's names itself): a
        voter whose pre-vote it refuses, or whose Fetch it answers with an error, would otherwise
        follow it again and wait out a whole fetch timeout before the election it had begun."""
        role = self.role
        if role.leader_id is None or isinstance(role, Resigned):
            return NO_LEADER
        return role.leader_id

    def _validate_leader_only(self, request_epoch: int) -> ErrorCode | None:
        if request_epoch < self.role.epoch:
            return ErrorCode.fenced_leader_epoch
        if request_epoch > self.role.epoch:
            return ErrorCode.unknown_leader_epoch
        if not isinstance(self.role, Leader):
            return ErrorCode.not_leader_or_follower
        return None
