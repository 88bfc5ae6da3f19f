"""The consume-transform-produce loop every processing stage runs, exactly once.

Read committed records of one topic as a member of a consumer group; for each batch, in ONE
transaction, produce the outputs and commit the batch's offsets (send_offsets_to_transaction).
A crash before commit_transaction aborts everything: the outputs vanish for read_committed readers
and the batch is read again, so nothing is lost or counted twice. The transactional.id is stable per
instance ("<group>-<n>"): a restarted instance fences its dead predecessor and aborts its open
transaction at once, instead of read_committed readers waiting for the transaction timeout."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition

from .config import Pipeline, log

Handler = Callable[[Message, Producer], None]


class TransactionalStage:
    def __init__(self, p: Pipeline, *, group: str, instance: int, source: str, handle: Handler,
                 on_assign: Callable[[list[TopicPartition]], None] | None = None,
                 on_revoke: Callable[[list[TopicPartition]], None] | None = None,
                 on_abort: Callable[[list[int]], None] | None = None,
                 max_batch: int = 200, crash_after: int | None = None) -> None:
        self.p, self.group, self.source, self.handle = p, group, source, handle
        self.user_on_assign, self.user_on_revoke, self.on_abort = on_assign, on_revoke, on_abort
        self.max_batch, self.crash_after = max_batch, crash_after
        self.transactional_id = f"{group}-{instance}"
        self.processed = 0
        self.assignment: list[int] = []

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assignment = sorted(tp.partition for tp in partitions)
        if self.user_on_assign:
            self.user_on_assign(partitions)
        log.info("%s: assigned %s", self.transactional_id, self.assignment)

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assignment = []
        if self.user_on_revoke:
            self.user_on_revoke(partitions)

    def run(self, stop: threading.Event, before_batch: Callable[[], None] | None = None) -> None:
        producer = Producer(self.p.client(**{"transactional.id": self.transactional_id, "linger.ms": 5,
                                             "transaction.timeout.ms": 20000}))
        producer.init_transactions(30)  # fences a dead predecessor before we restore anything
        consumer = Consumer(self.p.client(**{"group.id": self.group, "enable.auto.commit": False,
                                             "auto.offset.reset": "earliest",
                                             "isolation.level": "read_committed",
                                             # static membership: a restarted instance takes its
                                             # old place at once, without waiting for a rebalance
                                             "group.instance.id": self.transactional_id,
                                             "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}))
        consumer.subscribe([self.source], on_assign=self._assigned, on_revoke=self._revoked)
        try:
            while not stop.is_set():
                if before_batch:
                    before_batch()
                msgs = [m for m in consumer.consume(self.max_batch, 0.2) if not self._failed(m)]
                if msgs:
                    self._transaction(consumer, producer, msgs)
        finally:
            consumer.close()
            producer.flush(10)

    def _failed(self, msg: Message) -> bool:
        if msg.error() is None:
            return False
        log.warning("%s: %s", self.transactional_id, msg.error())
        return True

    def _transaction(self, consumer: Consumer, producer: Producer, msgs: list[Message]) -> None:
        next_offsets: dict[int, int] = {}
        first_offsets: dict[int, int] = {}
        producer.begin_transaction()
        try:
            for msg in msgs:
                self.handle(msg, producer)
                self.processed += 1
                if self.crash_after is not None and self.processed >= self.crash_after:
                    log.warning("%s: crashing mid-transaction on purpose", self.transactional_id)
                    os._exit(17)
                first_offsets.setdefault(msg.partition(), msg.offset())
                next_offsets[msg.partition()] = msg.offset() + 1
            offsets = [TopicPartition(self.source, part, off) for part, off in next_offsets.items()]
            producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 30)
            producer.commit_transaction(30)
        except KafkaException as exc:
            if not exc.args[0].txn_requires_abort():
                raise
            # e.g. fenced by a rebalance: undo, and read the batch again if it is still ours
            log.warning("%s: aborting a transaction: %s", self.transactional_id, exc)
            producer.abort_transaction(30)
            self.processed -= len(msgs)
            for part, off in first_offsets.items():
                if part in self.assignment:
                    consumer.seek(TopicPartition(self.source, part, off))
            if self.on_abort:  # a stateful stage drops what the batch changed
                self.on_abort(sorted(first_offsets))
