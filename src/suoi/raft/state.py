"""One class per role (Kafka's QuorumState family). They hold the role's data and timers;
:class:`~suoi.raft.node.RaftNode` owns the transitions between them and all message handling.

Every role knows its ``epoch``; ``leader_id`` is the leader known in that epoch (None if none)."""

from __future__ import annotations

from dataclasses import dataclass

from suoi.raft.messages import Envelope, SnapshotId

__all__ = [
    "Candidate",
    "Follower",
    "Leader",
    "Prospective",
    "ReplicaProgress",
    "Resigned",
    "Role",
    "Unattached",
    "majority",
]


def majority(n: int) -> int:
    return n // 2 + 1


class Role:
    name = "role"
    epoch: int
    leader_id: int | None = None
    voted_id: int | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(epoch={self.epoch}, leader={self.leader_id}, voted={self.voted_id})"


class Unattached(Role):
    """No leader known in ``epoch``; may have voted (Kafka's Unattached and Voted states).
    A voter starts an election when ``election_deadline`` passes; an observer looks for the
    leader by fetching from a random voter every ``retry`` interval."""

    name = "unattached"

    def __init__(self, epoch: int, voted_id: int | None, election_deadline: int) -> None:
        self.epoch = epoch
        self.voted_id = voted_id
        self.election_deadline = election_deadline
        self.next_discovery = 0
        self.retries = 0  # carried into the next election's backoff


class _Election(Role):
    """Shared by Prospective (pre-vote) and Candidate: a tally of votes over the voter set."""

    def __init__(self, epoch: int, voters: frozenset[int], local_id: int, deadline: int, retries: int) -> None:
        self.epoch = epoch
        self.voters = voters
        self.granted: set[int] = {local_id}
        self.rejected: set[int] = set()
        self.election_deadline = deadline
        self.retries = retries
        self.last_sent: dict[int, int] = {}  # voter -> time its request was sent

    @property
    def won(self) -> bool:
        return len(self.granted) >= majority(len(self.voters))

    @property
    def lost(self) -> bool:
        return len(self.rejected) >= len(self.voters) - majority(len(self.voters)) + 1

    def record(self, voter: int, granted: bool) -> None:
        if voter not in self.voters:
            return
        if granted:
            self.granted.add(voter)
            self.rejected.discard(voter)
        elif voter not in self.granted:
            self.rejected.add(voter)


class Prospective(_Election):
    """KIP-996 pre-vote: asks voters whether they *would* vote, without bumping the epoch.
    Remembers the leader it was following (if any) so it can go back to it on timeout."""

    name = "prospective"

    def __init__(
        self,
        epoch: int,
        voters: frozenset[int],
        local_id: int,
        deadline: int,
        retries: int,
        voted_id: int | None,
        leader_id: int | None,
    ) -> None:
        super().__init__(epoch, voters, local_id, deadline, retries)
        self.voted_id = voted_id
        self.retained_leader = leader_id


class Candidate(_Election):
    """Voted for itself in ``epoch`` (persisted) and asks the other voters for their votes.
    When the vote is lost it backs off (``backoff_until``) before the next election."""

    name = "candidate"

    def __init__(self, epoch: int, voters: frozenset[int], local_id: int, deadline: int, retries: int) -> None:
        super().__init__(epoch, voters, local_id, deadline, retries)
        self.voted_id = local_id
        self.backing_off = False


@dataclass(slots=True)
class ReplicaProgress:
    """What the leader knows about one replica in its epoch (DescribeQuorum's fields)."""

    replica_id: int
    end_offset: int = -1  # only from fetches validated against the leader's log
    last_fetch_ms: int = -1
    last_caught_up_ms: int = -1
    last_fetch_leader_end: int = -1  # the leader's end offset at that replica's previous fetch


class Leader(Role):
    name = "leader"

    def __init__(
        self, epoch: int, local_id: int, voters: frozenset[int], epoch_start_offset: int, now: int, check_quorum_deadline: int
    ) -> None:
        self.epoch = epoch
        self.leader_id = local_id
        self.voted_id = local_id
        self.voters = voters
        self.epoch_start_offset = epoch_start_offset
        self.replicas: dict[int, ReplicaProgress] = {v: ReplicaProgress(v) for v in voters}
        self.observers: dict[int, ReplicaProgress] = {}
        self.begin_acked: set[int] = {local_id}
        self.begin_last_sent: dict[int, int] = {}
        self.fetched_since_check: set[int] = {local_id}
        self.check_quorum_deadline = check_quorum_deadline
        self.parked: dict[int, tuple[Envelope, int]] = {}  # replica id -> (fetch request, expiry)
        self.became_leader_ms = now

    def progress(self, replica_id: int) -> ReplicaProgress:
        if replica_id in self.replicas:
            return self.replicas[replica_id]
        p = self.observers.get(replica_id)
        if p is None:
            p = self.observers[replica_id] = ReplicaProgress(replica_id)
        return p

    def majority_end_offset(self, local_id: int, local_end: int) -> int:
        ends = sorted((local_end if v == local_id else self.replicas[v].end_offset for v in self.voters), reverse=True)
        return ends[majority(len(self.voters)) - 1]


class Follower(Role):
    """Fetches from ``leader_id``; becomes a candidate (or prospective) when no fetch succeeded
    for the fetch timeout. ``snapshot`` is set while a snapshot is being fetched."""

    name = "follower"

    def __init__(self, epoch: int, leader_id: int, voted_id: int | None, fetch_deadline: int) -> None:
        self.epoch = epoch
        self.leader_id = leader_id
        self.voted_id = voted_id
        self.fetch_deadline = fetch_deadline
        self.last_fetch_ok_ms: int | None = None
        self.next_fetch_ms = 0
        self.inflight: int | None = None  # correlation id of the outstanding Fetch/FetchSnapshot
        self.snapshot: tuple[SnapshotId, bytearray] | None = None
        self.leader_resigned = False
        #: A request to the leader failed in transport (refused, connection lost) since the last
        #: answer: the leader is probably gone, though the epoch is only over at the fetch timeout.
        self.leader_unreachable = False


class Resigned(Role):
    """A leader stepping down (graceful shutdown, lost quorum, or restart as the last leader):
    sends EndQuorumEpoch until acknowledged, accepts no appends, and stands for election again
    in a later epoch when ``election_deadline`` passes."""

    name = "resigned"

    def __init__(self, epoch: int, local_id: int, preferred_successors: tuple[int, ...], deadline: int) -> None:
        self.epoch = epoch
        self.leader_id = local_id
        self.voted_id = local_id
        self.preferred_successors = preferred_successors
        self.election_deadline = deadline
        self.unacked: set[int] = set(preferred_successors)
        self.last_sent: dict[int, int] = {}
        self.retries = 0
