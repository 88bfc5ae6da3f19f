"""QuorumDriver: the asyncio shell around the sans-IO ``RaftNode``.

It owns the node (with a ``FileStorage`` in ``<metadata dir>/__cluster_metadata-0``), a
``NodeClient`` to the other voters, and one timer task. It only moves messages and time:

* **timer**: ``poll(now)`` whenever ``next_deadline()`` passes (a loop timer whose callback
  polls), in the next loop iteration after anything that may change the node's plans (an
  inbound request, ``append``, ``resign``), and at once after a response (a follower's next
  Fetch leaves with no loop iteration in between). No task and no ``wait_for``: on a loop
  busy with data traffic every hop is a whole iteration (hundreds of ms under load), and an
  Event-woken ``wait_for`` loop took 3-4 of them per poll -- a parked Fetch was answered 1.9 s
  after its 0.5 s wait, and the followers' 2 s fetch timeout ran out with the leader alive.
* **outbound**: every request envelope the node returns goes out as a kio request on the
  target voter's connection (lane ``fetch`` for Fetch/FetchSnapshot, ``control`` for the rest,
  so a parked long-poll Fetch never delays a Vote); the decoded answer is fed back with
  ``handle``. A transport failure (refused, connection lost) is reported with
  ``request_failed`` (a follower then retries after the backoff and stops naming that leader
  as live); a timeout is dropped: the node's own request timeouts drive retries.
* **inbound**: API handlers call ``await handle_request(message)``; the driver feeds the
  node an envelope with a fresh correlation id and parks a future keyed by (source,
  correlation id). The node answers at once, or later for a parked Fetch (long poll up to its
  ``max_wait_ms``), and the timer or a commit releases it.

Threading: everything on one event loop, except the metadata log's fsyncs (below); the node is
never called concurrently. Listener
callbacks (``on_commit``, ``on_load_snapshot``, ``on_leader_change``) run inside the driver's
calls into the node, so they must be quick and must not call back into the driver
synchronously (schedule work instead).

Flushes: the node runs with ``async_flush``. When it ``wants_flush`` the driver calls
``begin_flush`` (the buffered appends are written on the loop: a page-cache write) and runs the
job's fsyncs on its own one-thread executor, one flush at a time; whatever is appended meanwhile
waits for the next one (requests made while a flush runs coalesce into it). ``flush_done`` feeds
the result back: only then does the leader count the flushed entries toward the high watermark,
and a follower send its next Fetch (whose offset the leader counts). An fsync under produce load
took 5-20 ms (17.7 ms measured at a topic's creation), which every client of the node waited out
while it ran on the loop. A failed fsync is fatal, as any storage error of the core. Quorum-state
writes (votes, epochs) stay synchronous: they must be durable before the node answers or acts,
and they happen once per election. Snapshots are written synchronously too (rare).

Lifecycle: ``QuorumDriver(...)`` -> ``register_listener`` (any time) -> ``await start()`` ->
... -> ``await stop()``. A stopped driver is not restarted; build a new one on the same
directory (that is what a process restart does). A ``RaftSafetyError`` or any other exception
from the core is fatal: the driver stops serving and records it in ``failure``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from suoi.client import NodeClient, UnknownNodeError
from suoi.model.errors import ErrorCode, KafkaError
from suoi.raft import (
    DescribeQuorumResponse,
    Envelope,
    FetchRequest,
    FetchSnapshotRequest,
    FileStorage,
    FlushJob,
    LeaderAndEpoch,
    Message,
    NotLeaderError,
    RaftConfig,
    RaftListener,
    RaftNode,
    SnapshotId,
)
from suoi.raft.state import Follower, Role
from suoi.raft_driver.cluster_mismatch import ClusterIdMismatchLog
from suoi.raft_driver.codec import RaftCodecError, request_source, request_to_kio, response_from_kio
from suoi.raft_driver.properties import parse_voters

__all__ = ["QuorumDriver", "QuorumUnavailableError"]

log = logging.getLogger("suoi.raft")

METADATA_LOG_DIRNAME = "__cluster_metadata-0"


class QuorumUnavailableError(KafkaError):
    """The driver cannot answer (not started, stopping, failed, or the answer timed out)."""

    error_code = ErrorCode.request_timed_out


def _default_clock() -> Callable[[], int]:
    """Wall-clock milliseconds that never go back (anchored once, advanced by the monotonic clock):
    DescribeQuorum reports wall-clock times as Kafka does, and timers are immune to clock steps."""
    wall0 = time.time()
    mono0 = time.monotonic()
    return lambda: int((wall0 + time.monotonic() - mono0) * 1000)


class QuorumDriver:
    def __init__(
        self,
        node_id: int,
        voters: str | Mapping[int, tuple[str, int]],
        metadata_dir: str | Path,
        *,
        config: RaftConfig | None = None,
        pool: NodeClient | None = None,
        listener_name: str = "CONTROLLER",
        rng: random.Random | None = None,
        clock: Callable[[], int] | None = None,
        fsync: bool = True,
    ) -> None:
        self.node_id = node_id
        self.voters = parse_voters(voters)
        self.metadata_dir = Path(metadata_dir)
        self.config = config or RaftConfig()
        self._own_pool = pool is None
        self.pool = pool or NodeClient(client_id=f"suoi-raft-{node_id}")
        for vid, (host, port) in self.voters.items():
            if vid != node_id:
                self.pool.register(vid, host, port)
        own = self.voters.get(node_id)
        self.listener_name = listener_name
        self._endpoint = (listener_name, own[0], own[1]) if own else None
        self._rng = rng or random.Random()  # fresh entropy: correlation ids must differ per incarnation
        self._clock = clock or _default_clock()
        self._fsync = fsync
        self._storage: FileStorage | None = None
        self._node: RaftNode | None = None
        self._listeners: list[RaftListener] = []
        #: The one pending call of `_tick` (a timer at the next deadline, or soon after a kick).
        self._timer: asyncio.TimerHandle | asyncio.Handle | None = None
        self._timer_soon = False
        self._busy = 0
        self._sends: set[asyncio.Task[None]] = set()
        self._waiting: dict[tuple[int, int], asyncio.Future[Message]] = {}
        self._commit_waiters: list[tuple[int, int, asyncio.Future[int]]] = []
        self._next_inbound = 1
        self._running = False
        self.failure: BaseException | None = None
        self._mismatch = ClusterIdMismatchLog(log, self.config.cluster_id)
        #: One thread for the metadata log's fsyncs (not the loop's default executor: a queue of
        #: other `to_thread` jobs must not hold back a commit).
        self._flush_executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._flushing: asyncio.Future[None] | None = None

    # ================================================================== lifecycle
    async def start(self) -> None:
        if self._node is not None:
            raise RuntimeError("QuorumDriver already started (build a new one to restart)")
        directory = self.metadata_dir / METADATA_LOG_DIRNAME
        self._storage = FileStorage(directory, fsync=self._fsync)
        self._node = RaftNode(
            self.node_id, self.voters, self._storage, self.config, self._rng, now_ms=self._clock(), async_flush=True
        )
        self._flush_executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"suoi-raft-flush-{self.node_id}")
        for listener in self._listeners:
            self._node.register_listener(listener)
        self._running = True
        self._kick()
        log.info("raft node %d started (%s voters=%s, log=[%d, %d) in %s)", self.node_id,
                 "voter" if self._node.is_voter else "observer", sorted(self.voters),
                 self._node.log_start_offset, self._node.log_end_offset, directory)

    async def stop(self, *, graceful: bool = True, resign_timeout: float = 1.0) -> None:
        """Stop. ``graceful``: a leader first resigns (EndQuorumEpoch to the others, so they
        elect at once rather than after the fetch timeout) and waits up to
        ``resign_timeout`` seconds for those sends. ``graceful=False`` is a crash, minus
        whatever the OS had not yet written."""
        if not self._running:
            return
        node = self._node
        assert node is not None
        if graceful and node.is_leader and self.failure is None:
            self._call(node.resign)
            self._call(lambda: node.poll(self._clock()))
            pending = [t for t in self._sends if not t.done()]
            if pending:
                await asyncio.wait(pending, timeout=resign_timeout)
        self._running = False
        self._cancel_timer()
        for task in list(self._sends):
            task.cancel()
        await asyncio.gather(*self._sends, return_exceptions=True)
        if self._flushing is not None:  # the fsync in flight completes (its result is not needed)
            await asyncio.wait([self._flushing])
        if self._flush_executor is not None:
            self._flush_executor.shutdown(wait=False)
        self._fail_waiters(QuorumUnavailableError(f"raft node {self.node_id} stopped"))
        if self._own_pool:
            await self.pool.close()
        if self._storage is not None:
            try:
                self._storage.close()
            except OSError:
                log.exception("closing the metadata log failed")
        log.info("raft node %d stopped", self.node_id)

    @property
    def running(self) -> bool:
        return self._running

    # ================================================================== public API
    @property
    def node(self) -> RaftNode:
        if self._node is None:
            raise RuntimeError("QuorumDriver not started")
        return self._node

    @property
    def leader_and_epoch(self) -> LeaderAndEpoch:
        return self.node.leader_and_epoch

    @property
    def is_leader(self) -> bool:
        return self._running and self.node.is_leader

    @property
    def high_watermark(self) -> int:
        return self.node.high_watermark

    @property
    def live_leader_id(self) -> int | None:
        """The leader, unless it is unreachable or an election runs (``RaftNode.live_leader_id``)."""
        return self.node.live_leader_id if self._running else None

    def register_listener(self, listener: RaftListener) -> None:
        """Deliver the committed log (latest snapshot first) to ``listener``; see the module
        docstring for the rules callbacks must follow."""
        self._listeners.append(listener)
        if self._node is not None:
            self._node.register_listener(listener)
            self._kick()

    def append(self, payloads: Sequence[bytes], *, epoch: int | None = None) -> int:
        """Leader only: append entries; returns the offset of the last. Raises NotLeaderError.
        They are flushed and replicated right away; ``wait_committed`` tells when they commit."""
        self._check_running()
        offset = self.node.append(payloads, epoch=epoch)
        self._maybe_flush()
        self._kick()
        return offset

    async def wait_committed(self, offset: int, epoch: int, timeout: float | None = None) -> int:
        """Wait until ``offset`` (appended in ``epoch``) is committed; returns the high watermark.
        Raises NotLeaderError if the entry was lost, or leadership moved on before it committed
        (then its fate is unknown, as for Kafka's NOT_CONTROLLER), QuorumUnavailableError on stop."""
        self._check_running()
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._commit_waiters.append((offset, epoch, fut))
        self._check_commit_waiters()
        return await asyncio.wait_for(fut, timeout)

    async def append_and_wait(self, payloads: Sequence[bytes], timeout: float | None = None) -> int:
        """``append`` then ``wait_committed``; returns the offset of the last entry."""
        epoch = self.node.epoch
        offset = self.append(payloads, epoch=epoch)
        await self.wait_committed(offset, epoch, timeout)
        return offset

    def describe_quorum(self) -> DescribeQuorumResponse:
        return self.node.describe_quorum()

    def create_snapshot(self, end_offset: int, data: bytes) -> SnapshotId:
        """Store the state machine's snapshot of every committed entry below ``end_offset``."""
        self._check_running()
        return self.node.create_snapshot(end_offset, data)

    def resign(self) -> bool:
        """Graceful leader step-down (controlled shutdown); False if not the leader."""
        self._check_running()
        done = bool(self._call(self.node.resign))
        self._kick()
        return done

    async def handle_request(self, message: Message, *, source: int | None = None,
                             timeout: float | None = None) -> Message:
        """Feed an inbound Raft request to the node; return its response (a parked Fetch
        resolves when the leader answers it). Raises QuorumUnavailableError."""
        if not self._running or self.failure is not None:
            raise QuorumUnavailableError(f"raft node {self.node_id} is not running")
        src = request_source(message) if source is None else source
        self._mismatch.received(src, type(message).__name__, getattr(message, "cluster_id", None))
        corr = self._next_inbound
        self._next_inbound += 1
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        key = (src, corr)
        self._waiting[key] = fut
        self._feed(Envelope(src, self.node_id, corr, message))
        if timeout is None:
            wait_ms = message.max_wait_ms if isinstance(message, FetchRequest) else 0
            timeout = (wait_ms + self.config.request_timeout_ms) / 1000
        try:
            async with asyncio.timeout(timeout):  # not wait_for: one loop hop fewer to the answer (3.11)
                return await fut
        except TimeoutError:
            raise QuorumUnavailableError(f"raft node {self.node_id} did not answer within {timeout}s") from None
        finally:
            self._waiting.pop(key, None)

    # ================================================================== plumbing
    def _check_running(self) -> None:
        if not self._running or self.failure is not None:
            raise QuorumUnavailableError(f"raft node {self.node_id} is not running") from self.failure

    def _kick(self) -> None:
        """Poll in the next loop iteration (once, however many kicks come first)."""
        if not self._running or self._timer_soon:
            return
        self._cancel_timer()
        self._timer = asyncio.get_running_loop().call_soon(self._tick)
        self._timer_soon = True

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_soon = False

    def _tick(self) -> None:
        """Poll the node, then arm the timer for its next deadline."""
        self._timer, self._timer_soon = None, False
        if not self._running or self.failure is not None:
            return
        node = self.node
        self._call(lambda: node.poll(self._clock()))
        if self.failure is not None or not self._running or self._timer is not None:
            return
        loop = asyncio.get_running_loop()
        delay = (node.next_deadline() - self._clock()) / 1000
        if delay <= 0:
            self._busy += 1  # due again at once: next iteration, and never spin hot
            self._timer = loop.call_soon(self._tick) if self._busy < 50 else loop.call_later(0.001, self._tick)
            self._timer_soon = self._busy < 50
        else:
            self._busy = 0
            self._timer = loop.call_later(delay, self._tick)

    def _call(self, fn: Callable[[], Any]) -> Any:
        """Call into the node; route what it returns; a failure of the core is fatal."""
        if self.failure is not None:
            return None
        role = self._node.role if self._node is not None else None
        try:
            result = fn()
        except NotLeaderError:
            raise
        except Exception as exc:
            log.critical("raft node %d failed; it stops serving the quorum", self.node_id, exc_info=True)
            self.failure = exc
            self._fail_waiters(QuorumUnavailableError(f"raft node {self.node_id} failed: {exc!r}"))
            return None
        if self._node is not None and self._node.role is not role:
            self._log_transition(role)
        if isinstance(result, list):
            self._route(result)
        self._maybe_flush()
        self._check_commit_waiters()
        return result

    def _maybe_flush(self) -> None:
        """Start a flush of the metadata log if the node wants one and none is running: the
        buffers are written here, the fsyncs on the flush thread (module docstring)."""
        node = self._node
        if self._flushing is not None or node is None or not self._running or self.failure is not None:
            return
        if not node.wants_flush:
            return
        try:
            job = node.begin_flush()
        except Exception as exc:
            self._flush_failed(exc)
            return
        loop = asyncio.get_running_loop()
        if job.run is None:  # nothing to fsync (fsync=False)
            fut: asyncio.Future[None] = loop.create_future()
            fut.set_result(None)
        else:
            assert self._flush_executor is not None
            fut = loop.run_in_executor(self._flush_executor, job.run)
        self._flushing = fut
        fut.add_done_callback(lambda f: self._flushed(job, f))

    def _flushed(self, job: FlushJob, fut: asyncio.Future[None]) -> None:
        """On the loop, once the flush thread has fsynced ``job``: tell the node, then poll (a
        follower's next Fetch leaves now) and start the next flush if more was written."""
        self._flushing = None
        if not self._running or self.failure is not None:
            return
        exc = fut.exception()
        if exc is not None:
            self._flush_failed(exc)
            return
        node = self.node
        self._call(lambda: node.flush_done(job, self._clock()))
        if self._running and self.failure is None:
            self._cancel_timer()
            self._tick()

    def _flush_failed(self, exc: BaseException) -> None:
        log.critical("raft node %d: flushing the metadata log failed; it stops serving the quorum", self.node_id,
                     exc_info=exc)
        self.failure = exc
        self._fail_waiters(QuorumUnavailableError(f"raft node {self.node_id} failed: {exc!r}"))

    def _log_transition(self, old: Role | None) -> None:
        """One INFO line per role change (Kafka logs its quorum state transitions too): what a
        leader lost under load is found by, with how long a follower had gone without an answer."""
        node = self.node
        new = node.role
        why = ""
        if isinstance(old, Follower) and not isinstance(new, Follower):
            last = old.last_fetch_ok_ms
            why = f" (last fetch answer {self._clock() - last} ms ago)" if last is not None else " (no fetch answered)"
        log.info("raft node %d: %s -> %s%s", self.node_id, old, new, why)

    def _feed(self, envelope: Envelope) -> None:
        node = self.node
        self._call(lambda: node.handle(envelope, self._clock()))
        if envelope.is_request:
            self._kick()
        else:  # an answer: what it brings on (a follower's next Fetch) goes out now
            self._cancel_timer()
            self._tick()

    def _route(self, envelopes: Iterable[Envelope]) -> None:
        for env in envelopes:
            if env.is_request:
                if not self._running:
                    continue
                task = asyncio.create_task(self._send(env))
                self._sends.add(task)
                task.add_done_callback(self._sends.discard)
            else:
                fut = self._waiting.pop((env.destination, env.correlation_id), None)
                if fut is not None and not fut.done():
                    fut.set_result(env.message)

    async def _send(self, env: Envelope) -> None:
        msg = env.message
        lane = "fetch" if isinstance(msg, FetchRequest | FetchSnapshotRequest) else "control"
        timeout = self.config.request_timeout_ms / 1000
        try:
            entity = request_to_kio(msg, destination=env.destination, leader_endpoint=self._endpoint)
            response = await self.pool.request(env.destination, entity, timeout=timeout, lane=lane)
            answer = response_from_kio(response)
        except (ConnectionError, UnknownNodeError) as exc:
            log.debug("raft %d -> %d %s failed: %s", self.node_id, env.destination, type(msg).__name__, exc)
            if self._running:  # the node retries sooner, and stops naming an unreachable leader
                node = self.node
                self._call(lambda: node.request_failed(env.correlation_id, self._clock()))
                self._kick()
            return
        except TimeoutError as exc:
            log.debug("raft %d -> %d %s timed out: %s", self.node_id, env.destination, type(msg).__name__, exc)
            return
        except (RaftCodecError, KafkaError, ValueError) as exc:
            log.warning("raft %d: bad %s answer from %d: %s", self.node_id, type(msg).__name__, env.destination, exc)
            return
        if getattr(answer, "error_code", None) == ErrorCode.inconsistent_cluster_id:
            self._mismatch.answered(f"node {env.destination}", type(msg).__name__)
        if self._running:
            self._feed(Envelope(env.destination, self.node_id, env.correlation_id, answer))

    def _check_commit_waiters(self) -> None:
        if not self._commit_waiters or self._node is None:
            return
        node = self._node
        keep = []
        for offset, epoch, fut in self._commit_waiters:
            if fut.done():
                continue
            if node.high_watermark > offset:
                entry = node.log.entry(offset)
                if entry is None or entry.epoch == epoch:  # None: already folded into a snapshot
                    fut.set_result(node.high_watermark)
                else:
                    fut.set_exception(NotLeaderError(node.leader_and_epoch))
            elif node.epoch != epoch or not node.is_leader:
                fut.set_exception(NotLeaderError(node.leader_and_epoch))
            else:
                keep.append((offset, epoch, fut))
        self._commit_waiters = keep

    def _fail_waiters(self, error: BaseException) -> None:
        waiting, self._waiting = self._waiting, {}
        for fut in waiting.values():
            if not fut.done():
                fut.set_exception(error)
        commits, self._commit_waiters = self._commit_waiters, []
        for _, _, cf in commits:
            if not cf.done():
                cf.set_exception(error)

    def __repr__(self) -> str:
        return f"QuorumDriver(node={self.node_id}, {self._node!r}, running={self._running})"
