"""Thin async Kafka client for broker-to-broker RPC (Raft, forwarding, replica fetch).

See README.md. Requests and responses are kio entities; bytes go through
``suoi.protocol.codec`` and ``suoi.protocol.framing``, never hand-written encodings.
"""

from __future__ import annotations

import asyncio
from typing import Any

from suoi.client.connection import AuthenticationFailedError, KafkaClientConnection
from suoi.client.pool import Lane, NodeClient, NodeNotReadyError, UnknownNodeError
from suoi.security.client import PLAINTEXT, ClientSecurity

__all__ = ["PLAINTEXT", "AuthenticationFailedError", "ClientSecurity", "KafkaClientConnection", "Lane", "NodeClient",
           "NodeNotReadyError", "UnknownNodeError", "request_once", "request_sync"]


async def request_once(host: str, port: int, entity: Any, *, client_id: str = "suoi-internal",
                       timeout: float = 30.0, security: ClientSecurity = PLAINTEXT) -> Any:
    """Connect, send one request, return its response, close."""
    conn = await KafkaClientConnection.connect(host, port, client_id=client_id, timeout=timeout, security=security)
    try:
        return await conn.request(entity, timeout=timeout)
    finally:
        await conn.close()


def request_sync(host: str, port: int, entity: Any, *, client_id: str = "suoi-internal", timeout: float = 30.0,
                 security: ClientSecurity = PLAINTEXT) -> Any:
    """``request_once`` for synchronous callers (CLI tools); not for use inside an event loop."""
    return asyncio.run(request_once(host, port, entity, client_id=client_id, timeout=timeout, security=security))
