"""Listening sockets for the node's HTTP apps, bound during the node's start (light: no aiohttp).

A node binds its HTTP ports (admin endpoint, schema registry) while it starts, so a port in use
refuses the start in one line as before; the apps themselves (aiohttp and what they use, ~0.3 s of
imports) load once the node serves Kafka clients and take over the bound sockets. Connections made
meanwhile wait in the socket's backlog and are answered once the app is up.
"""

from __future__ import annotations

import socket

__all__ = ["listen_socket"]


def listen_socket(host: str, port: int, backlog: int = 128) -> socket.socket:
    """A non-blocking listening TCP socket on (host, port), SO_REUSEADDR as aiohttp's sites set it;
    an empty host is every interface (IPv4 and IPv6 where the system can). Raises OSError."""
    if not host and socket.has_dualstack_ipv6():
        sock = socket.create_server(("", port), family=socket.AF_INET6, backlog=backlog, dualstack_ipv6=True)
    else:
        sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                                    backlog=backlog)
    sock.setblocking(False)
    return sock
