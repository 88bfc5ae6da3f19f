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

The parts, by responsibility: ``core`` (state, role transitions, sending, listeners),
``voting`` (elections, Begin/EndQuorumEpoch), ``replication`` (Fetch, leader and follower
side), ``snapshots`` (snapshot API, FetchSnapshot); this module has the public API and the
dispatch of messages and timers.
"""

from __future__ import annotations

from collections.abc import Sequence

from suoi.raft.core import NotLeaderError, RaftListener, _Pending, decode_leader_change, encode_leader_change
from suoi.raft.log import FlushJob
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
    Message,
    ReplicaState,
    VoteRequest,
    VoteResponse,
)
from suoi.raft.replication import ReplicationMixin
from suoi.raft.snapshots import SnapshotMixin
from suoi.raft.state import (
    Candidate,
    Follower,
    Leader,
    Prospective,
    ReplicaProgress,
    Resigned,
    Unattached,
)
from suoi.raft.voting import VotingMixin

__all__ = ["NotLeaderError", "RaftListener", "RaftNode", "decode_leader_change", "encode_leader_change"]


class RaftNode(VotingMixin, ReplicationMixin, SnapshotMixin):
    """One member of the metadata quorum. Not thread-safe: one driver calls it at a time."""

    # ======================================================================== public API
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

    def request_failed(self, correlation_id: int, now_ms: int) -> list[Envelope]:
        """The driver could not deliver request ``correlation_id``, or lost the connection before
        its answer (Kafka's disconnect). A follower's fetch is retried after the retry backoff
        instead of the request timeout, and until an answer comes the leader does not count as
        live (:attr:`live_leader_id`). Other requests keep their own resend timers."""
        self._now = max(self._now, now_ms)
        pending = self._inflight.pop(correlation_id, None)
        role = self.role
        if pending is not None and isinstance(role, Follower) and role.inflight == correlation_id:
            role.inflight = None
            role.next_fetch_ms = self._now + self.config.retry_backoff_ms
            if pending.destination == role.leader_id:
                role.leader_unreachable = True
        return self._step()

    def next_deadline(self) -> int:
        """The latest time at which ``poll`` must be called (it may be called earlier)."""
        if self._out or self._has_undelivered() or (not self.async_flush and self.wants_flush):
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
                        ds.append(self._resend_due(role.last_sent, v))
        elif isinstance(role, Leader):
            if self.config.check_quorum and len(self.voters) > 1:
                ds.append(role.check_quorum_deadline)
            ds.extend(expiry for _, expiry in role.parked.values())
            for v in self.voters:
                if v != self.node_id:
                    ds.append(self._begin_epoch_due(role, v))
        elif isinstance(role, Follower):
            ds.append(role.fetch_deadline)
            if role.inflight is None and self.log_durable:  # else flush_done sends the Fetch
                ds.append(role.next_fetch_ms)
        elif isinstance(role, Resigned):
            ds.append(role.election_deadline)
            for v in role.unacked:
                ds.append(self._resend_due(role.last_sent, v))
        return max(self._now, min(ds)) if ds else self._now + self.config.election_timeout_ms

    def append(self, payloads: Sequence[bytes], *, epoch: int | None = None) -> int:
        """Leader only: append entries in the current epoch; returns the offset of the last one.
        They are flushed at the next ``poll`` (or by the driver, ``async_flush``) and committed
        once a majority of voters has them durable."""
        if not isinstance(self.role, Leader) or (epoch is not None and epoch != self.role.epoch):
            raise NotLeaderError(self.leader_and_epoch)
        if not payloads:
            return self.log.end_offset - 1
        start = self.log.end_offset
        e = self.role.epoch
        self.log.append([Entry(start + i, e, bytes(p)) for i, p in enumerate(payloads)])
        # Followers fetch while our own flush runs: the high watermark counts our log only up to
        # what is durable here, theirs up to what they report (durable there).
        self._wake_parked(self.role)
        return self.log.end_offset - 1

    def begin_flush(self) -> FlushJob:
        """``async_flush``: start a flush of the log as it is now (when ``wants_flush``). Run the
        job's ``run`` (if any) on another thread, then call :meth:`flush_done`."""
        return self.log.begin_flush()

    def flush_done(self, job: FlushJob, now_ms: int) -> list[Envelope]:
        """The job of :meth:`begin_flush` has run: the log is durable up to its end offset (the
        leader's high watermark may advance, a follower's next Fetch may leave)."""
        self._now = max(self._now, now_ms)
        self._on_flushed(job)
        return self._step()

    def committed(self, from_offset: int = 0, max_entries: int | None = None) -> list[Entry]:
        """Committed entries from ``from_offset`` (those still in the log: at or after its start)."""
        return self.log.read(from_offset, self.high_watermark, max_entries)

    def register_listener(self, listener: RaftListener) -> None:
        """Deliver the committed log to ``listener`` from the beginning (latest snapshot first)."""
        self._listeners.append([listener, 0, None])

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

    # ======================================================================== dispatch
    def _step(self) -> list[Envelope]:
        self._flush_if_sync()  # what `handle` or `append` wrote: before a follower's next Fetch
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
        self._flush_if_sync()  # what the role appended (a new leader's LeaderChange)
        self._deliver()
        out, self._out = self._out, []
        return out

    def _poll_again(self) -> None:
        """After a transition inside poll, let the new role act in the same step."""
        role = self.role
        if isinstance(role, Follower):
            self._poll_follower(role)
        elif isinstance(role, Prospective | Candidate):
            self._poll_election(role)
        elif isinstance(role, Leader):
            self._poll_leader(role)

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

    def _handle_response(self, source: int, pending: _Pending, msg: Message) -> None:
        current = pending.token == self._token
        if isinstance(self.role, Follower):
            if self.role.inflight == pending.correlation_id:
                self.role.inflight = None
            if source == self.role.leader_id:
                self.role.leader_unreachable = False  # it answered: alive
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


def _response_matches(request: Message, response: Message) -> bool:
    return type(response).__name__.replace("Response", "") == type(request).__name__.replace("Request", "")
