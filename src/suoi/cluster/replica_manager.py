"""Replica manager: the asyncio runtime that drives `suoi.replication`'s sans-IO states.

One per broker in KRaft mode. The metadata image says, per hosted partition, who leads and
which replicas are in sync; `apply` turns every image change into Kafka's `makeLeader` /
`makeFollower`:

* **Leader**: a `LeaderPartitionState` (follower LEOs, ISR, high watermark) plus the parked
  acks=all produce waits. The new leader epoch is written into the log's leader-epoch cache at
  the log end offset (KIP-101), so followers can find where they diverge. Produce appends with
  that epoch; follower Fetches (replica id >= 0) report follower LEOs via `on_follower_fetch`;
  the HW moves only when every ISR member has an offset. ISR changes are proposed to the
  controller with AlterPartition and only take effect once it answers (KIP-497).
* **Follower**: a `FollowerPartitionState` handed to the `ReplicaFetcher` of the leader's
  broker, which truncates (OffsetsForLeaderEpoch) and then fetches.

The leader's high watermark is checkpointed (`replication-offset-checkpoint` in each log dir,
Kafka's format) so a restarted leader does not expose records it never knew were committed.

Threading: everything runs on the event loop. `apply` is called from `KRaftServices._reconcile`
after the local logs match the image.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from suoi.client import Lane, NodeClient
from suoi.cluster.corrupt_repair import CorruptionRepair
from suoi.cluster.delete_records import DeleteRecordsPurgatory
from suoi.cluster.hw_checkpoint import CHECKPOINT_FILE, read_checkpoint, write_checkpoint
from suoi.cluster.pacing import Pacer
from suoi.cluster.replica_fetcher import FollowerReplica, ReplicaFetcher
from suoi.controller.delta import LocalPartition, MetadataDelta
from suoi.controller.image import MetadataImage
from suoi.coordinator.records import OFFSETS_TOPIC
from suoi.coordinator.txn import TRANSACTION_STATE_TOPIC
from suoi.model import ErrorCode, TopicPartition
from suoi.replication import AcksAllWaiters, AlterPartitionProposal, FollowerPartitionState, LeaderPartitionState
from suoi.replication.read_replica import ReplicaView, rack_aware, select_read_replica
from suoi.security.listeners import inter_broker_security

if TYPE_CHECKING:
    from suoi.cluster.kraft import KRaftServices
    from suoi.log.partition_log import PartitionLog
    from suoi.node import Node

log = logging.getLogger("suoi.replication")

ALTER_PARTITION_RETRY_S = 0.5
#: Above this many leadership changes in one image change, one summary line replaces the per-partition ones.
DETAILED_CHANGES = 20
#: Kafka's offsets.commit.timeout.ms: how long a coordinator write waits for the ISR.
COORDINATOR_WRITE_TIMEOUT_S = 5.0


@dataclass(eq=False)
class LeaderReplica:
    """A partition this broker leads: replication state, parked acks=all waits, its log."""

    tp: TopicPartition
    topic_id: uuid.UUID
    plog: PartitionLog
    state: LeaderPartitionState
    waiters: AcksAllWaiters = field(default_factory=AcksAllWaiters)
    futures: dict[int, asyncio.Future[int]] = field(default_factory=dict)


class ReplicaManager:
    def __init__(self, broker: Node, kraft: KRaftServices) -> None:
        self.broker = broker
        self.kraft = kraft
        self.node_id = kraft.node_id
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
        self.leaders: dict[TopicPartition, LeaderReplica] = {}
        #: DeleteRecords waiting for every alive replica's log start (Kafka's DelayedDeleteRecords)
        self.delete_records = DeleteRecordsPurgatory(
            lambda: {b.broker_id for b in kraft.image.unfenced_brokers()}, broker.notifier.appended)
        self.followers: dict[TopicPartition, FollowerReplica] = {}
        self.fetchers: dict[int, ReplicaFetcher] = {}
        #: broker-to-broker connections, a lane per purpose: replica fetches, transaction markers
        #: (the controller pool is the quorum's)
        self.pool = NodeClient(client_id=f"suoi-replica-{self.node_id}", security=inter_broker_security(cfg))
        self._addresses: dict[int, tuple[str, int]] = {}
        self._checkpointed: dict[tuple[str, int], int] = {}
        self._hw_initialised: set[TopicPartition] = set()
        self._tokens = 0
        self._alter_tasks: dict[TopicPartition, asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        #: corrupt batches found in a local replica: refetched from another one (corrupt_repair)
        self.repair = CorruptionRepair(self)
        self._detail = logging.INFO  # level of the per-partition leadership lines (see `apply`)
        self._without_log = 0  # partitions `apply` could not lead or follow: no local log

    def attach_coordinators(self) -> None:
        """The group and transaction coordinators write to partitions this node leads: their
        replies wait for the ISR (`wait_replicated`), their appends move the HW, and markers go
        to each partition's leader (`TxnMarkerSender`)."""
        from suoi.cluster.txn_markers import TxnMarkerSender

        for runtime, topic in ((self.broker.groups, OFFSETS_TOPIC), (self.broker.transactions,
                                                                      TRANSACTION_STATE_TOPIC)):
            runtime.wait_replicated = self._coordinator_waiter(topic)
            runtime._appended = self._coordinator_appended
        self.broker.transactions.write_markers = TxnMarkerSender(self.broker, self).write

    def _coordinator_waiter(self, topic: str) -> Callable[[int, int], Awaitable[int]]:
        async def wait(partition: int, end_offset: int) -> int:
            return await self.wait_replicated(topic, partition, end_offset, COORDINATOR_WRITE_TIMEOUT_S)
        return wait

    def _coordinator_appended(self, tp: TopicPartition) -> None:
        self.broker.notifier.appended(tp)
        leader = self.leaders.get(tp)
        if leader is not None:
            self.on_leader_append(leader)

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        for directory in self.broker.config.log_dirs:
            self._checkpointed.update(read_checkpoint(Path(directory) / CHECKPOINT_FILE))
        self._tasks.append(asyncio.create_task(self._isr_expiration_loop(), name="isr-expiration"))
        self._tasks.append(asyncio.create_task(self._checkpoint_loop(), name="hw-checkpoint"))

    async def stop(self) -> None:
        for fetcher in list(self.fetchers.values()):
            await fetcher.stop()
        self.fetchers.clear()
        for task in [*self._tasks, *self._alter_tasks.values()]:
            task.cancel()
        for task in [*self._tasks, *self._alter_tasks.values()]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for leader in self.leaders.values():
            self._complete(leader, leader.waiters.fail_all(ErrorCode.not_leader_or_follower))
        with contextlib.suppress(OSError):
            self.write_checkpoints()
        await self.pool.close()

    # -- metadata ----------------------------------------------------------------------
    async def apply(self, old: MetadataImage, new: MetadataImage, pacer: Pacer | None = None) -> None:
        """Become leader / follower / nothing for every local partition the change touches,
        yielding to the event loop between slices of work (`pacer`)."""
        pacer = pacer or Pacer()
        self._update_addresses(new)
        changes = MetadataDelta.between(old, new).local_changes(self.node_id)
        # One line per partition for a few changes; one summary line for a topic creation's thousands.
        many = len(changes.leaders) + len(changes.followers) > DETAILED_CHANGES
        self._detail = logging.DEBUG if many else logging.INFO
        self._without_log = 0
        for lp in changes.deleted:
            self._drop(TopicPartition(lp.topic_name, lp.partition))
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
        for tp in [tp for tp in self.followers if new.partition(tp.topic, tp.partition) is None]:
            self._drop(tp)

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
        plog = self.broker.logs.get_log(tp.topic, tp.partition)
        if plog is not None and tp not in self._hw_initialised:
            # First time this run: the HW comes from the checkpoint, not from the log end.
            self._hw_initialised.add(tp)
            plog.hw_follows_leo = False
            plog.set_high_watermark(self._checkpointed.get((tp.topic, tp.partition), 0))
            self.repair.watch(plog)
        return plog

    def _log_to(self, tp: TopicPartition, role: str) -> PartitionLog | None:
        """``tp``'s local log, to ``role`` ("lead"/"follow") it; None (counted, and logged at
        detail level) without one."""
        plog = self._log(tp)
        if plog is None and not self.broker.logs.is_offline(tp.topic, tp.partition):  # offline: logged once
            self._without_log += 1
            log.log(logging.WARNING if self._detail == logging.INFO else logging.DEBUG,
                    "no local log for %s, cannot %s it", tp, role)
        return plog

    def _become_leader(self, lp: LocalPartition) -> None:
        tp = TopicPartition(lp.topic_name, lp.partition)
        reg = lp.registration
        plog = self._log_to(tp, "lead")
        if plog is None:
            return
        self._stop_following(tp)
        now = self.broker.now_ms()
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
            leader = self.leaders[tp] = LeaderReplica(tp, lp.topic_id, plog, state)
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
        self._after_leader_change(leader, leader.state.on_leader_append(plog.log_end_offset, now))
        if new_epoch:
            self._coordinators_elected(tp, reg.leader_epoch)

    def _become_follower(self, lp: LocalPartition) -> None:
        tp = TopicPartition(lp.topic_name, lp.partition)
        reg = lp.registration
        plog = self._log_to(tp, "follow")
        if plog is None:
            return
        self._resign(tp, reg.leader_epoch)
        self.repair.before_following(tp, plog)
        follower = self.followers.get(tp)
        if follower is not None and follower.state.update_registration(reg.leader, reg.leader_epoch,
                                                                       reg.partition_epoch):
            follower.plog = plog
            if follower.fetcher_id != reg.leader:
                self._stop_following(tp, keep_state=True)
        elif follower is None:
            state = FollowerPartitionState(tp.topic, tp.partition, reg.leader, reg.leader_epoch, reg.partition_epoch,
                                           plog.log_end_offset, plog.high_watermark)
            follower = self.followers[tp] = FollowerReplica(tp, lp.topic_id, plog, state)
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
        self._hw_initialised.discard(tp)

    def _resign(self, tp: TopicPartition, leader_epoch: int | None) -> None:
        """Stop leading `tp` (if this node did): parked acks=all waits answer
        NOT_LEADER_OR_FOLLOWER, a pending AlterPartition is dropped, coordinators unload."""
        leader = self.leaders.pop(tp, None)
        if leader is not None:
            self._complete(leader, leader.waiters.fail_all(ErrorCode.not_leader_or_follower))
            self.delete_records.fail(tp)
            self._cancel_alter(tp)
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

    # -- the leader's side ---------------------------------------------------------------
    def leader(self, topic: str, partition: int) -> LeaderReplica | None:
        return self.leaders.get(TopicPartition(topic, partition))

    def leader_epoch(self, topic: str, partition: int) -> int | None:
        leader = self.leaders.get(TopicPartition(topic, partition))
        return None if leader is None else leader.state.leader_epoch

    def check_acks_all(self, leader: LeaderReplica) -> ErrorCode:
        """NOT_ENOUGH_REPLICAS when the ISR is below min.insync.replicas (before appending)."""
        leader.state.min_insync_replicas = leader.plog.config.min_insync_replicas
        return ErrorCode(int(leader.state.can_accept_acks_all()))

    def on_leader_append(self, leader: LeaderReplica) -> None:
        """After any append to a led partition (produce, markers, coordinator records)."""
        self._after_leader_change(leader, leader.state.on_leader_append(leader.plog.log_end_offset,
                                                                          self.broker.now_ms()))

    def wait_for_replication(self, leader: LeaderReplica, required_offset: int) -> asyncio.Future[int]:
        """A future for the error code once every ISR member has every offset below
        `required_offset` (NONE or NOT_ENOUGH_REPLICAS_AFTER_APPEND), or NOT_LEADER_OR_FOLLOWER
        if leadership moves first. The caller applies its own timeout (`cancel_wait`)."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._tokens += 1
        token = self._tokens
        leader.futures[token] = future
        leader.waiters.register(token, required_offset, 2**62)
        self._complete(leader, leader.waiters.check_state(leader.state))
        return future

    def cancel_wait(self, leader: LeaderReplica, future: asyncio.Future[int]) -> None:
        for token, f in list(leader.futures.items()):
            if f is future:
                leader.waiters.cancel(token)
                del leader.futures[token]

    async def wait_replicated(self, topic: str, partition: int, end_offset: int, timeout_s: float) -> int:
        """For coordinators: error code once the partition's HW reaches `end_offset`."""
        leader = self.leader(topic, partition)
        if leader is None:
            return int(ErrorCode.not_leader_or_follower)
        future = self.wait_for_replication(leader, end_offset)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout_s)
        except TimeoutError:
            self.cancel_wait(leader, future)
            return int(ErrorCode.request_timed_out)

    def preferred_read_replica(self, leader: LeaderReplica, client_rack: str, fetch_offset: int) -> int:
        """KIP-392: the replica a consumer in `client_rack` should read from (this node if none)."""
        if not self.rack_aware or not client_rack:
            return self.node_id
        brokers = self.kraft.image.brokers
        state = leader.state
        views = [ReplicaView(b, brokers[b].rack if b in brokers else None, f.log_end_offset, b in state.isr,
                             b in brokers and brokers[b].eligible) for b, f in state.followers.items()]
        return select_read_replica(self.node_id, self.rack, client_rack, views, fetch_offset)

    def follower(self, topic: str, partition: int) -> FollowerReplica | None:
        return self.followers.get(TopicPartition(topic, partition))

    def on_follower_fetch(self, leader: LeaderReplica, replica_id: int, fetch_offset: int,
                          leader_leo: int, log_start_offset: int = -1) -> ErrorCode:
        """A follower's Fetch read the log (Kafka's updateFollowerFetchState)."""
        result = leader.state.on_follower_fetch(replica_id, fetch_offset, leader_leo, self.broker.now_ms(),
                                                log_start_offset)
        if result.error:
            return ErrorCode(int(result.error))
        self.delete_records.check(leader)
        if result.proposal is not None:
            self._propose(leader, result.proposal)
        self._after_leader_change(leader, result.high_watermark)
        return ErrorCode.none

    def _after_leader_change(self, leader: LeaderReplica, new_hw: int | None) -> None:
        if new_hw is not None:
            leader.plog.set_high_watermark(new_hw)
            self.broker.notifier.high_watermark_moved(leader.tp)  # consumers parked below the HW may read now
        self._complete(leader, leader.waiters.check_state(leader.state))

    def _complete(self, leader: LeaderReplica, done: Iterable[tuple[Any, int]]) -> None:
        for token, error in done:
            future = leader.futures.pop(token, None)
            if future is not None and not future.done():
                future.set_result(int(error))

    # -- ISR changes through the controller (AlterPartition) ---------------------------
    async def _isr_expiration_loop(self) -> None:
        interval = max(self.lag_time_max_ms / 2000, 0.05)
        while True:
            await asyncio.sleep(interval)
            now = self.broker.now_ms()
            for leader in list(self.leaders.values()):
                try:
                    proposal = leader.state.maybe_shrink_isr(now)
                except Exception:
                    log.exception("ISR check of %s failed", leader.tp)
                    continue
                if proposal is not None:
                    log.info("shrinking ISR of %s from %s to %s", leader.tp, sorted(leader.state.isr),
                             list(proposal.new_isr))
                    self._propose(leader, proposal)

    def _propose(self, leader: LeaderReplica, proposal: AlterPartitionProposal) -> None:
        image = self.kraft.image
        added = [b for b in proposal.new_isr if b not in leader.state.isr]
        ineligible = [b for b in added if (reg := image.brokers.get(b)) is None or not reg.eligible]
        if ineligible:
            # The controller would refuse; not attempted (the sans-IO state drops the proposal).
            leader.state.on_alter_partition_response(proposal, int(ErrorCode.operation_not_attempted))
            return
        if added:
            log.info("expanding ISR of %s from %s to %s", leader.tp, sorted(leader.state.isr), list(proposal.new_isr))
        self._cancel_alter(leader.tp)
        self._alter_tasks[leader.tp] = asyncio.get_running_loop().create_task(
            self._send_alter_partition(leader, proposal), name=f"alter-partition-{leader.tp}")

    def _cancel_alter(self, tp: TopicPartition) -> None:
        task = self._alter_tasks.pop(tp, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _send_alter_partition(self, leader: LeaderReplica, proposal: AlterPartitionProposal) -> None:
        from suoi.cluster.rpc import alter_partition_request

        def request() -> Any:  # the broker epoch of now: it changes if this broker registers again
            return alter_partition_request(self.kraft, leader.topic_id, leader.tp.partition,
                                           leader_epoch=proposal.leader_epoch,
                                           partition_epoch=proposal.partition_epoch, new_isr=proposal.new_isr)

        try:
            while self.leaders.get(leader.tp) is leader and leader.state.pending is proposal:
                try:
                    response = await self.kraft.call_controller(request(), quick=True, lane=Lane.ALTER_PARTITION)
                except Exception as exc:
                    log.info("AlterPartition for %s not answered (%s); retrying", leader.tp, exc)
                    await asyncio.sleep(ALTER_PARTITION_RETRY_S)
                    continue
                if response.error_code != ErrorCode.none:
                    log.info("AlterPartition for %s: %s; retrying", leader.tp, ErrorCode(response.error_code).name)
                    await asyncio.sleep(ALTER_PARTITION_RETRY_S)
                    continue
                part = response.topics[0].partitions[0]
                error = int(part.error_code)
                if error:
                    log.info("AlterPartition for %s refused: %s", leader.tp, ErrorCode(error).name)
                if self.leaders.get(leader.tp) is not leader:
                    return
                isr_before = leader.state.isr
                hw = leader.state.on_alter_partition_response(
                    proposal, error, isr=part.isr, leader_epoch=part.leader_epoch,
                    partition_epoch=part.partition_epoch, now_ms=self.broker.now_ms())
                self.broker.metrics.isr_changed(isr_before, leader.state.isr)
                self._after_leader_change(leader, hw)
                # A stale broker epoch (sent just before this broker registered again) is retried with
                # the new one, as Kafka's AlterPartitionManager does; left pending, the partition's ISR
                # could change no more until the controller happened to rewrite its registration.
                if error in (ErrorCode.request_timed_out, ErrorCode.not_controller, ErrorCode.stale_broker_epoch):
                    await asyncio.sleep(ALTER_PARTITION_RETRY_S)
                    continue
                return
        finally:
            if self._alter_tasks.get(leader.tp) is asyncio.current_task():
                del self._alter_tasks[leader.tp]

    # -- high watermark checkpoint ---------------------------------------------------------
    async def _checkpoint_loop(self) -> None:
        while True:
            await asyncio.sleep(self.checkpoint_interval_s)
            try:
                await asyncio.to_thread(self._write_checkpoint_files, self._checkpoint_entries())
            except Exception:
                log.exception("writing %s failed", CHECKPOINT_FILE)

    def _checkpoint_entries(self) -> dict[Path, dict[tuple[str, int], int]]:
        out: dict[Path, dict[tuple[str, int], int]] = {Path(d): {} for d in self.broker.config.log_dirs}
        for tp in self._hw_initialised:
            plog = self.broker.logs.get_log(tp.topic, tp.partition)
            if plog is not None:
                out.setdefault(plog.directory.parent, {})[(tp.topic, tp.partition)] = plog.high_watermark
        return out

    def write_checkpoints(self) -> None:
        self._write_checkpoint_files(self._checkpoint_entries())

    @staticmethod
    def _write_checkpoint_files(entries: dict[Path, dict[tuple[str, int], int]]) -> None:
        for directory, hws in entries.items():
            if directory.is_dir():
                write_checkpoint(directory / CHECKPOINT_FILE, hws)
