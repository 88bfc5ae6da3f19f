"""Three QuorumDrivers in one process, each behind a real Kafka listener on 127.0.0.1
(`suoi.net.server.start_listener` + the broker's dispatch and `api/raft_apis.py`), talking
through `suoi.client`: election, replication and commit on all three, fail-over when the leader
stops (gracefully or not), restart from FileStorage with catch-up, and bad input.

Conditions are polled against deadlines; nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
from kio.schema.errors import ErrorCode

from suoi.api.listener_roles import ListenerRole
from suoi.client import KafkaClientConnection
from suoi.config import Listener
from suoi.controller.image import MetadataImage
from suoi.metrics_recorder import MetricsRecorder
from suoi.net.server import start_listener
from suoi.raft import Entry, LeaderAndEpoch, RaftConfig, SnapshotId
from suoi.raft.messages import DescribeQuorumRequest, FetchRequest, VoteRequest
from suoi.raft_driver import QuorumDriver
from suoi.raft_driver.codec import request_to_kio, response_from_kio

pytestmark = pytest.mark.timeout(90)

T = TypeVar("T")

FAST = RaftConfig(election_timeout_ms=300, election_backoff_max_ms=300, fetch_timeout_ms=800,
                  request_timeout_ms=500, fetch_max_wait_ms=200, retry_backoff_ms=20, cluster_id="test-cluster")


class Recorder:
    """A RaftListener that keeps the committed data entries."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.leaders: list[LeaderAndEpoch] = []
        self.snapshots: list[SnapshotId] = []

    def on_commit(self, entries: list[Entry]) -> None:
        self.entries.extend(e for e in entries if not e.control)

    def on_load_snapshot(self, snapshot_id: SnapshotId, data: bytes) -> None:
        self.snapshots.append(snapshot_id)
        self.entries = [Entry(-1, -1, p) for p in data.split(b"\n") if p]

    def on_leader_change(self, leader: LeaderAndEpoch) -> None:
        self.leaders.append(leader)

    @property
    def payloads(self) -> list[bytes]:
        return [e.payload for e in self.entries]


class _NotRunning:
    running = False  # the Raft handlers answer with an error (a node between listen and start)


class _KRaft:
    """What the Raft handlers and the dispatcher use of a node's KRaft services: its driver, and
    an empty metadata image (no client quotas to apply)."""

    def __init__(self, host: Host) -> None:
        self._host = host
        self.image = MetadataImage.EMPTY

    @property
    def driver(self) -> Any:
        return self._host.quorum or _NotRunning()


class Host:
    """What `start_listener` and the dispatcher need from a broker, plus the quorum. Its one
    listener is a CONTROLLER listener (every node answers DescribeQuorum for itself there)."""

    def __init__(self) -> None:
        self.connections: set[Any] = set()
        self.quorum: QuorumDriver | None = None
        self.kraft = _KRaft(self)
        self.config = SimpleNamespace(controller_listener_names=["CONTROLLER"])
        self.bound: list[Listener] = []
        self.server: asyncio.Server | None = None
        self.port = 0
        self.metrics = MetricsRecorder()  # dispatch times every request
        self.authorizer = None  # no ACLs

    async def listen(self, port: int = 0) -> None:
        self.server = await start_listener(self, "127.0.0.1", port, 100 << 20,  # type: ignore[arg-type]
                                           role=ListenerRole.CONTROLLER)
        self.port = self.server.sockets[0].getsockname()[1]
        self.bound = [Listener("CONTROLLER", "127.0.0.1", self.port)]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            for conn in list(self.connections):
                conn.close()
            await self.server.wait_closed()
            self.server = None


