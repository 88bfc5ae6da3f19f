"""The value types of the metadata image: a broker's registration, a partition's
registration (replicas, ISR, leader, reassignment state, with the invariants replay keeps)
and a topic's partitions. Immutable; `MetadataBuilder` (image.py) makes new ones on change."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from suoi.controller.records import NO_LEADER, Listener, MetadataRecordError

__all__ = ["BrokerRegistration", "PartitionRegistration", "TopicImage"]


@dataclass(frozen=True, slots=True)
class BrokerRegistration:
    broker_id: int
    incarnation_id: uuid.UUID
    epoch: int
    listeners: tuple[Listener, ...] = ()
    rack: str | None = None
    fenced: bool = True
    in_controlled_shutdown: bool = False

    @property
    def eligible(self) -> bool:
        """May lead partitions and join ISRs: unfenced and not shutting down."""
        return not self.fenced and not self.in_controlled_shutdown

    def listener(self, name: str) -> Listener | None:
        return next((x for x in self.listeners if x.name == name), None)


@dataclass(frozen=True, slots=True)
class PartitionRegistration:
    """A partition's replicas, ISR and leader. During a reassignment (KIP-455) ``replicas``
    holds the target replicas followed by the ones being removed; ``adding_replicas`` are
    target replicas that were not replicas before, ``removing_replicas`` the ones that go
    when it completes."""

    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int = 0
    partition_epoch: int = 0
    adding_replicas: tuple[int, ...] = ()
    removing_replicas: tuple[int, ...] = ()

    def validate_isr_and_leader(self, isr_changed: bool) -> None:
        """The ISR (if it changed) is distinct members of the replicas; the leader is in it or -1."""
        if isr_changed and (len(set(self.isr)) != len(self.isr) or not set(self.isr) <= set(self.replicas)):
            raise MetadataRecordError(f"isr {list(self.isr)} must be distinct members of replicas {list(self.replicas)}")
        if self.leader != NO_LEADER and self.leader not in self.isr:
            raise MetadataRecordError(f"leader {self.leader} is not in isr {list(self.isr)}")

    @property
    def preferred_leader(self) -> int:
        return self.replicas[0]

    @property
    def is_reassigning(self) -> bool:
        return bool(self.adding_replicas or self.removing_replicas)

    @property
    def original_replicas(self) -> tuple[int, ...]:
        """The replicas before the ongoing reassignment (what cancelling it restores)."""
        return tuple(r for r in self.replicas if r not in self.adding_replicas)

    @property
    def target_replicas(self) -> tuple[int, ...]:
        """The replicas once the ongoing reassignment completes."""
        return tuple(r for r in self.replicas if r not in self.removing_replicas)

    def validate(self) -> None:
        if not self.replicas or len(set(self.replicas)) != len(self.replicas):
            raise MetadataRecordError(f"replicas {list(self.replicas)} must be non-empty and distinct")
        self.validate_isr_and_leader(True)
        adding, removing = set(self.adding_replicas), set(self.removing_replicas)
        if (len(adding) != len(self.adding_replicas) or len(removing) != len(self.removing_replicas)
                or not adding | removing <= set(self.replicas) or adding & removing
                or len(removing) == len(self.replicas)):
            raise MetadataRecordError(
                f"adding {list(self.adding_replicas)} and removing {list(self.removing_replicas)} must be distinct, "
                f"disjoint members of replicas {list(self.replicas)}, and leave a target replica")


@dataclass(frozen=True, slots=True)
class TopicImage:
    name: str
    topic_id: uuid.UUID
    partitions: Mapping[int, PartitionRegistration]

    @property
    def num_partitions(self) -> int:
        return len(self.partitions)
