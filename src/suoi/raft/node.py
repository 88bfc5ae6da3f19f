"""The sans-IO KRaft node: ``handle(envelope, now_ms)`` and ``poll(now_ms)`` return the envelopes to
send; ``next_deadline()`` says when ``poll`` must run again. No clock, no sockets, no threads:
time comes in as ``now_ms``, randomness from the injected ``random.Random``, persistence through
a :class:`~suoi.raft.storage.RaftStorage`.

Protocol (KIP-595, KIP-630, KIP-996) in one paragraph: voters are fixed by configuration.
A voter that hears nothing from a leader for ``election_timeout`` (randomised) first asks for
pre-votes (optional), then bumps and persists its epoch, votes for itself and asks the others.
A voter grants one vote per epoch (persisted before answering) to a candidate whose log is at
least as up to date as its own. The winner appends a LeaderChange control entry and tells the
voters with BeginQuorumEpoch. Followers (voters or observers) pull with Fetch(fetch offset,
last fetched epoch); the leader answers with entries, or with a diverging epoch the follower
truncates to, or with a snapshot id when the offset is below its log start (then FetchSnapshot).
The leader counts only fetches validated against its log, and advances the high watermark to
the offset a majority of voters (itself included) has, once that covers an entry of its own
epoch. A leader that stops hearing from a majority for 1.5 x fetch timeout resigns
(check-quorum); ``resign()`` steps down gracefully with EndQuorumEpoch.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from suoi.model.errors import KafkaError
from suoi.raft.config import RaftConfig
from suoi.raft.log import RaftLog, RaftSafetyError
from suoi.raft.messages import (
    NO_LEADER,
    BeginQuorumEpochRequest,
    BeginQuorumEpochResponse,
    DescribeQuorumRequest,
    DescribeQuorumResponse,
    EndQuorumEpochRequest,
    EndQuorumEpochResponse,
    Entry,
    Envelope,
    ErrorCode,
    FetchRequest,
    FetchResponse,
    FetchSnapshotRequest,
    FetchSnapshotResponse,
    LeaderAndEpoch,
    Message,
    ReplicaState,
    SnapshotId,
    VoteRequest,
    VoteResponse,
)
from suoi.raft.state import (
    Candidate,
    Follower,
    Leader,
    Prospective,
    ReplicaProgress,
    Resigned,
    Role,
    Unattached,
    majority,
)
from suoi.raft.storage import QuorumStateData, RaftStorage

__all__ = ["NotLeaderError", "RaftListener", "RaftNode", "decode_leader_change", "encode_leader_change"]


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


class RaftNode:
    """One member of the metadata quorum. Not thread-safe: one driver calls it at a time."""

    def __init__(
        self,
        node_id: int,
        voters: Iterable[int],
        storage: RaftStorage,
        config: RaftConfig | None = None,
        rng: random.Random | None = None,
        *,
        now_ms: int = 0,
    ) -> None:
        self.node_id = node_id
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

    # ======================================================================== public API
    @property
    def epoch(self) -> int:
        return self.role.epoch

    @property
    def leader_and_epoch(self) -> LeaderAndEpoch:
        return LeaderAndEpoch(self.role.leader_id, self.role.epoch)

    @property
    def is_leader(self) -> bool:
        return isinstance(self.role, Leader)

    @property
    def role_name(self) -> str:
        return self.role.name

    @property
    def log_end_offset(self) -> int:
        return self.log.end_offset

    @property
    def log_start_offset(self) -> int:
        return self.log.start_offset

    def handle(self, envelope: Envelope, now_ms: int) -> list[Envelope]:
        """Process one inbound request or response; returns what to send (responses included)."""
        self._now = max(self._now, now_ms)
        if envelope.destination == self.node_id:
            msg = envelope.message
            if envelope.is_request:
                response = self._handle_request(envelope)
                if response is not None:
                    self._out.append(Envelope(self.node_id, envelope.source, envelope.correlation_id, response))
            else:
                pending = self._inflight.pop(envelope.correlation_id, None)
                if pending is not None and pending.destination == envelope.source and _response_matches(pending.request, msg):
                    self._handle_response(envelope.source, pending, msg)
        return self._step()

    def poll(self, now_ms: int) -> list[Envelope]:
        """Run timers (elections, fetches, retries, check-quorum), flush, deliver commits."""
        self._now = max(self._now, now_ms)
        return self._step()

    def next_deadline(self) -> int:
        """The latest time at which ``poll`` must be called (it may be called earlier)."""
        if self._out or self._has_undelivered() or (self.is_leader and self.log.flushed_end < self.log.end_offset):
            return self._now
        role = self.role
        rt = self.config.request_timeout_ms
        ds: list[int] = [p.sent_ms + rt for p in self._inflight.values()]
        if isinstance(role, Unattached):
            ds.append(role.election_deadline if self.is_voter else role.next_discovery)
        elif isinstance(role, (Prospective, Candidate)):
            ds.append(role.election_deadline)
            if not (isinstance(role, Candidate) and role.backing_off):
                for v in self.voters:
                    if v != self.node_id and v not in role.granted and v not in role.rejected:
                        ds.append(role.last_sent.get(v, -rt) + rt)
        elif isinstance(role, Leader):
            if self.config.check_quorum and len(self.voters) > 1:
                ds.append(role.check_quorum_deadline)
            ds.extend(expiry for _, expiry in role.parked.values())
            for v in self.voters:
                if v != self.node_id:
                    ds.append(self._begin_epoch_due(role, v))
        elif isinstance(role, Follower):
            ds.append(role.fetch_deadline)
            if role.inflight is None:
                ds.append(role.next_fetch_ms)
        elif isinstance(role, Resigned):
            ds.append(role.election_deadline)
            for v in role.unacked:
                ds.append(role.last_sent.get(v, -rt) + rt)
        return max(self._now, min(ds)) if ds else self._now + self.config.election_timeout_ms

    def append(self, payloads: Sequence[bytes], *, epoch: int | None = None) -> int:
        """Leader only: append entries in the current epoch; returns the offset of the last one.
        They are flushed at the next ``poll`` and committed once a majority has them."""
        if not isinstance(self.role, Leader) or (epoch is not None and epoch != self.role.epoch):
            raise NotLeaderError(self.leader_and_epoch)
        if not payloads:
            return self.log.end_offset - 1
        start = self.log.end_offset
        e = self.role.epoch
        self.log.append([Entry(start + i, e, bytes(p)) for i, p in enumerate(payloads)])
        return self.log.end_offset - 1

    def committed(self, from_offset: int = 0, max_entries: int | None = None) -> list[Entry]:
        """Committed entries from ``from_offset`` (those still in the log: at or after its start)."""
        return self.log.read(from_offset, self.high_watermark, max_entries)

    def register_listener(self, listener: RaftListener) -> None:
        """Deliver the committed log to ``listener`` from the beginning (latest snapshot first)."""
        self._listeners.append([listener, 0, None])

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

    def resign(self) -> bool:
        """Graceful leader shutdown (EndQuorumEpoch). Returns False if this node is not the leader."""
        if not isinstance(self.role, Leader):
            return False
        self._to_resigned()
        return True

    def describe_quorum(self) -> DescribeQuorumResponse:
        role = self.role
        if not isinstance(role, Leader):
            lid = role.leader_id if role.leader_id is not None else NO_LEADER
            return DescribeQuorumResponse(error_code=ErrorCode.not_leader_or_follower, leader_id=lid, leader_epoch=role.epoch)

        def state(p: ReplicaProgress) -> ReplicaState:
            if p.replica_id == self.node_id:
                return ReplicaState(
                    replica_id=p.replica_id,
                    log_end_offset=self.log.end_offset,
                    last_fetch_timestamp=self._now,
                    last_caught_up_timestamp=self._now,
                )
            return ReplicaState(
                replica_id=p.replica_id,
                log_end_offset=p.end_offset,
                last_fetch_timestamp=p.last_fetch_ms,
                last_caught_up_timestamp=p.last_caught_up_ms,
            )

        return DescribeQuorumResponse(
            error_code=ErrorCode.none,
            leader_id=self.node_id,
            leader_epoch=role.epoch,
            high_watermark=self.high_watermark,
            current_voters=tuple(state(role.replicas[v]) for v in sorted(role.replicas)),
            observers=tuple(state(role.observers[o]) for o in sorted(role.observers)),
        )

    def __repr__(self) -> str:
        return (
            f"RaftNode(id={self.node_id}, {self.role!r}, hw={self.high_watermark}, "
            f"log=[{self.log.start_offset},{self.log.end_offset}))"
        )

    # ======================================================================== roles
    def _rand_election_timeout(self) -> int:
        t = self.config.election_timeout_ms
        return t + self.rng.randrange(t)

    def _backoff(self, retries: int) -> int:
        cap = self.config.election_backoff_max_ms
        return min(cap, self.config.retry_backoff_ms * self.rng.randrange(1, 2 << min(20, max(0, retries - 1))))

    def _initial_role(self, qs: QuorumStateData) -> Role:
        now = self._now
        if qs.leader_id == self.node_id and self.is_voter:
            others = tuple(sorted(self.voters - {self.node_id}))
            return Resigned(qs.epoch, self.node_id, others, now + self._rand_election_timeout())
        if qs.leader_id is not None and qs.leader_id != self.node_id:
            return Follower(qs.epoch, qs.leader_id, qs.voted_id, now + self.config.fetch_timeout_ms)
        return Unattached(qs.epoch, qs.voted_id, now + self._rand_election_timeout())

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
        if isinstance(old, Leader) and old.parked:
            # Answer parked fetches now (with the error that tells them about the new state).
            for env, _ in old.parked.values():
                resp = self._handle_fetch_request(env.message, env, allow_park=False)  # type: ignore[arg-type]
                if resp is not None:
                    self._out.append(Envelope(self.node_id, env.source, env.correlation_id, resp))
            old.parked.clear()

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
        retained = old.leader_id if isinstance(old, Follower) else None
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
        self._persist(epoch, self.node_id, None)
        role = Candidate(epoch, self.voters, self.node_id, self._now + self._rand_election_timeout(), retries)
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

    # ======================================================================== the step
    def _step(self) -> list[Envelope]:
        now = self._now
        rt = self.config.request_timeout_ms
        expired = [c for c, p in self._inflight.items() if now >= p.sent_ms + rt]
        for c in expired:
            del self._inflight[c]
            if isinstance(self.role, Follower) and self.role.inflight == c:
                self.role.inflight = None
        role = self.role
        if isinstance(role, Leader):
            self._poll_leader(role)
        elif isinstance(role, Follower):
            self._poll_follower(role)
        elif isinstance(role, Prospective | Candidate):
            self._poll_election(role)
        elif isinstance(role, Unattached):
            self._poll_unattached(role)
        elif isinstance(role, Resigned):
            self._poll_resigned(role)
        self._deliver()
        out, self._out = self._out, []
        return out

    def _send(self, destination: int, message: Message) -> int:
        corr = self._next_correlation
        self._next_correlation += 1
        self._inflight[corr] = _Pending(corr, destination, self._token, self._now, message)
        self._out.append(Envelope(self.node_id, destination, corr, message))
        return corr

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
        pre = isinstance(role, Prospective)
        rt = self.config.request_timeout_ms
        for v in sorted(self.voters):
            if v == self.node_id or v in role.granted or v in role.rejected:
                continue
            if now >= role.last_sent.get(v, -rt) + rt:
                role.last_sent[v] = now
                self._send(
                    v,
                    VoteRequest(
                        cluster_id=self.config.cluster_id,
                        replica_epoch=role.epoch,
                        replica_id=self.node_id,
                        last_offset_epoch=self.log.last_epoch,
                        last_offset=self.log.end_offset,
                        pre_vote=pre,
                    ),
                )
        return None

    def _poll_again(self) -> None:
        """After a transition inside poll, let the new role act in the same step."""
        role = self.role
        if isinstance(role, Follower):
            self._poll_follower(role)
        elif isinstance(role, Prospective | Candidate):
            self._poll_election(role)
        elif isinstance(role, Leader):
            self._poll_leader(role)

    def _poll_follower(self, role: Follower) -> None:
        now = self._now
        if now >= role.fetch_deadline:
            if self.is_voter:
                self._start_election(0)
            else:
                self._set_role(Unattached(role.epoch, role.voted_id, now))
            return self._poll_again()
        if role.inflight is None and now >= role.next_fetch_ms:
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

    def _fetch_request(self, max_wait: int) -> FetchRequest:
        return FetchRequest(
            cluster_id=self.config.cluster_id,
            replica_id=self.node_id,
            current_leader_epoch=self.role.epoch,
            fetch_offset=self.log.end_offset,
            last_fetched_epoch=self.log.last_epoch,
            log_start_offset=self.log.start_offset,
            max_wait_ms=max_wait,
        )

    def _poll_resigned(self, role: Resigned) -> None:
        now = self._now
        if now >= role.election_deadline:
            self._start_election(role.retries + 1)
            return self._poll_again()
        rt = self.config.request_timeout_ms
        for v in sorted(role.unacked):
            if now >= role.last_sent.get(v, -rt) + rt:
                role.last_sent[v] = now
                self._send(
                    v,
                    EndQuorumEpochRequest(
                        cluster_id=self.config.cluster_id,
                        leader_id=self.node_id,
                        leader_epoch=role.epoch,
                        preferred_successors=role.preferred_successors,
                    ),
                )
        return None

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
        if self.log.flushed_end < self.log.end_offset:
            self.log.flush()
            self._maybe_advance_hw(role)
            self._wake_parked(role)
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

    # ======================================================================== requests
    def _handle_request(self, env: Envelope) -> Message | None:
        msg = env.message
        if isinstance(msg, FetchRequest):
            return self._handle_fetch_request(msg, env, allow_park=True)
        if isinstance(msg, VoteRequest):
            return self._handle_vote_request(msg)
        if isinstance(msg, BeginQuorumEpochRequest):
            return self._handle_begin_epoch(msg)
        if isinstance(msg, EndQuorumEpochRequest):
            return self._handle_end_epoch(msg)
        if isinstance(msg, FetchSnapshotRequest):
            return self._handle_fetch_snapshot(msg)
        if isinstance(msg, DescribeQuorumRequest):
            return self.describe_quorum()
        return None

    def _cluster_ok(self, cluster_id: str | None) -> bool:
        return cluster_id is None or self.config.cluster_id is None or cluster_id == self.config.cluster_id

    def _leader_id_or_sentinel(self) -> int:
        return self.role.leader_id if self.role.leader_id is not None else NO_LEADER

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

    def _handle_begin_epoch(self, req: BeginQuorumEpochRequest) -> BeginQuorumEpochResponse:
        err = (
            ErrorCode.inconsistent_cluster_id
            if not self._cluster_ok(req.cluster_id)
            else self._validate_voter_only(req.leader_id, req.leader_epoch)
        )
        if err is None:
            self._maybe_transition(req.leader_id, req.leader_epoch)
        return BeginQuorumEpochResponse(
            error_code=err or ErrorCode.none, leader_id=self._leader_id_or_sentinel(), leader_epoch=self.role.epoch
        )

    def _handle_end_epoch(self, req: EndQuorumEpochRequest) -> EndQuorumEpochResponse:
        err = (
            ErrorCode.inconsistent_cluster_id
            if not self._cluster_ok(req.cluster_id)
            else self._validate_voter_only(req.leader_id, req.leader_epoch)
        )
        if err is None:
            self._maybe_transition(req.leader_id, req.leader_epoch)
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

    def _validate_leader_only(self, request_epoch: int) -> ErrorCode | None:
        if request_epoch < self.role.epoch:
            return ErrorCode.fenced_leader_epoch
        if request_epoch > self.role.epoch:
            return ErrorCode.unknown_leader_epoch
        if not isinstance(self.role, Leader):
            return ErrorCode.not_leader_or_follower
        return None

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
            if allow_park and not records and req.max_wait_ms > 0 and self.high_watermark == hw_before and self.role is role:
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

    # ======================================================================== responses
    def _handle_response(self, source: int, pending: _Pending, msg: Message) -> None:
        current = pending.token == self._token
        if isinstance(self.role, Follower) and self.role.inflight == pending.correlation_id:
            self.role.inflight = None
        if isinstance(msg, VoteResponse):
            self._handle_vote_response(source, pending, msg, current)
        elif isinstance(msg, FetchResponse):
            self._handle_fetch_response(pending, msg, current)
        elif isinstance(msg, FetchSnapshotResponse):
            self._handle_fetch_snapshot_response(pending, msg, current)
        elif isinstance(msg, BeginQuorumEpochResponse):
            if self._maybe_transition(msg.leader_id, msg.leader_epoch):
                return
            if current and isinstance(self.role, Leader) and msg.error_code == ErrorCode.none:
                self.role.begin_acked.add(source)
        elif isinstance(msg, EndQuorumEpochResponse):
            if self._maybe_transition(msg.leader_id, msg.leader_epoch):
                return
            if current and isinstance(self.role, Resigned) and msg.error_code == ErrorCode.none:
                self.role.unacked.discard(source)

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
            self.log.flush()
        elif msg.snapshot_id is not None:
            if msg.snapshot_id.end_offset <= self.log.start_offset:
                return
            role.snapshot = (msg.snapshot_id, bytearray())
        else:
            if msg.records:
                if msg.records[0].offset != self.log.end_offset:
                    return
                self.log.append(msg.records)
                self.log.flush()
            if msg.high_watermark >= 0:
                hw = min(msg.high_watermark, self.log.end_offset)
                if hw > self.high_watermark:
                    self.high_watermark = hw
        role.fetch_deadline = self._now + self.config.fetch_timeout_ms
        role.last_fetch_ok_ms = self._now
        role.next_fetch_ms = self._now

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
        role.fetch_deadline = self._now + self.config.fetch_timeout_ms
        role.last_fetch_ok_ms = self._now
        role.next_fetch_ms = self._now
        if len(buf) >= msg.size:
            role.snapshot = None
            last = self.log.entry(sid.end_offset - 1)
            keeps_log = last is not None and last.epoch == sid.epoch
            if not keeps_log and self.high_watermark > sid.end_offset:
                raise RaftSafetyError(f"snapshot {sid} would discard committed entries below {self.high_watermark}")
            self.log.install_snapshot(sid, bytes(buf))
            self.high_watermark = max(self.high_watermark, sid.end_offset)


def _response_matches(request: Message, response: Message) -> bool:
    return type(response).__name__.replace("Response", "") == type(request).__name__.replace("Request", "")
