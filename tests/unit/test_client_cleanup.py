"""tests/client_cleanup: the clients a test leaves open are closed at once, and only its own."""

from __future__ import annotations

import time

import confluent_kafka
import pytest

from tests import client_cleanup
from tests.client_cleanup import close_client, close_owned_by

DEAD = {"bootstrap.servers": "127.0.0.1:1"}  # nothing listens there


def test_clients_are_tracked_and_closed_at_once_even_with_no_broker() -> None:
    producer = confluent_kafka.Producer(DEAD)
    consumer = confluent_kafka.Consumer({**DEAD, "group.id": "g"})
    assert isinstance(producer, client_cleanup.TrackedProducer)
    assert isinstance(consumer, client_cleanup.TrackedConsumer)
    producer.produce("t", b"queued, never deliverable")
    consumer.subscribe(["t"])
    started = time.monotonic()
    close_client(producer)  # plain close() would wait for the queued record
    close_client(consumer)  # plain close() of a group member waits for its coordinator
    assert time.monotonic() - started < 5.0
    with pytest.raises(RuntimeError):
        producer.flush(0)
    with pytest.raises(RuntimeError):
        consumer.poll(0)
    close_client(producer)  # closed already: nothing happens


def test_close_owned_by_closes_only_that_owners_clients() -> None:
    owner = object()
    client_cleanup._owners.append(owner)
    try:
        mine = confluent_kafka.Producer(DEAD)
    finally:
        client_cleanup._owners.pop()
    other = confluent_kafka.Producer(DEAD)  # this test's own
    assert close_owned_by(owner) == 1
    with pytest.raises(RuntimeError):
        mine.flush(0)
    assert other.flush(0) == 0  # still open until this test's teardown
