"""Each topic's encoded Metadata answer (`api.metadata_cache`) is reused while its TopicImage
and the live brokers stay the same, and re-encoded as soon as either changes: a stale
leader is never answered."""

from __future__ import annotations

import uuid
from typing import Any

from kio.serial import entity_reader

from suoi.api.cluster_metadata import encode_topic
from suoi.api.metadata_cache import METADATA_KEY, TopicEncodings
from suoi.controller.image import MetadataBuilder
from suoi.controller.records import Partition, PartitionChange, RemoveTopic, Topic
from suoi.protocol.codec import response_class
from suoi.protocol.splice import element_class

A, B = uuid.uuid4(), uuid.uuid4()


def builder() -> MetadataBuilder:
    b = MetadataBuilder()
    for name, tid in (("a", A), ("b", B)):
        b.apply(Topic(name=name, topic_id=tid))
        for p in range(3):
            b.apply(Partition(topic_id=tid, partition=p, replicas=(1, 2), isr=(1, 2), leader=1))
    return b


def decode(data: bytes, version: int = 12) -> Any:
    cls = element_class(response_class(METADATA_KEY, version), "topics")
    topic, used = entity_reader(cls)(data, 0)
    assert used == len(data)
    return topic


class Encoder:
    """The cache plus a count of how often it had to render a topic."""

    def __init__(self) -> None:
        self.cache = TopicEncodings()
        self.rendered: list[str] = []

    def __call__(self, image: Any, name: str, live: frozenset[int], version: int = 12) -> bytes:
        topic = image.topic(name)

        def render() -> bytes:
            self.rendered.append(name)
            return encode_topic(topic, live, version)

        return self.cache.encoded(topic, version, live, -2147483648, render, image.topics.__contains__)


def test_an_unchanged_topic_is_encoded_once_and_a_changed_one_again() -> None:
    b, enc = builder(), Encoder()
    live = frozenset({1, 2})
    first = b.image()
    a1, b1 = enc(first, "a", live), enc(first, "b", live)
    assert enc(first, "a", live) is a1 and enc.rendered == ["a", "b"]
    assert [p.leader_id for p in decode(a1).partitions] == [1, 1, 1]

    b.apply(PartitionChange(topic_id=A, partition=2, leader=2))  # a new leader for a-2 only
    second = b.image()
    assert second.topic("b") is first.topic("b") and second.topic("a") is not first.topic("a")
    a2 = enc(second, "a", live)
    assert enc(second, "b", live) is b1 and enc.rendered == ["a", "b", "a"]
    parts = decode(a2).partitions
    assert [(p.leader_id, p.leader_epoch) for p in parts] == [(1, 0), (1, 0), (2, 1)]


def test_a_broker_going_away_re_encodes_leaders_and_offline_replicas() -> None:
    b, enc = builder(), Encoder()
    image = b.image()
    enc(image, "a", frozenset({1, 2}))
    parts = decode(enc(image, "a", frozenset({2}))).partitions  # broker 1 fenced: no live leader
    assert [(p.leader_id, int(p.error_code), list(p.offline_replicas)) for p in parts] == [(-1, 5, [1])] * 3
    assert enc.rendered == ["a", "a"]
    old = decode(enc(image, "a", frozenset({1, 2}), version=1), version=1)  # another version: its own entry
    assert [p.leader_id for p in old.partitions] == [1, 1, 1] and enc.rendered == ["a", "a", "a"]


def test_entries_of_deleted_topics_are_dropped_when_the_cache_grows() -> None:
    b, enc = builder(), Encoder()
    enc(b.image(), "a", frozenset({1}))
    b.apply(RemoveTopic(topic_id=A))
    image = b.image()
    for n in range(1000):  # many live sets of topic b: the cache stays bounded
        enc(image, "b", frozenset({1, 100 + n}))
    assert 0 < len(enc.cache) <= 510
    assert all(k[0] == B for k in enc.cache._entries)
