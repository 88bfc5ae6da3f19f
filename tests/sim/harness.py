"""A tiny deterministic network for focused Raft tests: zero latency, FIFO delivery, links that
can be cut, a manual clock that jumps to the next deadline."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable

from suoi.raft import Envelope, FetchRequest, MemoryStorage, RaftConfig, RaftNode

CONFIG = RaftConfig(
    election_timeout_ms=100,
    election_backoff_max_ms=100,
    fetch_timeout_ms=200,
    request_timeout_ms=150,
    retry_backoff_ms=10,
    fetch_max_wait_ms=50,
    fetch_max_entries=50,
    fetch_snapshot_max_bytes=7,
)


class Recorder:
    def __init__(self) -> None:
        self.committed: list = []
        self.snapshots: list = []
        self.leaders: list = []

    def on_commit(self, entries):  # noqa: ANN001
        self.committed.extend(entries)

    def on_load_snapshot(self, snapshot_id, data):  # noqa: ANN001
        self.snapshots.append((snapshot_id, data))
        self.committed = []

    def on_leader_change(self, leader):  # noqa: ANN001
        self.leaders.append(leader)


class Net:
    def __init__(self, voters: int = 3, observers: int = 0, config: RaftConfig = CONFIG, seed: int = 0) -> None:
        self.voters = list(range(1, voters + 1))
        self.ids = self.voters + [100 + i for i in range(observers)]
        self.config = config
        self.seed = seed
        self.now = 0
        self.storages = {i: MemoryStorage() for i in self.ids}
        self.nodes: dict[int, RaftNode] = {}
        self.recorders: dict[int, Recorder] = {}
        self.down: set[int] = set()
        self.cut: set[tuple[int, int]] = set()
        self.queue: deque[Envelope] = deque()
        self.sent: list[Envelope] = []
        for i in self.ids:
            self.start(i)

    def start(self, i: int) -> RaftNode:
        node = RaftNode(i, self.voters, self.storages[i], self.config, random.Random(self.seed * 100 + i), now_ms=self.now)
        rec = Recorder()
        node.register_listener(rec)
        self.nodes[i] = node
        self.recorders[i] = rec
        self.down.discard(i)
        return node

    def crash(self, i: int) -> None:
        self.down.add(i)
        self.storages[i].crash()

    def isolate(self, i: int) -> None:
        for j in self.ids:
            if j != i:
                self.cut.add((i, j))
                self.cut.add((j, i))

    def heal(self) -> None:
        self.cut.clear()

    def emit(self, out: list[Envelope]) -> None:
        for env in out:
            self.sent.append(env)
            if (env.source, env.destination) not in self.cut:
                self.queue.append(env)

    def deliver_all(self) -> None:
        while self.queue:
            env = self.queue.popleft()
            if env.destination in self.down or env.destination not in self.nodes:
                continue
            self.emit(self.nodes[env.destination].handle(env, self.now))

    def tick(self) -> None:
        """Deliver everything, then move the clock to the next deadline and poll who is due."""
        self.deliver_all()
        live = [n for i, n in self.nodes.items() if i not in self.down]
        t = min(n.next_deadline() for n in live)
        self.now = max(self.now, t)
        for n in live:
            if n.next_deadline() <= self.now:
                self.emit(n.poll(self.now))
        self.deliver_all()

    def run_until(self, pred: Callable[[], bool], max_ms: int = 5000) -> None:
        end = self.now + max_ms
        while not pred():
            if self.now > end:
                raise AssertionError(f"condition not reached by t={self.now}: {list(self.nodes.values())}")
            self.tick()

    def run_for(self, ms: int) -> None:
        end = self.now + ms
        while self.now < end:
            self.tick()

    def leader(self) -> RaftNode | None:
        leaders = [n for i, n in self.nodes.items() if n.is_leader and i not in self.down]
        return leaders[0] if len(leaders) == 1 else None

    def elect(self) -> RaftNode:
        self.run_until(lambda: self.leader() is not None and self.leader().high_watermark > 0)  # type: ignore[union-attr]
        leader = self.leader()
        assert leader is not None
        return leader

    def converged(self) -> bool:
        leader = self.leader()
        if leader is None:
            return False
        return all(
            n.high_watermark == leader.log.end_offset and n.log.end_offset == leader.log.end_offset
            for i, n in self.nodes.items()
            if i not in self.down and (i, leader.node_id) not in self.cut
        )


def request(node: RaftNode, source: int, msg, now: int | None = None):  # noqa: ANN001
    """Send one request to ``node`` and return its direct response message (or None)."""
    out = node.handle(Envelope(source, node.node_id, 4242, msg), node._now if now is None else now)
    answers = [e.message for e in out if e.correlation_id == 4242 and e.destination == source]
    return answers[0] if answers else None


def fetch(replica: int, epoch: int, offset: int, last_epoch: int, wait: int = 0) -> FetchRequest:
    return FetchRequest(
        cluster_id=None,
        replica_id=replica,
        current_leader_epoch=epoch,
        fetch_offset=offset,
        last_fetched_epoch=last_epoch,
        max_wait_ms=wait,
    )
