"""KRaft mode services of one node: the metadata quorum, the metadata image, the active
controller (on the quorum leader) and the broker's registration/heartbeats.

Data flow (Kafka's): a metadata change is decided by the active controller
(`suoi.controller.QuorumController`), appended to the Raft log `__cluster_metadata`,
and once committed every node replays it into its `MetadataImage`; a broker then
reconciles its local partition logs with the image (`reconciler.py`). Requests that change
metadata reach the controller either locally (this node leads the quorum) or forwarded
over the controller listener (`call_controller`). A node without process.roles has no
controller listener: its requests to itself go through `local_controller` (the same handlers,
no socket).

Threading: everything runs on the event loop. Raft listener callbacks run inside the
driver's calls, so they only record state and schedule work (never call the driver).

This module is the runtime's core: the node's KRaft state, the Raft listener, and the way to
the active controller (local or forwarded). Its duties live beside it: `active_controller.py`
(what the active controller does), `broker_lifecycle.py` (registration and heartbeats),
`reconciler.py` (local logs follow the image) and `image_waiters.py` (answers that wait for
the image).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from suoi.client import Lane, NodeClient
from suoi.cluster import broker_lifecycle
from suoi.cluster.active_controller import all_endpoints_refuse, bootstrap_metadata, controller_config, controller_ticks
from suoi.cluster.image_waiters import ImageWaiters
from suoi.cluster.migration import StandaloneMigration
from suoi.cluster.previous_epoch import read_previous_epoch
from suoi.cluster.reconciler import LocalReconciler
from suoi.cluster.settings import KRaftSettings
from suoi.controller import records as mrec
from suoi.controller.controller import QuorumController
from suoi.controller.features import BOOTSTRAP_LEVELS
from suoi.controller.image import MetadataBuilder, MetadataImage
from suoi.model import ErrorCode
from suoi.model.errors import NotControllerError  # re-exported: it used to be defined here
from suoi.node import Node
from suoi.partition.controller_channel import HostingNode
from suoi.partition.replica_manager import ReplicaManager
from suoi.raft.core import NotLeaderError
from suoi.raft.messages import Entry, LeaderAndEpoch, SnapshotId
from suoi.raft_driver.cluster_mismatch import ClusterIdMismatchLog
from suoi.raft_driver.driver import QuorumDriver
from suoi.raft_driver.properties import raft_config_from_properties
from suoi.security.listeners import controller_security
from suoi.stopping import cancel_and_wait

log = logging.getLogger("suoi.cluster")

CONTROLLER_TIMEOUT_S = 10.0
#: How long each later step of a stop may take before it is abandoned with a WARNING.
STOP_WAIT_S = 5.0


async def _bounded(step: Awaitable[None], what: str) -> None:
    """One step of a stop, abandoned (one WARNING) after STOP_WAIT_S."""
    try:
        await asyncio.wait_for(step, STOP_WAIT_S)
    except TimeoutError:
        log.warning("%s did not stop within %.0f s; going on", what, STOP_WAIT_S)


class KRaftNode(Node, HostingNode, Protocol):
    """The node as the KRaft runtime takes it: its shared resources (`suoi.node.Node`) and what
    the replica manager built here needs of it (`HostingNode`); `suoi.broker.Broker` is both."""


class _CreatingTopics(set[str]):
    """Names of topics being auto-created; ending one (``discard``) calls ``on_done``."""

    def __init__(self, on_done: Callable[[], None]) -> None:
        super().__init__()
        self._on_done = on_done

    def discard(self, name: object) -> None:
        super().discard(name)
        self._on_done()


class KRaftServices:
    def __init__(self, broker: KRaftNode, settings: KRaftSettings, *,
                 local_controller: Callable[[Any], Awaitable[Any]] | None = None,
                 migration: StandaloneMigration | None = None) -> None:
        self.broker = broker
        self.settings = settings
        self.node_id = settings.node_id
        props = {k: v for k, v in broker.config.values.items()}
        raft_config = raft_config_from_properties(props, broker.cluster_id or None)
        self.pool = NodeClient(client_id=f"suoi-node-{self.node_id}", security=controller_security(broker.config))
        for voter, (host, port) in settings.voters.items():
            if port:  # port 0: the implicit single node's own voter, never dialled
                self.pool.register(voter, host, port)
        #: Requests to this node's own controller, dispatched in process: always on a node without a
        #: controller listener; on others once its controller is active. Never over a socket to
        #: itself: a forwarded request that found the controller not yet active would forward again
        #: on the same connection and wait, in request order, behind itself until it timed out.
        self._local_controller = local_controller
        #: A standalone data dir's topics to write into the metadata log first (`suoi.cluster.migration`).
        self.migration = migration
        #: Set once the local logs may follow the image (nothing to migrate, or migrated).
        self.migrated = migration.done if migration is not None else asyncio.Event()
        if migration is None:
            self.migrated.set()
        self.driver = QuorumDriver(self.node_id, settings.voters, settings.metadata_dir, config=raft_config,
                                   pool=self.pool, listener_name=settings.controller_listener)
        self._builder = MetadataBuilder()
        self.image: MetadataImage = self._builder.image()
        self.controller: QuorumController | None = None
        self._controller_epoch = -1
        #: Set (and replaced) whenever the quorum leader or the active controller changes: what a
        #: request to the controller that found none waits for, rather than a fixed pause.
        self._controller_change = asyncio.Event()
        #: Wakes `controller_ticks` when the controller's next deadline may have come nearer.
        self.controller_tick_wake = asyncio.Event()
        self.incarnation_id = uuid.uuid4()
        #: BrokerRegistration between nodes of different clusters: one ERROR per peer per minute.
        self.cluster_mismatch = ClusterIdMismatchLog(log, broker.cluster_id or None)
        self.broker_epoch = -1
        #: Sent with each registration: lets this process replace its crashed predecessor's.
        self.previous_broker_epoch = read_previous_epoch(settings.metadata_dir) if settings.is_broker else -1
        self.fenced = True
        #: Set the first time the controller unfences this broker: it then serves clients.
        self.first_unfenced = asyncio.Event()
        #: Auto-creations the controller refused: topic -> error code, answered to the next Metadata.
        self.auto_create_rejections: dict[str, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        #: The broker's registration/heartbeat loop; the controlled shutdown ends it first.
        self._lifecycle: asyncio.Task[None] | None = None
        self._probes: set[asyncio.Task[None]] = set()  # short connects to brokers that went away
        #: Requests waiting for the image (or the applied image) to show a change.
        self._image_waiters = ImageWaiters(self._waited_image)
        #: Topics this node asked the controller to auto-create, not yet answered. Ending an
        #: auto-creation wakes the image waiters too (a refused one changes no image).
        self.creating_topics: set[str] = _CreatingTopics(self._image_waiters.wake)
        self._stopping = False
        #: Snapshot (KIP-630) after this many bytes of committed records, so the metadata log is
        #: truncated and a new or lagging node catches up from the snapshot.
        self._snapshot_every_bytes = broker.config.get_int("metadata.log.max.record.bytes.between.snapshots")
        self._bytes_since_snapshot = 0
        self._request_timeout_s = broker.config.get_int("controller.quorum.request.timeout.ms") / 1000
        #: A stopping node's request to the controller waits this long for an election that began
        #: at most that long ago (one under load during its controlled shutdown), no longer: with
        #: no leader for longer, the quorum is likely gone (the other nodes stopped first). Twice
        #: the election timeout: a round (or a follower's pre-vote, which names no leader while it
        #: lasts) runs for up to that long (the timeout is randomised to [t, 2t)).
        self._election_grace_s = 2 * broker.config.get_int("controller.quorum.election.timeout.ms") / 1000
        self._leader_seen_at = 0.0  # loop time of the last leader change
        #: Partition replication (leaders, followers, ISR, acks=all) of a broker node.
        self.replicas: ReplicaManager | None = ReplicaManager(broker, self) if settings.is_broker else None
        #: Local logs and replica roles follow the image (broker role only).
        self.reconciler = LocalReconciler(broker, self.node_id, self.replicas, current=lambda: self.image,
                                          migrated=self.migrated, on_round=self._image_waiters.wake)

    @property
    def stopping(self) -> bool:
        """Set at the start of `controlled_shutdown`: the node's loops end and no new work starts."""
        return self._stopping

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        self.driver.register_listener(self)
        if self.replicas is not None:
            await self.replicas.start()
        await self.driver.start()
        if self.settings.is_controller:
            self._tasks.append(asyncio.create_task(controller_ticks(self), name="controller-ticks"))
        if self.settings.is_broker:
            self._tasks.append(asyncio.create_task(self.reconciler.run(), name="reconcile-local-logs"))
            self._lifecycle = asyncio.create_task(broker_lifecycle.run_lifecycle(self), name="broker-lifecycle")
            self._tasks.append(self._lifecycle)

    async def controlled_shutdown(self) -> None:
        """The first step of a stop (Kafka's BrokerServer.shutdown): leadership moves away while
        this node still serves and still applies metadata. The heartbeat loop ends (the
        controlled shutdown heartbeats itself, with want_shutdown); the reconciler keeps running,
        so each moved partition is followed rather than led and its coordinator resigns as the
        image moves it (`broker_lifecycle.controlled_shutdown`). Bounded, whatever the rest of
        the cluster does: it gives up once no controller is known for an election timeout (the
        quorum may be gone: the other nodes stopped first), once it made no progress (no answer
        of the controller, no image applied here) for broker.session.timeout.ms -- the controller
        would fence a broker silent that long anyway, and move its leaderships itself -- and
        after Kafka's 5 minutes in all. Skipped with controlled.shutdown.enable=false (as in
        Kafka). Called again (by `stop`), it does nothing."""
        if self._stopping:
            return
        self._stopping = True  # the node's loops end; a request waiting for a controller gives up without one
        self._controller_changed()  # ... and looks again now
        if self._lifecycle is not None:
            await cancel_and_wait([self._lifecycle], STOP_WAIT_S, f"node {self.node_id} heartbeats")
        if not self.settings.is_broker or self.broker_epoch < 0:
            return
        if not self.broker.config.get_bool("controlled.shutdown.enable"):
            log.info("controlled shutdown of node %d skipped (controlled.shutdown.enable=false)", self.node_id)
            return
        loop = asyncio.get_running_loop()
        progressed_at, applied = loop.time(), self.reconciler.reconciled

        def answered() -> None:
            nonlocal progressed_at
            progressed_at = loop.time()

        def last_progress() -> float:
            nonlocal progressed_at, applied
            if self.reconciler.reconciled is not applied:  # an image applied here: leaderships moved
                progressed_at, applied = loop.time(), self.reconciler.reconciled
            return progressed_at

        try:
            done = await broker_lifecycle.until_stalled(broker_lifecycle.controlled_shutdown(self, answered),
                                                        last_progress, self.settings.session_timeout_ms / 1000)
        except Exception as exc:  # TimeoutError, NotControllerError, a connection lost: stop anyway
            done, reason = False, str(exc) or type(exc).__name__
        else:
            reason = "the controller refused it" if not done else ""
        if done:
            log.info("controlled shutdown of node %d done: it leads no partition", self.node_id)
        else:
            log.info("controlled shutdown of node %d incomplete (%s); stopping anyway", self.node_id, reason)

    async def stop(self) -> None:
        """After `controlled_shutdown` (done here first if the caller did not), and after the node
        stopped serving clients: the reconciler (no image is applied any more), the controller's
        loops, the replica manager (fetchers, HW checkpoints), the Raft driver and the
        connections to the controllers, each bounded, so a node never hangs in its stop."""
        await self.controlled_shutdown()
        self.reconciler.stop()
        await cancel_and_wait([*self._tasks, *self._probes], STOP_WAIT_S, f"node {self.node_id} KRaft services")
        await _bounded(self.reconciler.removals.drain(), f"node {self.node_id} removal of deleted logs")
        if self.replicas is not None:
            await _bounded(self.replicas.stop(), f"node {self.node_id} replica manager")
        await _bounded(self.driver.stop(), f"node {self.node_id} raft driver")
        await _bounded(self.pool.close(), f"node {self.node_id} controller connections")

    # -- RaftListener: committed metadata ----------------------------------------------
    def on_commit(self, entries: Sequence[Entry]) -> None:
        for entry in entries:
            self._builder.apply_entry(entry)
            self._bytes_since_snapshot += len(entry.payload)
        self.image = self._builder.image()
        self._image_waiters.wake()
        if self.migration is not None:
            self.migration.check_done(self.image)
        if self.controller is not None:
            self.controller.on_commit(self.driver.high_watermark - 1)
        leader = self.driver.leader_and_epoch
        if (leader.leader_id == self.node_id and self.controller is None and self.settings.is_controller
                and any(e.epoch == leader.epoch for e in entries)):
            asyncio.get_running_loop().call_soon(self._become_active, leader.epoch)
        loop = asyncio.get_running_loop()
        self._request_reconcile()
        if self._bytes_since_snapshot >= self._snapshot_every_bytes:
            self._bytes_since_snapshot = 0
            loop.call_soon(self._snapshot, self.image)

    def _snapshot(self, image: MetadataImage) -> None:
        """Snapshot the committed image (never from inside a driver callback)."""
        try:
            self.driver.create_snapshot(image.offset + 1, image.to_snapshot())
            log.info("metadata snapshot at offset %d", image.offset + 1)
        except Exception as exc:
            log.warning("metadata snapshot at %d skipped: %s", image.offset + 1, exc)

    def on_load_snapshot(self, snapshot_id: SnapshotId, data: bytes) -> None:
        self.image = MetadataImage.from_snapshot(data)
        self._image_waiters.wake()
        if self.migration is not None:
            self.migration.check_done(self.image)
        self._builder = MetadataBuilder.from_image(self.image)
        self._request_reconcile()

    async def wait_image(self, condition: Callable[[MetadataImage], bool], timeout: float, *,
                         applied: bool = False) -> bool:
        """Until this node's metadata image satisfies ``condition`` (False after ``timeout`` s).
        What a request that changed metadata waits for before it answers, so that the client's
        next request to this node sees the change (Kafka's broker waits for its image to reach
        the controller's offset the same way). ``applied``: the image this node's partitions (and
        so its coordinators) have been brought to, which follows the published image by one
        reconcile round -- what an answer naming this node as a leader or coordinator waits for,
        or the client's next request meets NOT_LEADER / NOT_COORDINATOR (kafkajs gives up a
        TxnOffsetCommit on the latter)."""
        return await self._image_waiters.wait(condition, timeout, applied=applied)

    def _waited_image(self, applied: bool) -> MetadataImage:
        return self.reconciler.reconciled if applied and self.settings.is_broker else self.image

    def on_leader_change(self, leader: LeaderAndEpoch) -> None:
        self._leader_seen_at = asyncio.get_running_loop().time()  # the last leader is gone only now
        if leader.leader_id is not None:
            self.broker.metrics.raft_leader_changes += 1
        if leader.leader_id != self.node_id and self.controller is not None:
            log.info("node %d is no longer the active controller (epoch %d)", self.node_id, leader.epoch)
            self.controller = None
        self._controller_changed()

    def _controller_changed(self) -> None:
        """Wake requests waiting for a controller (an Event.set only schedules their wake-up)."""
        change, self._controller_change = self._controller_change, asyncio.Event()
        change.set()
        self.kick_controller_ticks()

    def kick_controller_ticks(self) -> None:
        """The active controller's next deadline may be nearer (a new controller, a broker's
        connection lost): `controller_ticks` looks again."""
        self.controller_tick_wake.set()

    # -- the active controller -------------------------------------------------------
    def _become_active(self, epoch: int) -> None:
        leader = self.driver.leader_and_epoch
        if leader.leader_id != self.node_id or leader.epoch != epoch or self.controller is not None:
            return
        self._controller_epoch = epoch
        self.controller = QuorumController(self.image, append=self._append_records, now=self.broker.now_ms(),
                                           config=controller_config(self.broker, self.settings))
        log.info("node %d is the active controller (epoch %d)", self.node_id, epoch)
        if self.settings.implicit:  # nothing but this process can register as this node: its old
            self.controller.expire_session(self.node_id)  # registration is of a process that is gone
        self._controller_changed()
        if any(name not in self.image.features for name in BOOTSTRAP_LEVELS) or not self.migrated.is_set():
            task = asyncio.get_running_loop().create_task(bootstrap_metadata(self))
            self._probes.add(task)
            task.add_done_callback(self._probes.discard)

    def _append_records(self, records: Sequence[Any]) -> int:
        return self.driver.append([mrec.encode_batch(records)], epoch=self._controller_epoch)

    @property
    def controller_id(self) -> int:
        """The quorum leader of the current epoch as this node knows it (-1 if none): where
        forwarded requests go (``call_controller`` retries until one answers)."""
        leader = self.driver.leader_and_epoch.leader_id
        return -1 if leader is None else leader

    @property
    def controller_may_answer(self) -> bool:
        """Whether a stopping node should ask the controller again: another node is the known
        controller (it was slow to answer), or none is known but one was less than
        `_election_grace_s` ago (an election, or a follower's pre-vote under load, may yet end
        with one). Not when this node is the controller: its own could not answer."""
        controller = self.controller_id
        if controller >= 0:
            return controller != self.node_id
        return asyncio.get_running_loop().time() - self._leader_seen_at <= self._election_grace_s

    @property
    def live_controller_id(self) -> int:
        """The active controller as far as this node can tell it is alive: -1 while an election
        runs, or when the last request to the leader failed in transport (a SIGKILLed leader
        keeps its epoch until the fetch timeout). What Metadata and DescribeCluster name."""
        leader = self.driver.live_leader_id
        return -1 if leader is None else leader

    async def run_on_controller(self, op: Callable[[QuorumController], Any]) -> Any:
        """Run a controller operation here (this node must be the active controller) and
        answer once its records are committed."""
        controller = self.controller
        if controller is None:
            raise NotControllerError(f"node {self.node_id} is not the active controller")
        try:
            result = op(controller)
        except Exception as exc:
            if self.controller is controller and getattr(controller, "failed", False):
                self.controller = None
            raise NotControllerError(f"controller operation failed: {exc}") from exc
        if result.offset >= 0:
            try:
                started = time.perf_counter()
                await self.driver.wait_committed(result.offset, self._controller_epoch, CONTROLLER_TIMEOUT_S)
                self.broker.metrics.raft_committed(time.perf_counter() - started)
            except NotLeaderError as exc:  # lost the quorum before the records committed
                raise NotControllerError(f"node {self.node_id} lost the controller role: {exc}") from exc
        return result.response

    async def call_controller(self, request: Any, *, timeout: float = CONTROLLER_TIMEOUT_S,
                              quick: bool = False, lane: str = Lane.FORWARDING) -> Any:
        """Send a request to the active controller over its listener (forwarding). `quick`
        (heartbeats, AlterPartition: cheap, idempotent requests) bounds each attempt by
        controller.quorum.request.timeout.ms and then asks whoever leads the quorum by then.
        `lane`: the connection of this purpose (Kafka's channel managers): a forwarded
        CreateTopics waiting for the quorum must not hold up a heartbeat, nor a timed-out
        heartbeat close the connection a CreateTopics waits on."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last: Exception | None = None
        while loop.time() < deadline:
            change = self._controller_change  # set if the controller changes from here on
            leader = self.controller_id
            if leader == self.node_id and self._local_controller is not None:
                if self.settings.implicit or self.controller is not None:
                    # bounded: a controller that lost its quorum waits for a commit that never comes
                    response = await asyncio.wait_for(self._local_controller(request),
                                                      max(deadline - loop.time(), 0.05))
                    if getattr(response, "error_code", 0) != ErrorCode.not_controller:
                        return response
                # else: this node leads the quorum and its controller is still loading: wait for it
            elif leader >= 0:
                # A controller that vanished (crashed, partitioned away) must not hold a heartbeat
                # past the session timeout while the quorum has already elected another one.
                remaining = max(deadline - loop.time(), 0.05)
                attempt = min(self._request_timeout_s, remaining) if quick else remaining
                try:
                    response = await self.pool.request(leader, request, timeout=attempt, lane=lane)
                    if getattr(response, "error_code", 0) != ErrorCode.not_controller:
                        return response
                except (TimeoutError, ConnectionError) as exc:
                    last = exc
            if self._stopping and leader < 0 and loop.time() - self._leader_seen_at > self._election_grace_s:
                break  # stopping: wait for an election only if it may still end (the quorum may be gone)
            with contextlib.suppress(TimeoutError):  # no controller (yet): until one is known, 50 ms at most
                await asyncio.wait_for(change.wait(), min(0.05, max(deadline - loop.time(), 0)))
        raise NotControllerError(f"no active controller answered within {timeout}s ({last!r})")

    def broker_connection_lost(self, broker_id: int, broker_epoch: int) -> None:
        """A broker's heartbeat connection to this (active) controller closed: fence it if it
        does not heartbeat again soon, or at once if nothing listens on its endpoints any more."""
        controller = self.controller
        if controller is None or broker_id == self.node_id or self._stopping:
            return
        controller.connection_lost(broker_id, broker_epoch, self.broker.now_ms())
        self.kick_controller_ticks()
        reg = self.image.brokers.get(broker_id)
        if reg is not None and reg.listeners:
            task = asyncio.get_running_loop().create_task(self._probe_broker(broker_id, broker_epoch, reg.listeners))
            self._probes.add(task)
            task.add_done_callback(self._probes.discard)

    async def _probe_broker(self, broker_id: int, broker_epoch: int, listeners: Sequence[mrec.Listener]) -> None:
        """Fence a broker at once when all the endpoints it registered refuse connections."""
        if not await all_endpoints_refuse(listeners):
            return
        controller = self.controller
        if controller is not None:
            log.info("broker %d refuses connections on all its endpoints; fencing it", broker_id)
            controller.connection_lost(broker_id, broker_epoch, self.broker.now_ms(), refused=True)
            self.kick_controller_ticks()

    # -- the broker's registration and heartbeats --------------------------------------
    def registration_listeners(self) -> list[tuple[str, str, int]]:
        """(name, host, port) of each advertised listener but the controller's: what this broker
        registers (`rpc.registration_request`)."""
        ctl = self.settings.controller_listener
        return [(a.name, a.host, a.port) for a in self.broker.advertised if a.name != ctl]

    async def report_lost_replicas(self, partitions: list[tuple[str, int]]) -> None:
        """KIP-858: tell the controller these replicas' log dir failed (`broker_lifecycle`)."""
        await broker_lifecycle.report_lost_replicas(self, partitions)

    # -- reconciling local logs with the image -----------------------------------------
    def _request_reconcile(self) -> None:
        """A new image was published: the reconciler task brings the local logs to it."""
        if self.settings.is_broker:
            self.reconciler.request()
