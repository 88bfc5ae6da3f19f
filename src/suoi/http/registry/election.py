"""Which registry is the primary (the one writer), elected through a Kafka consumer group.

Every registry joins the group ``schema.registry.group.id`` (default ``schema-registry``)
subscribed to the one-partition ``_schemas`` topic with the range assignor: the group
coordinator's rebalance gives that partition to exactly one live member, and that member is the
primary. (Confluent's registry runs its own group protocol with the same effect; librdkafka only
offers the consumer protocol, and one partition is the same one-winner election.) The partition
is paused at once: the election consumer never fetches, it only keeps its membership alive.

Each member's ``client.id`` carries its own URL, so the others find where to forward writes by
describing the group (the member owning the partition). A registry that dies loses the role
after ``session.timeout.ms``; a clean stop leaves the group at once. A primary that loses the
partition stops writing at the revocation (``on_revoke``), before the new owner is assigned.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from suoi.http.registry.topic import client_config

__all__ = ["PrimaryElection"]

log = logging.getLogger("suoi.http.registry")

_CLIENT_ID_PREFIX = "suoi-schema-registry "
#: How often the election thread serves librdkafka's rebalance callbacks (heartbeats run on
#: librdkafka's own threads). It polled in 200 ms waits, five wake-ups a second of an idle node
#: (confluent-kafka's poll wakes every 200 ms whatever its timeout, issue 19); a rebalance's
#: callbacks now wait up to this long, within the rebalance's whole time (max.poll.interval.ms).
ELECTION_POLL_S = 0.5


class PrimaryElection:
    def __init__(self, bootstrap: str, topic: str, group: str, my_url: str, *, session_timeout_ms: int = 6000) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.group = group
        self.my_url = my_url
        self.session_timeout_ms = session_timeout_ms
        self.is_primary = False
        self.term = 0  # +1 each time this registry becomes the primary
        self.changed = asyncio.Event()  # set on every change of is_primary
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer: Consumer | None = None
        self._admin: AdminClient | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._consumer = Consumer({
            **client_config(self.bootstrap), "group.id": self.group, "client.id": _CLIENT_ID_PREFIX + self.my_url,
            "enable.auto.commit": False, "partition.assignment.strategy": "range",
            "session.timeout.ms": self.session_timeout_ms, "heartbeat.interval.ms": 1000,
        })
        self._consumer.subscribe([self.topic], on_assign=self._assigned, on_revoke=self._revoked,
                                 on_lost=self._revoked)
        self._thread = threading.Thread(target=self._poll_loop, name="schema-registry-election", daemon=True)
        self._thread.start()

    def _set(self, primary: bool) -> None:
        def apply() -> None:
            if primary != self.is_primary:
                self.is_primary = primary
                self.term += primary
                log.info("schema registry %s is %s", self.my_url, "now the primary" if primary else "no longer the primary")
            self.changed.set()
        assert self._loop is not None
        self._loop.call_soon_threadsafe(apply)

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if partitions:
            # assigned here, then paused: confluent-kafka assigns after the callback returns when
            # it did not, which dropped the pause, and this consumer fetched the topic (a Fetch
            # parked on the node every 500 ms at idle, what it read thrown away by `_poll_loop`)
            consumer.assign(partitions)
            consumer.pause(partitions)
        self._set(bool(partitions))

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._set(False)

    def _poll_loop(self) -> None:
        assert self._consumer is not None
        while not self._stop.is_set():
            try:
                self._consumer.poll(0)  # paused: only rebalance callbacks (and errors)
            except (KafkaException, RuntimeError) as exc:
                log.warning("schema registry election: %s", exc)
            self._stop.wait(ELECTION_POLL_S)  # `close()` ends the wait at once

    async def primary_url(self) -> str | None:
        """The URL of the member owning the partition, per the group coordinator (None: none yet)."""
        if self.is_primary:
            return self.my_url
        admin = self._admin
        if admin is None:  # made on first use: only a registry that is not the primary asks (one
            # librdkafka client fewer, with its threads' wake-ups, on a registry that never does)
            made = await asyncio.to_thread(AdminClient, client_config(self.bootstrap))
            admin = self._admin = self._admin or made  # (one made meanwhile by another call: that one)
        try:
            futures = await asyncio.to_thread(admin.describe_consumer_groups, [self.group], request_timeout=5)
            description = await asyncio.to_thread(futures[self.group].result, 10)
        except KafkaException as exc:
            log.info("schema registry: cannot describe group %s: %s", self.group, exc)
            return None
        for member in description.members:
            owned = member.assignment.topic_partitions if member.assignment else []
            if any(tp.topic == self.topic for tp in owned) and member.client_id.startswith(_CLIENT_ID_PREFIX):
                return str(member.client_id[len(_CLIENT_ID_PREFIX):])
        return None

    async def close(self) -> None:
        """Leave the group (the others elect a new primary at once)."""
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5)
        if self._consumer is not None:
            await asyncio.to_thread(self._consumer.close)
        self.is_primary = False
