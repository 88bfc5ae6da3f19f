"""AlterPartition epoch checks and ElectLeaders (preferred and unclean)."""

from __future__ import annotations

import uuid

import pytest

from suoi.controller import ElectionType
from suoi.model import ErrorCode

from .helpers import Harness


def setup() -> tuple[Harness, uuid.UUID]:
    h = Harness(3)
    h.create("t", assignments={0: [0, 1, 2], 1: [1, 2, 0]}, partitions=-1, rf=-1)
    return h, h.image.topic("t").topic_id  # type: ignore[union-attr]


def test_alter_partition_shrinks_and_expands_the_isr() -> None:
    h, tid = setup()
    r = h.ctl.alter_partition(0, h.epochs[0], tid, 0, 0, 0, [0, 2])
    assert r.response.error == ErrorCode.none and r.response.isr == (0, 2)
    assert (r.response.leader, r.response.leader_epoch, r.response.partition_epoch) == (0, 0, 1)
    r = h.ctl.alter_partition(0, h.epochs[0], tid, 0, 0, 1, [0, 2, 1])
    assert r.response.error == ErrorCode.none and h.part("t").isr == (0, 2, 1) and h.part("t").partition_epoch == 2
    same = h.ctl.alter_partition(0, h.epochs[0], tid, 0, 0, 2, [0, 2, 1])
    assert same.response.error == ErrorCode.none and same.records == ()
    h.check_replay()


@pytest.mark.parametrize(("args", "code"), [
    (dict(broker_epoch=999), ErrorCode.stale_broker_epoch),
    (dict(topic_id=uuid.UUID(int=5)), ErrorCode.unknown_topic_id),
    (dict(partition=9), ErrorCode.unknown_topic_or_partition),
    (dict(leader_epoch=1), ErrorCode.fenced_leader_epoch),
    (dict(leader_epoch=-1), ErrorCode.fenced_leader_epoch),
    (dict(broker_id=1, broker_epoch=None), ErrorCode.invalid_request),  # not the leader
    (dict(partition_epoch=5), ErrorCode.invalid_update_version),
    (dict(new_isr=[]), ErrorCode.invalid_request),
    (dict(new_isr=[7]), ErrorCode.invalid_request),  # without the leader, and nobody in sync to take over
    (dict(new_isr=[0, 0]), ErrorCode.invalid_request),
    (dict(new_isr=[0, 7]), ErrorCode.invalid_request),  # not a replica
])
def test_alter_partition_validation(args: dict, code: ErrorCode) -> None:  # type: ignore[type-arg]
    h, tid = setup()
    call = dict(broker_id=0, broker_epoch=h.epochs[0], topic_id=tid, partition=0, leader_epoch=0, partition_epoch=0,
                new_isr=[0, 1])
    call.update(args)
    if call["broker_epoch"] is None:
        call["broker_epoch"] = h.epochs[call["broker_id"]]  # type: ignore[index]
    r = h.ctl.alter_partition(**call)  # type: ignore[arg-type]
    assert r.response.error == code, r.response
    assert r.records == ()
    if code not in (ErrorCode.unknown_topic_id, ErrorCode.unknown_topic_or_partition):
        assert r.response.isr == (0, 1, 2) and r.response.leader == 0  # the current state comes back


def test_a_leader_may_leave_the_isr_to_an_eligible_in_sync_replica() -> None:
    """suoi: a leader that found a corrupt batch steps down this way (Kafka refuses it)."""
    h, tid = setup()
    r = h.ctl.alter_partition(0, h.epochs[0], tid, 0, 0, 0, [1, 2])
    assert r.response.error == ErrorCode.new_leader_elected and (r.response.leader, r.response.isr) == (1, (1, 2))
    reg = h.part("t", 0)
    assert (reg.leader, reg.isr, reg.leader_epoch) == (1, (1, 2), 1)
    h.check_replay()
    # not when the replicas left are out of sync or fenced: a partition never loses its leader this way
    h.heartbeat(2, want_fence=True)
    assert h.part("t", 0).isr == (1,)
    r = h.ctl.alter_partition(1, h.epochs[1], tid, 0, 1, h.part("t", 0).partition_epoch, [2])
    assert r.response.error == ErrorCode.invalid_request and h.part("t", 0).leader == 1


def test_alter_partition_cannot_add_a_fenced_broker() -> None:
    h, tid = setup()
    assert h.ctl.alter_partition(0, h.epochs[0], tid, 0, 0, 0, [0]).response.error == ErrorCode.none
    h.heartbeat(2, want_fence=True)
    r = h.ctl.alter_partition(0, h.epochs[0], tid, 0, 0, 1, [0, 2])
    assert r.response.error == ErrorCode.ineligible_replica


def test_preferred_leader_election() -> None:
    h, tid = setup()
    h.heartbeat(0, want_fence=True)  # 0 loses leadership of t-0 to 1
    assert h.part("t", 0).leader == 1
    r = h.ctl.elect_leaders(ElectionType.PREFERRED, [("t", 0)])
    assert r.response[0].error == ErrorCode.preferred_leader_not_available  # 0 is fenced and out of the ISR
    reg = h.part("t", 0)
    # 0 comes back and the leader lets it into the ISR again
    h.heartbeat(0)
    assert h.ctl.alter_partition(1, h.epochs[1], tid, 0, reg.leader_epoch, reg.partition_epoch,
                                 [1, 2, 0]).response.error == ErrorCode.none
    r = h.ctl.elect_leaders(ElectionType.PREFERRED, [("t", 0), ("t", 1), ("t", 5), ("nope", 0)])
    assert [x.error for x in r.response] == [ErrorCode.none, ErrorCode.election_not_needed, ErrorCode.unknown_topic_or_partition,
                                             ErrorCode.unknown_topic_or_partition]
    after = h.part("t", 0)
    assert after.leader == 0 and after.leader_epoch == reg.leader_epoch + 1
    h.check_replay()


def test_preferred_election_for_all_partitions_reports_only_attempts() -> None:
    h, tid = setup()
    assert h.ctl.elect_leaders(ElectionType.PREFERRED, None).response == []
    h.heartbeat(1, want_fence=True)
    h.heartbeat(1)
    reg = h.part("t", 1)
    h.ctl.alter_partition(reg.leader, h.epochs[reg.leader], tid, 1, reg.leader_epoch, reg.partition_epoch,
                          list(reg.isr) + [1])
    r = h.ctl.elect_leaders(ElectionType.PREFERRED, None)
    assert [(x.topic, x.partition, x.error) for x in r.response] == [("t", 1, ErrorCode.none)]
    assert h.part("t", 1).leader == 1


def test_unclean_election_by_request() -> None:
    h = Harness(2)
    h.create("t", assignments={0: [0, 1]}, partitions=-1, rf=-1)
    tid = h.image.topic("t").topic_id  # type: ignore[union-attr]
    h.ctl.alter_partition(0, h.epochs[0], tid, 0, 0, 0, [0])
    assert h.ctl.elect_leaders(ElectionType.UNCLEAN, [("t", 0)]).response[0].error == ErrorCode.election_not_needed
    h.heartbeat(0, want_fence=True)
    assert h.part("t").leader == -1
    r = h.ctl.elect_leaders(ElectionType.UNCLEAN, [("t", 0)])
    assert r.response[0].error == ErrorCode.none
    reg = h.part("t")
    assert (reg.leader, reg.isr) == (1, (1,))
    h.heartbeat(1, want_fence=True)
    assert h.ctl.elect_leaders(ElectionType.UNCLEAN, [("t", 0)]).response[0].error == ErrorCode.eligible_leaders_not_available
    h.check_replay()
