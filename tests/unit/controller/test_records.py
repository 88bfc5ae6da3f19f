"""Metadata record encoding: every type round-trips; bad payloads are refused; codes are Kafka's."""

from __future__ import annotations

import json
import uuid

import pytest

from suoi.controller.records import (
    BeginControlledShutdown,
    Config,
    FeatureLevel,
    FenceBroker,
    Listener,
    MetadataRecordError,
    Partition,
    PartitionChange,
    ProducerIds,
    Record,
    RegisterBroker,
    RemoveTopic,
    Topic,
    UnfenceBroker,
    UnregisterBroker,
    decode_batch,
    decode_record,
    encode_batch,
    encode_record,
)

TID = uuid.UUID("5f3c8e6a-1b2d-4c3e-9f00-0123456789ab")
ALL: list[Record] = [
    RegisterBroker(broker_id=1, incarnation_id=uuid.UUID(int=7), broker_epoch=12,
                   listeners=(Listener("PLAINTEXT", "h1", 9092), Listener("CONTROLLER", "h1", 9093)), rack="r1"),
    RegisterBroker(broker_id=2, incarnation_id=uuid.UUID(int=8), broker_epoch=13, fenced=False,
                   in_controlled_shutdown=True),
    UnregisterBroker(broker_id=1, broker_epoch=12),
    FenceBroker(broker_id=1, broker_epoch=12),
    UnfenceBroker(broker_id=1, broker_epoch=12),
    BeginControlledShutdown(broker_id=1, broker_epoch=12),
    Topic(name="orders", topic_id=TID),
    Partition(topic_id=TID, partition=3, replicas=(1, 2, 3), isr=(1, 2), leader=1, leader_epoch=4, partition_epoch=9),
    PartitionChange(topic_id=TID, partition=3),
    PartitionChange(topic_id=TID, partition=3, isr=(2,), leader=2),
    PartitionChange(topic_id=TID, partition=3, leader=-1),
    PartitionChange(topic_id=TID, partition=3, replicas=(2, 3, 4), isr=(2, 3)),
    RemoveTopic(topic_id=TID),
    Config(resource_type=2, resource_name="orders", name="retention.ms", value="1000"),
    Config(resource_type=4, resource_name="", name="log.retention.ms", value=None),
    ProducerIds(broker_id=1, broker_epoch=12, next_producer_id=2000),
    FeatureLevel(name="metadata.version", level=1),
]


@pytest.mark.parametrize("record", ALL, ids=lambda r: type(r).__name__)
def test_record_round_trip(record) -> None:  # type: ignore[no-untyped-def]
    assert decode_record(encode_record(record)) == record


def test_batch_round_trip_keeps_order() -> None:
    payload = encode_batch(ALL)
    assert decode_batch(payload) == ALL
    body = json.loads(payload)
    assert body["v"] == 1 and [r["type"] for r in body["records"]][:3] == ["RegisterBroker", "RegisterBroker", "UnregisterBroker"]
    assert decode_batch(encode_batch([])) == []


def test_wire_format_is_documented_json() -> None:
    body = json.loads(encode_record(ALL[7]))
    assert body == {"type": "Partition", "v": 1, "topic_id": str(TID), "partition": 3, "replicas": [1, 2, 3],
                    "isr": [1, 2], "leader": 1, "leader_epoch": 4, "partition_epoch": 9}
    change = json.loads(encode_record(PartitionChange(topic_id=TID, partition=0, leader=-1)))
    assert change == {"type": "PartitionChange", "v": 1, "topic_id": str(TID), "partition": 0, "leader": -1}
    reg = json.loads(encode_record(ALL[0]))
    assert reg["listeners"] == [["PLAINTEXT", "h1", 9092], ["CONTROLLER", "h1", 9093]]


def test_unknown_fields_are_ignored_and_defaults_apply() -> None:
    raw = {"type": "RegisterBroker", "v": 1, "broker_id": 3, "incarnation_id": str(uuid.UUID(int=1)),
           "broker_epoch": 5, "future_field": [1, 2]}
    r = decode_record(json.dumps(raw).encode())
    assert isinstance(r, RegisterBroker) and r.fenced and r.listeners == () and r.rack is None


@pytest.mark.parametrize("payload", [
    b"not json",
    b'{"type":"Nope","v":1}',
    b'{"type":"Topic","v":2,"name":"a","topic_id":"5f3c8e6a-1b2d-4c3e-9f00-0123456789ab"}',
    b'{"type":"Topic","v":1,"name":"a"}',
    b'{"type":"Topic","v":1,"name":5,"topic_id":"5f3c8e6a-1b2d-4c3e-9f00-0123456789ab"}',
    b'{"type":"Topic","v":1,"name":"a","topic_id":"zz"}',
    b'{"type":"FenceBroker","v":1,"broker_id":true,"broker_epoch":1}',
    b'{"type":"Partition","v":1,"topic_id":"5f3c8e6a-1b2d-4c3e-9f00-0123456789ab","partition":0,"replicas":"1","isr":[],"leader":1}',
    b'[1]',
])
def test_bad_records_are_refused(payload: bytes) -> None:
    with pytest.raises(MetadataRecordError):
        decode_record(payload)


@pytest.mark.parametrize("payload", [b"{}", b'{"v":1}', b'{"v":9,"records":[]}', b'{"v":1,"records":[{"type":"X"}]}', b"\xff"])
def test_bad_batches_are_refused(payload: bytes) -> None:
    with pytest.raises(MetadataRecordError):
        decode_batch(payload)