class Cluster:
    def __init__(self, root: Path, n: int = 3, config: RaftConfig = FAST, *, fsync: bool = False) -> None:
        self.root = root
        self.config = config
        self.fsync = fsync
        self.hosts = {i: Host() for i in range(1, n + 1)}
        self.recorders: dict[int, Recorder] = {}
        self.voters = ""

    async def start(self) -> None:
        for h in self.hosts.values():
            await h.listen()
        self.voters = ",".join(f"{i}@127.0.0.1:{h.port}" for i, h in self.hosts.items())
        for i in self.hosts:
            await self.start_node(i)

    async def start_node(self, i: int) -> QuorumDriver:
        host = self.hosts[i]
        if host.server is None:
            await host.listen(host.port)
        driver = QuorumDriver(i, self.voters, self.root / f"node{i}", config=self.config, fsync=self.fsync)
        rec = Recorder()
        driver.register_listener(rec)
        self.recorders[i] = rec
        await driver.start()
        host.quorum = driver
        return driver

    async def stop_node(self, i: int, *, graceful: bool = True) -> None:
        host = self.hosts[i]
        driver = host.quorum
        assert driver is not None
        host.quorum = None
        await host.close()
        await driver.stop(graceful=graceful)

    def driver(self, i: int) -> QuorumDriver:
        d = self.hosts[i].quorum
        assert d is not None
        return d

    def running(self) -> dict[int, QuorumDriver]:
        return {i: h.quorum for i, h in self.hosts.items() if h.quorum is not None}

    def leader(self) -> int | None:
        """The leader every running node agrees on, if there is exactly one."""
        running = self.running()
        leaders = [i for i, d in running.items() if d.is_leader]
        if len(leaders) != 1:
            return None
        lid = leaders[0]
        epoch = running[lid].leader_and_epoch.epoch
        if all(d.leader_and_epoch == LeaderAndEpoch(lid, epoch) for d in running.values()):
            return lid
        return None

    async def close(self) -> None:
        for i in list(self.running()):
            await self.stop_node(i, graceful=False)
        for h in self.hosts.values():
            await h.close()


async def until(cond: Callable[[], T], timeout: float, what: str) -> T:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = cond()
        if value:
            return value
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)  # polling interval


def run(test: Callable[[Cluster], Awaitable[None]], tmp_path: Path, *, fsync: bool = False) -> None:
    async def main() -> None:
        cluster = Cluster(tmp_path, fsync=fsync)
        try:
            await cluster.start()
            await test(cluster)
        finally:
            await cluster.close()

    asyncio.run(main())


def test_elect_replicate_fail_over_restart(tmp_path: Path) -> None:
    async def scenario(c: Cluster) -> None:
        first = await until(c.leader, 10, "a leader known to all three")
        leader = c.driver(first)
        epoch = leader.leader_and_epoch.epoch
        batch1 = [f"a{i}".encode() for i in range(20)]
        await leader.append_and_wait(batch1, timeout=5)
        await until(lambda: all(c.recorders[i].payloads == batch1 for i in c.hosts), 5, "batch1 on all three")

        # many concurrent appends, committed in order
        offsets = [leader.append([f"b{i}".encode()]) for i in range(50)]
        await leader.wait_committed(offsets[-1], epoch, timeout=5)
        expected = batch1 + [f"b{i}".encode() for i in range(50)]
        await until(lambda: all(c.recorders[i].payloads == expected for i in c.hosts), 5, "batch2 on all three")

        # graceful stop of the leader: the others elect a new one quickly
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        end_before_stop = leader.node.log_end_offset
        await c.stop_node(first)
        second = await until(c.leader, 5, "a new leader after a graceful stop")
        assert second != first and c.driver(second).leader_and_epoch.epoch > epoch
        assert loop.time() - t0 < 5
        batch3 = [b"c0", b"c1", b"c2"]
        await c.driver(second).append_and_wait(batch3, timeout=5)  # a majority of 2 of 3 commits
        expected += batch3
        await until(lambda: all(c.recorders[i].payloads == expected for i in c.running()), 5, "batch3 on the two")

        # the stopped node restarts from its FileStorage and catches up
        restarted = await c.start_node(first)
        assert restarted.node.log_end_offset == end_before_stop  # its log survived
        await until(lambda: c.recorders[first].payloads == expected, 10, "restarted node catches up")
        await until(c.leader, 5, "all three agree on the leader")
        assert c.leader() == second

        # a crash (no EndQuorumEpoch) of the leader: fail-over via fetch timeout
        await c.stop_node(second, graceful=False)
        third = await until(c.leader, 8, "a new leader after a crash")
        assert third not in (first, second) or third == first
        await c.driver(third).append_and_wait([b"d0"], timeout=5)
        expected.append(b"d0")
        await until(lambda: all(c.recorders[i].payloads == expected for i in c.running()), 5, "d0 on the two")

        # and the crashed one comes back too: all three logs identical
        await c.start_node(second)
        await until(lambda: all(c.recorders[i].payloads == expected for i in c.hosts), 10, "all caught up")
        await until(c.leader, 5, "one leader")
        ends = {i: d.node.log_end_offset for i, d in c.running().items()}
        await until(lambda: len({d.high_watermark for d in c.running().values()}) == 1, 5, "equal high watermarks")
        logs = {i: d.node.committed(0) for i, d in c.running().items()}
        assert logs[1] == logs[2] == logs[3], ends

    run(scenario, tmp_path)


