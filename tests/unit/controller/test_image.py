"""MetadataImage replay, snapshots, structural sharing, and deltas for broker reconciliation."""

from __future__ import annotations

import uuid

import pytest

from suoi.controller import MetadataBuilder, MetadataDelta, MetadataImage, MetadataRecordError
from suoi.controller.records import (
    BeginControlledShutdown,
    Config,
    FeatureLevel,
    FenceBroker,
    Listener,
    Partition,
    PartitionChange,
    ProducerIds,
    Record,
    RegisterBroker,
    RemoveTopic,
    Topic,
    UnfenceBroker,
    UnregisterBroker,
    encode_batch,
)
from suoi.raft.messages import Entry

A = uuid.UUID(int=0xA, version=4)
B = uuid.UUID(int=0xB, version=4)


def reg(b: int, epoch: int, rack: str | None = None) -> RegisterBroker:
    return RegisterBroker(broker_id=b, incarnation_id=uuid.UUID(int=b, version=4), broker_epoch=epoch,
                          listeners=(Listener("PLAINTEXT", f"host{b}", 9092),), rack=rack)


BASE: list[Record] = [
    reg(1, 10, "r1"), reg(2, 11, "r2"), reg(3, 12),
    UnfenceBroker(broker_id=1, broker_epoch=10), UnfenceBroker(broker_id=2, broker_epoch=11),
    Topic(name="a", topic_id=A),
    Config(resource_type=2, resource_name="a", name="retention.ms", value="100"),
    Partition(topic_id=A, partition=0, replicas=(1, 2), isr=(1, 2), leader=1),
    Partition(topic_id=A, partition=1, replicas=(2, 1), isr=(2, 1), leader=2),
    Topic(name="b", topic_id=B),
    Partition(topic_id=B, partition=0, replicas=(3,), isr=(3,), leader=3),
    Config(resource_type=4, resource_name="", name="log.retention.ms", value="5"),
    ProducerIds(broker_id=1, broker_epoch=10, next_producer_id=1000),
    FeatureLevel(name="metadata.version", level=7),
]


def build(records, offset: int = 0) -> MetadataImage:  # type: ignore[no-untyped-def]
    b = MetadataBuilder()
    b.apply_batch(records, offset, 1)
    return b.image()


def test_replay_builds_the_image() -> None:
    img = build(BASE, offset=41)
    assert img.offset == 41 and img.epoch == 1
    assert [b.broker_id for b in img.unfenced_brokers()] == [1, 2]
    assert img.brokers[3].fenced and img.brokers[1].rack == "r1"
    assert img.brokers[1].listener("PLAINTEXT") == Listener("PLAINTEXT", "host1", 9092)
    assert img.topic("a").topic_id == A and img.topics[B].name == "b"  # type: ignore[union-attr]
    assert img.partition("a", 1).leader == 2 and img.partition(A, 0).replicas == (1, 2)  # type: ignore[union-attr]
    assert img.topic_configs("a") == {"retention.ms": "100"} and img.broker_configs(None) == {"log.retention.ms": "5"}
    assert img.next_producer_id == 1000 and img.features == {"metadata.version": 7}
    assert img.broker_epoch_high == 12
    assert img.partitions_led_by(1) == [("a", 0)] and img.partitions_hosted_by(1) == [("a", 0), ("a", 1)]


def test_partition_change_bumps_epochs_like_kafka() -> None:
    b = MetadataBuilder()
    b.apply_batch(BASE)
    b.apply(PartitionChange(topic_id=A, partition=0, isr=(1,)))
    p = b.image().partition("a", 0)
    assert (p.isr, p.leader, p.leader_epoch, p.partition_epoch) == ((1,), 1, 0, 1)  # type: ignore[union-attr]
    b.apply(PartitionChange(topic_id=A, partition=0, leader=-1))
    p = b.image().partition("a", 0)
    assert (p.leader, p.leader_epoch, p.partition_epoch) == (-1, 1, 2)  # type: ignore[union-attr]
    b.apply(PartitionChange(topic_id=A, partition=0, leader=1))
    p = b.image().partition("a", 0)
    assert (p.leader, p.leader_epoch, p.partition_epoch) == (1, 2, 3)  # type: ignore[union-attr]


def test_snapshot_round_trip() -> None:
    b = MetadataBuilder()
    b.apply_batch(BASE)
    b.apply(PartitionChange(topic_id=A, partition=0, isr=(1,), leader=1))
    b.apply(BeginControlledShutdown(broker_id=2, broker_epoch=11))
    b.apply(UnregisterBroker(broker_id=3, broker_epoch=12))
    b.set_position(99, 4)
    img = b.image()
    data = img.to_snapshot()
    back = MetadataImage.from_snapshot(data)
    assert back == img
    assert back.partition("a", 0).leader_epoch == 1 and back.brokers[2].in_controlled_shutdown  # type: ignore[union-attr]
    assert back.broker_epoch_high == 12  # survives though broker 3 is gone
    assert MetadataImage.from_snapshot(MetadataImage.EMPTY.to_snapshot()) == MetadataImage.EMPTY
    with pytest.raises(MetadataRecordError):
        MetadataImage.from_snapshot(b'{"v":2,"records":[]}')


