"""InProcessNode: a suoi node inside the test process, for tests that want a broker in
milliseconds and without Docker (testcontainers' `KafkaContainer` takes seconds).

The node is the same `suoi.broker.Broker` that `suoi broker` runs, with the same config
loading and checks, on its own asyncio event loop (uvloop when installed, as the command
uses) in a background thread; clients reach it over loopback sockets like any broker. It
starts as a KRaft combined node (`process.roles=broker,controller`, one Raft voter), the
configuration of `make run` (config/server.properties). `InProcessCluster` starts several
such nodes as one quorum. A node that must crash (SIGKILL, a torn write) still needs the
subprocess `EmbeddedBroker`: an in-process node can only stop cleanly.

    with InProcessNode() as node:
        node.create_topic("orders", partitions=3)
        producer = KafkaProducer(bootstrap_servers=node.bootstrap)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime
import logging
import shutil
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Coroutine
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, TypeVar

from suoi.cli.cluster_layout import free_ports

T = TypeVar("T")
log = logging.getLogger("suoi.testing")


def kraft_properties(node_id: int, port: int, controller_port: int, voters: str, *, host: str = "127.0.0.1",
                     cluster_id: str | None = None) -> dict[str, str]:
    """A combined (broker,controller) KRaft node's properties, with Kafka's names; internal
    topics with the replication factor a cluster of `voters` can give them."""
    replicas = str(min(3, voters.count("@")))
    props = {
        "process.roles": "broker,controller", "node.id": str(node_id),
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}", "controller.listener.names": "CONTROLLER",
        "controller.quorum.voters": voters, "offsets.topic.replication.factor": replicas,
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": str(min(2, int(replicas))),
        "group.initial.rebalance.delay.ms": "0",
    }
    if cluster_id is not None:
        props["cluster.id"] = cluster_id
    return props


class InProcessNode:
    """One suoi node on a background thread of this process.

    `overrides` are broker properties (Kafka names) applied over the KRaft defaults, e.g.
    {"log.segment.bytes": "1024"}. `properties` replaces those defaults (a cluster's nodes get
    theirs from `InProcessCluster`)."""

    def __init__(self, data_dir: str | Path | None = None, *, overrides: dict[str, str] | None = None,
                 host: str = "127.0.0.1", properties: dict[str, str] | None = None,
                 start_timeout: float = 30.0) -> None:
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="suoi-node-"))
        self.host = host
        if properties is None:
            port, cport = free_ports(2)
            properties = kraft_properties(1, port, cport, f"1@{host}:{cport}", host=host)
        self.properties = {"log.dirs": str(self.data_dir / "data"), **properties, **(overrides or {})}
        self.start_timeout = start_timeout
        self.broker: Any = None  # suoi.broker.Broker while running
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The client (PLAINTEXT) port."""
        first = self.properties["listeners"].split(",")[0]
        return int(first.rsplit(":", 1)[1])

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def node_id(self) -> int:
        return int(self.properties["node.id"])

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> InProcessNode:
        """Start the node and wait until it serves clients (`launch` + `wait_ready`)."""
        return self.launch().wait_ready()

    def launch(self) -> InProcessNode:
        """Start the node without waiting for clients to be served: a KRaft node serves them
        once the quorum unfenced it, so a cluster's nodes are launched together first."""
        from suoi.broker import Broker
        from suoi.cluster.settings import KRaftSettings
        from suoi.config import load_config

        if self._thread is not None:
            raise RuntimeError("node already running")
        config = load_config({}, self.properties)  # as `suoi broker` loads and checks it
        KRaftSettings.from_config(config)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        loop = _new_event_loop()
        started = threading.Event()
        self._loop = loop
        self._thread = threading.Thread(target=_run_loop, args=(loop, started), daemon=True,
                                        name=f"suoi-node-{self.node_id}")
        self._thread.start()
        started.wait()
        self.broker = Broker(config)
        try:
            self.run(self.broker.start(), self.start_timeout)
        except BaseException:
            with contextlib.suppress(Exception):  # close what the start opened (listeners, logs)
                self.run(self.broker.stop(), 10)
            self.broker.dir_locks.release()  # even when that stop timed out: the dirs are free again
            self.broker = None
            self._stop_loop()
            raise
        return self

    def wait_ready(self) -> InProcessNode:
        """Until the client port accepts connections (start_timeout)."""
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=1.0):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"node {self.node_id} did not serve {self.bootstrap} within "
                                       f"{self.start_timeout}s") from None
                time.sleep(0.002)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run a coroutine on the node's event loop and wait for its result (from any thread
        but the node's own)."""
        if self._loop is None:
            raise RuntimeError("node not running")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"node {self.node_id}: no result within {timeout}s") from None

    def stop(self, timeout: float = 20.0) -> None:
        """A clean shutdown (as SIGTERM to `suoi broker`): leadership handed over, logs flushed."""
        if self._loop is None:
            return
        try:
            if self.broker is not None:
                self.run(self.broker.stop(), timeout)
        except TimeoutError:  # as EmbeddedBroker kills a process that does not stop: drop the loop
            log.warning("node %d did not stop within %.0fs; cancelling its tasks", self.node_id, timeout)
            self._dump_tasks()
        finally:
            if self.broker is not None:  # even when its stop timed out: a restart here takes them again
                self.broker.dir_locks.release()
            self.broker = None
            self._stop_loop()

    def _dump_tasks(self) -> None:
        """Where the node's tasks wait, and what its loop thread runs (a stop that hangs is a bug
        worth a WARNING line each): each task's await chain down to the innermost coroutine."""
        loop, thread = self._loop, self._thread
        if loop is None:
            return
        frame = sys._current_frames().get(thread.ident) if thread is not None and thread.ident else None
        if frame is not None:
            log.warning("node %d loop thread runs %s", self.node_id, " > ".join(reversed(
                [_where(f) for f, _ in traceback.walk_stack(frame)][:12])))
        for task in asyncio.all_tasks(loop):
            log.warning("node %d task %s waits at %s", self.node_id, task.get_name(), _await_chain(task))

    def restart(self) -> InProcessNode:
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        if not thread.is_alive():
            loop.close()

    def __enter__(self) -> InProcessNode:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- helpers for tests --------------------------------------------------------------
    def create_topic(self, name: str, partitions: int = 1, replication_factor: int = -1,
                     configs: dict[str, str] | None = None, timeout: float = 30.0) -> None:
        """Create a topic through this node (CreateTopics, as an admin client sends it) and
        wait until every partition has a leader in its Metadata. Raises RuntimeError with
        Kafka's error name if the node refuses (e.g. TOPIC_ALREADY_EXISTS)."""
        self.run(create_topic(self.host, self.port, name, partitions, replication_factor, configs, timeout),
                 timeout + 5)


