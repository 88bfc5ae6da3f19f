"""A deterministic simulation of a KRaft quorum (in the spirit of Kafka's RaftEventSimulationTest).

Everything derives from one seed: a virtual clock, a network that drops, delays (and so
reorders), duplicates and partitions messages (a request that cannot arrive is reported to its
sender as a transport failure half of the time, ``request_failed``), crashes that keep only what each node flushed,
restarts that rebuild a node from its storage, flushes whose fsync completes after a random delay
(as the driver's flush thread does; a crash before that loses what it would have made durable),
clients appending to whoever leads, snapshots and
graceful resignations. After *every* event the :class:`Checker` verifies Raft's safety:

* at most one leader per epoch, ever;
* no node's epoch ever decreases (across restarts too);
* log matching: two entries with the same (offset, epoch) anywhere, at any time, are identical
  and follow entries of the same epoch (so the logs are identical up to there);
* committed entries (below any node's high watermark) are never lost or changed: a global
  record of every committed offset is compared with every log, every append, every snapshot
  and every state machine; a new leader holds all of them;
* the high watermark never decreases on a node (a restart may reset it lower) and never passes
  the node's log end;
* the highest committed offset is durable (in the crash model's surviving image) on a majority
  of voters: the leader counts only its flushed log, a follower fetches only once it flushed.

Then the network heals and every node restarts; within a bounded virtual time there must be a
leader and all live voters (and observers) must hold the same committed log. Last, on a quiet
network (every message takes 1-``QUIET_DELAY_MS``; once the quorum has converged again if a
straggler from before cost a follower its fetch), an entry the leader appends must be known
committed by every node within a few message delays, far sooner than a parked fetch expires
(``fetch_max_wait_ms``): the leader answers a fetch at once when the fetching replica does not
know its high watermark yet (KIP-1166; KAFKA-14145 is the bug this rules out).

``run_schedule(seed)`` returns a :class:`Result`; a failure raises :class:`SimulationFailure`
naming the seed and the last events, so ``run_schedule(seed)`` reproduces it exactly.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass

from suoi.raft import Envelope, NotLeaderError, RaftConfig, RaftNode
from tests.sim.sim_checker import CheckedStorage, Checker, SimulationFailure, StateMachine, encode_snapshot

SIM_CONFIG = RaftConfig(
    election_timeout_ms=100,
    election_backoff_max_ms=100,
    fetch_timeout_ms=200,
    request_timeout_ms=150,
    retry_backoff_ms=10,
    fetch_max_wait_ms=50,
    fetch_max_entries=20,
    fetch_snapshot_max_bytes=256,
    pre_vote=True,
)


QUIET_DELAY_MS = 4
"""Longest message delay in the prompt-commit phase; an append must reach every node's high
watermark within ``PROMPT_COMMIT_HOPS`` such delays (append -> follower -> leader commits ->
the replica that fetched just before the commit asks again -> it learns the new HW)."""
PROMPT_COMMIT_HOPS = 5
QUIET_FLUSH_MS = 2
"""Longest fsync in the prompt-commit phase: the leader's and a follower's run in parallel, then a
follower's flush delays its next Fetch (two flushes on the path, at most)."""


@dataclass
class Scenario:
    voters: int = 3
    observers: int = 0
    pre_vote: bool = True
    chaos_ms: int = 1500
    liveness_ms: int = 20_000
    drop: float = 0.05  # base loss rate (changes during the run)
    duplicate: float = 0.03
    max_delay_ms: int = 15
    max_flush_ms: int = 6  # an fsync completes 0..this after it begins (sometimes much later)
    fault_interval_ms: int = 40  # mean time between random faults/client actions


@dataclass
class Result:
    seed: int
    events: int
    elections: int
    committed: int
    max_epoch: int
    crashes: int
    snapshots_installed: int
    truncations: int


