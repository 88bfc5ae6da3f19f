"""Connection limits (Kafka's ConnectionQuotas), sans-IO.

Counts: ``max.connections`` (broker-wide), ``listener.name.<l>.max.connections`` (per listener),
``max.connections.per.ip`` and ``max.connections.per.ip.overrides`` (``host:count,...``).
Rates (KIP-612, measured with `Rate` over the quota windows): ``max.connection.creation.rate``
(broker-wide, not applied to the inter-broker listener), ``listener.name.<l>.max.connection.creation.rate``
and the ``connection_creation_rate`` client quota of the ``ip`` entity (or the default ip),
which lives in the metadata image (`ip_rate` looks it up).

`admit(ip, listener, now_ms, ...)` is asked for every new connection and answers an `Admission`:

* over a count: closed at once (``reason``);
* over the listener or broker-wide rate: accepted, but served only after ``delay_ms`` (Kafka's
  acceptor waits that long before it takes the connection);
* over its IP's rate: not counted, and closed after ``delay_ms`` (Kafka's delayed close of a
  throttled connection, so a client that reconnects at once is slowed down too).

``counted=False`` (controller listeners, where brokers talk to the quorum) bypasses the
broker-wide count and every rate, as Kafka lets inter-broker traffic through; the per-IP count
applies everywhere. `release(ip, listener, counted)` when the connection closes. Differences from
Kafka: a connection over ``max.connections`` is closed instead of left waiting in the accept queue.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from suoi.quota.sampler import Rate

__all__ = ["Admission", "ConnectionLimits", "listener_connection_limits", "parse_overrides"]

UNLIMITED = 2_147_483_647
_IDLE_MS = 3_600_000


def parse_overrides(text: str) -> dict[str, int]:
    """Kafka's ``max.connections.per.ip.overrides``: ``host:count`` pairs, comma-separated."""
    out: dict[str, int] = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        host, sep, count = item.rpartition(":")
        if not sep or not host or not count.strip().isdigit():
            raise ValueError(f"max.connections.per.ip.overrides entry {item!r} is not host:count")
        out[host.strip()] = int(count)
    return out


def listener_connection_limits(values: Mapping[str, object]) -> tuple[dict[str, int], dict[str, int]]:
    """({listener: max.connections}, {listener: max.connection.creation.rate}) from the
    ``listener.name.<l>.`` prefixed settings (listener names upper case, as they are matched)."""
    counts: dict[str, int] = {}
    rates: dict[str, int] = {}
    for key, value in values.items():
        if key.startswith("listener.name."):
            listener, _, setting = key[len("listener.name."):].partition(".")
            if setting == "max.connections":
                counts[listener.upper()] = int(str(value))
            elif setting == "max.connection.creation.rate":
                rates[listener.upper()] = int(str(value))
    return counts, rates


@dataclass(frozen=True, slots=True)
class Admission:
    """None/0: serve at once; a delay alone: serve after it; a reason: close (after the delay)."""

    reason: str | None = None
    delay_ms: int = 0


ADMITTED = Admission()


def _no_ip_quota(ip: str) -> float | None:
    return None


@dataclass(slots=True)
class ConnectionLimits:
    max_connections: int = UNLIMITED
    max_per_ip: int = UNLIMITED
    overrides: dict[str, int] = field(default_factory=dict)
    #: listener.name.<l>.max.connections, by listener name (upper case)
    listener_max: dict[str, int] = field(default_factory=dict)
    max_creation_rate: int = UNLIMITED
    #: listener.name.<l>.max.connection.creation.rate, by listener name (upper case)
    listener_rate: dict[str, int] = field(default_factory=dict)
    #: the ``connection_creation_rate`` quota of an IP (its own, else the default ip's), or None
    ip_rate: Callable[[str], float | None] = _no_ip_quota
    num_samples: int = 11
    window_ms: int = 1000
    _per_ip: Counter[str] = field(default_factory=Counter)
    _per_listener: Counter[str] = field(default_factory=Counter)
    _counted: int = 0
    _rates: dict[tuple[str, str], Rate] = field(default_factory=dict)

    def admit(self, ip: str, listener: str = "", now_ms: int = 0, *, counted: bool = True,
              broker_rate: bool = True) -> Admission:
        """``broker_rate=False``: the inter-broker listener (not under ``max.connection.creation.rate``)."""
        limit = self.overrides.get(ip, self.max_per_ip)
        if self._per_ip[ip] >= limit:
            return Admission(f"Too many connections from {ip} (maximum = {limit})")
        if counted and self._counted >= self.max_connections:
            return Admission(f"Too many connections (max.connections = {self.max_connections})")
        listener_limit = self.listener_max.get(listener, UNLIMITED)
        if self._per_listener[listener] >= listener_limit:
            return Admission(f"Too many connections on listener {listener} (max.connections = {listener_limit})")
        delay = 0
        if counted:
            ip_quota = self.ip_rate(ip)
            if ip_quota is not None:
                throttle = self._record(("ip", ip), ip_quota, now_ms)
                if throttle > 0:
                    self._rates[("ip", ip)].record(-1, now_ms)  # not admitted: not counted (Kafka unrecords it)
                    return Admission(f"connection rate from {ip} above its connection_creation_rate quota "
                                     f"({ip_quota:g}/s)", throttle)
            if listener in self.listener_rate:
                delay = self._record(("listener", listener), self.listener_rate[listener], now_ms)
            if broker_rate and self.max_creation_rate < UNLIMITED:
                delay = max(delay, self._record(("broker", ""), self.max_creation_rate, now_ms))
        self._per_ip[ip] += 1
        self._per_listener[listener] += 1
        self._counted += counted
        return Admission(None, delay) if delay else ADMITTED

    def release(self, ip: str, listener: str = "", counted: bool = True) -> None:
        for counter, key in ((self._per_ip, ip), (self._per_listener, listener)):
            counter[key] -= 1
            if counter[key] <= 0:
                del counter[key]
        self._counted -= counted

    def _record(self, key: tuple[str, str], quota: float, now_ms: int) -> int:
        rate = self._rates.get(key)
        if rate is None:
            if len(self._rates) > 10_000:
                self._rates = {k: r for k, r in self._rates.items() if now_ms - r.last_record_ms <= _IDLE_MS}
            rate = self._rates[key] = Rate(self.num_samples, self.window_ms)
        rate.record(1, now_ms)
        return rate.throttle_ms(quota, now_ms)
