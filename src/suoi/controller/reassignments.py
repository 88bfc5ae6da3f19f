"""Partition reassignment (KIP-455): AlterPartitionReassignments and ListPartitionReassignments.

A reassignment moves a partition from its *original* replicas to a *target* list:

* starting it sets replicas = target followed by the original replicas that are not in the
  target (the *removing* ones, in their original order); *adding* = target replicas that were
  not original replicas (in target order). The ISR and leader stay; brokers in ``adding``
  start hosting the partition and follow the leader;
* it completes in `partitions.partition_change` once every adding replica is in the ISR:
  replicas = target, ISR = ISR without the removing replicas, a new leader if the old one was
  removed (first eligible target replica in the ISR);
* a reassignment that only reorders (or shrinks) the replicas completes at once; one to the
  current replicas changes nothing;
* a new target while one is in progress is taken relative to the *original* replicas (KIP-455;
  KRaft Kafka uses the current, already extended list), so cancelling afterwards still goes
  back to the replicas from before the first one;
* cancelling (target None) restores the original replicas and drops the adding replicas from
  the ISR. If only adding replicas are in the ISR, that needs unclean leader election (allowed
  for the topic, else INVALID_REPLICA_ASSIGNMENT), as in Kafka.

Every request is one batch; each partition's outcome is reported separately, with Kafka's
messages.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from suoi.controller.errors import ApiError
from suoi.controller.image import PartitionRegistration
from suoi.controller.messages import ControllerResult, OngoingReassignment, ReassignmentResult
from suoi.controller.partitions import partition_change
from suoi.controller.records import PartitionChange
from suoi.controller.topics import check_replica_list
from suoi.model import ErrorCode

if TYPE_CHECKING:
    from suoi.controller.context import OperationContext

__all__ = ["alter_partition_reassignments", "list_partition_reassignments"]


def alter_partition_reassignments(
    c: OperationContext, reassignments: Sequence[tuple[str, int, Sequence[int] | None]]
) -> ControllerResult[list[ReassignmentResult]]:
    results: list[ReassignmentResult] = []
    for topic, partition, target in reassignments:
        try:
            tid = c.state.topic_id(topic)
            if tid is None:
                raise ApiError(ErrorCode.unknown_topic_or_partition, f"Unable to find a topic named {topic}.")
            reg = c.state.partition(tid, partition)
            if reg is None:
                raise ApiError(ErrorCode.unknown_topic_or_partition, f"Unable to find partition {topic}:{partition}.")
            if target is None:
                change = _cancel(c, topic, tid, partition, reg)
            else:
                change = _reassign(c, topic, tid, partition, reg, tuple(target))
            if change is not None:
                c.stage(change)
            results.append(ReassignmentResult(topic, partition))
        except ApiError as e:
            results.append(ReassignmentResult(topic, partition, e.code, e.message))
    return c.finish(results)


def _reassign(c: OperationContext, topic: str, tid: uuid.UUID, partition: int, reg: PartitionRegistration,
              target: tuple[int, ...]) -> PartitionChange | None:
    check_replica_list(c, target)
    original = reg.original_replicas
    removing = tuple(r for r in original if r not in target)
    adding = tuple(r for r in target if r not in original)
    replicas = target + removing
    isr = [b for b in reg.isr if b in replicas]  # drops adding replicas of an earlier target
    if not isr:
        raise ApiError(ErrorCode.invalid_replica_assignment,
                       f"Unable to reassign partition {topic}:{partition}: no replica of the new assignment "
                       "or of the original one is in sync.")
    return partition_change(c, tid, partition, replicas=replicas, isr=isr, adding=adding, removing=removing)


def _cancel(c: OperationContext, topic: str, tid: uuid.UUID, partition: int,
            reg: PartitionRegistration) -> PartitionChange | None:
    if not reg.is_reassigning:
        raise ApiError(ErrorCode.no_reassignment_in_progress, "No partition reassignment is in progress.")
    replicas = reg.original_replicas
    isr = [b for b in reg.isr if b not in reg.adding_replicas]
    if not isr:
        if not c.unclean_enabled(tid):
            raise ApiError(ErrorCode.invalid_replica_assignment,
                           f"Unable to revert partition assignment for {topic}:{partition} because it would "
                           "require an unclean leader election.")
        isr = [replicas[0]]
    return partition_change(c, tid, partition, replicas=replicas, isr=isr, adding=(), removing=())


def list_partition_reassignments(
    c: OperationContext, partitions: Sequence[tuple[str, int]] | None
) -> ControllerResult[list[OngoingReassignment]]:
    """The ongoing reassignments among ``partitions`` (None: all of them), sorted; unknown
    topics and partitions, and partitions not being reassigned, are left out (as in Kafka)."""
    if partitions is None:
        wanted = sorted((c.state.topic_name(tid) or "", p) for tid, p, reg in c.state.iter_partitions()
                        if reg.is_reassigning)
    else:
        wanted = sorted(set(partitions))
    out: list[OngoingReassignment] = []
    for topic, p in wanted:
        tid = c.state.topic_id(topic)
        reg = None if tid is None else c.state.partition(tid, p)
        if reg is not None and reg.is_reassigning:
            out.append(OngoingReassignment(topic, p, reg.replicas, reg.adding_replicas, reg.removing_replicas))
    return c.finish(out)
