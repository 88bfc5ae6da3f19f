"""Close every confluent-kafka Producer and Consumer a test (or fixture) leaves open.

A librdkafka client lives until it is closed or garbage-collected, and until then it keeps
reconnecting to brokers the test has long stopped: a suite run used to end with hundreds of
`Connect to ipv4#127.0.0.1:NNNN failed: Connection refused` lines. The tests create clients in
many helpers; rather than thread a `with` through each, `confluent_kafka.Producer`/`Consumer`
are replaced (before any test module imports them) by subclasses that record each instance with
its owner, and the hooks below close what is still open when the owner ends:

* a client made by the test or by a function-scoped fixture: after the test's teardown;
* a client made inside a module/session-scoped fixture: after that fixture's finalizer.

Closing cannot change what a test asserts (it has finished). A Consumer is unsubscribed first:
then close() neither commits nor waits for LeaveGroup, so it returns at once even when its
broker is gone (otherwise it waits out session.timeout.ms, 45 s). A Producer's queue is purged
first for the same reason (close() would wait for delivery). The AdminClient has no close();
it is freed with its last reference.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Generator
from typing import Any

import confluent_kafka
import pytest

_Owner = object  # a FixtureDef of a wider scope, or TEST
TEST = "test"
_owners: list[_Owner] = []  # fixtures being set up, innermost last
_clients: list[tuple[weakref.ref[Any], _Owner]] = []


def _register(client: Any) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # an in-process node's own client (its schema registry's): the node closes it when it stops
    _clients.append((weakref.ref(client), _owners[-1] if _owners else TEST))


class TrackedProducer(confluent_kafka.Producer):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _register(self)


class TrackedConsumer(confluent_kafka.Consumer):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _register(self)


def install() -> None:
    """Make `confluent_kafka.Producer`/`Consumer` the tracked classes (idempotent)."""
    confluent_kafka.Producer = TrackedProducer
    confluent_kafka.Consumer = TrackedConsumer


def close_client(client: Any) -> None:
    """Close a client at once, whatever state it and its brokers are in (closed already: no-op)."""
    try:
        if isinstance(client, confluent_kafka.cimpl.Consumer):
            client.unsubscribe()
        else:
            client.purge()
        client.close()
    except (RuntimeError, confluent_kafka.KafkaException):
        pass  # already closed


def close_owned_by(owner: _Owner) -> int:
    """Close the open clients `owner` made; how many were still alive."""
    kept, closed = [], 0
    for ref, who in _clients:
        client = ref()
        if client is None:
            continue
        if who is owner:
            close_client(client)
            closed += 1
        else:
            kept.append((ref, who))
    _clients[:] = kept
    return closed


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef: Any, request: Any) -> Generator[None, None, None]:
    _owners.append(TEST if fixturedef.scope == "function" else fixturedef)
    try:
        yield
    finally:
        _owners.pop()


def pytest_fixture_post_finalizer(fixturedef: Any, request: Any) -> None:
    if fixturedef.scope != "function":
        close_owned_by(fixturedef)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: Any, nextitem: Any) -> Generator[None, None, None]:
    yield
    close_owned_by(TEST)
