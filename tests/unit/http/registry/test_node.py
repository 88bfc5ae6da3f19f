"""The node's hook for schema.registry.listeners: the port is bound during the node's start, so a
port in use or a node without a client listener refuses the start in one line."""

from __future__ import annotations

import socket
from collections import namedtuple

import pytest

from suoi.http.registry.node import NodeRegistry

L = namedtuple("L", "name host port")
ADVERTISED = [L("PLAINTEXT", "127.0.0.1", 9092), L("CONTROLLER", "127.0.0.1", 9093)]


def test_binds_the_port_and_targets_the_client_listener() -> None:
    node = NodeRegistry.bind("http://127.0.0.1:0", ADVERTISED, {"CONTROLLER"})
    try:
        assert node.bootstrap == "127.0.0.1:9092"
        assert node.url == f"http://127.0.0.1:{node.sock.getsockname()[1]}"
    finally:
        node.sock.close()


def test_a_port_in_use_refuses_the_start() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        with pytest.raises(RuntimeError, match="cannot listen on http://127.0.0.1:"):
            NodeRegistry.bind(f"http://127.0.0.1:{taken.getsockname()[1]}", ADVERTISED, {"CONTROLLER"})
    finally:
        taken.close()


@pytest.mark.parametrize(("listeners", "advertised", "match"), [
    ("http://127.0.0.1:0", [L("CONTROLLER", "127.0.0.1", 9093)], "no client listener"),
    ("http://127.0.0.1:0,http://127.0.0.1:0", ADVERTISED, "exactly one"),
    ("https://127.0.0.1:0", ADVERTISED, "only http"),
])
def test_refused_settings(listeners: str, advertised: list[L], match: str) -> None:
    with pytest.raises(RuntimeError, match=match):
        NodeRegistry.bind(listeners, advertised, {"CONTROLLER"})