def test_builder_from_image_continues_where_it_left_off() -> None:
    img = build(BASE, 5)
    b = MetadataBuilder.from_image(img)
    b.apply_batch([RemoveTopic(topic_id=B)], 6)
    assert b.image().topic("b") is None and img.topic("b") is not None  # the old image is untouched
    assert b.image().offset == 6


def test_unchanged_topics_are_shared_between_images() -> None:
    b = MetadataBuilder()
    b.apply_batch(BASE)
    first = b.image()
    b.apply(PartitionChange(topic_id=A, partition=0, isr=(1,)))
    second = b.image()
    assert second.topics[B] is first.topics[B]
    assert second.topics[A] is not first.topics[A]
    assert first.partition("a", 0).isr == (1, 2)  # type: ignore[union-attr]  # published images never change
    assert b.image() is second


def test_remove_topic_drops_its_configs_and_name() -> None:
    img = build([*BASE, RemoveTopic(topic_id=A), Topic(name="a", topic_id=uuid.UUID(int=0xC, version=4))])
    assert img.topic_configs("a") == {} and img.topic("a").topic_id != A  # type: ignore[union-attr]


def test_apply_entry_decodes_batches_and_skips_control_entries() -> None:
    b = MetadataBuilder()
    b.apply_entry(Entry(0, 1, b"leader-change", control=True))
    assert b.image().offset == 0 and b.image().brokers == {}
    b.apply_entry(Entry(1, 1, encode_batch(BASE[:2])))
    assert b.image().offset == 1 and set(b.image().brokers) == {1, 2}


@pytest.mark.parametrize("bad", [
    [Partition(topic_id=A, partition=0, replicas=(1,), isr=(1,), leader=1)],  # unknown topic
    [Topic(name="a", topic_id=A), Topic(name="a", topic_id=B)],  # duplicate name
    [Topic(name="a", topic_id=A), Topic(name="b", topic_id=A)],  # duplicate id
    [Topic(name="a", topic_id=A), Partition(topic_id=A, partition=0, replicas=(1,), isr=(2,), leader=2)],
    [Topic(name="a", topic_id=A), Partition(topic_id=A, partition=0, replicas=(1, 1), isr=(1,), leader=1)],
    [Topic(name="a", topic_id=A), Partition(topic_id=A, partition=0, replicas=(1, 2), isr=(1,), leader=2)],
    [Topic(name="a", topic_id=A), Partition(topic_id=A, partition=0, replicas=(1,), isr=(1,), leader=1),
     PartitionChange(topic_id=A, partition=0, leader=3)],
    [Topic(name="a", topic_id=A), PartitionChange(topic_id=A, partition=0, leader=3)],
    [FenceBroker(broker_id=1, broker_epoch=1)],
    [reg(1, 5), FenceBroker(broker_id=1, broker_epoch=4)],
    [reg(1, 5), reg(1, 5)],
    [ProducerIds(broker_id=1, broker_epoch=1, next_producer_id=0)],
    [RemoveTopic(topic_id=A)],
])
def test_inconsistent_records_are_refused(bad) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MetadataRecordError):
        MetadataBuilder().apply_batch(bad)


def test_local_changes_for_a_broker() -> None:
    old = build(BASE)
    b = MetadataBuilder.from_image(old)
    C = uuid.UUID(int=0xD, version=4)
    b.apply_batch([
        PartitionChange(topic_id=A, partition=0, isr=(2,), leader=2),  # 1 loses leadership of a-0
        RemoveTopic(topic_id=B),  # 3 loses b-0
        Topic(name="c", topic_id=C),
        Partition(topic_id=C, partition=0, replicas=(1, 3), isr=(1, 3), leader=1),
        FenceBroker(broker_id=1, broker_epoch=10),
        Config(resource_type=2, resource_name="a", name="retention.ms", value="7"),
    ])
    new = b.image()
    d = MetadataDelta.between(old, new)
    assert [t.name for t in d.created_topics] == ["c"] and [t.name for t in d.deleted_topics] == ["b"]
    assert d.changed_brokers == {1} and d.changed_configs == {(2, "a")}
    one = d.local_changes(1)
    assert [(x.topic_name, x.partition) for x in one.leaders] == [("c", 0)] and one.leaders[0].previous is None
    assert [(x.topic_name, x.partition) for x in one.followers] == [("a", 0)]
    assert one.followers[0].previous is not None and one.deleted == ()
    three = d.local_changes(3)
    assert [(x.topic_name, x.partition) for x in three.deleted] == [("b", 0)]
    assert [(x.topic_name, x.partition) for x in three.followers] == [("c", 0)]
    assert d.local_changes(2).leaders[0].topic_name == "a" and MetadataDelta.between(new, new).local_changes(1).empty


def test_reassigned_away_replica_is_deleted_locally() -> None:
    old = build(BASE)
    b = MetadataBuilder.from_image(old)
    b.apply(PartitionChange(topic_id=A, partition=1, replicas=(2, 3), isr=(2,)))
    ch = MetadataDelta.between(old, b.image()).local_changes(1)
    assert [(x.topic_name, x.partition) for x in ch.deleted] == [("a", 1)]
