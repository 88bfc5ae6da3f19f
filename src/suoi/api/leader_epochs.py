"""Leader epochs as the partition APIs see them (KIP-101, KIP-279, KIP-320).

A partition's current leader epoch is the one in the node's metadata image. Requests that carry a
``current_leader_epoch`` (Fetch, ListOffsets, OffsetsForLeaderEpoch) are checked against
it with Kafka's rule (``check_leader_epoch``): -1 means "do not check", an older epoch is
FENCED_LEADER_EPOCH (the client's metadata is stale), a newer one UNKNOWN_LEADER_EPOCH
(this node's is).

``local_log`` finds the log to answer from in Kafka's order (Partition.getLocalLog): the
partition must be known (UNKNOWN_TOPIC_OR_PARTITION), hosted here
(NOT_LEADER_OR_FOLLOWER), the epoch must match, and, unless the request may be served by
any replica, this node must lead it (NOT_LEADER_OR_FOLLOWER).

``epoch_view`` is the leader's leader-epoch cache as Kafka's leader has it: Kafka assigns
the new epoch at the log end offset when a replica becomes leader, so a leader that has
not written in its epoch yet still answers for it. Until becoming leader records that
here, the view adds the entry in memory (nothing is written); once it is recorded the
view is the cache itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from suoi.log.leader_epoch import UNDEFINED_EPOCH, LeaderEpochCache
from suoi.model import ErrorCode
from suoi.partition.partition import NO_EPOCH_CHECK, compare_epochs

if TYPE_CHECKING:
    from suoi.log.partition_log import PartitionLog
    from suoi.services import Services

__all__ = [
    "CONSUMER_REPLICA_ID",
    "DEBUGGING_REPLICA_ID",
    "NO_EPOCH_CHECK",
    "check_leader_epoch",
    "compare_epochs",
    "current_leader_epoch",
    "epoch_start_offset",
    "epoch_view",
    "leads",
    "local_log",
]

#: ``replica_id`` of a consumer (ListOffsets, OffsetsForLeaderEpoch v3+).
CONSUMER_REPLICA_ID = -1
#: ``replica_id`` of a debugging tool: any replica may answer.
DEBUGGING_REPLICA_ID = -2


def current_leader_epoch(broker: Services, topic: str, partition: int) -> int:
    """The partition's leader epoch in the metadata image (-1 if the image has no such partition)."""
    reg = broker.kraft.image.partition(topic, partition)
    return UNDEFINED_EPOCH if reg is None else reg.leader_epoch


def check_leader_epoch(broker: Services, topic: str, partition: int, requested: int) -> ErrorCode:
    """NONE, FENCED_LEADER_EPOCH or UNKNOWN_LEADER_EPOCH for a request's
    ``current_leader_epoch`` (-1: not checked); UNKNOWN_TOPIC_OR_PARTITION when a checked
    epoch names a partition the metadata image lacks (KRaft mode)."""
    if requested == NO_EPOCH_CHECK:
        return ErrorCode.none
    current = current_leader_epoch(broker, topic, partition)
    if current == UNDEFINED_EPOCH:
        return ErrorCode.unknown_topic_or_partition
    return compare_epochs(current, requested)


def leads(broker: Services, topic: str, partition: int) -> bool:
    """Whether this node is the partition's leader."""
    reg = broker.kraft.image.partition(topic, partition)
    return reg is not None and reg.leader == broker.node_id


def local_log(broker: Services, topic: str, partition: int, current_epoch: int = NO_EPOCH_CHECK, *,
              require_leader: bool = True) -> tuple[PartitionLog | None, ErrorCode]:
    """This node's log of the partition, or the error a client must see (module doc)."""
    plog = broker.logs.get_log(topic, partition) if topic else None
    if plog is None and topic and broker.logs.is_offline(topic, partition):
        return None, ErrorCode.kafka_storage_error  # its log dir failed (KIP-858)
    reg = broker.kraft.image.partition(topic, partition) if topic else None
    if reg is None:
        return None, ErrorCode.unknown_topic_or_partition
    if plog is None:
        return None, ErrorCode.not_leader_or_follower
    current = reg.leader_epoch
    error = compare_epochs(current, current_epoch)
    if error != ErrorCode.none:
        return None, error
    if require_leader and not leads(broker, topic, partition):
        return None, ErrorCode.not_leader_or_follower
    return plog, ErrorCode.none


def epoch_view(broker: Services, topic: str, partition: int, plog: PartitionLog) -> LeaderEpochCache:
    """``plog``'s leader-epoch cache; on the leader, with the current epoch starting at the
    log end offset if the cache does not have it yet (module doc). Read-only use."""
    cache = plog.leader_epoch_cache
    if not leads(broker, topic, partition):
        return cache
    current = current_leader_epoch(broker, topic, partition)
    if current <= cache.latest_epoch:
        return cache
    view = LeaderEpochCache(None, cache.entries)
    view.assign(current, plog.log_end_offset)
    return view


def epoch_start_offset(broker: Services, topic: str, partition: int, plog: PartitionLog) -> int | None:
    """Where the current leader epoch starts in this leader's log (Kafka's
    leaderEpochStartOffsetOpt); None when this node does not lead the partition."""
    if not leads(broker, topic, partition):
        return None
    entry = epoch_view(broker, topic, partition, plog).latest_entry
    current = current_leader_epoch(broker, topic, partition)
    return entry.start_offset if entry is not None and entry.epoch == current else None
