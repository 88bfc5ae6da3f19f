"""Partition state changes: leader election, AlterPartition, ElectLeaders, auto leader rebalance.

`partition_change` is the one place that decides a partition's next leader, ISR and replicas
(Kafka's PartitionChangeBuilder, before KIP-966's ELR):

* a broker being removed leaves the ISR, but the ISR never becomes empty: its last member
  stays, leaderless, so that it can be elected cleanly when it comes back;
* an ongoing reassignment completes as soon as every adding replica is in the (new) ISR and
  an ISR member outside the removing replicas remains: the removing replicas leave the
  replicas and the ISR and the reassignment state is cleared. This is checked on every
  change (AlterPartition, fencing, elections), not only when the leader reports an ISR;
* the current leader stays if it is still in the ISR and eligible (unfenced, not shutting
  down); otherwise the first replica (in replica order: the target replicas first during a
  reassignment) that is in the ISR and eligible leads;
* if none is, the leader is -1, unless unclean election is allowed (the topic's
  ``unclean.leader.election.enable``, the cluster default, or an unclean ElectLeaders): then
  the first eligible replica that is not being added (an adding replica never had the data)
  leads and the ISR becomes just that replica.

Replay turns the change into epochs: every PartitionChange bumps the partition epoch, a new
leader also bumps the leader epoch.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from suoi.controller.errors import ApiError
from suoi.controller.image import PartitionRegistration
from suoi.controller.messages import AlterPartitionResult, ControllerResult, ElectionResult, ElectionType
from suoi.controller.records import NO_LEADER, PartitionChange
from suoi.model import ErrorCode

if TYPE_CHECKING:
    from suoi.controller.context import OperationContext

__all__ = ["alter_partition", "elect_leaders", "partition_change", "rebalance_leaders"]


def partition_change(
    c: OperationContext,
    topic_id: uuid.UUID,
    partition: int,
    *,
    remove: int | None = None,
    isr: Sequence[int] | None = None,
    preferred: bool = False,
    unclean: bool | None = None,
    replicas: Sequence[int] | None = None,
    adding: Sequence[int] | None = None,
    removing: Sequence[int] | None = None,
) -> PartitionChange | None:
    """The PartitionChange that brings the partition in line with the brokers' current
    eligibility (and the requested ISR / removal / replicas and reassignment state), or None
    if nothing changes. An explicit ``isr`` must be non-empty and within the replicas."""
    reg = c.state.partition(topic_id, partition)
    assert reg is not None
    t = _Target(list(reg.replicas if replicas is None else replicas), list(reg.isr if isr is None else isr),
                list(reg.adding_replicas if adding is None else adding),
                list(reg.removing_replicas if removing is None else removing))
    if remove is not None and remove in t.isr and len(t.isr) > 1:
        t.isr.remove(remove)
    t.maybe_complete(c, reg.leader)
    leader = reg.leader
    if preferred and t.replicas[0] in t.isr and c.eligible(t.replicas[0]):
        leader = t.replicas[0]
    if leader == NO_LEADER or leader not in t.isr or not c.eligible(leader):
        leader = next((r for r in t.replicas if r in t.isr and c.eligible(r)), NO_LEADER)
        if leader == NO_LEADER and (c.unclean_enabled(topic_id) if unclean is None else unclean):
            leader = next((r for r in t.replicas if r not in t.adding and c.eligible(r)), NO_LEADER)
            if leader != NO_LEADER:
                t.isr = [leader]
                t.maybe_complete(c, leader)  # an ISR of the (non-adding) leader alone keeps it if it completes

    def changed(new: Sequence[int], old: tuple[int, ...]) -> tuple[int, ...] | None:
        return None if tuple(new) == old else tuple(new)

    change = PartitionChange(
        topic_id=topic_id, partition=partition,
        isr=changed(t.isr, reg.isr),
        leader=None if leader == reg.leader else leader,
        replicas=changed(t.replicas, reg.replicas),
        adding_replicas=changed(t.adding, reg.adding_replicas),
        removing_replicas=changed(t.removing, reg.removing_replicas),
    )
    if (change.isr, change.leader, change.replicas, change.adding_replicas, change.removing_replicas) == (None,) * 5:
        return None
    return change


@dataclass(slots=True)
class _Target:
    """A partition's next replicas, ISR and reassignment state, while a change is decided."""

    replicas: list[int]
    isr: list[int]
    adding: list[int]
    removing: list[int]

    def maybe_complete(self, c: OperationContext, leader: int) -> None:
        """Complete the reassignment if it can be: every adding replica is in the ISR, an ISR
        member remains once the removing replicas leave, and, if the leader is among those and
        eligible, an eligible ISR member can take over (until then it keeps leading)."""
        if not (self.adding or self.removing) or not set(self.adding) <= set(self.isr):
            return
        isr = [b for b in self.isr if b not in self.removing]
        if not isr:
            return
        if leader in self.removing and leader in self.isr and c.eligible(leader) and not any(c.eligible(b) for b in isr):
            return
        self.replicas = [b for b in self.replicas if b not in self.removing]
        self.isr = isr
        self.adding, self.removing = [], []


