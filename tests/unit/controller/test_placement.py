"""Replica placement: distinct brokers, balanced preferred leaders, racks respected."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from suoi.controller import NewTopic
from suoi.controller.errors import ApiError
from suoi.controller.placement import PlacementBroker, PlacementLoad, place_replicas
from suoi.model import ErrorCode

from .helpers import Harness


def spread(counter: Counter[int], brokers: int) -> int:
    counts = [counter.get(b, 0) for b in range(brokers)]
    return max(counts) - min(counts)


@pytest.mark.parametrize("brokers", [3, 5, 6])
def test_many_topics_spread_replicas_and_leaders(brokers: int) -> None:
    h = Harness(brokers)
    rng = random.Random(brokers)
    for i in range(40):
        partitions, rf = rng.randint(1, 12), rng.randint(1, min(3, brokers))
        r = h.create(f"t{i}", partitions, rf)
        assert r.error == ErrorCode.none, r
        topic = h.image.topic(f"t{i}")
        assert topic is not None
        leaders = Counter(p.replicas[0] for p in topic.partitions.values())
        # per topic: every broker leads floor or ceil of partitions/brokers
        assert spread(leaders, brokers) <= 1 or partitions < brokers and max(leaders.values()) == 1
        for p in topic.partitions.values():
            assert len(p.replicas) == rf and len(set(p.replicas)) == rf
            assert p.leader == p.replicas[0] and p.isr == p.replicas
            assert (p.leader_epoch, p.partition_epoch) == (0, 0)
    leaders = Counter(p.leader for _, _, p in h.image.iter_partitions())
    replicas = Counter(b for _, _, p in h.image.iter_partitions() for b in p.replicas)
    assert spread(leaders, brokers) <= 1
    assert spread(replicas, brokers) <= 2
    h.check_replay()


def test_three_racks_of_two_brokers_rf3_puts_one_replica_per_rack() -> None:
    racks = ["a", "a", "b", "b", "c", "c"]
    h = Harness(6, racks)
    for i in range(10):
        assert h.create(f"t{i}", 7, 3).error == ErrorCode.none
    for t, _, p in h.image.iter_partitions():
        assert sorted(racks[b] for b in p.replicas) == ["a", "b", "c"], (t.name, p)
    leaders = Counter(p.leader for _, _, p in h.image.iter_partitions())
    assert spread(leaders, 6) <= 1


def test_racks_distinct_where_possible() -> None:
    brokers = [PlacementBroker(0, "a"), PlacementBroker(1, "a"), PlacementBroker(2, "b")]
    placed = place_replicas(brokers, 6, 2, PlacementLoad())
    assert all({brokers[x].rack for x in r} == {"a", "b"} for r in placed)
    placed3 = place_replicas(brokers, 3, 3, PlacementLoad())  # 3 replicas on 2 racks: still distinct brokers
    assert all(sorted(r) == [0, 1, 2] for r in placed3)


def test_not_enough_brokers_uses_kafkas_message() -> None:
    with pytest.raises(ApiError) as e:
        place_replicas([PlacementBroker(0)], 1, 3, PlacementLoad())
    assert e.value.code == ErrorCode.invalid_replication_factor
    assert e.value.message == ("Unable to replicate the partition 3 time(s): The target replication factor of 3 "
                               "cannot be reached because only 1 broker(s) are registered.")
    with pytest.raises(ApiError, match="All brokers are currently fenced"):
        place_replicas([], 1, 1, PlacementLoad())


def test_placement_skips_fenced_and_shutting_down_brokers() -> None:
    h = Harness(4)
    h.now = 10_000
    h.heartbeat(0)
    h.heartbeat(1)
    h.heartbeat(2, want_shutdown=True)  # leads nothing: fenced and told to shut down
    h.ctl.tick(h.now)  # broker 3 missed its session
    assert [b.broker_id for b in h.image.unfenced_brokers()] == [0, 1]
    r = h.ctl.create_topics([NewTopic(name="x", num_partitions=8, replication_factor=2)]).response[0]
    assert r.error == ErrorCode.none
    assert {b for _, _, p in h.image.iter_partitions() for b in p.replicas} == {0, 1}
    r = h.create("y", 1, 3)
    assert r.error == ErrorCode.invalid_replication_factor and "only 2 broker(s)" in (r.message or "")
