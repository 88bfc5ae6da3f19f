"""Broker registration, heartbeats, fencing on session timeout, controlled shutdown, producer ids."""

from __future__ import annotations

import contextlib

from suoi.controller import ControllerConfig, Listener, MetadataImage, QuorumController
from suoi.controller.records import FenceBroker, PartitionChange, RegisterBroker, UnfenceBroker
from suoi.model import ErrorCode

from .helpers import Harness, incarnation


def test_registration_creates_a_fenced_broker_with_a_new_epoch() -> None:
    h = Harness()
    r = h.register(1, rack="r1")
    assert r.response.error == ErrorCode.none
    assert isinstance(r.records[0], RegisterBroker) and r.records[0].fenced
    assert r.offset == 0 and r.response.broker_epoch >= 0
    b = h.image.brokers[1]
    assert b.fenced and b.rack == "r1" and b.listeners == (Listener("PLAINTEXT", "localhost", 9093),)
    r2 = h.register(2)
    assert r2.response.broker_epoch > r.response.broker_epoch
    h.check_replay()


def test_heartbeat_unfences_once_caught_up_with_the_registration() -> None:
    h = Harness()
    reg = h.register(1)
    behind = h.heartbeat(1, offset=reg.offset - 1)
    assert behind.response.is_fenced and behind.records == ()
    asked = h.heartbeat(1, want_fence=True)
    assert asked.response.is_fenced and asked.records == ()
    ok = h.heartbeat(1, offset=reg.offset)
    assert not ok.response.is_fenced and ok.records == (UnfenceBroker(broker_id=1, broker_epoch=h.epochs[1]),)
    again = h.heartbeat(1)
    assert not again.response.is_fenced and again.records == ()  # steady state writes nothing
    h.check_replay()


def test_is_caught_up_follows_the_committed_offset() -> None:
    h = Harness(1)
    h.ctl.on_commit(5)
    assert not h.heartbeat(0, offset=4).response.is_caught_up
    assert h.heartbeat(0, offset=5).response.is_caught_up


def test_stale_or_unknown_epoch_is_refused() -> None:
    h = Harness(1)
    r = h.heartbeat(0, epoch=h.epochs[0] - 1)
    assert r.response.error == ErrorCode.stale_broker_epoch and r.records == ()
    assert "Expected broker epoch" in (r.response.message or "")
    r = h.ctl.heartbeat(7, 1, want_fence=False, want_shutdown=False, current_metadata_offset=0, now=0)
    assert r.response.error == ErrorCode.stale_broker_epoch


def test_duplicate_registration_while_live_is_refused() -> None:
    h = Harness(2)
    h.create("t", 2, 2)
    r = h.ctl.register_broker(1, incarnation(1, 99), [], None, h.now)
    assert r.response.error == ErrorCode.duplicate_broker_registration and r.records == ()
    assert r.response.message == "Another broker is registered with that broker id."
    assert h.image.brokers[1].incarnation_id == incarnation(1)


def test_a_single_nodes_own_earlier_incarnation_does_not_block_its_restart() -> None:
    """A node without process.roles restarted after SIGKILL: its new controller starts every
    registered broker's session afresh, but its own old registration is of the process that is
    gone (`expire_session`), so the new incarnation registers at once, not after a session."""
    h = Harness(1)
    h.create("t", 1, 1)
    h.restart_controller()
    refused = h.ctl.register_broker(0, incarnation(0, 1), [], None, h.now)
    assert refused.response.error == ErrorCode.duplicate_broker_registration
    h.ctl.expire_session(0)
    r = h.register(0, n=1)
    assert r.response.error == ErrorCode.none and h.image.brokers[0].incarnation_id == incarnation(0, 1)
    assert h.image.brokers[0].fenced  # until its first heartbeat, as any registration
    h.check_replay()


