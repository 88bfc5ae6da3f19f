"""Kafka's level names for Python's levels (BROKER_LOGGER, KIP-412) and Java's InetAddress text
of a client's address (DescribeGroups' client host)."""

from __future__ import annotations

import logging

import pytest

from suoi.api.broker_loggers import LEVELS, level_name
from suoi.api.group_membership import inet_text


@pytest.mark.parametrize(("level", "name"), [
    (logging.NOTSET, "TRACE"), (5, "TRACE"), (logging.DEBUG, "DEBUG"), (15, "INFO"), (logging.INFO, "INFO"),
    (logging.WARNING, "WARN"), (logging.ERROR, "ERROR"), (logging.CRITICAL, "FATAL"), (55, "OFF"), (99, "OFF")])
def test_level_names(level: int, name: str) -> None:
    assert level_name(level) == name


def test_every_name_round_trips() -> None:
    assert {name: level_name(value) for name, value in LEVELS.items()} == {name: name for name in LEVELS}


@pytest.mark.parametrize(("peer", "text"), [
    ("127.0.0.1:52100", "/127.0.0.1"), ("::1:52100", "/0:0:0:0:0:0:0:1"), ("::ffff:10.0.0.2:9", "/10.0.0.2"),
    ("2001:db8::a0:1:443", "/2001:db8:0:0:0:0:a0:1"), ("?", "?")])
def test_client_host_as_java_prints_it(peer: str, text: str) -> None:
    assert inet_text(peer) == text
