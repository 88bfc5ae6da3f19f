"""Partition state changes: leader election, AlterPartition, ElectLeaders.

`partition_change` is the one place that decides a partition's next leader and ISR (Kafka's
PartitionChangeBuilder, before KIP-966's ELR):

* a broker being removed leaves the ISR, but the ISR never becomes empty: its last member
  stays, leaderless, so that it can be elected cleanly when it comes back;
* the current leader stays if it is still in the ISR and eligible (unfenced, not shutting
  down); otherwise the first replica (in replica order) that is in the ISR and eligible leads;
* if none is, the leader is -1, unless unclean election is allowed (the topic's
  ``unclean.leader.election.enable``, the cluster default, or an unclean ElectLeaders): then
  the first eligible replica leads and the ISR becomes just that replica.

Replay turns the change into epochs: every PartitionChange bumps the partition epoch, a new
leader also bumps the leader epoch.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from suoi.controller.errors import ApiError, Err
from suoi.controller.messages import AlterPartitionResult, ControllerResult, ElectionResult, ElectionType
from suoi.controller.records import NO_LEADER, PartitionChange

if TYPE_CHECKING:
    from suoi.controller.controller import QuorumController

__all__ = ["alter_partition", "elect_leaders", "partition_change"]


def partition_change(
    c: QuorumController,
    topic_id: uuid.UUID,
    partition: int,
    *,
    remove: int | None = None,
    isr: Sequence[int] | None = None,
    preferred: bool = False,
    unclean: bool | None = None,
) -> PartitionChange | None:
    """The PartitionChange that brings the partition in line with the brokers' current
    eligibility (and the requested ISR / removal), or None if nothing changes."""
    reg = c.state.partition(topic_id, partition)
    assert reg is not None
    new_isr = list(reg.isr if isr is None else isr)
    if remove is not None and remove in new_isr:
        new_isr.remove(remove)
    if not new_isr:
        new_isr = list(reg.isr)
    leader = reg.leader
    if preferred and reg.replicas[0] in new_isr and c.eligible(reg.replicas[0]):
        leader = reg.replicas[0]
    if leader == NO_LEADER or leader not in new_isr or not c.eligible(leader):
        leader = next((r for r in reg.replicas if r in new_isr and c.eligible(r)), NO_LEADER)
        if leader == NO_LEADER and (c.unclean_enabled(topic_id) if unclean is None else unclean):
            leader = next((r for r in reg.replicas if c.eligible(r)), NO_LEADER)
            if leader != NO_LEADER:
                new_isr = [leader]
    isr_changed = tuple(new_isr) != reg.isr
    leader_changed = leader != reg.leader
    if not isr_changed and not leader_changed:
        return None
    return PartitionChange(topic_id=topic_id, partition=partition,
                           isr=tuple(new_isr) if isr_changed else None,
                           leader=leader if leader_changed else None)


def remove_broker_from_isrs(c: QuorumController, broker_id: int) -> None:
    """Stage changes for every partition whose ISR holds ``broker_id`` (which the caller has
    already made ineligible): it leaves the ISR, and new leaders are elected where it led."""
    for tid, p, reg in list(c.state.iter_partitions()):
        if broker_id in reg.isr or reg.leader == broker_id:
            change = partition_change(c, tid, p, remove=broker_id)
            if change is not None:
                c.stage(change)


def elect_leaderless(c: QuorumController, broker_id: int) -> None:
    """A broker became eligible: elect leaders for leaderless partitions it can lead."""
    for tid, p, reg in list(c.state.iter_partitions()):
        if reg.leader == NO_LEADER and broker_id in reg.replicas:
            change = partition_change(c, tid, p)
            if change is not None:
                c.stage(change)


def alter_partition(
    c: QuorumController,
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
            raise ApiError(Err.UNKNOWN_TOPIC_ID, f"No topic with id {topic_id}.")
        if reg is None:
            raise ApiError(Err.UNKNOWN_TOPIC_OR_PARTITION, f"No such partition {topic_id}-{partition}.")
        if leader_epoch != reg.leader_epoch:
            raise ApiError(Err.FENCED_LEADER_EPOCH, f"The leader epoch is {reg.leader_epoch}, not {leader_epoch}.")
        if broker_id != reg.leader:
            raise ApiError(Err.INVALID_REQUEST, f"Broker {broker_id} is not the leader ({reg.leader}).")
        if partition_epoch != reg.partition_epoch:
            raise ApiError(Err.INVALID_UPDATE_VERSION,
                           f"The partition epoch is {reg.partition_epoch}, not {partition_epoch}.")
        isr = tuple(new_isr)
        if not isr or len(set(isr)) != len(isr):
            raise ApiError(Err.INVALID_REQUEST, f"The new ISR {list(isr)} must be non-empty and without duplicates.")
        if reg.leader not in isr:
            raise ApiError(Err.INVALID_REQUEST, f"The new ISR {list(isr)} does not include the leader {reg.leader}.")
        outside = [b for b in isr if b not in reg.replicas]
        if outside:
            raise ApiError(Err.INVALID_REQUEST, f"The new ISR includes non-replicas {outside}.")
        ineligible = [b for b in isr if b not in reg.isr and not c.eligible(b)]
        if ineligible:
            raise ApiError(Err.INELIGIBLE_REPLICA,
                           f"The new ISR includes fenced or shutting-down brokers {ineligible}.")
    except ApiError as e:
        cur = reg
        return c.finish(AlterPartitionResult(
            e.code, e.message,
            leader=cur.leader if cur else -1, leader_epoch=cur.leader_epoch if cur else -1,
            isr=cur.isr if cur else (), partition_epoch=cur.partition_epoch if cur else -1))
    if isr != reg.isr:
        c.stage(PartitionChange(topic_id=topic_id, partition=partition, isr=isr))
    after = c.state.partition(topic_id, partition)
    assert after is not None
    return c.finish(AlterPartitionResult(Err.NONE, None, after.leader, after.leader_epoch, after.isr,
                                         after.partition_epoch))


def elect_leaders(
    c: QuorumController, election_type: ElectionType, partitions: Sequence[tuple[str, int]] | None
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
            results.append(ElectionResult(topic, p, Err.UNKNOWN_TOPIC_OR_PARTITION, f"No such topic as {topic}"))
            continue
        reg = c.state.partition(tid, p)
        if reg is None:
            results.append(ElectionResult(topic, p, Err.UNKNOWN_TOPIC_OR_PARTITION, f"No such partition as {topic}-{p}"))
            continue
        if election_type == ElectionType.PREFERRED:
            if reg.leader == reg.preferred_leader:
                if not everything:
                    results.append(ElectionResult(topic, p, Err.ELECTION_NOT_NEEDED, "Leader is already the preferred leader."))
                continue
            change = partition_change(c, tid, p, preferred=True)
            if change is None or change.leader != reg.preferred_leader:
                results.append(ElectionResult(topic, p, Err.PREFERRED_LEADER_NOT_AVAILABLE,
                                              f"The preferred leader {reg.preferred_leader} is not in the ISR or not available."))
                continue
        else:
            if reg.leader != NO_LEADER:
                if not everything:
                    results.append(ElectionResult(topic, p, Err.ELECTION_NOT_NEEDED, "The partition has a leader."))
                continue
            change = partition_change(c, tid, p, unclean=True)
            if change is None or change.leader in (None, NO_LEADER):
                results.append(ElectionResult(topic, p, Err.ELIGIBLE_LEADERS_NOT_AVAILABLE,
                                              "No replica of the partition is available."))
                continue
        c.stage(change)
        results.append(ElectionResult(topic, p))
    return c.finish(results)