def test_a_crashed_brokers_successor_naming_its_epoch_replaces_it_at_once() -> None:
    """A broker restarted after SIGKILL names the epoch its predecessor registered with
    (previous_broker_epoch, recorded in its data dir): the live-looking old session is of a
    process that is gone, so the new incarnation registers at once (it waited out the session
    before, 9 s). A different broker with that id, which cannot know the epoch (-1, or another
    registration's), is still refused while the session lives."""
    h = Harness(2)
    h.create("t", 2, 2)
    h.restart_controller()  # a new active controller: every registration gets a whole session
    old_epoch = h.epochs[1]
    for guess in (-1, old_epoch - 1, old_epoch + 1):
        refused = h.ctl.register_broker(1, incarnation(1, 7), [], None, h.now, previous_broker_epoch=guess)
        assert refused.response.error == ErrorCode.duplicate_broker_registration and refused.records == ()
    assert h.image.brokers[1].incarnation_id == incarnation(1)
    r = h.ctl.register_broker(1, incarnation(1, 7), [], None, h.now, previous_broker_epoch=old_epoch)
    assert r.response.error == ErrorCode.none and r.response.broker_epoch > old_epoch
    assert h.image.brokers[1].incarnation_id == incarnation(1, 7) and h.image.brokers[1].fenced
    assert all(1 not in reg.isr for _, _, reg in h.ctl.state.iter_partitions())  # out of the ISRs until it is back
    h.check_replay()


def test_same_incarnation_retry_gets_a_new_epoch() -> None:
    h = Harness(1)
    old = h.epochs[0]
    r = h.register(0)
    assert r.response.error == ErrorCode.none and r.response.broker_epoch > old and h.image.brokers[0].fenced


def test_reregistration_after_session_expiry_moves_leadership() -> None:
    h = Harness(2)
    h.create("t", 2, 2)
    led_by_1 = [p for _, p, reg in h.image.iter_partitions() if reg.leader == 1]
    h.now = 9_500  # broker 1 crashed and restarted; its old session expired but no tick yet
    h.heartbeat(0)
    r = h.register(1, n=1)
    assert r.response.error == ErrorCode.none
    b1 = h.image.brokers[1]
    assert b1.fenced and b1.incarnation_id == incarnation(1, 1)
    for p in led_by_1:
        reg = h.part("t", p)
        assert reg.leader == 0 and reg.isr == (0,) and reg.leader_epoch == 1
    h.check_replay()


def test_reregistration_of_a_fenced_broker_is_allowed_at_once() -> None:
    h = Harness(2)
    h.heartbeat(1, want_fence=True)
    assert h.image.brokers[1].fenced
    assert h.register(1, n=1).response.error == ErrorCode.none


def test_session_timeout_fences_and_elects_from_the_isr() -> None:
    h = Harness(3)
    h.create("t", 6, 3)
    before = {p: h.part("t", p) for p in range(6)}
    h.now = 9_000
    h.heartbeat_all(except_=[2])
    assert h.ctl.tick(h.now).records == ()  # exactly the timeout is not yet expired
    assert h.ctl.next_deadline() == 9_001  # broker 2's last heartbeat was at 0
    r = h.ctl.tick(9_001)
    assert r.response == [2] and h.image.brokers[2].fenced
    assert r.records[0] == FenceBroker(broker_id=2, broker_epoch=h.epochs[2])
    assert all(isinstance(x, PartitionChange) for x in r.records[1:]) and len(r.records) == 7
    for p in range(6):
        old, new = before[p], h.part("t", p)
        assert 2 not in new.isr and new.leader in new.isr and new.leader != 2
        assert new.partition_epoch == old.partition_epoch + 1
        if old.leader == 2:
            assert new.leader_epoch == old.leader_epoch + 1 and new.leader == [b for b in old.replicas if b != 2][0]
        else:
            assert new.leader_epoch == old.leader_epoch and new.leader == old.leader
    h.check_replay()


def test_tick_fences_exactly_after_the_session_timeout() -> None:
    h = Harness(2, session_timeout_ms=1000)
    h.now = 1000
    h.heartbeat(0)
    assert h.ctl.tick(1000).response == []
    assert h.ctl.next_deadline() == 1001
    r = h.ctl.tick(1001)
    assert r.response == [1] and h.image.brokers[1].fenced and not h.image.brokers[0].fenced
    assert h.ctl.next_deadline() == 2001


def test_last_isr_member_stays_and_is_reelected_when_it_returns() -> None:
    h = Harness(2)
    h.ctl.create_topics([])
    h.create("solo", 1, 1, assignments=None)
    b = h.part("solo").leader
    other = 1 - b
    h.now = 10_000
    h.heartbeat(other)
    h.ctl.tick(h.now)
    reg = h.part("solo")
    assert reg.leader == -1 and reg.isr == (b,) and reg.leader_epoch == 1 and reg.partition_epoch == 1
    # it comes back: new incarnation, catches up, gets unfenced and leads again
    r = h.register(b, n=1)
    assert r.response.error == ErrorCode.none
    hb = h.heartbeat(b)
    assert not hb.response.is_fenced
    assert any(isinstance(x, PartitionChange) for x in hb.records)
    reg = h.part("solo")
    assert reg.leader == b and reg.isr == (b,) and reg.leader_epoch == 2
    h.check_replay()


