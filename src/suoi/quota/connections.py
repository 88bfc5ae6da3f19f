"""Connection limits (Kafka's ConnectionQuotas), sans-IO: ``max.connections``,
``max.connections.per.ip`` and ``max.connections.per.ip.overrides`` (``host:count,...``).

`admit(ip, counted)` is asked for every new connection: it answers None (admitted and counted) or
the reason it must be closed at once. ``counted=False`` (controller listeners, where brokers talk
to the quorum) bypasses ``max.connections``, as Kafka lets inter-broker traffic through when the
broker-wide limit is reached; the per-IP limit applies everywhere. `release(ip, counted)` when
the connection closes. Differences from Kafka: a connection over ``max.connections`` is closed
instead of left waiting in the accept queue.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["ConnectionLimits", "parse_overrides"]

UNLIMITED = 2_147_483_647


def parse_overrides(text: str) -> dict[str, int]:
    """Kafka's ``max.connections.per.ip.overrides``: ``host:count`` pairs, comma-separated."""
    out: dict[str, int] = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        host, sep, count = item.rpartition(":")
        if not sep or not host or not count.strip().isdigit():
            raise ValueError(f"max.connections.per.ip.overrides entry {item!r} is not host:count")
        out[host.strip()] = int(count)
    return out


@dataclass(slots=True)
class ConnectionLimits:
    max_connections: int = UNLIMITED
    max_per_ip: int = UNLIMITED
    overrides: dict[str, int] = field(default_factory=dict)
    _per_ip: Counter[str] = field(default_factory=Counter)
    _counted: int = 0

    @property
    def active(self) -> bool:
        return self.max_connections < UNLIMITED or self.max_per_ip < UNLIMITED or bool(self.overrides)

    def admit(self, ip: str, counted: bool = True) -> str | None:
        limit = self.overrides.get(ip, self.max_per_ip)
        if self._per_ip[ip] >= limit:
            return f"Too many connections from {ip} (maximum = {limit})"
        if counted and self._counted >= self.max_connections:
            return f"Too many connections (max.connections = {self.max_connections})"
        self._per_ip[ip] += 1
        self._counted += counted
        return None

    def release(self, ip: str, counted: bool = True) -> None:
        self._per_ip[ip] -= 1
        if self._per_ip[ip] <= 0:
            del self._per_ip[ip]
        self._counted -= counted