def test_snapshot_and_lagging_follower(tmp_path: Path) -> None:
    """A follower that missed entries the leader folded into a snapshot gets it by FetchSnapshot."""

    async def scenario(c: Cluster) -> None:
        lid = await until(c.leader, 10, "a leader")
        lagging = next(i for i in c.hosts if i != lid)
        await c.stop_node(lagging, graceful=False)
        leader = c.driver(lid)
        payloads = [f"s{i}".encode() for i in range(30)]
        last = await leader.append_and_wait(payloads, timeout=5)
        sid = leader.create_snapshot(last + 1, b"\n".join(payloads))
        assert leader.node.log_start_offset == sid.end_offset
        more = [b"after-snapshot"]
        await leader.append_and_wait(more, timeout=5)
        await c.start_node(lagging)
        rec = c.recorders[lagging]
        await until(lambda: rec.payloads == payloads + more, 10, "lagging follower installs the snapshot")
        assert rec.snapshots == [sid]

    run(scenario, tmp_path)


def test_rpcs_over_the_wire_and_bad_input(tmp_path: Path) -> None:
    async def scenario(c: Cluster) -> None:
        lid = await until(c.leader, 10, "a leader")
        follower = next(i for i in c.hosts if i != lid)
        epoch = c.driver(lid).leader_and_epoch.epoch

        async def ask(node: int, message: Any, version: int | None = None) -> Any:
            conn = await KafkaClientConnection.connect("127.0.0.1", c.hosts[node].port)
            try:
                return await conn.request(request_to_kio(message, version=version), timeout=5)
            finally:
                await conn.close()

        # DescribeQuorum: the leader describes; a follower names the leader
        dq = response_from_kio(await ask(lid, DescribeQuorumRequest()))
        assert dq.error_code == ErrorCode.none and dq.leader_id == lid and dq.leader_epoch == epoch
        assert [r.replica_id for r in dq.current_voters] == [1, 2, 3]
        dq_f = response_from_kio(await ask(follower, DescribeQuorumRequest(), version=0))
        assert (dq_f.error_code, dq_f.leader_id) == (ErrorCode.not_leader_or_follower, lid)

        # a vote from a non-voter: rejected, quorum unharmed
        vote = VoteRequest(cluster_id="test-cluster", replica_epoch=epoch + 5, replica_id=42,
                           last_offset_epoch=epoch, last_offset=10**6)
        v = response_from_kio(await ask(follower, vote))
        assert v.error_code == ErrorCode.inconsistent_voter_set and not v.vote_granted
        # a vote for another cluster: rejected at top level
        v = response_from_kio(await ask(follower, dataclasses.replace(vote, cluster_id="other", replica_id=lid)))
        assert v.error_code == ErrorCode.inconsistent_cluster_id
        # a fetch with a future epoch: UNKNOWN_LEADER_EPOCH
        fetch = FetchRequest(cluster_id="test-cluster", replica_id=follower, current_leader_epoch=epoch + 3,
                             fetch_offset=0, last_fetched_epoch=0)
        f = response_from_kio(await ask(lid, fetch))
        assert f.error_code == ErrorCode.unknown_leader_epoch and f.leader_id == lid
        # an RPC for another topic partition: INVALID_REQUEST
        entity = request_to_kio(DescribeQuorumRequest())
        bad = dataclasses.replace(entity, topics=(dataclasses.replace(entity.topics[0], topic_name="orders"),))
        conn = await KafkaClientConnection.connect("127.0.0.1", c.hosts[lid].port)
        try:
            assert (await conn.request(bad, timeout=5)).error_code == ErrorCode.invalid_request
        finally:
            await conn.close()
        # nothing of that moved the quorum
        assert c.leader() == lid and c.driver(lid).leader_and_epoch.epoch == epoch
        await c.driver(lid).append_and_wait([b"still-fine"], timeout=5)

    run(scenario, tmp_path)


