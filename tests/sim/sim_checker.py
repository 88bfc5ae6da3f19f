"""The safety checks of the Raft simulation (``raft_sim.py``): the :class:`Checker` it runs after
every event, the storage that reports appends to it, and the state machine (listener) whose
applied log it compares -- see ``raft_sim``'s docstring for the invariants."""

from __future__ import annotations

import json
import os
from collections import deque

from suoi.raft import Entry, MemoryStorage, RaftNode, SnapshotId


class SimulationFailure(AssertionError):
    pass


def encode_snapshot(entries: list[tuple[int, int, bytes]]) -> bytes:
    return json.dumps([[o, e, p.decode("latin-1")] for o, e, p in entries]).encode()


def decode_snapshot(data: bytes) -> list[tuple[int, int, bytes]]:
    return [(o, e, p.encode("latin-1")) for o, e, p in json.loads(data)]


class CheckedStorage(MemoryStorage):
    """MemoryStorage that reports every append to the checker (log matching at write time)."""

    def __init__(self, checker: Checker, node_id: int) -> None:
        super().__init__()
        self.checker = checker
        self.node_id = node_id

    def append(self, entries):  # type: ignore[override]
        if entries:
            if self.entries:
                prev = self.entries[-1].epoch
            else:
                sid = self.latest_snapshot_id()
                prev = sid.epoch if sid else 0
            for e in entries:
                self.checker.on_append(self.node_id, e, prev)
                prev = e.epoch
        super().append(entries)

    def truncate(self, end_offset):  # type: ignore[override]
        if end_offset < self._end():
            self.checker.truncations += 1
        super().truncate(end_offset)


class StateMachine:
    """The listener: the committed log applied in order, rebuilt from snapshots after restarts."""

    def __init__(self, checker: Checker, node_id: int) -> None:
        self.checker = checker
        self.node_id = node_id
        self.applied: list[tuple[int, int, bytes]] = []
        self.snapshots_loaded = 0

    def on_commit(self, entries: list[Entry]) -> None:
        for e in entries:
            if e.offset != len(self.applied):
                self.checker.fail(f"node {self.node_id} applied {e.offset} after {len(self.applied)} entries")
            # entries below this node's hw: committed (recorded now if this is the first sighting)
            self.checker.committed.setdefault(e.offset, (e.epoch, e.payload))
            self.checker.committed_end = max(self.checker.committed_end, e.offset + 1)
            self.checker.check_committed(self.node_id, e.offset, e.epoch, e.payload, "applied")
            self.applied.append((e.offset, e.epoch, e.payload))

    def on_load_snapshot(self, snapshot_id: SnapshotId, data: bytes) -> None:
        entries = decode_snapshot(data)
        if len(entries) != snapshot_id.end_offset:
            self.checker.fail(f"node {self.node_id} snapshot {snapshot_id} holds {len(entries)} entries")
        for o, e, p in entries:
            self.checker.check_committed(self.node_id, o, e, p, "snapshot")
        self.applied = entries
        self.snapshots_loaded += 1

    def on_leader_change(self, leader) -> None:  # noqa: ANN001
        pass


