"""The metadata record types: one frozen dataclass per kind of change in ``__cluster_metadata``.

Split from the JSON codec (``record_codec.py``) because everything that *decides* or *replays*
metadata (the controller's operations, the image, the broker's reconciler) works with these
values and never with their encoding; only the Raft boundary encodes and decodes them. Each type
carries its wire name (``TYPE``) and the newest version this code writes and reads
(``VERSION``). They mirror KRaft's (RegisterBrokerRecord, FenceBrokerRecord, TopicRecord,
PartitionRecord, PartitionChangeRecord, ...); see README.md for every field.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import ClassVar

__all__ = [
    "NO_LEADER",
    "RECORD_TYPES",
    "AccessControlEntry",
    "BeginControlledShutdown",
    "ClientQuota",
    "Config",
    "FeatureLevel",
    "FenceBroker",
    "Listener",
    "MetadataRecordError",
    "Partition",
    "PartitionChange",
    "ProducerIds",
    "Record",
    "RegisterBroker",
    "RemoveAccessControlEntry",
    "RemoveTopic",
    "RemoveUserScramCredential",
    "Topic",
    "UnfenceBroker",
    "UnregisterBroker",
    "UserScramCredential",
]

NO_LEADER = -1


class MetadataRecordError(ValueError):
    """A payload that is not a valid batch, or a record that does not fit the image."""


@dataclass(frozen=True, slots=True)
class Listener:
    name: str
    host: str
    port: int
    #: Kafka's SecurityProtocol id (0 PLAINTEXT, 1 SSL, 2 SASL_PLAINTEXT, 3 SASL_SSL)
    security_protocol: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterBroker:
    """A broker (re-)registered: a new ``broker_epoch`` replaces any earlier registration."""

    TYPE: ClassVar[str] = "RegisterBroker"
    VERSION: ClassVar[int] = 1
    broker_id: int
    incarnation_id: uuid.UUID
    broker_epoch: int
    listeners: tuple[Listener, ...] = ()
    rack: str | None = None
    fenced: bool = True
    in_controlled_shutdown: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class UnregisterBroker:
    TYPE: ClassVar[str] = "UnregisterBroker"
    VERSION: ClassVar[int] = 1
    broker_id: int
    broker_epoch: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FenceBroker:
    """The broker may no longer lead or be in an ISR (session expired, shut down, asked)."""

    TYPE: ClassVar[str] = "FenceBroker"
    VERSION: ClassVar[int] = 1
    broker_id: int
    broker_epoch: int


@dataclass(frozen=True, slots=True, kw_only=True)
class UnfenceBroker:
    TYPE: ClassVar[str] = "UnfenceBroker"
    VERSION: ClassVar[int] = 1
    broker_id: int
    broker_epoch: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BeginControlledShutdown:
    """The broker asked to shut down: it stays registered but may not take new leaderships."""

    TYPE: ClassVar[str] = "BeginControlledShutdown"
    VERSION: ClassVar[int] = 1
    broker_id: int
    broker_epoch: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Topic:
    TYPE: ClassVar[str] = "Topic"
    VERSION: ClassVar[int] = 1
    name: str
    topic_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class Partition:
    """A new partition (or, in a snapshot, a partition's full state).

    ``adding_replicas`` / ``removing_replicas`` describe an ongoing reassignment (KIP-455):
    both are subsets of ``replicas``. Version 2 added them; a record without them is written
    as version 1, so nodes that predate reassignment read every other partition unchanged.
    """

    TYPE: ClassVar[str] = "Partition"
    VERSION: ClassVar[int] = 2
    topic_id: uuid.UUID
    partition: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int = 0
    partition_epoch: int = 0
    adding_replicas: tuple[int, ...] = ()
    removing_replicas: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionChange:
    """A change of an existing partition; ``None`` fields are unchanged.

    Replay bumps ``partition_epoch`` by one for every PartitionChange and ``leader_epoch`` by
    one when ``leader`` is set (Kafka's PartitionRegistration.merge: setting the leader, even
    to the same broker, starts a new leader epoch). ``adding_replicas`` / ``removing_replicas``
    (version 2, written only when present) replace the reassignment state; ``()`` clears it.
    """

    TYPE: ClassVar[str] = "PartitionChange"
    VERSION: ClassVar[int] = 2
    topic_id: uuid.UUID
    partition: int
    isr: tuple[int, ...] | None = None
    leader: int | None = None
    replicas: tuple[int, ...] | None = None
    adding_replicas: tuple[int, ...] | None = None
    removing_replicas: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveTopic:
    """The topic, its partitions and its config overrides are gone."""

    TYPE: ClassVar[str] = "RemoveTopic"
    VERSION: ClassVar[int] = 1
    topic_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """Set (``value`` is a string) or delete (``value`` is None) one config override.

    ``resource_type`` is Kafka's ConfigResource type: 2 = topic, 4 = broker (resource_name
    is the broker id as a string, or "" for the cluster-wide default).
    """

    TYPE: ClassVar[str] = "Config"
    VERSION: ClassVar[int] = 1
    resource_type: int
    resource_name: str
    name: str
    value: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProducerIds:
    """A block of producer ids went to ``broker_id``; the next block starts at ``next_producer_id``."""

    TYPE: ClassVar[str] = "ProducerIds"
    VERSION: ClassVar[int] = 1
    broker_id: int
    broker_epoch: int
    next_producer_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureLevel:
    """A finalized feature level (e.g. ``metadata.version``); level 0 removes the feature."""

    TYPE: ClassVar[str] = "FeatureLevel"
    VERSION: ClassVar[int] = 1
    name: str
    level: int


@dataclass(frozen=True, slots=True, kw_only=True)
class UserScramCredential:
    """A user's SCRAM credential for one mechanism (1 SCRAM-SHA-256, 2 SCRAM-SHA-512), Kafka's
    UserScramCredentialRecord: salt, StoredKey, ServerKey and iterations -- never the password."""

    TYPE: ClassVar[str] = "UserScramCredential"
    VERSION: ClassVar[int] = 1
    name: str
    mechanism: int
    salt: bytes = field(repr=False)
    stored_key: bytes = field(repr=False)
    server_key: bytes = field(repr=False)
    iterations: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveUserScramCredential:
    TYPE: ClassVar[str] = "RemoveUserScramCredential"
    VERSION: ClassVar[int] = 1
    name: str
    mechanism: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessControlEntry:
    """An ACL binding (Kafka's AccessControlEntryRecord); the codes are Kafka's (suoi.authorizer.acl)."""

    TYPE: ClassVar[str] = "AccessControlEntry"
    VERSION: ClassVar[int] = 1
    id: uuid.UUID
    resource_type: int
    resource_name: str
    pattern_type: int
    principal: str
    host: str
    operation: int
    permission_type: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveAccessControlEntry:
    TYPE: ClassVar[str] = "RemoveAccessControlEntry"
    VERSION: ClassVar[int] = 1
    id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientQuota:
    """One client quota (Kafka's ClientQuotaRecord, KIP-546): ``entity`` is ((type, name), ...)
    with type "user" / "client-id" and name None for the default entity; ``quota_value`` None
    removes the key."""

    TYPE: ClassVar[str] = "ClientQuota"
    VERSION: ClassVar[int] = 1
    entity: tuple[tuple[str, str | None], ...]
    key: str
    quota_value: float | None


Record = (
    AccessControlEntry
    | RemoveAccessControlEntry
    | ClientQuota
    | RegisterBroker
    | UnregisterBroker
    | FenceBroker
    | UnfenceBroker
    | BeginControlledShutdown
    | Topic
    | Partition
    | PartitionChange
    | RemoveTopic
    | Config
    | ProducerIds
    | FeatureLevel
    | UserScramCredential
    | RemoveUserScramCredential
)

#: wire name -> record type: what a decoder may accept (an unknown name is an error)
RECORD_TYPES: dict[str, type] = {
    cls.TYPE: cls
    for cls in (
        AccessControlEntry,
        RemoveAccessControlEntry,
        ClientQuota,
        RegisterBroker,
        UnregisterBroker,
        FenceBroker,
        UnfenceBroker,
        BeginControlledShutdown,
        Topic,
        Partition,
        PartitionChange,
        RemoveTopic,
        Config,
        ProducerIds,
        FeatureLevel,
        UserScramCredential,
        RemoveUserScramCredential,
    )
}

