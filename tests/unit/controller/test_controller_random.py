"""Seeded randomized test: random valid (and some invalid) operations; invariants after each.

Invariants: every leader is in its ISR (or -1) and eligible; ISR is a non-empty subset of the
replicas; a reassignment's adding and removing replicas are disjoint subsets of the replicas
and it is never left completable (every adding replica in sync, an in-sync target replica
that could lead); leader and partition epochs never decrease; topic names and ids are unique; producer
id blocks never overlap; replaying the log (and a snapshot of it) gives the controller's state;
applying each delta's local changes to a broker's hosted set tracks what the image says it hosts.
SUOI_CONTROLLER_SEEDS=N runs more seeds; SUOI_CONTROLLER_SEED=S runs one.
"""

from __future__ import annotations

import os
import random
import uuid

import pytest

from suoi.controller import (
    AlterConfigOp,
    ConfigResourceType,
    ElectionType,
    IncrementalAlterConfigsResource,
    MetadataDelta,
    MetadataImage,
    NewPartitions,
    NewTopic,
    OpType,
)
from suoi.model import ErrorCode

from .helpers import Harness

SEEDS = ([int(os.environ["SUOI_CONTROLLER_SEED"])] if "SUOI_CONTROLLER_SEED" in os.environ
         else list(range(int(os.environ.get("SUOI_CONTROLLER_SEEDS", "25")))))
STEPS = 300
BROKERS = 5


