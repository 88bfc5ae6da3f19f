"""A node: wires configuration, storage, the KRaft services, listeners and housekeeping.

Every node is a KRaft node (`suoi.cluster.kraft`). Without `process.roles` it is a combined
broker+controller whose quorum is itself, with no CONTROLLER listener: its own requests to the
controller are dispatched in process (`_local_controller`). A data dir of the former
standalone mode is migrated into the metadata log at its first start (`suoi.cluster.migration`).

Lifecycle: `start()` recovers every partition log (truncating torn tails), then binds
the listeners, then starts the quorum and the retention and flush tasks; `stop()` reverses
that order so no request is served by a log that is closing. All state is touched only from
the event loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import importlib
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from suoi.api.alter_replica_log_dirs import start_move
from suoi.api.dispatch import dispatch
from suoi.api.listener_roles import ListenerRole
from suoi.api.registry import CLIENT_LISTENER, CURRENT_REQUEST
from suoi.authorizer import authorizer_from_config
from suoi.broker_settings import _LiveValues, coordinator_config_from, log_config_from, txn_config_from
from suoi.client_telemetry import ClientTelemetry
from suoi.cluster.bootstrap import discover_voters
from suoi.cluster.kraft import KRaftServices
from suoi.cluster.migration import StandaloneMigration
from suoi.cluster.settings import IMPLICIT_SINGLE_NODE_DEFAULTS, KRaftSettings, storage_layout
from suoi.config import BrokerConfig, Listener
from suoi.coordinator.group_coordinator import GroupCoordinator
from suoi.coordinator.txn.producer_ids import ControllerProducerIdManager, controller_block_requester
from suoi.coordinator.txn_coordinator import TransactionCoordinator
from suoi.dynamic_config import DynamicBrokerConfigs
from suoi.http.admin import AdminSettings, MetricsRecorder
from suoi.http.sockets import listen_socket
from suoi.log.cleaner import LogCleaner
from suoi.log.dir_lock import DirLocks
from suoi.log.handles import configure as configure_file_handles
from suoi.log.log_dirs import probe_log_dirs
from suoi.log.manager import LogManager
from suoi.log.meta_properties import ensure_formatted
from suoi.log.scrubber import LogScrubber
from suoi.log_cleaning import clean_off_loop
from suoi.log_flush import run_flush_loop
from suoi.net.server import start_listener
from suoi.notify import AppendNotifier
from suoi.partition.coordinator_writer import ReplicatedWriter
from suoi.protocol.codec import decode_response, encode_request, response_class
from suoi.protocol.file_records import joined
from suoi.quota import ClientQuotas, ConnectionLimits, listener_connection_limits, parse_overrides
from suoi.security.dynamic import DynamicTls
from suoi.security.listeners import (
    controller_security,
    inter_broker_security,
    listener_security,
    login_node,
    node_principal,
    reload_certificates,
)
from suoi.stopping import cancel_and_wait, in_thread_bounded

log = logging.getLogger("suoi.broker")

#: How long a stopping node waits for its logs' final fsync (a stalled disk must not freeze it).
SHUTDOWN_FLUSH_S = 10.0


#: How often each log dir is probed with a small write (KIP-858 failure detection; Kafka itself
#: finds a failed dir when an operation on it fails, suoi only by this probe). Kept at 1 s, not
#: stretched for the idle node's sake: a failed dir's replicas must move their leadership fast.
LOG_DIR_CHECK_INTERVAL_S = 1.0
#: Longest the admin endpoint waits for the node to serve clients before it loads anyway (a node
#: that has no quorum to register with still answers readiness, with the reason).
ADMIN_LOAD_WAIT_S = 2.0


def _now_ms() -> int:
    return int(time.time() * 1000)


class LocalPeer:
    """The node itself as the peer of a request to its own controller dispatched in process:
    authorized as the principal its controller listener gives it over a socket
    (`security.listeners.node_principal`: its SASL user, or its mapped certificate subject on an
    mTLS listener), so ACLs (CLUSTER_ACTION on registration and heartbeats) and super.users treat
    both paths alike. A connection that never closes."""

    def __init__(self, principal: str) -> None:
        self.principal = principal
        self.close_callbacks: dict[Any, Callable[[], None]] = {}

class Broker:
    #: The node's KRaft services (quorum, image, controller, replicas); set by `start()`.
    kraft: KRaftServices

    def __init__(self, config: BrokerConfig, *, now_ms: Callable[[], int] = _now_ms) -> None:
        self.kraft_settings = KRaftSettings.from_config(config)
        if self.kraft_settings.implicit:
            config = dataclasses.replace(config, values={**IMPLICIT_SINGLE_NODE_DEFAULTS, **config.values})
        self.static_config = config  # server.properties + flags; `config` adds dynamic configs
        self.config = config
        self.node_id = config.node_id
        self.dynamic_configs = DynamicBrokerConfigs(config.log_dirs[0])
        self.now_ms = now_ms
        self.log_config = log_config_from(config)
        #: Compacts the logs (`_cleaner_loop`); its I/O rate is dynamic (`reconfigure`).
        self.cleaner = LogCleaner(io_max_bytes_per_s=config.get_float("log.cleaner.io.max.bytes.per.second"))
        self.logs = LogManager(config.log_dirs, self.log_config, now_ms=now_ms)
        self.notifier = AppendNotifier()
        # Blocks of producer ids from the active controller (AllocateProducerIds, KIP-730).
        self.producer_ids = ControllerProducerIdManager(controller_block_requester(lambda: self.kraft))
        # The coordinators write through the partition layer (their partitions' leaders).
        writer = ReplicatedWriter(self.notifier, lambda: self.kraft.replicas if hasattr(self, "kraft") else None)
        self.groups = GroupCoordinator(self.logs, writer, now_ms, coordinator_config_from(config))
        self.transactions = TransactionCoordinator(self.logs, writer, now_ms,
                                                   txn_config_from(config), self.producer_ids, self.groups)
        self.connections: set[Any] = set()
        #: Kafka's StandardAuthorizer (authorizer.class.name), applied at dispatch; None: no ACLs checked.
        self.authorizer = authorizer_from_config({k: str(v) for k, v in config.values.items()})
        #: Client quota sensors (KIP-546; the quotas are in the metadata image), applied at dispatch.
        self.quotas = ClientQuotas(config.get_int("quota.window.num"), config.get_int("quota.window.size.seconds") * 1000)
        #: max.connections / max.connections.per.ip(.overrides), applied by net when a connection opens
        #: (dynamic: `reconfigure` updates them).
        self.connection_limits = ConnectionLimits(ip_rate=self._ip_connection_rate,
                                                  num_samples=config.get_int("quota.window.num"),
                                                  window_ms=config.get_int("quota.window.size.seconds") * 1000)
        #: KIP-714: client instances and the last metrics each pushed (in memory).
        self.client_telemetry = ClientTelemetry()
        #: Hot-path counters (messages/bytes in and out, request times), read by the admin endpoint.
        self.metrics = MetricsRecorder()
        self.admin_settings = AdminSettings.from_config(config)  # refuses https/auth before anything binds
        self.admin: Any = None  # suoi.http.admin.server.AdminServer once loaded, when admin.listeners is set
        self._admin_sockets: list[socket.socket] = []  # its ports, bound during start()
        self._admin_task: asyncio.Task[None] | None = None  # loads it once the node serves
        self.cluster_id = ""
        self._servers: list[asyncio.Server] = []
        self._server_roles: list[ListenerRole] = []  # each server's, for the order of the stop
        self._tasks: list[asyncio.Task[None]] = []
        self.bound: list[Listener] = []
        self._stopped = asyncio.Event()
        self.console: Any = None  # suoi.http.console.Console when console.listeners is set
        self._halt: asyncio.Task[None] | None = None  # a stop started by a failed metadata log dir
        self.schema_registry: Any = None  # suoi.http.registry, when schema.registry.listeners is set
        #: `.lock` on the log dirs and the metadata dir, held from the start of `start()` to the end of `stop()`
        self.dir_locks = DirLocks()

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        layout = storage_layout(self.config)
        # Before anything reads or writes the dirs: another node on them refuses this start (Kafka's .lock)
        self.dir_locks.acquire(layout.directories)
        await login_node(self.config)  # OAUTHBEARER tokens from an identity provider: refused -> no start
        self.cluster_id, formatted = ensure_formatted(layout)
        if formatted:
            log.info("%s", formatted)
        started = time.monotonic()
        configure_file_handles()  # ulimit -n: how many segment files may be open at once (one log line)
        self.dynamic_configs.load()
        self.reconfigure()
        self.logs.load()
        for move in self.logs.moves():  # replica moves a stop or crash interrupted (AlterReplicaLogDirs)
            start_move(self.logs, move)
        log.info("loaded %d topics from %s in %.2fs", len(self.logs.topics()),
                 ",".join(map(str, self.config.log_dirs)), time.monotonic() - started)
        migration = StandaloneMigration.check(self.config, self.kraft_settings, self.logs)
        if self.admin_settings.enabled:  # bound before the listeners (a port in use refuses the start)
            self._admin_sockets = [listen_socket(host, port) for host, port in self.admin_settings.listeners]
        await self.groups.start()  # the replica manager hands them the internal partitions they lead
        await self.transactions.start()
        self.kraft_settings = await discover_voters(  # bootstrap.servers only
            self.kraft_settings, security=controller_security(self.config))
        # Before any listener is bound, so every handler finds the node's KRaft services.
        self.kraft = KRaftServices(self, self.kraft_settings, local_controller=self._local_controller,
                                   migration=migration)
        self.groups.partition_count = self.transactions.partition_count = self._cluster_partition_count
        max_request = self.config.get_int("socket.request.max.bytes")
        advertised = self.config.advertised_listeners
        # A KRaft broker serves clients only once registered and unfenced (as Kafka's does): before,
        # its Metadata would list no broker, and some clients then wait for their next refresh.
        controller_names = set(self.config.controller_listener_names)
        deferred: list[asyncio.Server] = []
        # TLS, SASL; their settings read the node's config as it is now (keystores set by AlterConfigs)
        securities = [listener_security(_LiveValues(self), x.name) for x in self.config.listeners]
        self.dynamic_tls = DynamicTls(securities)
        jwks = [s.jwks for s in securities if s.jwks is not None]  # OAUTHBEARER's signing keys, before serving
        if jwks:
            from suoi.security.jwks import fetch_jwks, refresh_jwks  # cryptography: only for OAUTHBEARER's JWKS

            await fetch_jwks(jwks)
            self._tasks.append(asyncio.create_task(refresh_jwks(jwks), name="jwks-refresh"))
        for listener, security in zip(self.config.listeners, securities, strict=True):
            defer = self.kraft_settings.is_broker and listener.name not in controller_names
            role = ListenerRole.CONTROLLER if listener.name in controller_names else ListenerRole.CLIENT
            server = await start_listener(self, listener.host or None, listener.port, max_request,
                                          start_serving=not defer, role=role, security=security)
            port = server.sockets[0].getsockname()[1]
            self._servers.append(server)
            self._server_roles.append(role)
            self.bound.append(Listener(listener.name, listener.host, port))
            if defer:
                deferred.append(server)
            log.info("%s %s://%s:%d (%s)", "bound (serving once unfenced)" if defer else "listening on", listener.name,
                     listener.host or "*", port, security.protocol)
        self._tasks.append(asyncio.create_task(reload_certificates(securities), name="tls-reload"))
        # An advertised port of 0 means "whatever we bound" (used by tests and `suoi.testing`).
        self.advertised = [
            Listener(a.name, a.host, a.port or (self.bound[i].port if i < len(self.bound) else a.port))
            for i, a in enumerate(advertised)
        ]
        if self.config.get("console.listeners"):  # the web console (aiohttp is imported only then)
            from suoi.http.console import start_for_node
            self.console = await start_for_node(self.config, self.advertised, controller_names,
                                                inter_broker_security(self.config))
        await self.kraft.start()
        log.info("KRaft mode: roles=%s voters=%s%s", ",".join(sorted(self.kraft_settings.roles)),
                 ",".join(str(v) for v in sorted(self.kraft_settings.voters)),
                 " (no process.roles: a single combined node, its own quorum)" if self.kraft_settings.implicit else "")
        if deferred:
            self._tasks.append(asyncio.create_task(self._serve_when_unfenced(deferred), name="serve-when-unfenced"))
        if self._admin_sockets:
            self._admin_task = asyncio.create_task(self._start_admin(self._admin_sockets), name="admin-endpoint")
        self._tasks.append(asyncio.create_task(self._retention_loop(), name="retention"))
        self._tasks.append(asyncio.create_task(self._log_dir_check_loop(), name="log-dir-check"))
        self._tasks.append(asyncio.create_task(self._flush_loop(), name="flush"))
        self._tasks.append(asyncio.create_task(self._idle_connections_loop(), name="idle-connections"))
        if self.config.get_bool("log.cleaner.enable"):
            self._tasks.append(asyncio.create_task(self._cleaner_loop(), name="log-cleaner"))
        if self.config.get_bool("log.scrubber.enable"):
            self._tasks.append(asyncio.create_task(self._scrubber_loop(), name="log-scrubber"))
        if self.config.get("schema.registry.listeners"):  # port bound now; the app loads once we serve clients
            from suoi.http.registry.node import NodeRegistry

            self.schema_registry = NodeRegistry.bind(self.config.get("schema.registry.listeners"), self.advertised,
                                                     controller_names)
            self.schema_registry.start(self.kraft.first_unfenced)
        log.info("suoi broker node.id=%d cluster.id=%s started", self.node_id, self.cluster_id)

    async def _serve_when_unfenced(self, servers: list[asyncio.Server]) -> None:
        await self.kraft.first_unfenced.wait()
        await self.kraft.migrated.wait()  # a migrated standalone node's topics are in the image
        for server in servers:
            await server.start_serving()
        log.info("serving clients on %s", ", ".join(f"{x.name}://{x.host or '*'}:{x.port}" for x in self.bound
                                                    if x.name not in set(self.config.controller_listener_names)))

    async def _start_admin(self, sockets: list[socket.socket]) -> None:
        """Load the admin endpoint (aiohttp, prometheus-client: 0.15-0.3 s of imports) on its bound
        sockets once the node serves clients, or after ADMIN_LOAD_WAIT_S (a node that cannot
        register yet: readiness then answers 503 with the reason), so the first Metadata does not
        wait for it. Requests sent meanwhile wait in the sockets' backlog."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.kraft.first_unfenced.wait(), ADMIN_LOAD_WAIT_S)
        try:
            module = await asyncio.to_thread(importlib.import_module, "suoi.http.admin.server")
            self.admin = module.AdminServer(self, self.admin_settings, self.metrics)  # set first: stop() cleans up
            await self.admin.start(sockets)
        except Exception:
            log.exception("the admin endpoint failed to start")

    async def stop(self) -> None:
        """Kafka's order (BrokerServer.shutdown), each step bounded:

        1. the HTTP apps (the schema registry leaves its group while the node still answers);
        2. the controlled shutdown: leadership moves to other brokers while this node still
           serves and applies metadata, so its coordinators resign the internal partitions as
           they move and clients are told NOT_LEADER / NOT_COORDINATOR and go to the new leader
           rather than being answered from a state that is no longer this node's;
        3. client listeners and connections close: no request reaches what stops next;
        4. the coordinators (whatever they still hold after an incomplete controlled shutdown
           answers nobody now), then the KRaft runtime (reconciler, replica manager, Raft driver);
        5. the controller listeners (a voter answers Raft requests until its driver stopped);
        6. the node's loops, then the final flush of the logs (`LogManager.shutdown`: fsyncs in
           parallel, then each log dir marked as cleanly stopped, so the next start skips its
           recovery). In a thread, bounded: a node whose disk stalls still stops, unmarked, its
           logs left to the next start's recovery.

        A node that never got its dirs' locks (another node holds them) touches nothing here."""
        if not self.dir_locks.held:
            self._stopped.set()
            return
        try:
            await self._stop()
        finally:
            self.dir_locks.release()  # a node started again in this process (tests) takes them again

    async def _stop(self) -> None:
        if self._admin_task is not None:
            self._admin_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._admin_task
        if self.admin is not None:
            await self.admin.stop()
        for sock in self._admin_sockets:
            sock.close()
        if self.schema_registry is not None:  # first: it leaves its group while the node still answers
            await self.schema_registry.close()
        kraft = getattr(self, "kraft", None)  # absent when start() failed early
        if kraft is not None:
            await kraft.controlled_shutdown()
        if self.console is not None:
            await self.console.stop()
        self._close_listeners(ListenerRole.CLIENT)
        await self.transactions.stop()
        await self.groups.stop()
        if kraft is not None:
            await kraft.stop()
        self._close_listeners(ListenerRole.CONTROLLER)
        await cancel_and_wait(self._tasks, 5.0, f"node {self.node_id}")
        started, count = time.monotonic(), len(self.logs.all_logs())
        outcome: list[bool] = []
        try:
            done = await in_thread_bounded(lambda: outcome.append(self.logs.shutdown()), SHUTDOWN_FLUSH_S,
                                           "flushing the logs at shutdown")
        except OSError:
            log.exception("flush at shutdown failed")
            done = False
        clean = done and all(outcome)
        if done:
            log.info("flushed and closed %d logs in %.2f s%s", count, time.monotonic() - started,
                     "" if clean else " (some not flushed: their dirs are recovered at the next start)")
        self._stopped.set()
        log.info("suoi broker node.id=%d stopped %s", self.node_id, "cleanly" if clean else "(logs not flushed)")

    def _close_listeners(self, role: ListenerRole) -> None:
        """Stop accepting on the listeners of `role` and close their connections."""
        for server, server_role in zip(self._servers, self._server_roles, strict=True):
            if server_role is role:
                server.close()
        for conn in list(self.connections):
            if conn.role is role:
                conn.close()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    # -- services for handlers -------------------------------------------------------
    @property
    def endpoint(self) -> tuple[str, int]:
        name = CLIENT_LISTENER.get()  # the listener of the request being answered
        first = next((a for a in self.advertised if a.name == name), self.advertised[0])
        return first.host, first.port

    def reconfigure(self) -> None:
        """Recompute the effective config (static + dynamic) and apply it to every log at once."""
        self.config = self.dynamic_configs.merged(self.static_config)
        self.log_config = log_config_from(self.config)
        self.logs.default_config = self.log_config
        for name, info in self.logs.topics().items():
            self.logs.alter_topic_configs(name, info.configs)  # re-derives each live log's config
        self.cleaner.io_max_bytes_per_s = self.config.get_float("log.cleaner.io.max.bytes.per.second")
        limits = self.connection_limits
        limits.max_connections = self.config.get_int("max.connections")
        limits.max_per_ip = self.config.get_int("max.connections.per.ip")
        limits.overrides = parse_overrides(str(self.config.get("max.connections.per.ip.overrides")))
        limits.max_creation_rate = self.config.get_int("max.connection.creation.rate")
        limits.listener_max, limits.listener_rate = listener_connection_limits(self.config.values)
        dynamic_tls = getattr(self, "dynamic_tls", None)
        if dynamic_tls is not None:
            dynamic_tls.apply()

    def _ip_connection_rate(self, ip: str) -> float | None:
        """KIP-612's connection_creation_rate of an IP (its own quota, else the default ip's)."""
        kraft = getattr(self, "kraft", None)
        quotas = kraft.image.client_quotas if kraft is not None else None
        if not quotas:
            return None
        own = quotas.get((("ip", ip),)) or quotas.get((("ip", None),)) or {}
        return own.get("connection_creation_rate")

    async def _local_controller(self, request: Any) -> Any:
        """A request to the active controller when that is this node and it has no controller
        listener (no process.roles): the same handler a CONTROLLER connection would reach,
        through the same encoding, without a socket."""
        frame = encode_request(0, f"suoi-node-{self.node_id}", request)[4:]
        # as a CONTROLLER connection: the controller's handlers (an Envelope, which this node's own
        # forwarding sends when its controller just became active, is served on those only)
        outcome = dispatch(self, frame, "local-controller", self._local_peer, role=ListenerRole.CONTROLLER)
        if outcome is not None and not isinstance(outcome, list):
            caller = CURRENT_REQUEST.get()
            try:
                outcome = await outcome
            finally:  # the inner request's context set while it ran here: the caller's request is its own again
                CURRENT_REQUEST.set(caller)
        if outcome is None:
            raise ConnectionError(f"no answer to {type(request).__name__} from the local controller")
        data = joined(outcome)[4:]
        cls = type(request)
        return decode_response(data, response_class(cls.__api_key__, cls.__version__))

    @functools.cached_property
    def _local_peer(self) -> LocalPeer:
        return LocalPeer(node_principal(self.config))

    def _cluster_partition_count(self, topic: str) -> int | None:
        image_topic = self.kraft.image.topic(topic)
        return None if image_topic is None else image_topic.num_partitions

    def auto_create_enabled(self) -> bool:
        return self.config.get_bool("auto.create.topics.enable")

    # -- housekeeping ----------------------------------------------------------------
    async def _log_dir_check_loop(self) -> None:
        """KIP-858: a log dir that fails (removed, read-only, I/O errors) is taken offline without
        stopping the node; its replicas stop here. The first dir holds the node's metadata
        (topics, the metadata log): losing it stops the node, as Kafka halts."""
        while True:
            await asyncio.sleep(LOG_DIR_CHECK_INTERVAL_S)
            online = [d for d in self.logs.log_dirs if d not in self.logs.offline_dirs]
            failures = await asyncio.to_thread(probe_log_dirs, online)  # file-system calls: off the loop
            lost = self.logs.check_log_dirs(failures)
            if not self.logs.offline_dirs:
                continue
            # as Kafka: a failed dir's lock is let go (an open file would keep its disk from being
            # unmounted and replaced); the metadata dir's stays while the Raft log may write there
            self.dir_locks.release(d for d in self.logs.offline_dirs if d != self.kraft_settings.metadata_dir)
            if lost and self.kraft.replicas is not None:
                self.kraft.replicas.drop_offline(lost)
                self._tasks.append(asyncio.create_task(self.kraft.report_lost_replicas(lost), name="lost-replicas"))
            if self.config.log_dirs[0] in self.logs.offline_dirs or len(self.logs.offline_dirs) == len(self.logs.log_dirs):
                log.error("the log dir holding this node's metadata (or every log dir) failed: stopping")
                self._halt = asyncio.get_running_loop().create_task(self.stop())  # stop() cancels this loop
                return

    async def _retention_loop(self) -> None:
        interval = self.config.get_int("log.retention.check.interval.ms") / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                deleted = self.logs.apply_retention(self.now_ms())
                if deleted:
                    log.info("retention deleted %d segments", deleted)
            except Exception:
                log.exception("retention pass failed")

    async def _cleaner_loop(self) -> None:
        """Compaction of cleanup.policy=compact logs, one log at a time.

        Planning and the commit's renames run on the event loop (they touch PartitionLog state);
        the rewrite of sealed segments and the commit's fsyncs run on threads (`suoi.log_cleaning`).
        """
        interval = self.config.get_int("log.cleaner.backoff.ms") / 1000
        try:
            while True:
                await asyncio.sleep(interval)
                for plog in self.logs.compactable_logs():
                    try:
                        if await clean_off_loop(self.cleaner, plog, self.now_ms()):
                            log.info("compacted %s", plog)
                    except Exception:
                        log.exception("log cleaner failed on %s", plog)
        finally:  # a build asleep in the throttle (a rate of 0 sleeps until changed) gives up
            self.cleaner.stop()

    async def _scrubber_loop(self) -> None:
        """Re-check sealed segments' CRCs at log.scrubber.bytes.per.second (suoi.log.scrubber),
        in slices of a tenth of a second's worth so the event loop never waits long."""
        scrubber = LogScrubber(self.logs.all_logs, self.logs.corruption)
        budget = max(self.config.get_int("log.scrubber.bytes.per.second") // 10, 4096)
        while True:
            try:
                checked = scrubber.step(budget)
            except Exception:
                log.exception("log scrubber step failed")
                checked = 0
            await asyncio.sleep(0.1 if checked else 1.0)

    async def _idle_connections_loop(self) -> None:
        """connections.max.idle.ms (Kafka's default 10 minutes): close client connections that sent
        nothing for that long and are owed no answer -- also those that connected and never
        finished a TLS or SASL handshake. Checked a few times per period (at most every 30 s)."""
        idle_s = self.config.get_int("connections.max.idle.ms") / 1000
        if idle_s <= 0:
            return
        interval = min(max(idle_s / 4, 0.05), 30.0)
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for conn in list(self.connections):
                idle = conn.idle_for(now)
                if idle >= idle_s:
                    conn.close_idle(idle)

    async def _flush_loop(self) -> None:
        """flush.ms / log.flush.interval.ms flushes and recovery-point checkpoints, their fsyncs on
        threads, awaited (`suoi.log_flush`): the loop serves meanwhile."""
        await run_flush_loop(self.logs, self.config.get_int("log.flush.scheduler.interval.ms") / 1000,
                             max(self.config.get_int("log.flush.offset.checkpoint.interval.ms"), 10) / 1000,
                             self.now_ms)