def remove_broker_from_isrs(c: OperationContext, broker_id: int) -> None:
    """Stage changes for every partition whose ISR holds ``broker_id`` (which the caller has
    already made ineligible): it leaves the ISR, and new leaders are elected where it led."""
    for tid, p, reg in list(c.state.iter_partitions()):
        if broker_id in reg.isr or reg.leader == broker_id:
            change = partition_change(c, tid, p, remove=broker_id)
            if change is not None:
                c.stage(change)


def elect_leaderless(c: OperationContext, broker_id: int) -> None:
    """A broker became eligible: elect leaders for leaderless partitions it can lead. A broker
    restart unfences into thousands of them (every partition of a single node), so the common
    case - no reassignment - is decided here: the first replica in the ISR that is eligible,
    which is what `partition_change` decides for it; the rest (reassignments, no clean
    leader) go through `partition_change`."""
    eligible = {b.broker_id for b in c.state.brokers() if b.eligible}
    for tid, p, reg in list(c.state.iter_partitions()):
        if reg.leader != NO_LEADER or broker_id not in reg.replicas:
            continue
        if not (reg.adding_replicas or reg.removing_replicas):
            leader = next((r for r in reg.replicas if r in eligible and r in reg.isr), NO_LEADER)
            if leader != NO_LEADER:
                c.stage(PartitionChange(topic_id=tid, partition=p, leader=leader))
                continue
        change = partition_change(c, tid, p)
        if change is not None:
            c.stage(change)


def alter_partition(
    c: OperationContext,
    broker_id: int,
    broker_epoch: int,
    topic_id: uuid.UUID,
    partition: int,
    leader_epoch: int,
    partition_epoch: int,
    new_isr: Sequence[int],
) -> ControllerResult[AlterPartitionResult]:
    reg = c.state.partition(topic_id, partition)
    try:
        if broker_epoch != -1:
            c.check_broker_epoch(broker_id, broker_epoch)
        if c.state.topic_name(topic_id) is None:
            raise ApiError(ErrorCode.unknown_topic_id, f"No topic with id {topic_id}.")
        if reg is None:
            raise ApiError(ErrorCode.unknown_topic_or_partition, f"No such partition {topic_id}-{partition}.")
        if leader_epoch != reg.leader_epoch:
            raise ApiError(ErrorCode.fenced_leader_epoch, f"The leader epoch is {reg.leader_epoch}, not {leader_epoch}.")
        if broker_id != reg.leader:
            raise ApiError(ErrorCode.invalid_request, f"Broker {broker_id} is not the leader ({reg.leader}).")
        if partition_epoch != reg.partition_epoch:
            raise ApiError(ErrorCode.invalid_update_version,
                           f"The partition epoch is {reg.partition_epoch}, not {partition_epoch}.")
        isr = tuple(new_isr)
        if not isr or len(set(isr)) != len(isr):
            raise ApiError(ErrorCode.invalid_request, f"The new ISR {list(isr)} must be non-empty and without duplicates.")
        if reg.leader not in isr and not any(b in reg.isr and c.eligible(b) for b in isr):
            # suoi: a leader may leave the ISR (it found a corrupt batch in its log and steps
            # down) when an eligible in-sync replica remains to be elected; Kafka refuses it.
            raise ApiError(ErrorCode.invalid_request, f"The new ISR {list(isr)} does not include the leader {reg.leader}.")
        outside = [b for b in isr if b not in reg.replicas]
        if outside:
            raise ApiError(ErrorCode.invalid_request, f"The new ISR includes non-replicas {outside}.")
        ineligible = [b for b in isr if b not in reg.isr and not c.eligible(b)]
        if ineligible:
            raise ApiError(ErrorCode.ineligible_replica,
                           f"The new ISR includes fenced or shutting-down brokers {ineligible}.")
    except ApiError as e:
        cur = reg
        return c.finish(AlterPartitionResult(
            e.code, e.message,
            leader=cur.leader if cur else -1, leader_epoch=cur.leader_epoch if cur else -1,
            isr=cur.isr if cur else (), partition_epoch=cur.partition_epoch if cur else -1))
    change = partition_change(c, topic_id, partition, isr=isr)
    if change is not None:
        c.stage(change)
    after = c.state.partition(topic_id, partition)
    assert after is not None
    if after.leader != reg.leader:
        # The new ISR completed a reassignment that removes this leader (Kafka answers the same:
        # the records are written, and the old leader learns of its successor from the metadata).
        return c.finish(AlterPartitionResult(
            ErrorCode.new_leader_elected, f"The reassignment completed and elected leader {after.leader}.",
            after.leader, after.leader_epoch, after.isr, after.partition_epoch))
    return c.finish(AlterPartitionResult(ErrorCode.none, None, after.leader, after.leader_epoch, after.isr,
                                         after.partition_epoch))


