"""Shared fixtures: real broker processes on loopback (via suoi.testing) and helpers."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from tests import client_cleanup

client_cleanup.install()  # before any test module imports confluent_kafka's Producer/Consumer

from suoi.testing import EmbeddedBroker  # noqa: E402
from tests.client_cleanup import (  # noqa: E402, F401 - hooks: every Producer/Consumer closed after its owner
    pytest_fixture_post_finalizer,
    pytest_fixture_setup,
    pytest_runtest_teardown,
)

T = TypeVar("T")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--skip-slow", action="store_true", help="skip tests marked slow (CI runs them)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--skip-slow"):
        skip = pytest.mark.skip(reason="--skip-slow given: slow fault-injection test not run locally")
        for item in items:
            if "slow" in item.keywords:
                item.add_marker(skip)


def wait_until(condition: Callable[[], T], timeout: float = 10.0, interval: float = 0.02,
               message: str = "condition") -> T:
    """Poll `condition` until it returns a truthy value or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def taken_port(port: int) -> socket.socket:
    """A socket listening on 127.0.0.1:`port` (close it, or use it as a context manager): another
    process's node on a port a harness picked, for the harnesses' port-race tests."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", port))
    s.listen()
    return s


@pytest.fixture
def make_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., EmbeddedBroker]]:
    """Factory: `make_broker(overrides={...})` starts a broker; all are stopped afterwards."""
    started: list[EmbeddedBroker] = []

    def make(overrides: dict[str, str] | None = None) -> EmbeddedBroker:
        broker = EmbeddedBroker(tmp_path_factory.mktemp("suoi"), overrides=overrides)
        broker.start()
        started.append(broker)
        return broker

    yield make
    for broker in started:
        broker.stop()