class Checker:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.leaders: dict[int, int] = {}  # epoch -> leader id
        self.entries: dict[tuple[int, int], tuple[bytes, bool, int]] = {}  # (offset, epoch) -> content
        self.committed: dict[int, tuple[int, bytes]] = {}
        self.committed_end = 0  # 1 + the highest offset any node has seen committed
        self.max_epoch: dict[int, int] = {}
        self.hw: dict[int, int] = {}
        self.checked_hw: dict[int, int] = {}
        self.leader_checked: set[tuple[int, int]] = set()
        self.truncations = 0
        self.trace: deque[str] = deque(maxlen=int(os.environ.get("SIM_TRACE", "40")))

    def fail(self, msg: str) -> None:
        raise SimulationFailure(f"seed={self.seed}: {msg}\nlast events:\n  " + "\n  ".join(self.trace))

    def on_append(self, node_id: int, e: Entry, prev_epoch: int) -> None:
        key = (e.offset, e.epoch)
        content = (e.payload, e.control, prev_epoch)
        seen = self.entries.setdefault(key, content)
        if seen != content:
            self.fail(f"log matching: node {node_id} appends {e} after epoch {prev_epoch}, but {key} was {seen}")
        # (a stale leader may append at an offset committed elsewhere; it just never commits it)
        if e.offset < self.hw.get(node_id, 0):
            self.fail(f"node {node_id} appends {e} below its high watermark {self.hw[node_id]}")

    def check_committed(self, node_id: int, offset: int, epoch: int, payload: bytes, what: str) -> None:
        c = self.committed.get(offset)
        if c is None:
            self.fail(f"node {node_id} {what} offset {offset} that no node has committed")
        if c != (epoch, payload):
            self.fail(f"node {node_id} {what} offset {offset} as {(epoch, payload)}, committed {c}")

    def on_restart(self, node: RaftNode) -> None:
        nid = node.node_id
        if node.high_watermark > self.hw.get(nid, 0) and node.high_watermark > node.log.start_offset:
            self.fail(f"node {nid} restarts with hw {node.high_watermark}")
        self.hw[nid] = node.high_watermark
        self.checked_hw[nid] = node.high_watermark

    def check_node(self, node: RaftNode) -> None:
        nid = node.node_id
        epoch = node.epoch
        if epoch < self.max_epoch.get(nid, 0):
            self.fail(f"node {nid} epoch went back from {self.max_epoch[nid]} to {epoch}")
        self.max_epoch[nid] = epoch
        hw = node.high_watermark
        if hw < self.hw.get(nid, 0):
            self.fail(f"node {nid} high watermark went back from {self.hw[nid]} to {hw}")
        self.hw[nid] = hw
        log = node.log
        if hw > log.end_offset:
            self.fail(f"node {nid} high watermark {hw} beyond its log end {log.end_offset}")
        start = max(self.checked_hw.get(nid, 0), log.start_offset)
        for off in range(start, hw):
            e = log.entries[off - log.start_offset]
            c = self.committed.get(off)
            if c is None:
                self.committed[off] = (e.epoch, e.payload)
            elif c != (e.epoch, e.payload):
                self.fail(f"node {nid} has {e} below its hw {hw}; committed was {c}")
        self.checked_hw[nid] = max(self.checked_hw.get(nid, 0), hw)
        self.committed_end = max(self.committed_end, hw)
        if node.is_leader:
            other = self.leaders.setdefault(epoch, nid)
            if other != nid:
                self.fail(f"two leaders in epoch {epoch}: {other} and {nid}")
            if (nid, epoch) not in self.leader_checked:
                self.leader_checked.add((nid, epoch))
                self.check_leader_completeness(node)

    def check_durable_majority(self, storages: dict[int, MemoryStorage], voters: list[int]) -> None:
        """Raft's durability rule: an entry is committed only once a majority of voters has it
        on disk (what a crash leaves: completed flushes, snapshots). Checked for the highest
        committed offset (the durable images are prefixes, so the rest follows by log matching)."""
        if self.committed_end == 0:
            return
        off = self.committed_end - 1
        epoch, _ = self.committed[off]
        holders = []
        for v in voters:
            s = storages[v]
            if off < s.start_offset:
                holders.append(v)  # inside a snapshot (durable on write)
            elif off < s.durable_end() and s.durable[off - s.start_offset].epoch == epoch:
                holders.append(v)
        if 2 * len(holders) <= len(voters):
            self.fail(f"offset {off} is committed but durable only on voters {holders} of {voters}")

    def check_leader_completeness(self, node: RaftNode) -> None:
        log = node.log
        for off, (epoch, payload) in self.committed.items():
            if off < log.start_offset:
                continue
            e = log.entry(off)
            if e is None or (e.epoch, e.payload) != (epoch, payload):
                self.fail(f"leader {node.node_id} of epoch {node.epoch} lacks committed offset {off}: has {e}")


__all__ = ["CheckedStorage", "Checker", "SimulationFailure", "StateMachine", "decode_snapshot", "encode_snapshot"]