def test_a_single_node_restart_writes_one_leader_change_per_partition_each_way() -> None:
    """Kafka's records for a lone broker's controlled shutdown and return: each partition once
    to no leader (the ISR keeps its last member), once back to it with a new leader epoch."""
    h = Harness(1)
    h.create("many", 50, 1)
    shutdown = h.heartbeat(0, want_shutdown=True)
    changes = [r for r in shutdown.records if isinstance(r, PartitionChange)]
    assert len(changes) == 50 and all((c.leader, c.isr, c.replicas) == (-1, None, None) for c in changes)
    assert h.heartbeat(0, want_shutdown=True).response.should_shutdown
    assert h.register(0, n=1).response.error == ErrorCode.none
    back = h.heartbeat(0)
    assert not back.response.is_fenced
    changes = [r for r in back.records if isinstance(r, PartitionChange)]
    assert sorted(c.partition for c in changes) == list(range(50))
    assert all((c.leader, c.isr, c.replicas, c.adding_replicas) == (0, None, None, None) for c in changes)
    assert {(r.leader, r.isr, r.leader_epoch, r.partition_epoch) for r in h.image.topic("many").partitions.values()
            } == {(0, (0,), 2, 2)}  # type: ignore[union-attr]
    h.check_replay()


def test_unclean_election_when_enabled_for_the_topic() -> None:
    h = Harness(2)
    h.create("u", assignments={0: [0, 1]}, partitions=-1, rf=-1, configs={"unclean.leader.election.enable": "true"})
    h.create("c", assignments={0: [0, 1]}, partitions=-1, rf=-1)
    for t in ("u", "c"):  # the leader shrinks the ISR to itself
        reg = h.part(t)
        tid = h.image.topic(t).topic_id  # type: ignore[union-attr]
        assert h.ctl.alter_partition(0, h.epochs[0], tid, 0, reg.leader_epoch, reg.partition_epoch,
                                     [0]).response.error == ErrorCode.none
    h.now = 10_000
    h.heartbeat(1)
    assert h.ctl.tick(h.now).response == [0]
    u, c = h.part("u"), h.part("c")
    assert (u.leader, u.isr, u.leader_epoch) == (1, (1,), 1)  # unclean: out-of-sync replica leads alone
    assert (c.leader, c.isr, c.leader_epoch) == (-1, (0,), 1)  # clean: offline until 0 returns
    h.check_replay()


def test_controlled_shutdown_moves_leadership_first() -> None:
    h = Harness(3)
    h.create("t", 6, 3)
    h.create("single", 3, 1)
    led = h.image.partitions_led_by(1)
    assert led
    first = h.heartbeat(1, want_shutdown=True)
    assert not first.response.should_shutdown and not first.response.is_fenced
    assert h.image.brokers[1].in_controlled_shutdown
    assert h.image.partitions_led_by(1) == []
    for t, p in led:
        reg = h.part(t, p)
        if t == "t":
            assert reg.leader in (0, 2) and 1 not in reg.isr
        else:
            assert reg.leader == -1 and reg.isr == (1,)
    # no new leaderships for a broker in controlled shutdown
    assert all(1 not in reg.isr or reg.leader == -1 for _, _, reg in h.image.iter_partitions())
    second = h.heartbeat(1, want_shutdown=True)
    assert second.response.should_shutdown and second.response.is_fenced
    assert h.image.brokers[1].fenced
    h.check_replay()


def test_shutdown_of_a_broker_leading_nothing_is_immediate() -> None:
    h = Harness(2)
    r = h.heartbeat(1, want_shutdown=True)
    assert r.response.should_shutdown and r.response.is_fenced
    fenced_already = h.heartbeat(1, want_shutdown=True)
    assert fenced_already.response.should_shutdown and fenced_already.records == ()


def test_unregister_broker() -> None:
    h = Harness(2)
    h.create("t", 2, 2)
    r = h.ctl.unregister_broker(1)
    assert r.response.error == ErrorCode.none and 1 not in h.image.brokers
    assert all(reg.leader == 0 for _, _, reg in h.image.iter_partitions())
    assert h.ctl.unregister_broker(1).response.error == ErrorCode.broker_id_not_registered
    h.check_replay()


