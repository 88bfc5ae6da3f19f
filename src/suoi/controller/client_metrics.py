"""Client metrics subscriptions (KIP-714): CLIENT_METRICS config resources and their rules.

A subscription is a config resource of type CLIENT_METRICS (16) named by the operator, set with
(Incremental)AlterConfigs and kept in the metadata log like topic configs:

- ``metrics``: comma-separated metric name prefixes to push ("" none, "*" all);
- ``interval.ms``: push interval, 100 .. 3600000 (default 300000);
- ``match``: comma-separated ``selector=regex`` (client_instance_id, client_id,
  client_software_name, client_software_version, client_source_address, client_source_port);
  a client matches when every selector's regex matches the whole value; no match = every client.

Validation follows Kafka's ClientMetricsConfigs (wording included). `Subscription.parse` is what
the brokers use to answer GetTelemetrySubscriptions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from suoi.controller.errors import ApiError
from suoi.model import ErrorCode

__all__ = ["DEFAULT_INTERVAL_MS", "LIST_KEYS", "MATCH_SELECTORS", "Subscription", "validate"]

METRICS, INTERVAL_MS, MATCH = "metrics", "interval.ms", "match"
LIST_KEYS = frozenset({METRICS, MATCH})
DEFAULT_INTERVAL_MS = 300_000
MIN_INTERVAL_MS, MAX_INTERVAL_MS = 100, 3_600_000
MATCH_SELECTORS = frozenset({"client_instance_id", "client_id", "client_software_name", "client_software_version",
                             "client_source_address", "client_source_port"})


def _items(value: str) -> list[str]:
    return [x.strip() for x in value.split(",") if x.strip()]


def _patterns(value: str) -> dict[str, re.Pattern[str]]:
    out: dict[str, re.Pattern[str]] = {}
    for item in _items(value):
        key, sep, regex = item.partition("=")
        key = key.strip()
        if not sep or key not in MATCH_SELECTORS or not regex.strip():
            raise ApiError(ErrorCode.invalid_config, f"Illegal client matching pattern: {item}")
        try:
            out[key] = re.compile(regex.strip())
        except re.error:
            raise ApiError(ErrorCode.invalid_config, f"Illegal regex pattern: {regex.strip()}") from None
    return out


def validate(name: str, overrides: Mapping[str, str]) -> None:
    """Refuse a subscription Kafka would refuse (ApiError with Kafka's code and wording)."""
    if not name:
        raise ApiError(ErrorCode.invalid_request, "Subscription name can't be empty")
    for key in overrides:
        if key not in (METRICS, INTERVAL_MS, MATCH):
            raise ApiError(ErrorCode.invalid_config, f"Unknown client metric configuration: {key}")
    if INTERVAL_MS in overrides:
        try:
            interval = int(overrides[INTERVAL_MS])
        except ValueError:
            raise ApiError(ErrorCode.invalid_config, f"Invalid value {overrides[INTERVAL_MS]} for configuration "
                                               f"{INTERVAL_MS}: Not a number of type INT") from None
        if not MIN_INTERVAL_MS <= interval <= MAX_INTERVAL_MS:
            raise ApiError(ErrorCode.invalid_request, f"Invalid value {interval} for {INTERVAL_MS}, interval must be "
                                                "between 100 and 3600000 (1 hour)")
    _patterns(overrides.get(MATCH, ""))


@dataclass(frozen=True, slots=True)
class Subscription:
    name: str
    metrics: tuple[str, ...]
    interval_ms: int
    match: Mapping[str, re.Pattern[str]]

    @classmethod
    def parse(cls, name: str, configs: Mapping[str, str]) -> Subscription:
        """A stored (hence valid) subscription."""
        return cls(name, tuple(_items(configs.get(METRICS, ""))),
                   int(configs.get(INTERVAL_MS, DEFAULT_INTERVAL_MS)), _patterns(configs.get(MATCH, "")))

    def matches(self, attributes: Mapping[str, str]) -> bool:
        return all(p.fullmatch(attributes.get(k, "")) is not None for k, p in self.match.items())