async def create_topic(host: str, port: int, name: str, partitions: int = 1, replication_factor: int = -1,
                       configs: dict[str, str] | None = None, timeout: float = 30.0) -> None:
    """CreateTopics to the broker at host:port with suoi's client, then poll its Metadata until
    every partition of the topic has a leader (any broker, in-process or not)."""
    from kio.schema.create_topics.v7.request import CreatableTopic, CreatableTopicConfig, CreateTopicsRequest
    from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
    from kio.schema.types import TopicName
    from kio.static.primitive import i16, i32, i32Timedelta

    from suoi.client import request_once
    from suoi.model import ErrorCode

    request = CreateTopicsRequest(topics=(CreatableTopic(
        name=TopicName(name), num_partitions=i32(partitions), replication_factor=i16(replication_factor),
        assignments=(), configs=tuple(CreatableTopicConfig(name=k, value=v) for k, v in (configs or {}).items())),),
        timeout=i32Timedelta.parse(datetime.timedelta(seconds=timeout)), validate_only=False)
    answer = (await request_once(host, port, request, client_id="suoi-testing", timeout=timeout)).topics[0]
    if answer.error_code != ErrorCode.none:
        raise RuntimeError(f"CreateTopics {name!r}: {ErrorCode(answer.error_code).name.upper()}: "
                           f"{answer.error_message}")
    probe = MetadataRequest(topics=(MetadataRequestTopic(topic_id=None, name=TopicName(name)),),
                            allow_auto_topic_creation=False, include_topic_authorized_operations=False)
    deadline = time.monotonic() + timeout
    while True:
        topic = (await request_once(host, port, probe, client_id="suoi-testing", timeout=timeout)).topics[0]
        if topic.error_code == ErrorCode.none and topic.partitions and all(
                p.error_code == ErrorCode.none and p.leader_id >= 0 for p in topic.partitions):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {name!r} has no leader for every partition after {timeout}s")
        await asyncio.sleep(0.01)