def elect_leaders(
    c: OperationContext, election_type: ElectionType, partitions: Sequence[tuple[str, int]] | None
) -> ControllerResult[list[ElectionResult]]:
    """ElectLeaders. ``partitions=None`` means every partition, and then partitions that need
    no election are left out of the results (as Kafka does)."""
    everything = partitions is None
    if partitions is None:
        partitions = sorted((c.state.topic_name(tid) or "", p) for tid, p, _ in c.state.iter_partitions())
    results: list[ElectionResult] = []
    for topic, p in partitions:
        tid = c.state.topic_id(topic)
        if tid is None:
            results.append(ElectionResult(topic, p, ErrorCode.unknown_topic_or_partition, f"No such topic as {topic}"))
            continue
        reg = c.state.partition(tid, p)
        if reg is None:
            results.append(ElectionResult(topic, p, ErrorCode.unknown_topic_or_partition, f"No such partition as {topic}-{p}"))
            continue
        if election_type == ElectionType.PREFERRED:
            if reg.leader == reg.preferred_leader:
                if not everything:
                    results.append(ElectionResult(topic, p, ErrorCode.election_not_needed,
                                                  "Leader is already the preferred leader."))
                continue
            change = partition_change(c, tid, p, preferred=True)
            if change is None or change.leader != (change.replicas or reg.replicas)[0]:
                results.append(ElectionResult(topic, p, ErrorCode.preferred_leader_not_available,
                                              f"The preferred leader {reg.preferred_leader} is not in the ISR or not available."))
                continue
        else:
            if reg.leader != NO_LEADER:
                if not everything:
                    results.append(ElectionResult(topic, p, ErrorCode.election_not_needed, "The partition has a leader."))
                continue
            change = partition_change(c, tid, p, unclean=True)
            if change is None or change.leader in (None, NO_LEADER):
                results.append(ElectionResult(topic, p, ErrorCode.eligible_leaders_not_available,
                                              "No replica of the partition is available."))
                continue
        c.stage(change)
        results.append(ElectionResult(topic, p))
    return c.finish(results)


def rebalance_leaders(c: OperationContext, percentage: int) -> list[tuple[str, int]]:
    """Auto leader rebalance (``auto.leader.rebalance.enable``): for each broker, the share of
    the partitions whose preferred leader (first replica) it is but which another broker leads;
    above ``percentage`` percent, stage preferred elections for those of them where it is in the
    ISR and eligible. Partitions being reassigned are left alone. Returns what moved."""
    by_preferred: dict[int, list[tuple[str, uuid.UUID, int, PartitionRegistration]]] = {}
    for tid, p, reg in c.state.iter_partitions():
        by_preferred.setdefault(reg.preferred_leader, []).append((c.state.topic_name(tid) or "", tid, p, reg))
    moved: list[tuple[str, int]] = []
    for broker, parts in sorted(by_preferred.items()):
        elsewhere = sorted((x for x in parts if x[3].leader != broker), key=lambda x: (x[0], x[2]))
        if 100 * len(elsewhere) <= percentage * len(parts) or not c.eligible(broker):
            continue
        for name, tid, p, reg in elsewhere:
            if reg.is_reassigning or broker not in reg.isr:
                continue
            change = partition_change(c, tid, p, preferred=True)
            if change is not None and change.leader == broker:
                c.stage(change)
                moved.append((name, p))
    return moved