def test_producer_id_blocks_never_overlap_even_across_failover() -> None:
    h = Harness(2)
    blocks = []
    for i in range(5):
        b = i % 2
        r = h.ctl.allocate_producer_ids(b, h.epochs[b]).response
        assert r.error == ErrorCode.none and r.producer_id_len == 1000
        blocks.append(range(r.producer_id_start, r.producer_id_start + r.producer_id_len))
        if i == 2:
            h.restart_controller()
    ids = [x for blk in blocks for x in blk]
    assert len(ids) == len(set(ids)) and blocks[0].start == 0
    assert h.ctl.allocate_producer_ids(0, 12345).response.error == ErrorCode.stale_broker_epoch
    h.check_replay()


def test_new_controller_gives_every_broker_a_full_session() -> None:
    h = Harness(2, session_timeout_ms=1000)
    h.now = 5000
    h.restart_controller(now=5000)
    assert h.ctl.tick(5500).response == []
    assert sorted(h.ctl.tick(6001).response) == [0, 1]


def test_broker_epochs_keep_growing_across_failover() -> None:
    h = Harness(1)
    first = h.epochs[0]
    h.ctl.unregister_broker(0)
    h.restart_controller()
    assert h.register(0, n=2).response.broker_epoch > first


def test_failed_append_makes_the_controller_unusable() -> None:
    def boom(records):  # type: ignore[no-untyped-def]
        raise RuntimeError("not leader")

    ctl = QuorumController(MetadataImage.EMPTY, append=boom, now=0, config=ControllerConfig())
    with contextlib.suppress(RuntimeError):
        ctl.register_broker(1, incarnation(1), [], None, 0)
    try:
        ctl.register_broker(2, incarnation(2), [], None, 0)
        raise AssertionError("should refuse")
    except RuntimeError as e:
        assert "committed image" in str(e)


def test_a_lost_heartbeat_connection_fences_unless_the_broker_heartbeats_again() -> None:
    h = Harness(3, session_timeout_ms=9000, connection_loss_fence_ms=3000)
    h.create("t", 3, 3)
    h.now = 1000
    h.heartbeat_all()
    h.ctl.connection_lost(1, h.epochs[1], 1000)  # broker 1 died: its sockets closed
    h.ctl.connection_lost(2, h.epochs[2], 1000)  # broker 2 only reconnects
    h.ctl.connection_lost(0, h.epochs[0] + 1, 1000)  # another incarnation's connection: ignored
    assert h.ctl.next_deadline() == 4000
    h.now = 2500
    h.heartbeat(2)
    assert h.ctl.tick(3999).response == []
    r = h.ctl.tick(4000)
    assert r.response == [1] and h.image.brokers[1].fenced
    assert not h.image.brokers[0].fenced and not h.image.brokers[2].fenced
    assert all(h.part("t", p).leader != 1 for p in range(3))
    h.check_replay()


def test_connection_loss_fencing_can_be_turned_off() -> None:
    h = Harness(2, session_timeout_ms=9000, connection_loss_fence_ms=0)
    h.ctl.connection_lost(1, h.epochs[1], 0)
    assert h.ctl.tick(8000).response == []
    assert h.ctl.tick(9001).response == [0, 1]


def test_a_new_controller_fences_brokers_that_never_find_it_after_half_a_session() -> None:
    h = Harness(3, session_timeout_ms=9000, connection_loss_fence_ms=3000)
    h.now = 10_000
    h.heartbeat_all()
    h.restart_controller(10_000)  # the old controller (maybe on broker 1's node) is gone
    h.now = 12_000
    h.heartbeat(0)
    h.heartbeat(2)
    assert h.ctl.tick(14_499).response == []
    assert h.ctl.tick(14_500).response == [1]


def test_a_broker_refusing_connections_is_fenced_at_the_next_tick() -> None:
    h = Harness(2, session_timeout_ms=9000, connection_loss_fence_ms=3000)
    h.now = 500
    h.heartbeat_all()
    h.ctl.connection_lost(1, h.epochs[1], 500)
    h.ctl.connection_lost(1, h.epochs[1], 520, refused=True)  # the runtime's probe: nothing listens
    assert h.ctl.next_deadline() == 520
    assert h.ctl.tick(520).response == [1]
