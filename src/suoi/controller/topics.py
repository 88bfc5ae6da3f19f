"""CreateTopics, DeleteTopics and CreatePartitions decisions (Kafka's ReplicationControlManager).

Validation order for a new topic: duplicate in the request, name rules, existence, '.'/'_'
collision, partition count and replication factor, manual assignment, configs, placement.
Messages are Kafka's where Kafka has one.

One request may add at most `MAX_PARTITIONS_PER_REQUEST` partitions (all its topics together):
Kafka's controller refuses an operation that would write more than MAX_RECORDS_PER_USER_OP
(10,000) records with POLICY_VIOLATION "Unable to perform excessively large batch operation.",
and so does this one, before placing anything: the check costs nothing however large the
asked count (2^31-1 included). Kafka counts every record, so its limit also stops a
10,000-partition topic (10,001 records); suoi counts the partitions, the records that grow
with the asked count (topic and config records are bounded by the request's size).
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from suoi.controller.errors import ApiError
from suoi.controller.image import ConfigResourceType
from suoi.controller.messages import (
    ControllerResult,
    CreatePartitionsResult,
    CreateTopicResult,
    DeleteTopicResult,
    NewPartitions,
    NewTopic,
)
from suoi.controller.placement import PlacementBroker, PlacementLoad, place_replicas
from suoi.controller.records import Config, Partition, RemoveTopic, Topic
from suoi.log.config import LogConfig
from suoi.log.errors import InvalidConfigError
from suoi.model import ErrorCode

if TYPE_CHECKING:
    from suoi.controller.context import OperationContext

__all__ = [
    "EXCESSIVE_BATCH_MESSAGE",
    "MAX_PARTITIONS_PER_REQUEST",
    "check_replica_list",
    "create_partitions",
    "create_topics",
    "delete_topics",
    "validate_topic_name",
]

_LEGAL = re.compile(r"[a-zA-Z0-9._-]+")
MAX_NAME_LENGTH = 249
#: Kafka's QuorumController.MAX_RECORDS_PER_USER_OP, counted in partitions (module docstring).
MAX_PARTITIONS_PER_REQUEST = 10_000
#: Kafka's message for the POLICY_VIOLATION a too large operation gets.
EXCESSIVE_BATCH_MESSAGE = "Unable to perform excessively large batch operation."


def validate_topic_name(name: str) -> None:
    """Kafka's org.apache.kafka.common.internals.Topic.validate, with its messages."""
    if not name:
        raise ApiError(ErrorCode.invalid_topic_exception, "Topic name is illegal, it can't be empty")
    if name in (".", ".."):
        raise ApiError(ErrorCode.invalid_topic_exception, 'Topic name cannot be "." or ".."')
    if len(name) > MAX_NAME_LENGTH:
        raise ApiError(ErrorCode.invalid_topic_exception,
                       f"Topic name is illegal, it can't be longer than {MAX_NAME_LENGTH} characters, topic name: {name}")
    if not _LEGAL.fullmatch(name):
        raise ApiError(ErrorCode.invalid_topic_exception,
                       f'Topic name "{name}" is illegal, it contains a character other than ASCII alphanumerics, '
                       "'.', '_' and '-'")


def _unify(name: str) -> str:
    return name.replace(".", "_")


def _usable_brokers(c: OperationContext) -> list[PlacementBroker]:
    return [PlacementBroker(b.broker_id, b.rack) for b in c.state.brokers() if b.eligible]


def check_replica_list(c: OperationContext, replicas: Sequence[int]) -> None:
    """Kafka's validateManualPartitionAssignment: non-empty, registered brokers, no duplicates
    (also what a partition reassignment's target must pass)."""
    if not replicas:
        raise ApiError(ErrorCode.invalid_replica_assignment, "The manual partition assignment includes an empty replica list.")
    seen: set[int] = set()
    for b in sorted(replicas):
        if c.state.broker(b) is None:
            raise ApiError(ErrorCode.invalid_replica_assignment,
                           f"The manual partition assignment includes broker {b}, but no such broker is registered.")
        if b in seen:
            raise ApiError(ErrorCode.invalid_replica_assignment,
                           f"The manual partition assignment includes the broker {b} more than once.")
        seen.add(b)


def _check_manual(c: OperationContext, partition: int, replicas: Sequence[int], rf: int | None) -> tuple[int, ...]:
    """Kafka's validateManualPartitionAssignment; returns the ISR (the eligible replicas)."""
    check_replica_list(c, replicas)
    if rf is not None and len(replicas) != rf:
        raise ApiError(ErrorCode.invalid_replica_assignment,
                       f"The manual partition assignment includes a partition with {len(replicas)} replica(s), but "
                       f"this is inconsistent with previous partitions, which have {rf} replication(s).")
    isr = tuple(b for b in replicas if c.eligible(b))
    if not isr:
        raise ApiError(ErrorCode.invalid_replica_assignment,
                       f"All brokers specified in the manual partition assignment for partition {partition} "
                       "are fenced or in controlled shutdown.")
    return isr


