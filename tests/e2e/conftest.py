"""Fixtures for end-to-end tests: one real broker process per module, unique topics."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from suoi.testing import EmbeddedBroker


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A broker shared by the tests of one module (each test uses its own topics)."""
    b = EmbeddedBroker(tmp_path_factory.mktemp("e2e"))
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def bootstrap(broker: EmbeddedBroker) -> str:
    return broker.bootstrap


@pytest.fixture
def topic(request: pytest.FixtureRequest) -> str:
    """A topic name unique to this test (legal Kafka characters only)."""
    base = re.sub(r"[^a-zA-Z0-9._-]", "-", request.node.name)[:120]
    return f"{base}-{uuid.uuid4().hex[:8]}"