class LoopHog:
    """Keeps the event loop busy as data traffic does under load: one callback per loop
    iteration that holds the loop for `hold_s`, and counts the iterations."""

    def __init__(self, hold_s: float) -> None:
        self.hold_s = hold_s
        self.iterations = 0
        self._running = False

    def start(self) -> None:
        self._running = True
        asyncio.get_running_loop().call_soon(self._run)

    def stop(self) -> None:
        self._running = False

    def _run(self) -> None:
        if self._running:
            self.iterations += 1
            time.sleep(self.hold_s)  # the synchronous work of one iteration (a big append, say)
            asyncio.get_running_loop().call_soon(self._run)


def test_a_parked_fetch_is_answered_one_iteration_after_its_wait_on_a_busy_loop(tmp_path: Path) -> None:
    """Under load every loop hop costs a whole iteration. The driver's Event-woken wait_for timer
    took 3-4 of them to notice a parked Fetch's expiry, then the answer 2 more: on a loaded
    3-node cluster the leader answered 0.5 s long polls after 1.9 s, and its followers' 2 s fetch
    timeout ran out with the leader alive (the quorum lost its leader during a large produce)."""
    async def scenario(c: Cluster) -> None:
        lid = await until(c.leader, 10, "a leader known to all three")
        leader = c.driver(lid)
        node = leader.node
        fetch = FetchRequest(cluster_id=FAST.cluster_id, replica_id=-1, current_leader_epoch=node.epoch,
                             fetch_offset=node.log_end_offset, last_fetched_epoch=node.log.last_epoch,
                             max_wait_ms=300, high_watermark=node.high_watermark)  # nothing new: parks
        hog = LoopHog(0.1)
        hog.start()
        try:
            first = hog.iterations
            answer = await leader.handle_request(fetch, source=-1)
            took = hog.iterations - first
        finally:
            hog.stop()
        assert answer.error_code == ErrorCode.none and answer.records == ()
        # 300 ms of wait is 3 iterations of 100 ms; the expiry and the answer one more each (4-5
        # here, one more when the wait starts late in an iteration); the Event-woken wait_for timer took 7.
        assert took <= 6, f"a 300 ms long poll took {took} loop iterations of 100 ms"

    run(scenario, tmp_path)


def test_metadata_log_fsyncs_run_on_the_flush_thread_and_commits_survive_a_crash(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With fsync on, every fsync of a metadata log segment runs on a driver's flush thread (not
    the event loop), entries still commit on all three, and a non-graceful stop of all three
    (what survives is what was flushed) keeps every committed entry."""
    segment_fsyncs: list[str] = []  # thread name of each fsync of a .log segment
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".log"):
            segment_fsyncs.append(threading.current_thread().name)
        real_fsync(fd)

    async def scenario(c: Cluster) -> None:
        first = await until(c.leader, 10, "a leader known to all three")
        monkeypatch.setattr(os, "fsync", recording_fsync)
        payloads = [f"topic-{k}".encode() for k in range(20)]
        for p in payloads:
            await c.driver(first).append_and_wait([p], timeout=10)
        await until(lambda: all(c.recorders[i].payloads == payloads for i in c.hosts), 10, "the entries on all three")
        monkeypatch.undo()
        assert len(segment_fsyncs) >= 20  # the leader's own, at least one per commit
        assert {name.rsplit("_", 1)[0] for name in segment_fsyncs} <= {f"suoi-raft-flush-{i}" for i in c.hosts}
        for i in list(c.running()):
            await c.stop_node(i, graceful=False)
        for i in c.hosts:
            await c.start_node(i)
        await until(lambda: all(c.recorders[i].payloads == payloads for i in c.hosts), 15,
                    "every committed entry back on all three after the restart")

    run(scenario, tmp_path, fsync=True)
