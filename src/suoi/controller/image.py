"""MetadataImage: the cluster metadata every node replays from the Raft log.

`MetadataBuilder` is the mutable side: `apply(record)` / `apply_batch(records, offset, epoch)` /
`apply_entry(entry)` in log order, then `image()` returns an immutable `MetadataImage`.
Images share unchanged parts: a topic none of whose partitions changed keeps the same
`TopicImage` object across images, so building an image costs O(topics + brokers), and
`MetadataDelta` (delta.py) can skip unchanged topics by identity.

A snapshot (KIP-630) is the image written as records: `to_snapshot()` / `from_snapshot()`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from types import MappingProxyType
from typing import Any, ClassVar, Protocol

from suoi.authorizer.acl import AclBinding
from suoi.controller.records import (
    AccessControlEntry,
    BeginControlledShutdown,
    ClientQuota,
    Config,
    FeatureLevel,
    FenceBroker,
    MetadataRecordError,
    Partition,
    PartitionChange,
    ProducerIds,
    Record,
    RegisterBroker,
    RemoveAccessControlEntry,
    RemoveTopic,
    RemoveUserScramCredential,
    Topic,
    UnfenceBroker,
    UnregisterBroker,
    UserScramCredential,
    decode_batch,
    record_from_dict,
    record_to_dict,
)
from suoi.controller.registrations import BrokerRegistration, PartitionRegistration, TopicImage
from suoi.controller.security_image import ClientQuotaEntity, SecurityState, security_snapshot_records

__all__ = [
    "SNAPSHOT_VERSION",
    "BrokerRegistration",
    "ClientQuotaEntity",
    "ConfigResourceType",
    "MetadataBuilder",
    "MetadataImage",
    "PartitionRegistration",
    "TopicImage",
]

SNAPSHOT_VERSION = 1
_EMPTY: Mapping[Any, Any] = MappingProxyType({})


class ConfigResourceType(IntEnum):
    """Kafka's ConfigResource.Type values (the ones the controller stores)."""

    TOPIC = 2
    BROKER = 4
    CLIENT_METRICS = 16  # KIP-714 subscriptions (see client_metrics.py)