#: A test cluster forms and fails over in well under a second: brokers heartbeat every 200 ms
#: (Kafka: 2 s; the first heartbeat unfences a broker), the voters' first election waits
#: 500 ms at most (Kafka: 1 s), a silent broker is fenced after 3 s (Kafka: 9 s).
CLUSTER_TIMINGS = {"broker.heartbeat.interval.ms": "200", "controller.quorum.election.timeout.ms": "500",
                   "broker.session.timeout.ms": "3000"}


class InProcessCluster:
    """`size` combined KRaft nodes in this process, one quorum (every node a voter), with
    `CLUSTER_TIMINGS` unless `overrides` says otherwise."""

    def __init__(self, size: int = 3, directory: str | Path | None = None, *,
                 overrides: dict[str, str] | None = None, host: str = "127.0.0.1",
                 start_timeout: float = 60.0) -> None:
        from suoi.log.meta_properties import random_uuid

        self._own_dir = directory is None
        self.directory = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="suoi-cluster-"))
        ports = free_ports(2 * size)
        pairs = list(zip(ports[::2], ports[1::2], strict=True))
        voters = ",".join(f"{i}@{host}:{c}" for i, (_, c) in enumerate(pairs, 1))
        cluster_id = random_uuid()
        self.nodes = {i: InProcessNode(self.directory / f"node-{i}", host=host, start_timeout=start_timeout,
                                       overrides={**CLUSTER_TIMINGS, **(overrides or {})}, properties=kraft_properties(
                                           i, p, c, voters, host=host, cluster_id=cluster_id))
                      for i, (p, c) in enumerate(pairs, 1)}

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes.values())

    def start(self) -> InProcessCluster:
        try:
            for node in self.nodes.values():  # together: alone, a node has no quorum and never serves
                node.launch()
            for node in self.nodes.values():
                node.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Every node at once: stopped one by one, the last ones would lose their quorum and
        wait out a controlled shutdown that no controller answers."""
        running = [n for n in self.nodes.values() if n.broker is not None]
        with concurrent.futures.ThreadPoolExecutor(len(running) or 1) as pool:
            for f in [pool.submit(n.stop) for n in running]:
                f.result()
        for n in self.nodes.values():
            n.stop()  # any node whose start failed half-way

    def create_topic(self, name: str, partitions: int = 1, replication_factor: int = -1,
                     configs: dict[str, str] | None = None, timeout: float = 30.0) -> None:
        """Create a topic through the first node (`InProcessNode.create_topic`)."""
        next(iter(self.nodes.values())).create_topic(name, partitions, replication_factor, configs, timeout)

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> InProcessCluster:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _where(frame: FrameType) -> str:
    return f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno}"


def _await_chain(task: asyncio.Task[Any]) -> str:
    """`task`'s coroutines from the outermost to the one suspended (Task.get_stack shows only the
    outermost), then what that one awaits."""
    where: list[str] = []
    awaited: Any = task.get_coro()
    for _ in range(50):  # bounded: a chain is a few dozen coroutines at most
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is None:
            break
        where.append(_where(frame))
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    if awaited is not None:
        where.append(type(awaited).__name__)
    return " > ".join(where) or "?"


def _new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when installed, as `suoi broker` runs on it."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _run_loop(loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(started.set)
    try:
        loop.run_forever()
    finally:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:  # whatever the broker's stop left (e.g. a start that failed half-way)
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