class Model:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.h = Harness(seed=seed, session_timeout_ms=1000, leader_imbalance_check_interval_ms=3000)
        self.incarnations: dict[int, int] = {}
        self.epochs_seen: dict[tuple[uuid.UUID, int], tuple[int, int]] = {}
        self.pid_blocks: list[range] = []
        self.hosted: dict[int, set[tuple[str, int]]] = {b: set() for b in range(BROKERS)}
        self.last_image = MetadataImage.EMPTY
        self.names = 0

    # ---------------------------------------------------------------- operations

    def op_register(self) -> None:
        b = self.rng.randrange(BROKERS)
        n = self.incarnations.get(b, 0) + self.rng.choice([0, 1])
        r = self.h.register(b, rack=f"r{b % 3}", n=n)
        if r.response.error == ErrorCode.none:
            self.incarnations[b] = n
        else:
            assert r.response.error == ErrorCode.duplicate_broker_registration

    def op_heartbeat(self) -> None:
        live = [b for b in self.h.image.brokers if b in self.h.epochs]
        if not live:
            return
        b = self.rng.choice(live)
        roll = self.rng.random()
        r = self.h.heartbeat(b, want_fence=roll < 0.05, want_shutdown=0.05 <= roll < 0.12,
                             epoch=self.h.epochs[b] + (1 if roll > 0.97 else 0))
        assert r.response.error in (ErrorCode.none, ErrorCode.stale_broker_epoch)

    def op_time(self) -> None:
        self.h.now += self.rng.choice([100, 400, 900, 1500])
        for b, reg in self.h.image.brokers.items():
            if not reg.fenced and self.rng.random() < 0.8:
                self.h.heartbeat(b)
        self.h.ctl.tick(self.h.now)

    def op_create(self) -> None:
        self.names += 1
        name = self.rng.choice([f"t{self.names}", f"t{self.rng.randrange(max(1, self.names))}", "a.b", "a_b"])
        topic = NewTopic(name=name, num_partitions=self.rng.randint(1, 6), replication_factor=self.rng.randint(1, 3))
        r = self.h.ctl.create_topics([topic]).response[0]
        assert r.error in (ErrorCode.none, ErrorCode.topic_already_exists, ErrorCode.invalid_replication_factor,
                           ErrorCode.invalid_topic_exception)

    def op_delete(self) -> None:
        names = list(self.h.image.topics_by_name)
        if names:
            assert self.h.ctl.delete_topics([self.rng.choice(names)]).response[0].error == ErrorCode.none

    def op_partitions(self) -> None:
        names = list(self.h.image.topics_by_name)
        if names:
            name = self.rng.choice(names)
            count = self.h.image.topics_by_name[name].num_partitions + self.rng.randint(0, 3)
            r = self.h.ctl.create_partitions([NewPartitions(name=name, count=count)]).response[0]
            assert r.error in (ErrorCode.none, ErrorCode.invalid_partitions, ErrorCode.invalid_replication_factor)

    def op_alter_partition(self) -> None:
        parts = [(t, p, reg) for t, p, reg in self.h.image.iter_partitions() if reg.leader != -1]
        if not parts:
            return
        t, p, reg = self.rng.choice(parts)
        others = [b for b in reg.replicas if b != reg.leader and self.rng.random() < 0.6]
        isr = [reg.leader, *others]
        stale = self.rng.random() < 0.1
        r = self.h.ctl.alter_partition(reg.leader, self.h.epochs[reg.leader], t.topic_id, p, reg.leader_epoch,
                                       reg.partition_epoch - (1 if stale else 0), isr).response
        assert r.error in (ErrorCode.none, ErrorCode.ineligible_replica, ErrorCode.invalid_update_version,
                           ErrorCode.new_leader_elected), r
        if stale and reg.partition_epoch > 0:
            assert r.error == ErrorCode.invalid_update_version

    def op_reassign(self) -> None:
        parts = [(t.name, p, reg) for t, p, reg in self.h.image.iter_partitions()]
        if not parts:
            return
        name, p, reg = self.rng.choice(parts)
        roll = self.rng.random()
        if roll < 0.25:
            target = None
        elif roll < 0.35:
            target = list(reg.replicas)
            self.rng.shuffle(target)
        else:
            target = self.rng.sample(range(BROKERS + 1), self.rng.randint(1, 3))  # broker 5 never registers
        r = self.h.ctl.alter_partition_reassignments([(name, p, target)]).response[0]
        assert r.error in (ErrorCode.none, ErrorCode.no_reassignment_in_progress, ErrorCode.invalid_replica_assignment), r
        if target is None:
            assert (r.error == ErrorCode.no_reassignment_in_progress) == (not reg.is_reassigning)
        ongoing = self.h.ctl.list_partition_reassignments().response
        assert [(x.topic, x.partition) for x in ongoing] == sorted(
            (t.name, q) for t, q, x in self.h.image.iter_partitions() if x.is_reassigning)

    def op_elect(self) -> None:
        kind = self.rng.choice([ElectionType.PREFERRED, ElectionType.UNCLEAN])
        self.h.ctl.elect_leaders(kind, None)

    def op_pids(self) -> None:
        live = [b for b in self.h.image.brokers if b in self.h.epochs]
        if live:
            b = self.rng.choice(live)
            r = self.h.ctl.allocate_producer_ids(b, self.h.epochs[b]).response
            assert r.error == ErrorCode.none
            block = range(r.producer_id_start, r.producer_id_start + r.producer_id_len)
            assert all(block.start >= x.stop or block.stop <= x.start for x in self.pid_blocks)
            self.pid_blocks.append(block)

    def op_unclean_config(self) -> None:
        names = list(self.h.image.topics_by_name)
        if names:
            op = AlterConfigOp("unclean.leader.election.enable", OpType.SET, self.rng.choice(["true", "false"]))
            self.h.ctl.incremental_alter_configs([IncrementalAlterConfigsResource(
                resource_type=ConfigResourceType.TOPIC, resource_name=self.rng.choice(names), ops=[op])])

    def op_failover(self) -> None:
        self.h.restart_controller()

    # ---------------------------------------------------------------- invariants

    def check(self) -> None:
        img = self.h.image
        assert len(img.topics) == len(img.topics_by_name)
        assert all(img.topics_by_name[t.name] is t for t in img.topics.values())
        for t, p, reg in img.iter_partitions():
            assert reg.replicas and len(set(reg.replicas)) == len(reg.replicas)
            assert reg.isr and set(reg.isr) <= set(reg.replicas) and len(set(reg.isr)) == len(reg.isr)
            assert reg.leader == -1 or reg.leader in reg.isr
            if reg.leader != -1:
                assert img.brokers[reg.leader].eligible, (t.name, p, reg)
            adding, removing = set(reg.adding_replicas), set(reg.removing_replicas)
            assert adding | removing <= set(reg.replicas) and not adding & removing
            if reg.is_reassigning:
                in_sync_targets = [b for b in reg.isr if b not in removing]
                completable = adding <= set(reg.isr) and in_sync_targets and (
                    reg.leader not in removing or any(img.brokers[b].eligible for b in in_sync_targets))
                assert not completable, (t.name, p, reg)
            key = (t.topic_id, p)
            le, pe = self.epochs_seen.get(key, (0, 0))
            assert reg.leader_epoch >= le and reg.partition_epoch >= pe
            self.epochs_seen[key] = (reg.leader_epoch, reg.partition_epoch)
        delta = MetadataDelta.between(self.last_image, img)
        for b in range(BROKERS):
            ch = delta.local_changes(b)
            for x in ch.deleted:
                self.hosted[b].discard((x.topic_name, x.partition))
            for x in (*ch.leaders, *ch.followers):
                self.hosted[b].add((x.topic_name, x.partition))
                assert (x.registration.leader == b) == (x in ch.leaders)
            assert sorted(self.hosted[b]) == img.partitions_hosted_by(b)
        self.last_image = img

    def full_check(self) -> None:
        replayed = self.h.replayed()
        assert replayed == self.h.image
        assert MetadataImage.from_snapshot(replayed.to_snapshot()) == replayed


OPS = [
    (Model.op_register, 6), (Model.op_heartbeat, 20), (Model.op_time, 10), (Model.op_create, 10),
    (Model.op_delete, 3), (Model.op_partitions, 4), (Model.op_alter_partition, 10), (Model.op_elect, 3), (Model.op_reassign, 6),
    (Model.op_pids, 3), (Model.op_unclean_config, 2), (Model.op_failover, 1),
]


@pytest.mark.parametrize("seed", SEEDS)
def test_random_operations_keep_invariants(seed: int) -> None:
    m = Model(seed)
    for b in range(3):
        m.h.add_broker(b, f"r{b % 3}")
        m.incarnations[b] = 0
    funcs, weights = zip(*OPS, strict=True)
    for step in range(STEPS):
        op = m.rng.choices(funcs, weights)[0]
        try:
            op(m)
            m.check()
            if step % 50 == 0:
                m.full_check()
        except AssertionError as e:
            raise AssertionError(f"seed {seed} step {step} {op.__name__}: {e}") from e
    m.full_check()
    assert m.names > 0 and len(m.h.log) > 50  # the run did something
