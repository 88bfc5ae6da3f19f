"""Replica manager: the asyncio runtime that drives `suoi.replication`'s sans-IO states.

One per broker in KRaft mode. The metadata image says, per hosted partition, who leads and
which replicas are in sync; `apply` turns every image change into Kafka's `makeLeader` /
`makeFollower`:

* **Leader**: a `Partition` with a `LeaderPartitionState` (follower LEOs, ISR, high watermark)
  and the parked acks=all produce waits (`partition.py`). The new leader epoch is written into
  the log's leader-epoch cache at the log end offset (KIP-101), so followers can find where they
  diverge. Produce appends with that epoch; follower Fetches (replica id >= 0) report follower
  LEOs (`Partition.read`); the HW moves only when every ISR member has an offset. ISR changes are proposed to the
  controller with AlterPartition and only take effect once it answers (KIP-497).
* **Follower**: a `Partition` with a `FollowerPartitionState`, handed to the `ReplicaFetcher` of
  the leader's broker, which truncates (OffsetsForLeaderEpoch) and then fetches.

It is also the `PartitionDirectory` the API layer asks for a partition (`get_partition`), and
the `PartitionHost` of its partitions (clock, wake-ups, AlterPartition via `isr.py`, KIP-392).

The leader's high watermark is checkpointed (`hw_checkpoint.py`) so a restarted leader does
not expose records it never knew were committed.

Threading: everything runs on the event loop. `apply` is called from `KRaftServices._reconcile`
after the local logs match the image.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from suoi.client import NodeClient
from suoi.controller.delta import LocalChanges, LocalPartition, MetadataDelta
from suoi.controller.image import MetadataImage
from suoi.coordinator.records import OFFSETS_TOPIC
from suoi.coordinator.txn import TRANSACTION_STATE_TOPIC
from suoi.model import ErrorCode, TopicPartition
from suoi.partition.controller_channel import ControllerChannel, HostingNode, Ticker, Unpaced
from suoi.partition.corrupt_repair import CorruptionRepair
from suoi.partition.delete_records import DeleteRecordsPurgatory
from suoi.partition.directory import PartitionDirectory
from suoi.partition.fetch_session import FetchSessionCache
from suoi.partition.hw_checkpoint import HighWatermarkCheckpoints
from suoi.partition.isr import IsrChanges
from suoi.partition.partition import Partition
from suoi.partition.replica_fetcher import ReplicaFetcher
from suoi.partition.schema_validation import SchemaIds
from suoi.replication import AlterPartitionProposal, FollowerPartitionState, LeaderPartitionState
from suoi.replication.read_replica import ReplicaView, rack_aware, select_read_replica
from suoi.security.listeners import inter_broker_security
from suoi.stopping import cancel_and_wait

if TYPE_CHECKING:
    from suoi.coordinator.txn.types import WriteMarkers
    from suoi.log.partition_log import PartitionLog

log = logging.getLogger("suoi.replication")


#: Above this many leadership changes in one image change, one summary line replaces the per-partition ones.
DETAILED_CHANGES = 20


class ReplicaManager(PartitionDirectory):
    def __init__(self, broker: HostingNode, kraft: ControllerChannel) -> None:
        self.broker = broker
        self.kraft = kraft
        self.node_id = kraft.node_id
        self.logs = broker.logs
        self.notifier = broker.notifier
        self.resolutions = {}
        self.now_ms = broker.now_ms
        cfg = broker.config
        self.lag_time_max_ms = cfg.get_int("replica.lag.time.max.ms")
        self.fetch_wait_max_ms = cfg.get_int("replica.fetch.wait.max.ms")
        self.fetch_min_bytes = cfg.get_int("replica.fetch.min.bytes")
        self.fetch_max_bytes = cfg.get_int("replica.fetch.max.bytes")
        self.fetch_response_max_bytes = cfg.get_int("replica.fetch.response.max.bytes")
        self.fetch_backoff_s = cfg.get_int("replica.fetch.backoff.ms") / 1000
        self.socket_timeout_s = cfg.get_int("replica.socket.timeout.ms") / 1000
        self.checkpoint_interval_s = cfg.get_int("replica.high.watermark.checkpoint.interval.ms") / 1000
        self.listener_name = cfg.inter_broker_listener_name or "PLAINTEXT"
        selector = cfg.get("replica.selector.class")
        self.rack_aware = rack_aware(str(selector) if selector else None)
        rack = cfg.get("broker.rack")
        self.rack: str | None = str(rack) if rack else None
        self.leaders: dict[TopicPartition, Partition] = {}
        self.followers: dict[TopicPartition, Partition] = {}
        #: DeleteRecords waiting for every alive replica's log start (Kafka's DelayedDeleteRecords)
        self.delete_records = DeleteRecordsPurgatory(
            lambda: {b.broker_id for b in kraft.image.unfenced_brokers()}, broker.notifier.appended)
        self.fetchers: dict[int, ReplicaFetcher] = {}
        self.fetch_sessions = FetchSessionCache(cfg.get_int("max.incremental.fetch.session.cache.slots"))
        broker.metrics.fetch_sessions = self.fetch_sessions
        #: broker-to-broker connections, a lane per purpose: replica fetches, transaction markers
        #: (the controller pool is the quorum's)
        self.pool = NodeClient(client_id=f"suoi-replica-{self.node_id}", security=inter_broker_security(cfg))
        self._addresses: dict[int, tuple[str, int]] = {}
        self.checkpoints = HighWatermarkCheckpoints(cfg.log_dirs, self.logs.get_log)
        self.isr = IsrChanges(kraft, self.leaders, self.now_ms, self.lag_time_max_ms, broker.metrics)
        self._tasks: list[asyncio.Task[None]] = []
        #: corrupt batches found in a local replica: refetched from another one (corrupt_repair)
        self.repair = CorruptionRepair(self)
        self._detail = logging.INFO  # level of the per-partition leadership lines (see `apply`)
        self._without_log = 0  # partitions `apply` could not lead or follow: no local log
        self._marker_sender: Any = None

    def write_markers(self, m: WriteMarkers) -> Any:
        """The transaction coordinator's marker writer (`TxnMarkerSender`, made on first use)."""
        if self._marker_sender is None:
            from suoi.partition.txn_markers import TxnMarkerSender

            self._marker_sender = TxnMarkerSender(self.broker, self)
        return self._marker_sender.write(m)

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        self.checkpoints.load()
        self._tasks.append(asyncio.create_task(self.isr.expiration_loop(), name="isr-expiration"))
        self._tasks.append(asyncio.create_task(self.checkpoints.run(self.checkpoint_interval_s), name="hw-checkpoint"))

    async def stop(self) -> None:
        for fetcher in list(self.fetchers.values()):
            await fetcher.stop()
        self.fetchers.clear()
        await cancel_and_wait([*self._tasks, *self.isr.tasks()], 5.0, f"node {self.node_id} replica manager")
        for leader in self.leaders.values():
            leader.fail_waits(ErrorCode.not_leader_or_follower)
        await self.checkpoints.write_at_shutdown(5.0)
        await self.pool.close()

    # -- PartitionDirectory ------------------------------------------------------------
    def resolution_stamp(self) -> tuple[object, int]:
        return self.kraft.image, self.generation

    def get_partition(self, topic: str, partition: int, *,
                      follower_read: bool = False) -> tuple[Partition | None, ErrorCode]:
        logs = self.logs
        plog = logs.get_log(topic, partition)
        if plog is None and logs.is_offline(topic, partition):
            return None, ErrorCode.kafka_storage_error  # its log dir failed (KIP-858)
        # Every partition of every Produce and Fetch comes here: the image's lookups inline, and
        # the key a plain tuple, equal to the TopicPartition keys and hashed alike (building a
        # NamedTuple is a Python call: 0.5 µs of a 2 µs lookup).
        topic_image = self.kraft.image.topics_by_name.get(topic)
        reg = None if topic_image is None else topic_image.partitions.get(partition)
        if reg is None or topic_image is None:
            return None, ErrorCode.unknown_topic_or_partition
        tp: TopicPartition = (topic, partition)  # type: ignore[assignment]
        if reg.leader == self.node_id and plog is not None:
            found = self.leaders.get(tp)
        elif follower_read and plog is not None:
            found = self.followers.get(tp)  # KIP-392: a consumer sent here as the preferred read replica
        else:
            failed = reg.leader == self.node_id and (topic, partition) in logs.failed
            return None, ErrorCode.kafka_storage_error if failed else ErrorCode.not_leader_or_follower
        if found is None or (found.topic_id is not topic_image.topic_id  # (identical but for a re-creation)
                             and found.topic_id != topic_image.topic_id):
            # a topic deleted and created again under its name, the new one not applied here yet: the
            # old replica must not take its writes (they would be deleted with it) nor serve its reads
            return None, ErrorCode.not_leader_or_follower
        found.plog = plog
        return found, ErrorCode.none

    # -- PartitionHost ------------------------------------------------------------------
    def follower_fetched(self, partition: Partition) -> None:
        self.delete_records.check(partition)

    def propose(self, partition: Partition, proposal: AlterPartitionProposal) -> None:
        self.isr.propose(partition, proposal)

    def preferred_read_replica(self, partition: Partition, client_rack: str, fetch_offset: int) -> int:
        """KIP-392: the replica a consumer in `client_rack` should read from (this node if none)."""
        if not self.rack_aware or not client_rack:
            return self.node_id
        brokers = self.kraft.image.brokers
        state = partition.state
        views = [ReplicaView(b, brokers[b].rack if b in brokers else None, f.log_end_offset, b in state.isr,
                             b in brokers and brokers[b].eligible) for b, f in state.followers.items()]
        return select_read_replica(self.node_id, self.rack, client_rack, views, fetch_offset)

    @property
    def schema_ids(self) -> SchemaIds | None:
        """The node's schema registry (`schema.registry.listeners`), for schema id validation."""
        return self.broker.schema_registry

    # -- lookup for the other runtimes (markers, DeleteRecords) --------------------------
    def leader(self, topic: str, partition: int) -> Partition | None:
        return self.leaders.get(TopicPartition(topic, partition))

    # -- metadata ----------------------------------------------------------------------
    async def apply(self, old: MetadataImage, new: MetadataImage, pacer: Ticker | None = None,
                    changes: LocalChanges | None = None) -> None:
        """Become leader / follower / nothing for every local partition the change touches,
        yielding to the event loop between slices of work (`pacer`). ``changes``: this node's
        `local_changes` from ``old`` to ``new`` when the caller has them already."""
        pacer = pacer or Unpaced()
        self._update_addresses(new)
        if changes is None:
            changes = MetadataDelta.between(old, new).local_changes(self.node_id)
        # One line per partition for a few changes; one summary line for a topic creation's thousands.
        many = len(changes.leaders) + len(changes.followers) > DETAILED_CHANGES
        self._detail = logging.DEBUG if many else logging.INFO
        self._without_log = 0
        for lp in changes.deleted:  # (a deleted topic of thousands of partitions: paced too)
            self._drop(TopicPartition(lp.topic_name, lp.partition))
            await pacer.tick()
        for lp in changes.leaders:
            try:
                self._become_leader(lp)
            except Exception:
                log.exception("cannot become leader of %s-%d", lp.topic_name, lp.partition)
            await pacer.tick()
        for lp in changes.followers:
            try:
                self._become_follower(lp)
            except Exception:
                log.exception("cannot become follower of %s-%d", lp.topic_name, lp.partition)
            await pacer.tick()
        if many:
            log.log(logging.WARNING if self._without_log else logging.INFO,
                    "leadership changes applied: leader of %d partitions, follower of %d; %d of them without a "
                    "local log", len(changes.leaders), len(changes.followers), self._without_log)
        self._detail = logging.INFO
        for tp in [tp for tp in self.leaders if new.partition(tp.topic, tp.partition) is None]:
            self._drop(tp)
            await pacer.tick()
        for tp in [tp for tp in self.followers if new.partition(tp.topic, tp.partition) is None]:
            self._drop(tp)
            await pacer.tick()

    def _update_addresses(self, image: MetadataImage) -> None:
        for broker_id, reg in image.brokers.items():
            listener = reg.listener(self.listener_name) or next(iter(reg.listeners), None)
            if listener is None:
                continue
            address = (listener.host, listener.port)
            if self._addresses.get(broker_id) != address:
                self._addresses[broker_id] = address
                self.pool.register(broker_id, *address)

    def _log(self, tp: TopicPartition) -> PartitionLog | None:
        plog = self.logs.get_log(tp.topic, tp.partition)
        # First time this run: the HW comes from the checkpoint, not from the log end.
        if plog is not None and self.checkpoints.initialise(tp, plog):
            self.repair.watch(plog)
        return plog

    def _log_to(self, tp: TopicPartition, role: str) -> PartitionLog | None:
        """``tp``'s local log, to ``role`` ("lead"/"follow") it; None (counted, and logged at
        detail level) without one."""
        plog = self._log(tp)
        if plog is None and not self.logs.is_offline(tp.topic, tp.partition):  # offline: logged once
            self._without_log += 1
            log.log(logging.WARNING if self._detail == logging.INFO else logging.DEBUG,
                    "no local log for %s, cannot %s it", tp, role)
        return plog

    def _become_leader(self, lp: LocalPartition) -> None:
        self.generation += 1  # the partition tables change: fetch resolutions made before are stale
        tp = TopicPartition(lp.topic_name, lp.partition)
        reg = lp.registration
        plog = self._log_to(tp, "lead")
        if plog is None:
            return
        self._stop_following(tp)
        now = self.now_ms()
        leader = self.leaders.get(tp)
        new_epoch = leader is None or reg.leader_epoch > leader.state.leader_epoch
        if new_epoch:
            # Kafka's makeLeader: the new epoch starts at the log end offset.
            plog.leader_epoch_cache.assign(reg.leader_epoch, plog.log_end_offset, durable=False)
        if leader is None:
            state = LeaderPartitionState(
                tp.topic, tp.partition, self.node_id, reg.leader_epoch, reg.partition_epoch, reg.replicas, reg.isr,
                plog.config.min_insync_replicas, self.lag_time_max_ms, leader_leo=plog.log_end_offset,
                high_watermark=plog.high_watermark, now_ms=now)
            leader = self.leaders[tp] = Partition(tp, lp.topic_id, plog, self, leader_state=state)
            log.log(self._detail, "leader of %s in epoch %d (ISR %s, HW %d, LEO %d)", tp, reg.leader_epoch, list(reg.isr),
                     state.high_watermark, plog.log_end_offset)
        else:
            isr_before = leader.state.isr
            applied = leader.state.update_registration(reg.leader_epoch, reg.partition_epoch, reg.replicas, reg.isr,
                                                       now, leader_leo=plog.log_end_offset)
            self.broker.metrics.isr_changed(isr_before, leader.state.isr)  # e.g. the controller fenced a follower
            if not applied:
                return
        leader.plog = plog
        leader.leader_changed(leader.state.on_leader_append(plog.log_end_offset, now))
        if new_epoch:
            self._coordinators_elected(tp, reg.leader_epoch)

    def _become_follower(self, lp: LocalPartition) -> None:
        self.generation += 1  # the partition tables change: fetch resolutions made before are stale
        tp = TopicPartition(lp.topic_name, lp.partition)
        reg = lp.registration
        plog = self._log_to(tp, "follow")
        if plog is None:
            return
        self._resign(tp, reg.leader_epoch)
        self.repair.before_following(tp, plog)
        follower = self.followers.get(tp)
        if follower is not None and follower.follower.update_registration(reg.leader, reg.leader_epoch,
                                                                       reg.partition_epoch):
            follower.plog = plog
            if follower.fetcher_id != reg.leader:
                self._stop_following(tp, keep_state=True)
        elif follower is None:
            state = FollowerPartitionState(tp.topic, tp.partition, reg.leader, reg.leader_epoch, reg.partition_epoch,
                                           plog.log_end_offset, plog.high_watermark)
            follower = self.followers[tp] = Partition(tp, lp.topic_id, plog, self, follower_state=state)
            log.log(self._detail, "follower of %s (leader %d, epoch %d, LEO %d)", tp, reg.leader, reg.leader_epoch,
                     plog.log_end_offset)
        else:
            return  # stale registration
        follower.blocked_epoch = None
        if reg.leader >= 0 and reg.leader != self.node_id:
            fetcher = self.fetchers.get(reg.leader)
            if fetcher is None:
                fetcher = self.fetchers[reg.leader] = ReplicaFetcher(self, reg.leader)
                fetcher.start()
            fetcher.add(follower)
        else:
            self._stop_following(tp, keep_state=True)

    def _stop_following(self, tp: TopicPartition, keep_state: bool = False) -> None:
        self.generation += 1  # the partition tables change: fetch resolutions made before are stale
        follower = self.followers.get(tp) if keep_state else self.followers.pop(tp, None)
        if follower is None or follower.fetcher_id is None:
            return
        fetcher = self.fetchers.get(follower.fetcher_id)
        if fetcher is not None:
            fetcher.remove(tp)
            if fetcher.empty:
                del self.fetchers[fetcher.leader_id]
                asyncio.get_running_loop().create_task(fetcher.stop())
        follower.fetcher_id = None

    def drop_offline(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Replicas whose log dir failed (KIP-858): stop following or leading them here."""
        for topic, partition in partitions:
            self._drop(TopicPartition(topic, partition))

    def _drop(self, tp: TopicPartition) -> None:
        self._stop_following(tp)
        self._resign(tp, None)
        self.checkpoints.forget(tp)

    def _resign(self, tp: TopicPartition, leader_epoch: int | None) -> None:
        """Stop leading `tp` (if this node did): parked acks=all waits answer
        NOT_LEADER_OR_FOLLOWER, a pending AlterPartition is dropped, coordinators unload."""
        self.generation += 1  # the partition tables change: fetch resolutions made before are stale
        leader = self.leaders.pop(tp, None)
        if leader is not None:
            leader.fail_waits(ErrorCode.not_leader_or_follower)
            self.delete_records.fail(tp)
            self.isr.cancel(tp)
            self._coordinators_resigned(tp, leader_epoch)

    # -- coordinators follow the leadership of their internal partitions ---------------
    def _coordinators_elected(self, tp: TopicPartition, leader_epoch: int) -> None:
        runtime = self._coordinator_of(tp.topic)
        hook = getattr(runtime, "on_become_leader", None)
        if hook is not None:
            hook(tp.partition, leader_epoch)

    def _coordinators_resigned(self, tp: TopicPartition, leader_epoch: int | None) -> None:
        runtime = self._coordinator_of(tp.topic)
        hook = getattr(runtime, "on_resign", None)
        if hook is not None:
            hook(tp.partition, leader_epoch)

    def _coordinator_of(self, topic: str) -> Any:
        if topic == OFFSETS_TOPIC:
            return self.broker.groups
        if topic == TRANSACTION_STATE_TOPIC:
            return self.broker.transactions
        return None

