"""The cluster's state as one JSON-able dict, and the one poll loop every viewer shares.

`read_snapshot` asks the cluster what the seed's pictures need, with a bounded number of
requests whatever the number of open pages: Metadata (brokers, partitions, leaders, ISR),
DescribeQuorum, one DescribeConfigs (min.insync.replicas), per live broker one
DescribeLogDirs, one ListGroups and ListOffsets (earliest, latest) for the partitions it leads,
one FindCoordinator for all groups, and per coordinator one DescribeGroups and one OffsetFetch
(and ApiVersions once, on the first poll).

`Poller` runs `read_snapshot` every `interval` seconds while at least one page listens (WebSocket or SSE)
and hands each new snapshot to every listener: N tabs cost what one costs. A cluster that goes
away gives a snapshot with `ok: false` and the last known state, so pages show a banner and
keep the picture; the next successful poll clears it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
from typing import Any

from suoi.http.console.kafka_reads import EARLIEST, LATEST, ClusterClient, KafkaReadError, failed, gather_ok
from suoi.protocol.consumer_protocol import assigned_partitions

__all__ = ["Poller", "read_snapshot"]

TIMELINE = 20
RATE_WINDOW_S = 5.0

log = logging.getLogger("suoi.console")


async def read_snapshot(client: ClusterClient) -> dict[str, Any]:
    md = await client.metadata()
    alive = [int(b.node_id) for b in md.brokers]
    topics = sorted((t for t in md.topics if not failed(t.error_code) and t.name), key=lambda t: str(t.name))
    leaders: dict[int, list[tuple[str, int]]] = {}
    for t in topics:
        for p in t.partitions:
            if int(p.leader_id) >= 0:
                leaders.setdefault(int(p.leader_id), []).append((str(t.name), int(p.partition_index)))
    lead_ids = list(leaders)
    quorum, min_isr, *rest = await gather_ok([
        client.describe_quorum(), client.min_isr([str(t.name) for t in topics]),
        *(client.list_offsets(b, leaders[b], EARLIEST) for b in lead_ids),
        *(client.list_offsets(b, leaders[b], LATEST) for b in lead_ids),
        *(client.log_dirs(b) for b in alive),
        *(client.list_groups(b) for b in alive)])
    n = len(lead_ids)
    starts = _merge(rest[:n])
    ends = _merge(rest[n:2 * n])
    dirs = dict(zip(alive, rest[2 * n:2 * n + len(alive)], strict=True))
    listed = [g for gs in rest[2 * n + len(alive):] if gs for g in gs]
    groups = await _groups(client, listed, ends)
    return _assemble(md, alive, topics, quorum, min_isr or {}, starts, ends, dirs, groups)


def _merge(maps: list[dict[Any, Any] | None]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for m in maps:
        out.update(m or {})
    return out


async def _groups(client: ClusterClient, listed: list[tuple[str, str, str]],
                  ends: dict[tuple[str, int], int]) -> list[dict[str, Any]]:
    kinds = {g: (ptype, state) for g, ptype, state in listed}
    try:
        coordinators = await client.coordinators(sorted(kinds)) if kinds else {}
    except KafkaReadError:  # FindCoordinator v4 (batched) unsupported: groups listed, not described
        coordinators = {}
    by_coord: dict[int, list[str]] = {}
    for g, c in coordinators.items():
        by_coord.setdefault(c, []).append(g)
    coords = list(by_coord)
    results = await gather_ok([*(client.describe_groups(c, by_coord[c]) for c in coords),
                               *(client.committed(c, by_coord[c]) for c in coords)])
    described = {str(d.group_id): d for ds in results[:len(coords)] if ds for d in ds}
    committed = _merge(results[len(coords):])
    out = []
    for g in sorted(kinds):
        d = described.get(g)
        members = [] if d is None else [
            {"member_id": m.member_id, "client_id": m.client_id, "host": m.client_host,
             "instance_id": m.group_instance_id,
             "assignment": sorted(assigned_partitions(m.member_assignment))} for m in d.members]
        offsets = []
        for (t, p), off in sorted(committed.get(g, {}).items()):
            end = ends.get((t, p))
            offsets.append({"topic": t, "partition": p, "committed": off,
                            "lag": None if end is None else max(0, end - off)})
        out.append({"id": g, "state": d.group_state if d else kinds[g][1], "protocol_type": kinds[g][0],
                    "protocol": d.protocol_data if d else "", "coordinator": coordinators.get(g),
                    "members": members, "offsets": offsets,
                    "lag": sum(o["lag"] or 0 for o in offsets)})
    return out


def _assemble(md: Any, alive: list[int], topics: list[Any], quorum: Any, min_isr: dict[str, int],
              starts: dict[tuple[str, int], int], ends: dict[tuple[str, int], int],
              dirs: dict[int, dict[tuple[str, int], tuple[int, int]] | None],
              groups: list[dict[str, Any]]) -> dict[str, Any]:
    brokers = {int(b.node_id): {"id": int(b.node_id), "host": str(b.host), "port": int(b.port), "rack": b.rack,
                                "alive": True, "leaders": 0, "followers": 0, "size": 0} for b in md.brokers}
    health = {"partitions": 0, "under_replicated": 0, "offline": 0, "under_min_isr": 0}
    out_topics = []
    for t in topics:
        name = str(t.name)
        parts: list[dict[str, Any]] = []
        for p in sorted(t.partitions, key=lambda p: int(p.partition_index)):
            idx, leader = int(p.partition_index), int(p.leader_id)
            replicas, isr = [int(r) for r in p.replica_nodes], [int(r) for r in p.isr_nodes]
            hw = ends.get((name, idx))
            positions, size = {}, 0
            for r in replicas:
                brokers.setdefault(r, {"id": r, "host": None, "port": None, "rack": None, "alive": False,
                                       "leaders": 0, "followers": 0, "size": 0})
                brokers[r]["leaders" if r == leader else "followers"] += 1
                held = (dirs.get(r) or {}).get((name, idx))
                if held is not None:
                    brokers[r]["size"] += held[0]
                    size = max(size, held[0])
                    if hw is not None:
                        positions[str(r)] = hw - held[1]  # offset_lag: HW minus this replica's LEO
            health["partitions"] += 1
            health["under_replicated"] += len(isr) < len(replicas)
            health["offline"] += leader < 0
            health["under_min_isr"] += len(isr) < min_isr.get(name, 1)
            parts.append({"partition": idx, "leader": leader, "leader_epoch": int(p.leader_epoch),
                          "replicas": replicas, "isr": isr, "offline": [int(r) for r in p.offline_replicas],
                          "log_start": starts.get((name, idx)), "high_watermark": hw,
                          "replica_leo": positions, "size": size})
        out_topics.append({
            "name": name, "internal": bool(t.is_internal), "partitions": parts,
            "replication_factor": max((len(p["replicas"]) for p in parts), default=0),
            "messages": sum((p["high_watermark"] or 0) - (p["log_start"] or 0) for p in parts),
            "size": sum(p["size"] for p in parts), "min_isr": min_isr.get(name)})
    return {"ok": True, "error": None, "at_ms": int(time.time() * 1000), "cluster_id": md.cluster_id,
            "controller_id": int(quorum.leader_id) if quorum is not None else int(md.controller_id),
            "brokers": sorted(brokers.values(), key=lambda b: b["id"]), "quorum": _quorum(quorum),
            "health": health, "topics": out_topics, "groups": groups}


def _quorum(part: Any) -> dict[str, Any] | None:
    if part is None:
        return None
    voters = [{"id": int(r.replica_id), "log_end_offset": int(r.log_end_offset),
               "last_caught_up_ms": int(r.last_caught_up_timestamp)} for r in part.current_voters]
    observers = [{"id": int(r.replica_id), "log_end_offset": int(r.log_end_offset),
                  "last_caught_up_ms": int(r.last_caught_up_timestamp)} for r in part.observers]
    top = max((v["log_end_offset"] for v in voters), default=0)
    for r in (*voters, *observers):
        r["lag"] = top - r["log_end_offset"]
    return {"leader_id": int(part.leader_id), "leader_epoch": int(part.leader_epoch),
            "high_watermark": int(part.high_watermark), "voters": voters, "observers": observers}


class Poller:
    """One poll loop shared by every viewer; `subscribe()` gives a queue of snapshot JSON texts."""

    def __init__(self, client: ClusterClient, interval: float = 1.0, byte_rates: Any = None) -> None:
        self.client = client
        self.interval = interval
        self.byte_rates = byte_rates  # byte_rates.ByteRates: adds bytes/s from the brokers' metrics endpoints
        self.latest: dict[str, Any] | None = None
        self.latest_text = ""
        self.polls = 0
        self.last_poll_ms = 0.0  # how long the last round of requests took (/api/stats)
        self._last_sent = ""
        self._listeners: set[asyncio.Queue[str]] = set()
        self._members: dict[str, tuple[str, dict[str, Any]]] = {}  # group -> (state, member id -> assignment)
        self._timelines: dict[str, collections.deque[dict[str, Any]]] = {}
        self._totals: collections.deque[tuple[float, dict[str, tuple[int, int]]]] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def snapshot(self, max_age: float | None = None) -> dict[str, Any]:
        """The latest snapshot, polled now if none is younger than `max_age` (default: interval)."""
        age = self.interval if max_age is None else max_age
        if self.latest is None or time.time() * 1000 - self.latest["at_ms"] > age * 1000:
            await self.poll()
        assert self.latest is not None
        return self.latest

    async def poll(self) -> None:
        async with self._lock:  # concurrent callers share one round of requests
            started = time.time()
            if self.latest is not None and time.time() * 1000 - self.latest["at_ms"] < 100:
                return
            try:
                snap = await asyncio.wait_for(read_snapshot(self.client), self.client.timeout * 3)
                self._note_rebalances(snap)
                self._note_rates(snap)
                if self.byte_rates is not None:
                    await self.byte_rates.note(snap)
            except Exception as exc:  # the cluster went away (or answered nonsense): keep the last picture
                reason = str(exc) or type(exc).__name__
                if self.latest is None or self.latest.get("error") != reason:
                    log.warning("console: cannot read the cluster: %s", reason)
                snap = {**(self.latest or {"brokers": [], "topics": [], "groups": [], "quorum": None,
                                           "health": {}, "cluster_id": None, "controller_id": -1}),
                        "ok": False, "error": reason, "at_ms": int(started * 1000)}
            self.polls += 1
            self.last_poll_ms = (time.time() - started) * 1000
            self.latest = snap
            text = self.latest_text = json.dumps(snap, sort_keys=True)
            same = json.dumps({**snap, "at_ms": 0}, sort_keys=True)
            if same != self._last_sent:  # an unchanged cluster sends nothing to the pages
                self._last_sent = same
                for q in self._listeners:
                    if q.full():  # a slow page skips to the newest picture
                        q.get_nowait()
                    q.put_nowait(text)

    def _note_rates(self, snap: dict[str, Any]) -> None:
        """Each topic's records/s in (its high watermarks' growth) and out (its groups' committed
        offsets' growth) over the last `RATE_WINDOW_S`: from the Kafka protocol alone, so any
        cluster has them (a node's own byte rates are the metrics endpoint's)."""
        now = snap["at_ms"] / 1000
        committed: dict[str, int] = {}
        for g in snap["groups"]:
            for o in g["offsets"]:
                committed[o["topic"]] = committed.get(o["topic"], 0) + o["committed"]
        totals = {t["name"]: (sum(p["high_watermark"] or 0 for p in t["partitions"]), committed.get(t["name"], 0))
                  for t in snap["topics"]}
        while self._totals and now - self._totals[0][0] > RATE_WINDOW_S:
            self._totals.popleft()
        then, old = self._totals[0] if self._totals else (now, totals)
        for t in snap["topics"]:
            before = old.get(t["name"])
            if before is None or now - then < 0.5:
                t["in_rate"] = t["out_rate"] = None
            else:
                t["in_rate"] = round(max(0, totals[t["name"]][0] - before[0]) / (now - then), 1)
                t["out_rate"] = round(max(0, totals[t["name"]][1] - before[1]) / (now - then), 1)
        self._totals.append((now, totals))

    def _note_rebalances(self, snap: dict[str, Any]) -> None:
        """Each group's timeline: its state and membership each time they changed between two
        polls (DescribeGroups has no generation id; a change of members or assignment is what a
        rebalance shows from outside). The last `TIMELINE` changes per group."""
        for g in snap["groups"]:
            members = {m["member_id"]: m for m in g["members"]}
            state, before = self._members.get(g["id"], ("", {}))
            now = {k: m["assignment"] for k, m in members.items()}
            if (state, {k: m["assignment"] for k, m in before.items()}) != (g["state"], now):
                changes = [f"{m['client_id']} joined" for k, m in members.items() if k not in before]
                changes += [f"{m['client_id']} left" for k, m in before.items() if k not in members]
                if not changes and state != g["state"]:
                    changes.append(f"{state or 'first seen'} → {g['state']}")
                self._timelines.setdefault(g["id"], collections.deque(maxlen=TIMELINE)).append({
                    "at_ms": snap["at_ms"], "state": g["state"], "members": len(members),
                    "idle": sum(1 for m in members.values() if not m["assignment"]),
                    "change": ", ".join(changes) or "assignment changed"})
                self._members[g["id"]] = (g["state"], members)
            g["timeline"] = list(self._timelines.get(g["id"], ()))

    def subscribe(self) -> asyncio.Queue[str]:
        q: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        self._listeners.add(q)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name="console-poll")
        return q

    def unsubscribe(self, q: asyncio.Queue[str]) -> None:
        self._listeners.discard(q)

    async def _loop(self) -> None:
        while self._listeners:
            await self.poll()
            await asyncio.sleep(self.interval)

    async def close(self) -> None:
        self._listeners.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