class _EntryLike(Protocol):
    """suoi.raft.messages.Entry, structurally (offset, epoch, payload, control)."""

    @property
    def offset(self) -> int: ...
    @property
    def epoch(self) -> int: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def control(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class MetadataImage:
    """Everything replayed up to and including the entry at ``offset`` (-1: nothing yet).

    ``configs`` maps (resource type, resource name) to the overrides set for it (topic
    configs are keyed by topic name; broker configs by the broker id as a string, "" for
    the cluster default). ``broker_epoch_high`` is the largest broker epoch ever assigned,
    so a new controller never hands out an epoch twice.
    """

    EMPTY: ClassVar[MetadataImage]

    offset: int = -1
    epoch: int = -1
    brokers: Mapping[int, BrokerRegistration] = field(default_factory=lambda: _EMPTY)
    topics: Mapping[uuid.UUID, TopicImage] = field(default_factory=lambda: _EMPTY)
    topics_by_name: Mapping[str, TopicImage] = field(default_factory=lambda: _EMPTY)
    configs: Mapping[tuple[int, str], Mapping[str, str]] = field(default_factory=lambda: _EMPTY)
    next_producer_id: int = 0
    features: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    broker_epoch_high: int = -1
    #: (user, mechanism id) -> SCRAM credential (UserScramCredential records)
    scram: Mapping[tuple[str, int], UserScramCredential] = field(default_factory=lambda: _EMPTY)
    #: ACL bindings by id (the same object across images until one changes: authorizers cache on it).
    acls: Mapping[uuid.UUID, AclBinding] = field(default_factory=lambda: _EMPTY)
    #: Client quotas (KIP-546): entity -> {key: value}.
    client_quotas: Mapping[ClientQuotaEntity, Mapping[str, float]] = field(default_factory=lambda: _EMPTY)

    # ------------------------------------------------------------------ queries

    def scram_credential(self, user: str, mechanism: int) -> UserScramCredential | None:
        return self.scram.get((user, mechanism))

    def topic(self, name: str) -> TopicImage | None:
        return self.topics_by_name.get(name)

    def partition(self, topic: str | uuid.UUID, partition: int) -> PartitionRegistration | None:
        t = self.topics.get(topic) if isinstance(topic, uuid.UUID) else self.topics_by_name.get(topic)
        return None if t is None else t.partitions.get(partition)

    def unfenced_brokers(self) -> list[BrokerRegistration]:
        return [b for _, b in sorted(self.brokers.items()) if not b.fenced]

    def topic_configs(self, name: str) -> Mapping[str, str]:
        return self.configs.get((ConfigResourceType.TOPIC, name), _EMPTY)

    def broker_configs(self, broker_id: int | None) -> Mapping[str, str]:
        """Overrides for one broker (``None``: the cluster-wide default resource "")."""
        return self.configs.get((ConfigResourceType.BROKER, "" if broker_id is None else str(broker_id)), _EMPTY)

    def iter_partitions(self) -> Iterator[tuple[TopicImage, int, PartitionRegistration]]:
        for t in self.topics.values():
            for p, reg in t.partitions.items():
                yield t, p, reg

    def partitions_led_by(self, broker_id: int) -> list[tuple[str, int]]:
        return sorted((t.name, p) for t, p, reg in self.iter_partitions() if reg.leader == broker_id)

    def partitions_hosted_by(self, broker_id: int) -> list[tuple[str, int]]:
        return sorted((t.name, p) for t, p, reg in self.iter_partitions() if broker_id in reg.replicas)

    # ------------------------------------------------------------------ snapshots

    def snapshot_records(self) -> list[Record]:
        """Records that rebuild this image from empty (leader/partition epochs included)."""
        out: list[Record] = []
        for name, level in sorted(self.features.items()):
            out.append(FeatureLevel(name=name, level=level))
        for _, b in sorted(self.brokers.items()):
            out.append(RegisterBroker(broker_id=b.broker_id, incarnation_id=b.incarnation_id, broker_epoch=b.epoch,
                                      listeners=b.listeners, rack=b.rack, fenced=b.fenced,
                                      in_controlled_shutdown=b.in_controlled_shutdown))
        for t in sorted(self.topics.values(), key=lambda t: t.name):
            out.append(Topic(name=t.name, topic_id=t.topic_id))
            for p, reg in sorted(t.partitions.items()):
                out.append(Partition(topic_id=t.topic_id, partition=p, replicas=reg.replicas, isr=reg.isr,
                                     leader=reg.leader, leader_epoch=reg.leader_epoch,
                                     partition_epoch=reg.partition_epoch, adding_replicas=reg.adding_replicas,
                                     removing_replicas=reg.removing_replicas))
        for (rtype, rname), values in sorted(self.configs.items()):
            for k, v in sorted(values.items()):
                out.append(Config(resource_type=rtype, resource_name=rname, name=k, value=v))
        out.extend(c for _, c in sorted(self.scram.items()))
        if self.next_producer_id:
            out.append(ProducerIds(broker_id=-1, broker_epoch=-1, next_producer_id=self.next_producer_id))
        out.extend(security_snapshot_records(self.acls, self.client_quotas))
        return out

    def to_snapshot(self) -> bytes:
        body = {
            "v": SNAPSHOT_VERSION,
            "offset": self.offset,
            "epoch": self.epoch,
            "broker_epoch_high": self.broker_epoch_high,
            "records": [record_to_dict(r) for r in self.snapshot_records()],
        }
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_snapshot(cls, data: bytes) -> MetadataImage:
        try:
            body = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise MetadataRecordError(f"metadata snapshot is not JSON: {e}") from None
        if not isinstance(body, dict) or body.get("v") != SNAPSHOT_VERSION or not isinstance(body.get("records"), list):
            raise MetadataRecordError("not a version-1 metadata snapshot")
        b = MetadataBuilder()
        for r in body["records"]:
            b.apply(record_from_dict(r))
        b.set_position(int(body["offset"]), int(body["epoch"]))
        b.broker_epoch_high = max(b.broker_epoch_high, int(body.get("broker_epoch_high", -1)))
        return b.image()


MetadataImage.EMPTY = MetadataImage()


@dataclass(slots=True)
class _TopicState:
    name: str
    topic_id: uuid.UUID
    partitions: dict[int, PartitionRegistration]
    cached: TopicImage | None = None
    owned: bool = True  # ``partitions`` is not shared with a published TopicImage


@dataclass(slots=True)
class MetadataBuilder:
    """Mutable metadata state; `apply` records in log order, `image()` to publish.

    Invalid records (a partition of an unknown topic, a leader outside the ISR, ...) raise
    `MetadataRecordError`: the log is the single source of truth, so a replica that cannot
    apply it must stop rather than diverge.
    """

    offset: int = -1
    epoch: int = -1
    next_producer_id: int = 0
    broker_epoch_high: int = -1
    _brokers: dict[int, BrokerRegistration] = field(default_factory=dict)
    _topics: dict[uuid.UUID, _TopicState] = field(default_factory=dict)
    _names: dict[str, uuid.UUID] = field(default_factory=dict)
    _configs: dict[tuple[int, str], dict[str, str]] = field(default_factory=dict)
    _features: dict[str, int] = field(default_factory=dict)
    #: SCRAM credentials, ACLs and client quotas (security_image.py).
    _security: SecurityState = field(default_factory=SecurityState)
    _image: MetadataImage | None = None

    @classmethod
    def from_image(cls, image: MetadataImage) -> MetadataBuilder:
        b = cls(offset=image.offset, epoch=image.epoch, next_producer_id=image.next_producer_id,
                broker_epoch_high=image.broker_epoch_high)
        b._brokers = dict(image.brokers)
        for t in image.topics.values():
            b._topics[t.topic_id] = _TopicState(t.name, t.topic_id, dict(t.partitions), cached=t, owned=False)
            b._names[t.name] = t.topic_id
        b._configs = {k: dict(v) for k, v in image.configs.items()}
        b._features = dict(image.features)
        b._security = SecurityState.from_published(image.scram, image.acls, image.client_quotas)
        b._image = image
        return b

    # ------------------------------------------------------------------ reads (live state)

    def broker(self, broker_id: int) -> BrokerRegistration | None:
        return self._brokers.get(broker_id)

    def brokers(self) -> list[BrokerRegistration]:
        return [b for _, b in sorted(self._brokers.items())]

    def topic_id(self, name: str) -> uuid.UUID | None:
        return self._names.get(name)

    def topic_name(self, topic_id: uuid.UUID) -> str | None:
        t = self._topics.get(topic_id)
        return None if t is None else t.name

    def topic_names(self) -> Iterable[str]:
        return self._names.keys()

    def topic_ids(self) -> Iterable[uuid.UUID]:
        return self._topics.keys()

    def partitions(self, topic_id: uuid.UUID) -> Mapping[int, PartitionRegistration]:
        t = self._topics.get(topic_id)
        return _EMPTY if t is None else MappingProxyType(t.partitions)

    def partition(self, topic_id: uuid.UUID, partition: int) -> PartitionRegistration | None:
        t = self._topics.get(topic_id)
        return None if t is None else t.partitions.get(partition)

    def iter_partitions(self) -> Iterator[tuple[uuid.UUID, int, PartitionRegistration]]:
        for tid, t in self._topics.items():
            for p, reg in t.partitions.items():
                yield tid, p, reg

    def configs(self, resource_type: int, resource_name: str) -> Mapping[str, str]:
        return MappingProxyType(self._configs.get((resource_type, resource_name), {}))

    # ------------------------------------------------------------------ replay

    def set_position(self, offset: int, epoch: int | None = None) -> None:
        self.offset = offset
        if epoch is not None:
            self.epoch = epoch
        self._image = None

    def apply_entry(self, entry: _EntryLike) -> None:
        """Apply one committed Raft entry (control entries only advance the position)."""
        if not entry.control:
            for r in decode_batch(entry.payload):
                self.apply(r)
        self.set_position(entry.offset, entry.epoch)

    def apply_batch(self, records: Iterable[Record], offset: int | None = None, epoch: int | None = None) -> None:
        for r in records:
            self.apply(r)
        if offset is not None:
            self.set_position(offset, epoch)

    def apply(self, r: Record) -> None:
        self._image = None
        handler = _HANDLERS.get(type(r))
        if handler is not None:
            handler(self, r)
            return
        security = _SECURITY_HANDLERS.get(type(r))
        if security is None:
            raise MetadataRecordError(f"cannot apply {r!r}")
        security(self._security, r)

    def _registered(self, broker_id: int, epoch: int) -> BrokerRegistration:
        b = self._brokers.get(broker_id)
        if b is None or b.epoch != epoch:
            raise MetadataRecordError(f"broker {broker_id} epoch {epoch} is not registered")
        return b

    def _register(self, r: RegisterBroker) -> None:
        old = self._brokers.get(r.broker_id)
        if old is not None and r.broker_epoch <= old.epoch:
            raise MetadataRecordError(f"broker {r.broker_id} re-registered with epoch {r.broker_epoch} <= {old.epoch}")
        self._brokers[r.broker_id] = BrokerRegistration(r.broker_id, r.incarnation_id, r.broker_epoch, r.listeners,
                                                        r.rack, r.fenced, r.in_controlled_shutdown)
        self.broker_epoch_high = max(self.broker_epoch_high, r.broker_epoch)

    def _unregister(self, r: UnregisterBroker) -> None:
        self._registered(r.broker_id, r.broker_epoch)
        del self._brokers[r.broker_id]

    def _fence(self, r: FenceBroker) -> None:
        b = self._registered(r.broker_id, r.broker_epoch)
        self._brokers[r.broker_id] = _replace_broker(b, fenced=True, in_controlled_shutdown=False)

    def _unfence(self, r: UnfenceBroker) -> None:
        b = self._registered(r.broker_id, r.broker_epoch)
        self._brokers[r.broker_id] = _replace_broker(b, fenced=False, in_controlled_shutdown=False)

    def _begin_shutdown(self, r: BeginControlledShutdown) -> None:
        b = self._registered(r.broker_id, r.broker_epoch)
        self._brokers[r.broker_id] = _replace_broker(b, fenced=b.fenced, in_controlled_shutdown=True)

    def _topic(self, r: Topic) -> None:
        if r.name in self._names:
            raise MetadataRecordError(f"topic {r.name!r} already exists")
        if r.topic_id in self._topics:
            raise MetadataRecordError(f"topic id {r.topic_id} already exists")
        self._topics[r.topic_id] = _TopicState(r.name, r.topic_id, {})
        self._names[r.name] = r.topic_id

    def _writable_topic(self, topic_id: uuid.UUID) -> _TopicState:
        t = self._topics.get(topic_id)
        if t is None:
            raise MetadataRecordError(f"unknown topic id {topic_id}")
        if not t.owned:  # copy on first write since the last image()
            t.partitions = dict(t.partitions)
            t.owned = True
        t.cached = None
        return t

    def _partition(self, r: Partition) -> None:
        t = self._writable_topic(r.topic_id)
        if r.partition in t.partitions or r.partition < 0:
            raise MetadataRecordError(f"partition {t.name}-{r.partition} already exists or is invalid")
        reg = PartitionRegistration(r.replicas, r.isr, r.leader, r.leader_epoch, r.partition_epoch,
                                    r.adding_replicas, r.removing_replicas)
        reg.validate()
        t.partitions[r.partition] = reg

    def _partition_change(self, r: PartitionChange) -> None:
        t = self._writable_topic(r.topic_id)
        old = t.partitions.get(r.partition)
        if old is None:
            raise MetadataRecordError(f"unknown partition {t.name}-{r.partition}")
        new = PartitionRegistration(
            old.replicas if r.replicas is None else r.replicas,
            old.isr if r.isr is None else r.isr,
            old.leader if r.leader is None else r.leader,
            old.leader_epoch + (0 if r.leader is None else 1),
            old.partition_epoch + 1,
            old.adding_replicas if r.adding_replicas is None else r.adding_replicas,
            old.removing_replicas if r.removing_replicas is None else r.removing_replicas,
        )
        if r.replicas is None and r.adding_replicas is None and r.removing_replicas is None:
            # Only the leader and/or the ISR move (every fencing and election: thousands of records
            # per broker restart): the replica sets were checked when they were set.
            new.validate_isr_and_leader(r.isr is not None)
        else:
            new.validate()
        t.partitions[r.partition] = new

    def _remove_topic(self, r: RemoveTopic) -> None:
        t = self._topics.pop(r.topic_id, None)
        if t is None:
            raise MetadataRecordError(f"unknown topic id {r.topic_id}")
        del self._names[t.name]
        self._configs.pop((ConfigResourceType.TOPIC, t.name), None)

    def _config(self, r: Config) -> None:
        key = (r.resource_type, r.resource_name)
        values = self._configs.setdefault(key, {})
        if r.value is None:
            values.pop(r.name, None)
            if not values:
                del self._configs[key]
        else:
            values[r.name] = r.value

    def _producer_ids(self, r: ProducerIds) -> None:
        if r.next_producer_id <= self.next_producer_id:
            raise MetadataRecordError(f"producer id block {r.next_producer_id} does not advance {self.next_producer_id}")
        self.next_producer_id = r.next_producer_id

    def _feature(self, r: FeatureLevel) -> None:
        if r.level == 0:
            self._features.pop(r.name, None)
        else:
            self._features[r.name] = r.level

    def scram_credentials(self) -> Mapping[tuple[str, int], UserScramCredential]:
        return self._security.scram

    def acls(self) -> Mapping[uuid.UUID, AclBinding]:
        return MappingProxyType(self._security.acls)

    def client_quotas(self, entity: ClientQuotaEntity) -> Mapping[str, float]:
        return MappingProxyType(self._security.quotas.get(tuple(sorted(entity)), {}))

    # ------------------------------------------------------------------ publish

    def image(self) -> MetadataImage:
        if self._image is not None:
            return self._image
        topics: dict[uuid.UUID, TopicImage] = {}
        for tid, t in self._topics.items():
            if t.cached is None:
                t.cached = TopicImage(t.name, tid, MappingProxyType(t.partitions))
                t.owned = False  # published: the next write copies
            topics[tid] = t.cached
        self._image = MetadataImage(
            offset=self.offset,
            epoch=self.epoch,
            brokers=MappingProxyType(dict(self._brokers)),
            topics=MappingProxyType(topics),
            topics_by_name=MappingProxyType({t.name: t for t in topics.values()}),
            configs=MappingProxyType({k: MappingProxyType(dict(v)) for k, v in self._configs.items()}),
            next_producer_id=self.next_producer_id,
            features=MappingProxyType(dict(self._features)),
            broker_epoch_high=self.broker_epoch_high,
            scram=self._security.published_scram(),
            acls=self._security.published_acls(),
            client_quotas=self._security.published_quotas(),
        )
        return self._image


def _replace_broker(b: BrokerRegistration, *, fenced: bool, in_controlled_shutdown: bool) -> BrokerRegistration:
    return BrokerRegistration(b.broker_id, b.incarnation_id, b.epoch, b.listeners, b.rack, fenced, in_controlled_shutdown)


_HANDLERS: dict[type, Any] = {
    RegisterBroker: MetadataBuilder._register,
    UnregisterBroker: MetadataBuilder._unregister,
    FenceBroker: MetadataBuilder._fence,
    UnfenceBroker: MetadataBuilder._unfence,
    BeginControlledShutdown: MetadataBuilder._begin_shutdown,
    Topic: MetadataBuilder._topic,
    Partition: MetadataBuilder._partition,
    PartitionChange: MetadataBuilder._partition_change,
    RemoveTopic: MetadataBuilder._remove_topic,
    Config: MetadataBuilder._config,
    ProducerIds: MetadataBuilder._producer_ids,
    FeatureLevel: MetadataBuilder._feature,
}
_SECURITY_HANDLERS: dict[type, Any] = {
    UserScramCredential: SecurityState.scram_credential,
    RemoveUserScramCredential: SecurityState.remove_scram_credential,
    AccessControlEntry: SecurityState.acl,
    RemoveAccessControlEntry: SecurityState.remove_acl,
    ClientQuota: SecurityState.client_quota,
}
