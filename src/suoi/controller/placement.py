"""Replica placement for new partitions: spread replicas and preferred leaders evenly, rack-aware.

Kafka's ``StripedReplicaPlacer`` stripes partitions over a rack-alternating broker list from a
random start, which balances one topic but, across many topics, only on average. We keep its
goals (the leader is an unfenced broker, replicas of a partition on distinct brokers and on
distinct racks where possible, leaders and replicas spread) and reach them deterministically
with a load-aware greedy choice:

* the preferred leader (replica 0) of each partition goes to the broker leading the fewest
  partitions *of this topic*, then the fewest in the cluster, then the fewest replicas;
* each further replica goes to a broker whose rack this partition does not use yet (if any
  is left), then the fewest replicas of this topic, then in the cluster;
* ties go to the lowest broker id.

So per topic and across the cluster the preferred-leader counts of the brokers stay within
one of each other (as long as placement alone decides them), and with 3 racks and RF=3 every
partition has one replica per rack. Brokers without a rack count as one rack of their own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from suoi.controller.errors import ApiError
from suoi.model import ErrorCode

__all__ = ["PlacementBroker", "PlacementLoad", "place_replicas"]


@dataclass(frozen=True, slots=True)
class PlacementBroker:
    broker_id: int
    rack: str | None = None


@dataclass(slots=True)
class PlacementLoad:
    """Preferred-leader and replica counts per broker."""

    leaders: Counter[int] = field(default_factory=Counter)
    replicas: Counter[int] = field(default_factory=Counter)

    @classmethod
    def of(cls, assignments: Iterable[Sequence[int]]) -> PlacementLoad:
        load = cls()
        for replicas in assignments:
            load.add(replicas)
        return load

    def add(self, replicas: Sequence[int]) -> None:
        if replicas:
            self.leaders[replicas[0]] += 1
        for b in replicas:
            self.replicas[b] += 1


def replication_factor_error(rf: int, available: int) -> ApiError:
    if available == 0:
        return ApiError(ErrorCode.invalid_replication_factor,
                        f"Unable to replicate the partition {rf} time(s): All brokers are currently fenced.")
    return ApiError(ErrorCode.invalid_replication_factor,
                    f"Unable to replicate the partition {rf} time(s): The target replication factor of {rf} "
                    f"cannot be reached because only {available} broker(s) are registered.")


def place_replicas(
    brokers: Sequence[PlacementBroker],
    num_partitions: int,
    replication_factor: int,
    cluster: PlacementLoad,
    topic: PlacementLoad | None = None,
) -> list[tuple[int, ...]]:
    """Replica lists (preferred leader first) for ``num_partitions`` new partitions.

    ``brokers`` are the usable (unfenced, not shutting down) brokers; ``cluster`` the current
    load, updated in place with the new partitions; ``topic`` the load of the topic's existing
    partitions (CreatePartitions), also updated. Raises INVALID_REPLICATION_FACTOR when there
    are fewer usable brokers than ``replication_factor``.
    """
    if replication_factor < 1:
        raise ApiError(ErrorCode.invalid_replication_factor, "Replication factor must be larger than 0.")
    if len(brokers) < replication_factor:
        raise replication_factor_error(replication_factor, len(brokers))
    topic = topic if topic is not None else PlacementLoad()
    racks = {b.broker_id: b.rack for b in brokers}
    ids = sorted(racks)
    out: list[tuple[int, ...]] = []
    for _ in range(num_partitions):
        leader = min(ids, key=lambda b: (topic.leaders[b], cluster.leaders[b], topic.replicas[b], cluster.replicas[b], b))
        chosen = [leader]
        used_racks = {racks[leader]}
        while len(chosen) < replication_factor:
            follower = min(
                (b for b in ids if b not in chosen),
                key=lambda b: (racks[b] in used_racks, topic.replicas[b], cluster.replicas[b], b),
            )
            chosen.append(follower)
            used_racks.add(racks[follower])
        replicas = tuple(chosen)
        topic.add(replicas)
        cluster.add(replicas)
        out.append(replicas)
    return out
