"""A keyed workload for compacted topics (cleanup.policy=compact) and its checker.

`KeyedWorkload`: idempotent acks=all producers (as `ProducerWorkload`), each writing its own
`keys` keys in turn, every key always to the same partition; every `tombstone_every`-th write is a
tombstone (null value). Each record carries its id ("<producer>-<seq>") in a header, so a
tombstone read back is told apart from another. Values are padded so segments roll and the log
cleaner has something to clean while the faults go on.

`check_compacted(sent, final)` (pure) holds the final read (`consume_all(..., record=keyed)`) to
what compaction promises, per key (the writes of a key come from one producer, in order):

* lost_key: the latest acknowledged write of a key is a value, and the log holds nothing for the key;
* stale_key: the latest record of a key is older than its latest acknowledged write (compaction, or
  a failover, dropped the newer one) -- a tombstone's key may be gone, never older;
* moved: an acknowledged record still in the log is at another offset (compaction keeps offsets);
* duplicated, unexpected, misordered: as in tests/faults/checker.py.

`replica_latest(data_dir, topic, partition)` reads one replica's log files from disk and returns
its latest value per key (tombstones dropped): every replica compacts on its own, so comparing
them with the final read checks the followers' cleaned logs too.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.faults.checker import ProducerWorkload, Sent, Txn
from tests.faults.workloads import TransactionalWorkload

#: The header that carries a record's id.
ID_HEADER = "id"


@dataclass(frozen=True)
class KeyedRecord:
    partition: int
    offset: int
    key: str
    id: str
    tombstone: bool


def keyed(msg: Any) -> KeyedRecord:
    """`consume_all(..., record=keyed)`: a consumed message as a KeyedRecord."""
    headers = dict(msg.headers() or [])
    return KeyedRecord(msg.partition(), msg.offset(), (msg.key() or b"").decode(),
                       (headers.get(ID_HEADER) or b"").decode(), msg.value() is None)


class KeyedWorkload(ProducerWorkload):
    """See the module."""

    def __init__(self, bootstrap: str, topic: str, *, keys: int = 8, tombstone_every: int = 5, pad: int = 200,
                 **workload: Any) -> None:
        super().__init__(bootstrap, topic, **workload)
        self.keys = keys
        self.tombstone_every = tombstone_every
        self.pad = pad

    def key_of(self, rec: Sent) -> str:
        return f"{rec.producer}-k{rec.seq % self.keys}"

    def owns(self, key: str) -> bool:
        return key.rsplit("-k", 1)[0] in self.names

    def tombstone(self, rec: Sent) -> bool:
        return rec.seq % self.tombstone_every == self.tombstone_every - 1

    def _record(self, name: str, seq: int, partitions: list[int]) -> Sent:
        k = self.names.index(name) * self.keys + seq % self.keys
        return Sent(name, seq, f"{name}-{seq}", partitions[k % len(partitions)])

    def _payload(self, rec: Sent) -> dict[str, Any]:
        value = None if self.tombstone(rec) else f"{rec.value}|{'x' * self.pad}".encode()
        return {"key": self.key_of(rec).encode(), "value": value, "headers": [(ID_HEADER, rec.value.encode())]}


class KeyedTxnWorkload(KeyedWorkload, TransactionalWorkload):
    """The keyed writes in transactions (`TransactionalWorkload`: every `abort_every`-th aborted),
    so aborted writes of a key sit between its committed ones in the compacted log."""

    def sent_values(self) -> list[Sent]:
        """Every value of every transaction (acked once committed, failed once aborted)."""
        return [s for t in self.transactions() for s in t.values]

    def aborted_ids(self) -> set[str]:
        return {s.value for t in self.transactions() if t.status == "aborted" for s in t.values}

    def abort_every_key(self, timeout: float = 30.0) -> None:
        """After stop(): one more transaction, from a new transactional id, writing every key of
        every producer and aborted, so each key's last write in the log is an aborted one (the
        committed value before it must survive compaction). Recorded as an aborted transaction."""
        import confluent_kafka

        producer = confluent_kafka.Producer({"bootstrap.servers": self.bootstrap, **self.config,
                                             "transactional.id": f"jepsen-{self._tid}-final"})
        producer.init_transactions(timeout)
        producer.begin_transaction()
        name = self.names[0]
        txn = Txn(name, len(self.txns[name]), started=time.monotonic())
        for producer_name in self.names:
            for i in range(self.keys):
                rec = Sent(producer_name, i, f"{producer_name}-final-{i}")
                rec.partition = self._record(producer_name, i, self.partitions or [0]).partition
                producer.produce(self.topic, key=self.key_of(rec).encode(), value=b"aborted",
                                 headers=[(ID_HEADER, rec.value.encode())], partition=rec.partition)
                txn.values.append(rec)
        producer.flush(timeout)  # in the log before the abort: read_committed must filter them
        producer.abort_transaction(timeout)
        txn.settle("aborted")
        self.txns[name].append(txn)


@dataclass
class CompactionReport:
    acked: int = 0
    read: int = 0
    keys: int = 0
    lost_key: list[str] = field(default_factory=list)
    #: (key, the latest acknowledged write, the id the log holds last)
    stale_key: list[tuple[str, str, str]] = field(default_factory=list)
    moved: list[tuple[str, tuple[int, int], tuple[int, int]]] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    misordered: list[tuple[int, int, int]] = field(default_factory=list)
    aborted_read: list[str] = field(default_factory=list)  # ids of aborted transactions' values read

    @property
    def ok(self) -> bool:
        return not (self.lost_key or self.stale_key or self.moved or self.duplicated or self.unexpected
                    or self.misordered or self.aborted_read)

    def summary(self) -> str:
        parts = [f"acked {self.acked}, read {self.read} (compacted away {self.acked - self.read}+), keys {self.keys}"]
        for name, items in (("lost_key", self.lost_key), ("stale_key", self.stale_key), ("moved", self.moved),
                            ("duplicated", self.duplicated), ("unexpected", self.unexpected),
                            ("misordered", self.misordered), ("aborted_read", self.aborted_read)):
            if items:
                parts.append(f"{name}: {len(items)} e.g. {items[:5]}")
        parts.append("OK" if self.ok else "ANOMALIES")
        return "; ".join(parts)


def latest(records: Iterable[KeyedRecord]) -> dict[str, KeyedRecord]:
    """The last record of each key, in log order."""
    out: dict[str, KeyedRecord] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        out[r.key] = r
    return out


def check_compacted(workload: KeyedWorkload, sent: Iterable[Sent], final: Iterable[KeyedRecord], *,
                    aborted: AbstractSet[str] = frozenset()) -> CompactionReport:
    """See the module. Only the keys `workload` owns are checked; values in `aborted` (of aborted
    transactions) must never be read (read_committed), nor be a key's latest."""
    sent, final = list(sent), [r for r in final if workload.owns(r.key)]
    report = CompactionReport(acked=sum(1 for s in sent if s.status == "acked"), read=len(final))
    by_id = {s.value: s for s in sent}
    last_offset: dict[int, int] = {}
    for r in final:
        if r.partition in last_offset and r.offset <= last_offset[r.partition]:
            report.misordered.append((r.partition, r.offset, last_offset[r.partition]))
        last_offset[r.partition] = r.offset
    counts = Counter(r.id for r in final)
    report.duplicated = sorted(i for i, n in counts.items() if n > 1)
    report.aborted_read = sorted(i for i in counts if i in aborted)
    report.unexpected = sorted(r.id for r in final if r.id not in by_id or workload.key_of(by_id[r.id]) != r.key)
    for r in final:
        s = by_id.get(r.id)
        if s is not None and s.status == "acked" and (s.partition, s.offset) != (r.partition, r.offset):
            report.moved.append((r.id, (s.partition or 0, s.offset or 0), (r.partition, r.offset)))
    writes: dict[str, list[Sent]] = defaultdict(list)
    for s in sorted(sent, key=lambda s: (s.producer, s.seq)):
        writes[workload.key_of(s)].append(s)
    report.keys = len(writes)
    last = latest(final)
    for key, ws in sorted(writes.items()):
        acked = [i for i, s in enumerate(ws) if s.status == "acked"]
        newest = acked[-1] if acked else 0  # without an acknowledged write, any write (or none) may be last
        allowed = [s for s in ws[newest:] if s.value not in aborted]
        got = last.get(key)
        if got is None:
            if acked and not any(workload.tombstone(s) for s in allowed):
                report.lost_key.append(key)
        elif got.id not in {s.value for s in allowed} and acked:
            report.stale_key.append((key, ws[newest].value, got.id))
    return report


def replica_latest(data_dir: Path, topic: str, partition: int, ignore: AbstractSet[str] = frozenset()) -> dict[str, str]:
    """One replica's latest record id per key, read from its log files (tombstones, and the ids in
    `ignore` -- aborted ones -- dropped)."""
    from suoi.protocol.record_batch import iter_batches
    from suoi.protocol.record_codec import decode_batch_records

    records: list[KeyedRecord] = []
    for path in sorted((data_dir / f"{topic}-{partition}").glob("*.log")):
        buf = path.read_bytes()
        for pos, header in iter_batches(buf):
            if header.is_control:
                continue
            for r in decode_batch_records(buf, pos, header):
                ids = dict(r.headers)
                record = KeyedRecord(partition, r.offset or 0, (r.key or b"").decode(),
                                     (ids.get(ID_HEADER) or b"").decode(), r.value is None)
                if record.id not in ignore:
                    records.append(record)
    return {k: r.id for k, r in latest(records).items() if not r.tombstone}
