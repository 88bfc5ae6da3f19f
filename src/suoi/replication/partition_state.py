"""Leader-side state of one partition: follower positions, ISR, high watermark.

Follows Kafka's `Partition.scala` / `Replica.scala` (KRaft mode):

* A follower is *caught up* at time t if it fetched from the leader's current LEO at t, or
  from at least the LEO the leader had at its previous fetch (then it is caught up as of
  that previous fetch). `lastCaughtUpTimeMs` is the latest such time.
* High watermark = min LEO over the leader and the *maximal* ISR (the committed ISR plus
  any replica a pending AlterPartition adds); it never decreases.
* ISR expansion: a non-ISR follower whose LEO >= HW and >= the leader-epoch start offset
  (so it has fetched in the current leader epoch). ISR shrink: ISR followers that have not
  caught up within replica.lag.time.max.ms. Either produces one `AlterPartitionProposal`;
  no new proposal is made while one is pending.
* The state never changes its committed ISR by itself: only `on_alter_partition_response`
  (success) or a new registration (`update_registration`) does.

Plain inputs, `now_ms` passed in, outputs returned; no asyncio, sockets, files or clocks.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from suoi.model import ErrorCode

UNKNOWN_OFFSET = -1  # a follower's LEO before its first fetch under this leader


@dataclass(frozen=True, slots=True)
class AlterPartitionProposal:
    """An ISR change for the runtime to send to the controller (AlterPartition).

    `leader_epoch` and `partition_epoch` are the ones the proposal is based on; the runtime
    hands the same object back to `on_alter_partition_response`.
    """

    new_isr: tuple[int, ...]
    leader_epoch: int
    partition_epoch: int


@dataclass(frozen=True, slots=True)
class FollowerFetchResult:
    error: ErrorCode = ErrorCode.none
    high_watermark: int | None = None  # the new HW if this fetch advanced it
    proposal: AlterPartitionProposal | None = None  # an ISR expansion to send


#: the answer to a follower fetch that changed nothing but the follower's fetch times
NO_CHANGE = FollowerFetchResult()
_NOT_A_FOLLOWER = FollowerFetchResult(error=ErrorCode.not_leader_or_follower)
_OUT_OF_RANGE = FollowerFetchResult(error=ErrorCode.offset_out_of_range)


@dataclass(slots=True)
class ReplicaState:
    """What the leader knows about one follower (Kafka's `ReplicaState`)."""

    log_end_offset: int = UNKNOWN_OFFSET
    #: the follower's log start as its last Fetch said: DeleteRecords' low watermark
    log_start_offset: int = UNKNOWN_OFFSET
    last_fetch_leader_leo: int = UNKNOWN_OFFSET
    last_fetch_time_ms: int = 0
    last_caught_up_time_ms: int = 0

    def is_caught_up(self, leader_leo: int, now_ms: int, max_lag_ms: int) -> bool:
        return self.log_end_offset == leader_leo or now_ms - self.last_caught_up_time_ms <= max_lag_ms


class LeaderPartitionState:
    """One partition this broker leads. Construction is Kafka's `makeLeader` for a new leader."""

    def __init__(
        self,
        topic: str,
        partition: int,
        leader_id: int,
        leader_epoch: int,
        partition_epoch: int,
        replicas: Iterable[int],
        isr: Iterable[int],
        min_insync_replicas: int,
        replica_lag_time_max_ms: int = 30000,
        *,
        leader_leo: int = 0,
        high_watermark: int = 0,
        now_ms: int = 0,
    ) -> None:
        if min_insync_replicas < 1:
            raise ValueError("min_insync_replicas must be >= 1")
        self.topic = topic
        self.partition = partition
        self.leader_id = leader_id
        self.min_insync_replicas = min_insync_replicas
        self.replica_lag_time_max_ms = replica_lag_time_max_ms
        self.leader_epoch = leader_epoch
        self.partition_epoch = partition_epoch
        self.replicas: tuple[int, ...] = ()
        self.isr: frozenset[int] = frozenset()
        self.pending: AlterPartitionProposal | None = None
        self.followers: dict[int, ReplicaState] = {}
        self.leader_leo = leader_leo
        # the leader's HW is log state (checkpointed); a new leader starts from it
        self.high_watermark = min(max(high_watermark, 0), leader_leo)
        self.leader_epoch_start_offset = leader_leo
        self._apply_registration(tuple(replicas), frozenset(isr), now_ms, new_leader_epoch=True)

    # ------------------------------------------------------------------ queries

    @property
    def pending_isr(self) -> frozenset[int] | None:
        return frozenset(self.pending.new_isr) if self.pending is not None else None

    @property
    def maximal_isr(self) -> frozenset[int]:
        """Committed ISR plus whatever a pending proposal adds (Kafka's `maximalIsr`)."""
        if self.pending is None:
            return self.isr
        return self.isr | frozenset(self.pending.new_isr)

    def is_under_min_isr(self) -> bool:
        return len(self.isr) < self.min_insync_replicas

    def can_accept_acks_all(self) -> ErrorCode:
        """Checked before an acks=all append (Kafka's `appendRecordsToLeader`)."""
        return ErrorCode.not_enough_replicas if self.is_under_min_isr() else ErrorCode.none

    def acks_all_satisfied(self, required_offset: int) -> bool:
        """True once every member of the (maximal) ISR has every offset below `required_offset`.

        That is HW >= required: the HW is the min LEO over the maximal ISR and never
        decreases. `required_offset` is the LEO right after the append (last offset + 1).
        """
        return self.high_watermark >= required_offset

    def acks_all_error(self) -> ErrorCode:
        """The error of a satisfied acks=all wait (Kafka's `checkEnoughReplicasReachOffset`)."""
        return ErrorCode.not_enough_replicas_after_append if self.is_under_min_isr() else ErrorCode.none

    def low_watermark(self, leader_log_start: int, alive: Collection[int]) -> int:
        """Kafka's `lowWatermarkIfLeader`: the smallest log start offset among this leader and its
        followers on alive brokers (a follower that has not said yet counts as UNKNOWN_OFFSET)."""
        starts = [f.log_start_offset for rid, f in self.followers.items() if rid in alive]
        return min([leader_log_start, *starts])

    def follower_state(self, replica_id: int) -> ReplicaState:
        return self.followers[replica_id]

    # ------------------------------------------------------------------ events

    def on_leader_append(self, leader_leo: int, now_ms: int) -> int | None:
        """The leader's log grew to `leader_leo`; returns the new HW if it advanced."""
        if leader_leo < self.leader_leo:
            raise ValueError(f"leader LEO went back from {self.leader_leo} to {leader_leo}")
        self.leader_leo = leader_leo
        return self._maybe_increment_hw(now_ms)

    def on_follower_fetch(self, replica_id: int, fetch_offset: int, leader_leo: int, now_ms: int,
                          log_start_offset: int = UNKNOWN_OFFSET) -> FollowerFetchResult:
        """A follower fetched from `fetch_offset` (its LEO) while the leader's LEO was `leader_leo`;
        its log starts at `log_start_offset` (the Fetch's field).

        Call it after the leader's log read, as Kafka's `updateFollowerFetchState` does. Runs
        on every follower fetch (twice per round trip when the fetch parks): a fetch that moves
        nothing but the follower's times returns the shared `NO_CHANGE` (no object made).
        """
        state = self.followers.get(replica_id)
        if state is None:
            return _NOT_A_FOLLOWER
        # `leader_leo` is the LEO seen by this fetch's log read; an append may have come since
        if leader_leo > self.leader_leo:
            self.leader_leo = leader_leo
        if fetch_offset < 0 or fetch_offset > self.leader_leo:
            return _OUT_OF_RANGE

        caught_up = state.last_caught_up_time_ms
        if fetch_offset >= leader_leo:
            if now_ms > caught_up:
                caught_up = now_ms
        elif fetch_offset >= state.last_fetch_leader_leo >= 0 and state.last_fetch_time_ms > caught_up:
            caught_up = state.last_fetch_time_ms
        previous_leo = state.log_end_offset
        state.log_end_offset = fetch_offset
        if log_start_offset >= 0:
            state.log_start_offset = log_start_offset
        state.last_fetch_leader_leo = leader_leo
        state.last_fetch_time_ms = now_ms
        state.last_caught_up_time_ms = caught_up

        proposal = None
        if self.pending is None and replica_id not in self.isr and self._is_follower_in_sync(state):
            proposal = self._propose(self.isr | {replica_id})
        hw = self._maybe_increment_hw(now_ms) if previous_leo != fetch_offset else None
        if hw is None and proposal is None:
            return NO_CHANGE
        return FollowerFetchResult(high_watermark=hw, proposal=proposal)

    def maybe_shrink_isr(self, now_ms: int) -> AlterPartitionProposal | None:
        """Propose removing ISR followers not caught up within replica.lag.time.max.ms.

        Call it periodically (Kafka: every replica.lag.time.max.ms / 2).
        """
        if self.pending is not None:
            return None
        out_of_sync = {
            rid
            for rid in self.isr
            if rid != self.leader_id
            and not self.followers[rid].is_caught_up(self.leader_leo, now_ms, self.replica_lag_time_max_ms)
        }
        if not out_of_sync:
            return None
        return self._propose(self.isr - out_of_sync)

    def on_alter_partition_response(
        self,
        proposal: AlterPartitionProposal,
        error: int,
        *,
        isr: Iterable[int] = (),
        leader_epoch: int = -1,
        partition_epoch: int = -1,
        now_ms: int = 0,
    ) -> int | None:
        """The controller answered `proposal`; returns the new HW if it advanced.

        On success `isr`/`leader_epoch`/`partition_epoch` are the response's. A response for a
        proposal that is no longer pending (a new registration came first) is ignored.
        """
        if self.pending is not proposal:
            return None
        if error == ErrorCode.none:
            if leader_epoch != self.leader_epoch or partition_epoch < self.partition_epoch:
                return None  # stale; a registration will follow
            new_isr = frozenset(isr)
            if self.leader_id not in new_isr:
                raise ValueError(f"controller ISR {sorted(new_isr)} drops the leader {self.leader_id}")
            self.pending = None
            self.isr = new_isr
            self.partition_epoch = partition_epoch
            return self._maybe_increment_hw(now_ms)
        if error in (ErrorCode.operation_not_attempted, ErrorCode.ineligible_replica):
            self.pending = None  # not attempted: safe to go back to the committed state
            return None
        # FENCED_LEADER_EPOCH, INVALID_UPDATE_VERSION, UNKNOWN_TOPIC_OR_PARTITION and other
        # errors: stay pending until a new registration arrives (the runtime's AlterPartition
        # sender retries retriable errors itself).
        return None

    def update_registration(
        self,
        leader_epoch: int,
        partition_epoch: int,
        replicas: Iterable[int],
        isr: Iterable[int],
        now_ms: int,
        *,
        leader_leo: int | None = None,
    ) -> bool:
        """A new partition registration from the metadata log naming this broker leader again.

        Returns False (ignored) for a stale one (older partition epoch or leader epoch); one with
        the current epochs is a no-op. A newer one clears any pending proposal (the controller
        either committed it, and this registration or an earlier one carries it, or rejected it);
        a new leader epoch resets the followers' caught-up times and the leader-epoch start
        offset (LEOs are kept, as Kafka does for a re-elected leader).
        """
        if leader_epoch < self.leader_epoch or partition_epoch < self.partition_epoch:
            return False
        if leader_epoch == self.leader_epoch and partition_epoch == self.partition_epoch:
            # Already known from an AlterPartition response: same ISR, and a proposal made since
            # is based on this very epoch, so it stays pending. (Kafka re-applies it and drops
            # the pending state, which lets the HW pass a replica the controller then adds.)
            if leader_leo is not None:
                self.on_leader_append(leader_leo, now_ms)
            return True
        if leader_leo is not None:
            if leader_leo < self.leader_leo:
                raise ValueError(f"leader LEO went back from {self.leader_leo} to {leader_leo}")
            self.leader_leo = leader_leo
        new_epoch = leader_epoch > self.leader_epoch
        self.leader_epoch = leader_epoch
        self.partition_epoch = partition_epoch
        if new_epoch:
            self.leader_epoch_start_offset = self.leader_leo
        self._apply_registration(tuple(replicas), frozenset(isr), now_ms, new_leader_epoch=new_epoch)
        self._maybe_increment_hw(now_ms)
        return True

    # ------------------------------------------------------------------ internals

    def _apply_registration(self, replicas: tuple[int, ...], isr: frozenset[int], now_ms: int, *, new_leader_epoch: bool) -> None:
        if self.leader_id not in isr:
            raise ValueError(f"leader {self.leader_id} not in ISR {sorted(isr)}")
        if not isr <= set(replicas):
            raise ValueError(f"ISR {sorted(isr)} not a subset of replicas {list(replicas)}")
        self.replicas = replicas
        self.isr = isr
        self.pending = None
        followers: dict[int, ReplicaState] = {}
        for rid in replicas:
            if rid == self.leader_id:
                continue
            state = self.followers.get(rid)
            if state is None:
                state = ReplicaState(last_caught_up_time_ms=now_ms if rid in isr else 0)
            elif new_leader_epoch:
                # Kafka's resetReplicaState for a re-elected leader
                state.last_caught_up_time_ms = now_ms if rid in isr else 0
            followers[rid] = state
        self.followers = followers

    def _is_follower_in_sync(self, state: ReplicaState) -> bool:
        leo = state.log_end_offset
        return leo >= self.high_watermark and leo >= self.leader_epoch_start_offset

    def _propose(self, new_isr: Iterable[int]) -> AlterPartitionProposal:
        proposal = AlterPartitionProposal(tuple(sorted(new_isr)), self.leader_epoch, self.partition_epoch)
        assert self.leader_id in proposal.new_isr
        self.pending = proposal
        return proposal

    def _maybe_increment_hw(self, now_ms: int) -> int | None:
        del now_ms  # kept for Kafka's caught-up-follower rule, not modelled (see README)
        candidate = self.leader_leo
        followers = self.followers
        leader = self.leader_id
        for rid in self.isr if self.pending is None else self.maximal_isr:
            if rid != leader:
                leo = followers[rid].log_end_offset
                if leo < candidate:
                    candidate = leo
        if candidate > self.high_watermark:
            self.high_watermark = candidate
            return candidate
        return None
