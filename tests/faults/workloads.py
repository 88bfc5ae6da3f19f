"""More histories for the checker (tests/faults/checker.py) than idempotent producers give.

* `TransactionalWorkload`: producer threads with a transactional.id each, running transactions of
  `values_per_txn` values spread over the partitions (so a transaction spans partitions and
  leaders), committing them, except every `abort_every`-th which is aborted. Each transaction's
  outcome is what the client learned: committed, aborted, or unknown (then the producer stops:
  its state is unknown too). `check(..., txns=w.transactions())` then requires read_committed to
  see each transaction whole or not at all.
* `TailReader`: a read_committed consumer reading every partition from the beginning while the
  faults go on. Whatever it was served must still be in the final log at the same offset
  (`check(..., observed=r.stop())`): a leader that serves a record past its high watermark, or
  from a log it later truncates, shows up as a phantom.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from tests.faults.checker import (
    CheckReport,
    ProducerWorkload,
    Received,
    Sent,
    Txn,
    TxnStatus,
    check,
    topic_partitions,
    wait_for_count,
)

#: How long a transactional producer keeps retrying init/commit/abort through faults.
TXN_RETRY_S = 40.0


class TransactionalWorkload(ProducerWorkload):
    """See the module. `messages` bounds the transactions per producer (None: until stop())."""

    def __init__(self, bootstrap: str, topic: str, *, producers: int = 1, values_per_txn: int = 4, abort_every: int = 3,
                 messages: int | None = None, interval_s: float = 0.0, partitions: list[int] | None = None,
                 config: dict[str, Any] | None = None, name: str = "t") -> None:
        super().__init__(bootstrap, topic, producers=producers, messages=messages, interval_s=interval_s,
                         partitions=partitions, config={"transaction.timeout.ms": 60000, **(config or {})}, name=name)
        self.values_per_txn = values_per_txn
        self.abort_every = abort_every
        self.txns: dict[str, list[Txn]] = {n: [] for n in self.names}
        self._tid = uuid.uuid4().hex[:8]

    def transactions(self) -> list[Txn]:
        return [t for n in self.names for t in list(self.txns[n])]

    def history(self) -> list[Sent]:
        """Nothing outside transactions: their values reach the checker through `transactions()`."""
        return []

    def _run(self, name: str) -> None:
        import confluent_kafka

        fatal = threading.Event()
        producer = self._producer(name, fatal, **{"transactional.id": f"jepsen-{self._tid}-{name}"})
        if not self._retrying(name, lambda t: producer.init_transactions(t), fatal):
            return
        records, txns = self.sent[name], self.txns[name]
        partitions = self.partitions or [0]
        seq = 0
        while not self._stop.is_set() and not fatal.is_set() and (self.messages is None or len(txns) < self.messages):
            txn = Txn(name, len(txns), started=time.monotonic())
            txns.append(txn)
            commit = not (self.abort_every and txn.seq % self.abort_every == self.abort_every - 1)
            try:
                producer.begin_transaction()
                while len(txn.values) < self.values_per_txn:
                    rec = self._record(name, seq, partitions)
                    try:
                        producer.produce(self.topic, **self._payload(rec), partition=rec.partition,
                                         on_delivery=_on_txn_delivery(rec))
                    except BufferError:
                        producer.poll(0.1)
                        continue
                    txn.values.append(rec)
                    records.append(rec)
                    seq += 1
                    producer.poll(0)
                if not commit:  # the values reach the logs first: an abort read_committed must filter, not a purge
                    producer.flush(10)
            except confluent_kafka.KafkaException as exc:  # an abortable (or fatal) error while producing
                self.errors[name].append(str(exc.args[0]))
                commit = False
            txn.settle(self._end(name, producer, commit, fatal))
            if txn.status == "unknown":
                return  # the producer's state is unknown: it cannot go on
            if self.interval_s:
                self._stop.wait(self.interval_s)

    def _end(self, name: str, producer: Any, commit: bool, fatal: threading.Event) -> TxnStatus:
        """Commit (or abort) the open transaction, retrying retriable errors; an abortable error
        on commit turns it into an abort. "unknown" if neither call ever returned."""
        def end(timeout: float) -> None:
            nonlocal commit
            try:
                producer.commit_transaction(timeout) if commit else producer.abort_transaction(timeout)
            except Exception as exc:
                if commit and _kafka_error(exc) is not None and _kafka_error(exc).txn_requires_abort():
                    commit = False  # never committed: abort it (the loop retries at once)
                raise

        if not self._retrying(name, end, fatal, retry_abortable=True):
            return "unknown"
        return "committed" if commit else "aborted"

    def _retrying(self, name: str, call: Callable[[float], None], fatal: threading.Event, *,
                  retry_abortable: bool = False) -> bool:
        """`call(timeout)` until it returns (True) or fails for good or after TXN_RETRY_S (False)."""
        deadline = time.monotonic() + TXN_RETRY_S
        while not fatal.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                call(min(10.0, remaining))
                return True
            except Exception as exc:
                err = _kafka_error(exc)
                if err is None:
                    raise
                self.errors[name].append(str(err))
                if err.fatal():
                    self.fatal[name] = str(err)
                    return False
                if not (err.retriable() or (retry_abortable and err.txn_requires_abort())):
                    return False
        return False


def _kafka_error(exc: BaseException) -> Any:
    """The KafkaError a confluent-kafka KafkaException carries (None for anything else)."""
    import confluent_kafka

    if isinstance(exc, confluent_kafka.KafkaException) and exc.args and isinstance(exc.args[0], confluent_kafka.KafkaError):
        return exc.args[0]
    return None


def _on_txn_delivery(rec: Sent) -> Callable[[Any, Any], None]:
    """A transactional value's delivery report gives its offset; its status comes from how its
    transaction ends (Txn.settle)."""
    def on_delivery(err: Any, msg: Any) -> None:
        if err is None:
            rec.partition, rec.offset = msg.partition(), msg.offset()
        else:
            rec.error = err.name()
    return on_delivery


class TailReader:
    """See the module: a read_committed consumer following every partition of `topic`."""

    def __init__(self, bootstrap: str, topic: str, *, config: dict[str, Any] | None = None) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.config = config or {}
        self.observed: list[Received] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"tail-{topic}", daemon=True)

    def start(self) -> TailReader:
        self._partitions = topic_partitions(self.bootstrap, self.topic)
        self._thread.start()
        return self

    def stop(self, timeout: float = 20.0) -> list[Received]:
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError(f"tail reader of {self.topic} did not stop within {timeout:g}s")
        return list(self.observed)

    def _run(self) -> None:
        import confluent_kafka

        consumer = confluent_kafka.Consumer({
            "bootstrap.servers": self.bootstrap, "group.id": f"tail-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "isolation.level": "read_committed", "fetch.wait.max.ms": 100,
            "error_cb": lambda err: self.errors.append(str(err)), **self.config})
        try:
            consumer.assign([confluent_kafka.TopicPartition(self.topic, p, confluent_kafka.OFFSET_BEGINNING)
                             for p in self._partitions])
            while not self._stop.is_set():
                msg: Any = consumer.poll(0.2)
                if msg is None:
                    continue
                if msg.error() is not None:
                    self.errors.append(str(msg.error()))
                    continue
                value = msg.value()
                self.observed.append(Received(msg.partition(), msg.offset(),
                                              value.decode(errors="replace") if value is not None else ""))
        finally:
            consumer.close()


class Writers(ProducerWorkload):
    """Idempotent producers (this workload), `txn_producers` transactional ones and a tail reader on
    one topic, started together: `stop()` stops the producers and returns the idempotent history,
    `check(final)` checks everything against the final read."""

    def __init__(self, bootstrap: str, topic: str, *, txn_producers: int = 1, txn_config: dict[str, Any] | None = None,
                 **workload: Any) -> None:
        super().__init__(bootstrap, topic, **workload)
        self.txn = TransactionalWorkload(bootstrap, topic, producers=txn_producers, interval_s=self.interval_s,
                                         config=txn_config)
        self.tail = TailReader(bootstrap, topic)

    def start(self) -> Writers:
        super().start()
        self.txn.partitions = self.partitions
        self.txn.start()
        self.tail.start()
        return self

    def committed(self) -> int:
        return sum(1 for t in self.txn.transactions() if t.status == "committed")

    def wait_committed(self, count: int, timeout: float) -> None:
        """Until at least `count` transactions are committed (AssertionError after `timeout`):
        a transaction stuck after the faults healed fails here."""
        wait_for_count(self.committed, count, timeout, lambda: f"transactions committed within {timeout:g}s; "
                       f"{self.txn.progress_report()}, fatal: {self.txn.fatal}")

    def stop(self, flush_timeout: float = 60.0) -> list[Sent]:
        """Stop the producers (the tail reader goes on until `check`)."""
        sent = super().stop(flush_timeout)
        self.txn.stop(flush_timeout)
        return sent

    def check(self, final: list[Received], catch_up_s: float = 30.0) -> CheckReport:
        """Once the tail reader has been served every record of `final` (the final read, after
        stop()) or `catch_up_s` passed, stop it and check everything (what it was never served
        is `unobserved`)."""
        want = {(r.partition, r.offset) for r in final}
        deadline = time.monotonic() + catch_up_s
        while not want <= {(r.partition, r.offset) for r in list(self.tail.observed)} and time.monotonic() < deadline:
            time.sleep(0.1)
        return check(self.history(), final, txns=self.txn.transactions(), observed=self.tail.stop())
