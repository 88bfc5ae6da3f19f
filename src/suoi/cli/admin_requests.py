"""Admin requests confluent-kafka's Python AdminClient lacks (ElectLeaders with its per-partition
errors, AlterPartitionReassignments, ListPartitionReassignments), written with kio and sent
through suoi's internal client (`suoi.client`) to a bootstrap broker; any broker forwards them
to the active controller. ``--command-config`` security settings (security.protocol, ssl.*, sasl.*,
librdkafka's names) apply as for the confluent-kafka tools.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from suoi.cli.common import TIMEOUT_S, CliError, read_client_props

__all__ = ["at", "check_top_level", "error_name", "partitions_text", "send"]


def _addresses(bootstrap: str) -> list[tuple[str, int]]:
    out = []
    for addr in filter(None, (a.strip() for a in bootstrap.split(","))):
        addr = addr.split("://", 1)[-1]
        host, sep, port = addr.rpartition(":")
        if not sep or not port.isdigit():
            raise CliError(f"--bootstrap-server expects HOST:PORT, got {addr!r}")
        out.append((host.strip("[]") or "localhost", int(port)))
    if not out:
        raise CliError("--bootstrap-server names no broker")
    return out


def send(args: argparse.Namespace, request: Any, tool: str) -> Any:
    """``request`` to the first bootstrap broker that answers; its response."""
    from suoi.client import request_sync
    from suoi.security.client import from_client_properties

    try:
        security = from_client_properties(read_client_props(getattr(args, "command_config", None)))
    except (ValueError, OSError) as exc:
        raise CliError(f"--command-config: {exc}") from None
    reasons = []
    for host, port in _addresses(args.bootstrap_server):
        try:
            return request_sync(host, port, request, client_id=f"suoi-{tool}", timeout=TIMEOUT_S, security=security)
        except OSError as exc:  # refused, dropped, timed out (asyncio.TimeoutError is TimeoutError)
            reasons.append(exc.strerror or str(exc) or type(exc).__name__)
    raise CliError(f"cannot reach a broker at {args.bootstrap_server}: {reasons[0] if reasons else 'no answer'}")


def at(args: argparse.Namespace, host: str, port: int) -> argparse.Namespace:
    """``args`` aimed at one node (``send`` to a broker or controller named in an answer)."""
    return argparse.Namespace(bootstrap_server=f"{host}:{port}", command_config=getattr(args, "command_config", None))


def error_name(code: Any) -> str:
    """Kafka's name of an error code (``INVALID_REPLICA_ASSIGNMENT``)."""
    return str(getattr(code, "name", code)).upper()


def check_top_level(response: Any, what: str) -> None:
    """A top-level error (no active controller, timeout) fails the whole command."""
    code = getattr(response, "error_code", None)
    if code is not None and int(code.value if hasattr(code, "value") else code) != 0:
        message = getattr(response, "error_message", None)
        raise CliError(f"{what} failed: {error_name(code)}" + (f": {message}" if message else ""))


def partitions_text(parts: Iterable[tuple[str, int]], sep: str = ",") -> str:
    return sep.join(f"{t}-{p}" for t, p in parts)