class Cluster:
    def __init__(self, seed: int, scenario: Scenario, config: RaftConfig | None = None) -> None:
        self.seed = seed
        self.sc = scenario
        self.rng = random.Random(seed)
        base = config or SIM_CONFIG
        self.config = RaftConfig(**{**{f: getattr(base, f) for f in base.__dataclass_fields__}, "pre_vote": scenario.pre_vote})
        self.voters = list(range(1, scenario.voters + 1))
        self.observers = [100 + i for i in range(scenario.observers)]
        self.all_ids = self.voters + self.observers
        self.checker = Checker(seed)
        self.storages = {i: CheckedStorage(self.checker, i) for i in self.all_ids}
        self.nodes: dict[int, RaftNode | None] = {}
        self.machines: dict[int, StateMachine] = {}
        self.incarnation = dict.fromkeys(self.all_ids, 0)
        self.now = 0
        self.queue: list = []
        self.seq = 0
        self.next_poll: dict[int, int] = {}
        self.groups: dict[int, int] = dict.fromkeys(self.all_ids, 0)  # partition id per node
        self.drop = scenario.drop
        self.duplicate = scenario.duplicate
        self.events = 0
        self.crashes = 0
        self.appended = 0
        self.chaos = True
        self.quiet = False  # prompt-commit phase: no stragglers, short delays
        for i in self.all_ids:
            self._start(i)

    # --- plumbing -----------------------------------------------------------------------------
    def _push(self, t: int, kind: str, data: object) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (t, self.seq, kind, data))

    def _start(self, i: int) -> None:
        self.incarnation[i] += 1
        rng = random.Random(self.seed * 7919 + i * 104729 + self.incarnation[i])
        node = RaftNode(i, self.voters, self.storages[i], self.config, rng, now_ms=self.now, async_flush=True)
        sm = StateMachine(self.checker, i)
        node.register_listener(sm)
        self.nodes[i] = node
        self.machines[i] = sm
        self.checker.on_restart(node)
        self._after(i, node, node.poll(self.now))

    def _crash(self, i: int) -> None:
        self.nodes[i] = None
        self.storages[i].crash(self.rng if self.rng.random() < 0.5 else None)
        self.crashes += 1
        self.next_poll.pop(i, None)

    def _after(self, i: int, node: RaftNode, out: list[Envelope]) -> None:
        for env in out:
            self._send(env)
        if node.wants_flush:
            self._begin_flush(i, node)
        t = node.next_deadline()
        cur = self.next_poll.get(i)
        if cur is None or t < cur or cur < self.now:
            self.next_poll[i] = t
            self._push(t, "poll", (i, self.incarnation[i]))
        self.checker.check_node(node)
        self.checker.check_durable_majority(self.storages, self.voters)  # type: ignore[arg-type]

    def _begin_flush(self, i: int, node: RaftNode) -> None:
        """Start the node's flush; its fsync completes after a random delay (the ``flushed`` event)."""
        job = node.begin_flush()
        rng = self.rng
        if self.quiet:
            delay = rng.randint(0, QUIET_FLUSH_MS)
        else:
            delay = rng.randint(0, self.sc.max_flush_ms)
            if rng.random() < 0.05:
                delay += rng.randint(0, 100)  # a stalled disk: longer than a fetch timeout, at times
        self._push(self.now + delay, "flushed", (i, self.incarnation[i], job))

    def _send(self, env: Envelope) -> None:
        rng = self.rng
        if self.groups[env.source] != self.groups[env.destination]:
            return
        if rng.random() < self.drop:
            return
        copies = 2 if rng.random() < self.duplicate else 1
        for _ in range(copies):
            if self.quiet:
                delay = rng.randint(1, QUIET_DELAY_MS)
            else:
                delay = rng.randint(1, self.sc.max_delay_ms)
                if rng.random() < 0.05:
                    delay += rng.randint(0, 80)  # a straggler: reorders behind later messages
            inc = (self.incarnation[env.source], self.incarnation[env.destination])
            self._push(self.now + delay, "msg", (env, inc))

    # --- events -------------------------------------------------------------------------------
    def step(self) -> bool:
        if not self.queue:
            return False
        t, _, kind, data = heapq.heappop(self.queue)
        self.now = max(self.now, t)
        self.events += 1
        if kind == "msg":
            env, (src_inc, dst_inc) = data  # type: ignore[misc]
            node = self.nodes.get(env.destination)
            # A restart closes connections: nothing sent to or by an older incarnation arrives.
            if (
                node is None
                or dst_inc != self.incarnation[env.destination]
                or src_inc != self.incarnation[env.source]
                or self.groups[env.source] != self.groups[env.destination]
            ):
                if env.is_request and src_inc == self.incarnation[env.source] and self.rng.random() < 0.5:
                    # the sender's driver sees a refused or lost connection (else a silent timeout)
                    self._push(self.now + 1, "failed", (env, src_inc))
                return True
            self.checker.trace.append(f"t={self.now} {env.source}->{env.destination} {env.message}"[:300])
            self._after(env.destination, node, node.handle(env, self.now))
        elif kind == "poll":
            i, inc = data  # type: ignore[misc]
            node = self.nodes.get(i)
            if node is None or inc != self.incarnation[i] or self.next_poll.get(i) != t:
                return True
            self.next_poll.pop(i, None)
            before = node.role_name
            out = node.poll(self.now)
            if node.role_name != before:
                self.checker.trace.append(f"t={self.now} node {i}: {before} -> {node!r}")
            self._after(i, node, out)
        elif kind == "flushed":
            i, inc, job = data  # type: ignore[misc]
            node = self.nodes.get(i)
            if node is not None and inc == self.incarnation[i]:  # a crash lost the fsync in flight
                if job.run is not None:
                    job.run()
                self._after(i, node, node.flush_done(job, self.now))
        elif kind == "failed":
            env, inc = data  # type: ignore[misc]
            node = self.nodes.get(env.source)
            if node is not None and inc == self.incarnation[env.source]:
                self.checker.trace.append(f"t={self.now} {env.source}: request {env.correlation_id} failed")
                self._after(env.source, node, node.request_failed(env.correlation_id, self.now))
        elif kind == "restart":
            i = data  # type: ignore[assignment]
            if self.nodes.get(i) is None:
                self.checker.trace.append(f"t={self.now} restart {i}")
                self._start(i)  # type: ignore[arg-type]
        elif kind == "fault" and self.chaos:
            self._fault()
            self._push(self.now + self.rng.randint(1, 2 * self.sc.fault_interval_ms), "fault", None)
        return True

    def _fault(self) -> None:
        rng = self.rng
        r = rng.random()
        live = [i for i in self.all_ids if self.nodes.get(i) is not None]
        if r < 0.45:
            self._client_append()
        elif r < 0.53 and live:
            i = rng.choice(live)
            self.checker.trace.append(f"t={self.now} crash {i}")
            self._crash(i)
            self._push(self.now + rng.randint(5, 400), "restart", i)
        elif r < 0.60:
            ids = list(self.all_ids)
            rng.shuffle(ids)
            cut = rng.randint(1, len(ids) - 1)
            self.groups = {i: (0 if k < cut else 1) for k, i in enumerate(ids)}
            self.checker.trace.append(f"t={self.now} partition {sorted(ids[:cut])} | {sorted(ids[cut:])}")
        elif r < 0.68:
            self.groups = dict.fromkeys(self.all_ids, 0)
            self.checker.trace.append(f"t={self.now} heal")
        elif r < 0.74:
            self.drop = rng.choice([0.0, 0.02, 0.1, 0.3])
        elif r < 0.86 and live:
            self._snapshot(rng.choice(live))
        elif r < 0.90:
            for i in live:
                node = self.nodes[i]
                if node is not None and node.is_leader:
                    self.checker.trace.append(f"t={self.now} resign {i}")
                    node.resign()
                    self._after(i, node, node.poll(self.now))
        else:
            self._client_append()

    def _client_append(self) -> None:
        for i in self.all_ids:
            node = self.nodes.get(i)
            if node is not None and node.is_leader:
                n = self.rng.randint(1, 4)
                payloads = [f"s{self.seed}-{self.appended + k}".encode() for k in range(n)]
                try:
                    node.append(payloads, epoch=node.epoch)
                except NotLeaderError:
                    continue
                self.appended += n
                self._after(i, node, [])

    def _snapshot(self, i: int) -> None:
        node = self.nodes[i]
        assert node is not None
        sm = self.machines[i]
        hw = node.high_watermark
        if hw <= node.log.start_offset or len(sm.applied) < hw:
            return
        cut = self.rng.randint(node.log.start_offset + 1, hw)
        entries = sm.applied[:cut]
        for o, e, p in entries:
            self.checker.check_committed(i, o, e, p, "snapshots")
        node.create_snapshot(cut, encode_snapshot(entries))
        self.checker.trace.append(f"t={self.now} node {i} snapshot at {cut}")
        self._after(i, node, [])

    # --- phases -------------------------------------------------------------------------------
    def run_chaos(self) -> None:
        self._push(self.rng.randint(1, self.sc.fault_interval_ms), "fault", None)
        end = self.sc.chaos_ms
        while self.queue and self.queue[0][0] <= end:
            self.step()
        self.now = max(self.now, end)

    def heal(self) -> None:
        self.chaos = False
        self.groups = dict.fromkeys(self.all_ids, 0)
        self.drop = 0.0
        self.duplicate = 0.0
        for i in self.all_ids:
            if self.nodes.get(i) is None:
                self._start(i)
        self.checker.trace.append(f"t={self.now} heal all, restart all")

    def converged(self) -> RaftNode | None:
        leaders = [n for n in self.nodes.values() if n is not None and n.is_leader]
        if len(leaders) != 1:
            return None
        leader = leaders[0]
        end = leader.log.end_offset
        if leader.high_watermark != end or leader.log.flushed_end != end:
            return None
        last = leader.log.last_epoch
        for n in self.nodes.values():
            if n is None or n.log.end_offset != end or n.high_watermark != end or n.log.last_epoch != last:
                return None
            if n.leader_and_epoch.leader_id != leader.node_id or n.epoch != leader.epoch:
                return None
        return leader

    def run_liveness(self) -> RaftNode:
        deadline = self.now + self.sc.liveness_ms
        # one more client write after the heal must commit everywhere too
        wrote = False
        while self.queue and self.queue[0][0] <= deadline:
            self.step()
            leader = self.converged()
            if leader is not None:
                if wrote:
                    return leader
                leader.append([f"s{self.seed}-final".encode()])
                self._after(leader.node_id, leader, [])
                wrote = True
        self.checker.fail(
            f"no convergence within {self.sc.liveness_ms} ms after heal: " + "; ".join(repr(n) for n in self.nodes.values())
        )
        raise AssertionError  # unreachable

    def final_checks(self, leader: RaftNode) -> None:
        hw = leader.high_watermark
        for i, sm in self.machines.items():
            if len(sm.applied) != hw:
                self.checker.fail(f"node {i} applied {len(sm.applied)} entries, hw is {hw}")
        for off in range(hw):
            if off not in self.checker.committed:
                self.checker.fail(f"offset {off} below the final hw was never seen committed")
        ref = self.machines[leader.node_id].applied
        for i, sm in self.machines.items():
            if sm.applied != ref:
                self.checker.fail(f"node {i} state machine differs from the leader's")
        for off, (epoch, payload) in self.checker.committed.items():
            if off >= hw or ref[off][1:] != (epoch, payload):
                self.checker.fail(f"committed offset {off} lost or changed at the end")


    def check_prompt_commit(self, leader: RaftNode) -> None:
        """Every node learns a new commit within a few message delays (module docstring)."""
        self.quiet = True
        # Let everything in flight land first, so each node is back to its steady long poll.
        settle = self.now + 2 * (self.sc.max_delay_ms + 80)
        while self.queue and self.queue[0][0] <= settle:
            self.step()
        if self.converged() is not leader:
            # A straggler sent before the network went quiet can still cost a follower its fetch:
            # it gives up on the delayed request, and the retry's long poll outlasts its fetch
            # timeout (request timeout + fetch max wait = fetch timeout), so without pre-vote it
            # stands for election (seed 2472009601 of 5-voters-lossy-no-prevote). On the quiet
            # network the quorum must converge again, within the liveness bound, and stay so.
            deadline = self.now + self.sc.liveness_ms
            while self.queue and self.queue[0][0] <= deadline and self.converged() is None:
                self.step()
            settled = self.converged()
            if settled is None:
                self.checker.fail(f"the quorum led by {leader.node_id} did not converge again on a quiet network")
            leader = settled
            settle = self.now + 2 * QUIET_DELAY_MS * PROMPT_COMMIT_HOPS
            while self.queue and self.queue[0][0] <= settle:
                self.step()
            if self.converged() is not leader:
                self.checker.fail(f"the quorum led by {leader.node_id} did not stay converged on a quiet network")
        start = self.now
        offset = leader.append([f"s{self.seed}-prompt".encode()])
        self._after(leader.node_id, leader, [])
        bound = start + PROMPT_COMMIT_HOPS * QUIET_DELAY_MS + 2 * QUIET_FLUSH_MS
        while self.queue and self.queue[0][0] <= bound:
            self.step()
        late = {i: n.high_watermark for i, n in self.nodes.items() if n is not None and n.high_watermark <= offset}
        if late:
            self.checker.fail(
                f"entry {offset} appended at t={start} not known committed by t={bound} on nodes {late} "
                f"(their fetches waited for fetch_max_wait_ms={self.config.fetch_max_wait_ms})"
            )


def run_schedule(seed: int, scenario: Scenario | None = None, config: RaftConfig | None = None) -> Result:
    sc = scenario or Scenario()
    cluster = Cluster(seed, sc, config)
    try:
        cluster.run_chaos()
        cluster.heal()
        leader = cluster.run_liveness()
        cluster.final_checks(leader)
        cluster.check_prompt_commit(leader)
    except SimulationFailure:
        raise
    except Exception as exc:  # a crash inside the node (e.g. RaftSafetyError) is a failure too
        raise SimulationFailure(
            f"seed={seed}: {type(exc).__name__}: {exc}\nlast events:\n  " + "\n  ".join(cluster.checker.trace)
        ) from exc
    return Result(
        seed=seed,
        events=cluster.events,
        elections=len(cluster.checker.leaders),
        committed=len(cluster.checker.committed),
        max_epoch=max(cluster.checker.max_epoch.values()),
        crashes=cluster.crashes,
        snapshots_installed=sum(m.snapshots_loaded for m in cluster.machines.values()),
        truncations=cluster.checker.truncations,
    )


__all__ = ["Cluster", "Result", "Scenario", "SimulationFailure", "run_schedule"]
