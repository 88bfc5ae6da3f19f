"""pytest plugin (entry point `suoi`): fixtures for an embedded broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from suoi.testing.embedded import EmbeddedBroker


@pytest.fixture
def suoi_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A fresh broker for one test; stopped (and its data removed) afterwards."""
    broker = EmbeddedBroker(tmp_path_factory.mktemp("suoi"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def suoi_bootstrap(suoi_broker: EmbeddedBroker) -> str:
    """The "host:port" of a fresh broker, for `bootstrap_servers=`."""
    return suoi_broker.bootstrap
