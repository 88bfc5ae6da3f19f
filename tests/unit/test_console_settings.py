"""The web console's settings: `console.listeners` checked when the node's config loads (one
line, before anything starts), and `suoi console`'s flags refused in one line each."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest

from suoi.config import load_config
from suoi.http.console import parse_listener
from suoi.http.console.kafka_reads import ClusterClient, UnsupportedRequest, parse_bootstrap


@pytest.mark.parametrize("value", ["https://127.0.0.1:8080", "127.0.0.1:8080", "http://127.0.0.1", "http://h:x"])
def test_a_bad_console_listener_is_refused_at_start(value: str) -> None:
    with pytest.raises(ValueError, match="invalid value for console.listeners: .*expected http://HOST:PORT"):
        load_config({"console.listeners": value}, {})


def test_console_listeners_accepts_http_host_port_and_empty() -> None:
    assert load_config({"console.listeners": "http://127.0.0.1:8080"}, {}).get("console.listeners") == \
        "http://127.0.0.1:8080"
    assert parse_listener("http://[::1]:0/") == ("::1", 0)
    assert not load_config({"console.listeners": ""}, {}).get("console.listeners")


def test_bootstrap_and_listen_addresses() -> None:
    assert parse_bootstrap("PLAINTEXT://a:1, b:2") == [("a", 1), ("b", 2)]
    for bad in ("", "a", "a:b"):
        with pytest.raises(ValueError):
            parse_bootstrap(bad)
    with pytest.raises(ValueError, match="http://HOST:PORT"):
        parse_listener("ftp://a:1")


@pytest.mark.parametrize(("flags", "message"), [
    (["--interval", "0"], "suoi console: error: --interval must be between 0.1 and 60 seconds"),
    (["--listen", "nowhere"], "suoi console: error: console listener must be http://HOST:PORT, got 'nowhere'"),
])
def test_suoi_console_refuses_bad_flags_in_one_line(flags: list[str], message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "suoi", "console", "--bootstrap-server", "127.0.0.1:1", *flags],
                          capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout, done.stderr.strip()) == (1, "", message)


@pytest.mark.parametrize(("props", "message"), [
    ("security.protocol=SASL_SSL\nsasl.mechanism=OAUTHBEARER\n",
     "--command-config: sasl.mechanism=OAUTHBEARER: suoi console authenticates with PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"),
    ("security.protocol=KERBEROS\n", "--command-config: security.protocol=KERBEROS: expected PLAINTEXT, SSL, "
                                     "SASL_PLAINTEXT or SASL_SSL"),
])
def test_suoi_console_refuses_client_security_it_cannot_speak(props: str, message: str, tmp_path: Any) -> None:
    path = tmp_path / "client.properties"
    path.write_text(props)
    done = subprocess.run([sys.executable, "-m", "suoi", "console", "--bootstrap-server", "127.0.0.1:1",
                           "--command-config", str(path)], capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout, done.stderr.strip()) == (1, "", f"suoi console: error: {message}")


def test_a_request_the_cluster_does_not_take_is_not_sent() -> None:
    """A Kafka-compatible broker may close the connection on an API it lacks (failing every
    request in flight on it): the console sends only what ApiVersions listed."""

    async def run() -> None:
        client = ClusterClient([("127.0.0.1", 1)])
        client.versions = {3: (0, 12)}  # a cluster with Metadata only
        try:
            assert await client.describe_quorum() is None
            with pytest.raises(UnsupportedRequest, match="ListGroupsRequest v4 is not supported"):
                await client.list_groups(-1)
            assert client.requests == 0
        finally:
            await client.close()

    asyncio.run(run())


def test_protobuf_message_indexes_of_the_registry_wire_format() -> None:
    """Confluent's Protobuf framing: a lone 0 is [0] (the first message); otherwise a zigzag
    varint count then each index; a cut or absurd header is refused (the browser shows raw bytes)."""
    from suoi.http.console.schemas import message_indexes

    assert message_indexes(b"\x00\x0a\x01x") == ([0], b"\x0a\x01x")
    assert message_indexes(b"\x04\x02\x00rest") == ([1, 0], b"rest")
    assert message_indexes(b"\x02\x80\x01z") == ([64], b"z")
    for bad in (b"", b"\x04\x02", b"\x01", b"\xff\xff\xff\xff\xff\x01"):
        with pytest.raises(ValueError):
            message_indexes(bad)