def _validate_configs(c: OperationContext, configs: Mapping[str, str | None]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in configs.items():
        if v is None:
            raise ApiError(ErrorCode.invalid_config, f"Null value not supported for topic configs: {k}")
        out[k] = v
    try:
        LogConfig.from_topic_configs(c.config.log_config, out)
    except InvalidConfigError as e:
        raise ApiError(ErrorCode.invalid_config, str(e)) from None
    return out


def _new_partition_count(c: OperationContext, t: NewTopic) -> int:
    """Partitions `t` would add (0 if it already exists); computed from the counts only."""
    if c.state.topic_id(t.name) is not None:
        return 0
    if t.assignments:
        return len(t.assignments)
    return c.config.num_partitions if t.num_partitions == -1 else max(t.num_partitions, 0)


def _answered(seen: set[Any], key: Any) -> bool:
    """Whether a topic named more than once in a request was answered already: Kafka answers it
    once (INVALID_REQUEST), its responses being keyed by name (librdkafka refuses a name twice)."""
    if key in seen:
        return True
    seen.add(key)
    return False


def create_topics(c: OperationContext, topics: Sequence[NewTopic], validate_only: bool
                  ) -> ControllerResult[list[CreateTopicResult]]:
    counts = Counter(t.name for t in topics)
    results: list[CreateTopicResult] = []
    if sum(_new_partition_count(c, t) for t in topics) > MAX_PARTITIONS_PER_REQUEST:
        return c.finish([CreateTopicResult(t.name, ErrorCode.policy_violation, EXCESSIVE_BATCH_MESSAGE) for t in topics])
    load: PlacementLoad | None = None
    unified: set[str] | None = None
    duplicates: set[str] = set()
    for t in topics:
        try:
            if counts[t.name] > 1:
                if _answered(duplicates, t.name):
                    continue
                raise ApiError(ErrorCode.invalid_request, "Found multiple entries for this topic.")
            validate_topic_name(t.name)
            if c.state.topic_id(t.name) is not None:
                raise ApiError(ErrorCode.topic_already_exists, f"Topic '{t.name}' already exists.")
            if "." in t.name or "_" in t.name:
                if unified is None:
                    unified = {_unify(n) for n in c.state.topic_names() if "." in n or "_" in n}
                if _unify(t.name) in unified:
                    other = next(n for n in c.state.topic_names() if _unify(n) == _unify(t.name))
                    raise ApiError(ErrorCode.invalid_topic_exception, f"Topic '{t.name}' collides with existing topic: {other}")
            if t.assignments:
                if t.replication_factor != -1:
                    raise ApiError(ErrorCode.invalid_request,
                                   "A manual partition assignment was specified, but replication factor was not set to -1.")
                if t.num_partitions != -1:
                    raise ApiError(ErrorCode.invalid_request,
                                   "A manual partition assignment was specified, but numPartitions was not set to -1.")
                parts: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {}
                rf: int | None = None
                for p, replicas in t.assignments.items():
                    isr = _check_manual(c, p, replicas, rf)
                    rf = len(replicas)
                    parts[p] = (tuple(replicas), isr)
                if sorted(parts) != list(range(len(parts))):
                    raise ApiError(ErrorCode.invalid_replica_assignment,
                                   "partitions should be a consecutive 0-based integer sequence")
                configs = _validate_configs(c, t.configs)
            else:
                if t.num_partitions < -1 or t.num_partitions == 0:
                    raise ApiError(ErrorCode.invalid_partitions, "Number of partitions was set to an invalid non-positive value.")
                if t.replication_factor < -1 or t.replication_factor == 0:
                    raise ApiError(ErrorCode.invalid_replication_factor,
                                   "Replication factor must be larger than 0, or -1 to use the default value.")
                n = c.config.num_partitions if t.num_partitions == -1 else t.num_partitions
                rf = c.config.default_replication_factor if t.replication_factor == -1 else t.replication_factor
                configs = _validate_configs(c, t.configs)
                if load is None:
                    load = PlacementLoad.of(reg.replicas for _, _, reg in c.state.iter_partitions())
                placed = place_replicas(_usable_brokers(c), n, rf, load)
                parts = {p: (replicas, replicas) for p, replicas in enumerate(placed)}
        except ApiError as e:
            results.append(CreateTopicResult(t.name, e.code, e.message))
            continue
        rf = len(parts[0][0])
        if validate_only:
            results.append(CreateTopicResult(t.name, ErrorCode.none, None, None, len(parts), rf, configs))
            continue
        tid = c.new_topic_id()
        c.stage(Topic(name=t.name, topic_id=tid))
        for k, v in sorted(configs.items()):
            c.stage(Config(resource_type=ConfigResourceType.TOPIC, resource_name=t.name, name=k, value=v))
        for p, (replicas, isr) in sorted(parts.items()):
            c.stage(Partition(topic_id=tid, partition=p, replicas=replicas, isr=isr, leader=isr[0]))
        if unified is not None:
            unified.add(_unify(t.name))
        results.append(CreateTopicResult(t.name, ErrorCode.none, None, tid, len(parts), rf, configs))
    return c.finish(results)


def delete_topics(c: OperationContext, names: Sequence[str], topic_ids: Sequence[uuid.UUID]
                  ) -> ControllerResult[list[DeleteTopicResult]]:
    results: list[DeleteTopicResult] = []
    targets: list[tuple[str | None, uuid.UUID | None]] = [(n, None) for n in names] + [(None, i) for i in topic_ids]
    name_counts = Counter(names)
    id_counts = Counter(topic_ids)
    duplicates: set[Any] = set()
    for name, tid in targets:
        if name is not None and name_counts[name] > 1 or tid is not None and id_counts[tid] > 1:
            if not _answered(duplicates, name if name is not None else tid):
                results.append(DeleteTopicResult(name, tid, ErrorCode.invalid_request, "Duplicate topic in request."))
            continue
        if not c.config.delete_topic_enable:
            results.append(DeleteTopicResult(name, tid, ErrorCode.topic_deletion_disabled, "Topic deletion is disabled."))
            continue
        if name is not None:
            tid = c.state.topic_id(name)
            if tid is None:
                results.append(DeleteTopicResult(name, None, ErrorCode.unknown_topic_or_partition,
                                                 "This server does not host this topic-partition."))
                continue
        else:
            assert tid is not None
            name = c.state.topic_name(tid)
            if name is None:
                results.append(DeleteTopicResult(None, tid, ErrorCode.unknown_topic_id, f"No topic with id {tid}."))
                continue
        c.stage(RemoveTopic(topic_id=tid))
        results.append(DeleteTopicResult(name, tid))
    return c.finish(results)


def _added_partition_count(c: OperationContext, t: NewPartitions) -> int:
    """Partitions `t` would add to an existing topic (0 for an unknown one or a decrease)."""
    tid = c.state.topic_id(t.name)
    return 0 if tid is None else max(t.count - len(c.state.partitions(tid)), 0)


def create_partitions(c: OperationContext, topics: Sequence[NewPartitions], validate_only: bool
                      ) -> ControllerResult[list[CreatePartitionsResult]]:
    counts = Counter(t.name for t in topics)
    results: list[CreatePartitionsResult] = []
    if sum(_added_partition_count(c, t) for t in topics) > MAX_PARTITIONS_PER_REQUEST:
        return c.finish([CreatePartitionsResult(t.name, ErrorCode.policy_violation, EXCESSIVE_BATCH_MESSAGE)
                         for t in topics])
    duplicates: set[str] = set()
    for t in topics:
        try:
            if counts[t.name] > 1:
                if _answered(duplicates, t.name):
                    continue
                raise ApiError(ErrorCode.invalid_request, "Duplicate topic in request.")
            tid = c.state.topic_id(t.name)
            if tid is None:
                raise ApiError(ErrorCode.unknown_topic_or_partition, f"Topic '{t.name}' does not exist.")
            existing = c.state.partitions(tid)
            current = len(existing)
            if t.count == current:
                raise ApiError(ErrorCode.invalid_partitions, f"Topic already has {current} partition(s).")
            if t.count < current:
                raise ApiError(ErrorCode.invalid_partitions,
                               f"The topic {t.name} currently has {current} partition(s); {t.count} would not be an increase.")
            additional = t.count - current
            rf = len(existing[0].replicas)
            new: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
            if t.assignments is not None:
                if len(t.assignments) != additional:
                    raise ApiError(ErrorCode.invalid_replica_assignment,
                                   f"Attempted to add {additional} additional partition(s), but only "
                                   f"{len(t.assignments)} assignment(s) were specified.")
                for i, replicas in enumerate(t.assignments):
                    isr = _check_manual(c, current + i, replicas, rf)
                    new.append((tuple(replicas), isr))
            else:
                load = PlacementLoad.of(reg.replicas for _, _, reg in c.state.iter_partitions())
                topic_load = PlacementLoad.of(reg.replicas for reg in existing.values())
                placed = place_replicas(_usable_brokers(c), additional, rf, load, topic_load)
                new = [(r, r) for r in placed]
        except ApiError as e:
            results.append(CreatePartitionsResult(t.name, e.code, e.message))
            continue
        if not validate_only:
            for i, (replicas, isr) in enumerate(new):
                c.stage(Partition(topic_id=tid, partition=current + i, replicas=replicas, isr=isr, leader=isr[0]))
        results.append(CreatePartitionsResult(t.name))
    return c.finish(results)
