"""Byte rates in and out, per topic and per broker, from the brokers' own metrics endpoints.

The Kafka protocol has no byte counters, so the snapshot's rates are records/s (high watermarks'
growth). A suoi node with `admin.listeners` serves Prometheus metrics with Kafka's
BrokerTopicMetrics (`kafka_server_brokertopicmetrics_bytesin_total{topic=...}`, `..._bytesout_total`);
the console finds each broker's endpoint by asking the broker itself for its `admin.listeners`
(DescribeConfigs of the BROKER resource: once per broker, again after `RECHECK_S` when it had
none) and scrapes it once per poll. Rates are the counters' growth over `RATE_WINDOW_S`. Brokers
without an endpoint (another Kafka, or a node without admin.listeners) leave their rates None,
and the page falls back to records/s.
"""

from __future__ import annotations

import collections
import time
from typing import Any
from urllib.parse import urlsplit

from suoi.http.console.kafka_reads import ClusterClient, KafkaReadError, failed, gather_ok

__all__ = ["ByteRates"]

BROKER_RESOURCE = 4
RECHECK_S = 30.0
SCRAPE_TIMEOUT_S = 2.0
RATE_WINDOW_S = 5.0
FAMILIES = {"kafka_server_brokertopicmetrics_bytesin_total": 0, "kafka_server_brokertopicmetrics_bytesout_total": 1}

#: one scrape: {topic or None (the broker's total): [bytes in, bytes out]}
Counters = dict[str | None, list[float]]


def parse_byte_counters(text: str) -> Counters:
    """The BrokerTopicMetrics byte counters of a Prometheus text exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    out: Counters = {}
    wanted = tuple(FAMILIES)
    lines = "\n".join(line for line in text.splitlines() if line.startswith(wanted))
    for family in text_string_to_metric_families(lines + "\n"):
        for sample in family.samples:
            index = FAMILIES.get(sample.name)
            if index is not None:
                out.setdefault(sample.labels.get("topic"), [0.0, 0.0])[index] = float(sample.value)
    return out


class ByteRates:
    def __init__(self, client: ClusterClient) -> None:
        self.client = client
        self._urls: dict[int, tuple[str | None, float]] = {}  # broker -> (metrics URL or None, when asked)
        self._history: dict[int, collections.deque[tuple[float, Counters]]] = {}
        self._session: Any = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def note(self, snap: dict[str, Any]) -> None:
        """Add `in_bytes_rate`/`out_bytes_rate` (bytes/s, or None) to each topic and broker of `snap`,
        each topic's `bytes_in`/`bytes_out` counters summed over the brokers that answered, and
        `byte_rates: true` when at least one broker's metrics answered."""
        brokers = [b for b in snap["brokers"] if b["alive"]]
        scraped = await gather_ok([self._scrape(b) for b in brokers])
        now = time.monotonic()
        rates: dict[int, dict[str | None, tuple[float, float]]] = {}
        for b, counters in zip(brokers, scraped, strict=True):
            if counters is None:
                self._history.pop(b["id"], None)
                continue
            history = self._history.setdefault(b["id"], collections.deque())
            while history and now - history[0][0] > RATE_WINDOW_S:
                history.popleft()
            rates[b["id"]] = {}
            if history and now - history[0][0] >= 0.5:
                then, old = history[0]
                for key, (bytes_in, bytes_out) in counters.items():
                    was_in, was_out = old.get(key, (0.0, 0.0))
                    rates[b["id"]][key] = (max(0.0, bytes_in - was_in) / (now - then),
                                           max(0.0, bytes_out - was_out) / (now - then))
            history.append((now, counters))
        snap["byte_rates"] = bool(rates)
        for b in snap["brokers"]:
            total = rates.get(b["id"], {}).get(None)
            b["in_bytes_rate"], b["out_bytes_rate"] = (round(total[0], 1), round(total[1], 1)) if total else (None, None)
        latest = [h[-1][1] for h in self._history.values() if h]
        for t in snap["topics"]:
            t["bytes_in"] = sum(c[t["name"]][0] for c in latest if t["name"] in c) if latest else None
            t["bytes_out"] = sum(c[t["name"]][1] for c in latest if t["name"] in c) if latest else None
            found = [r[t["name"]] for r in rates.values() if t["name"] in r]
            complete = rates and all(r for r in rates.values())  # a broker without a window yet: no figure
            t["in_bytes_rate"] = round(sum(f[0] for f in found), 1) if complete else None
            t["out_bytes_rate"] = round(sum(f[1] for f in found), 1) if complete else None

    async def _scrape(self, broker: dict[str, Any]) -> Counters | None:
        url = await self._metrics_url(broker)
        if url is None:
            return None
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT_S))
        try:
            async with self._session.get(url, headers={"Accept": "text/plain"}) as r:
                r.raise_for_status()
                return parse_byte_counters(await r.text())
        except (TimeoutError, aiohttp.ClientError, ValueError):
            self._urls.pop(broker["id"], None)  # moved or gone: ask the broker again next time
            return None

    async def _metrics_url(self, broker: dict[str, Any]) -> str | None:
        """The broker's /metrics URL from its admin.listeners (a wildcard host: the broker's own)."""
        known = self._urls.get(broker["id"])
        if known is not None and (known[0] is not None or time.monotonic() - known[1] < RECHECK_S):
            return known[0]
        from kio.schema.describe_configs.v4.request import DescribeConfigsRequest, DescribeConfigsResource
        from kio.static.primitive import i8

        url = None
        try:
            response = await self.client.to(broker["id"], DescribeConfigsRequest(resources=(DescribeConfigsResource(
                resource_type=i8(BROKER_RESOURCE), resource_name=str(broker["id"]),
                configuration_keys=("admin.listeners",)),), include_synonyms=False, include_documentation=False))
            [result] = response.results
            value = next((c.value for c in result.configs if c.name == "admin.listeners"), None)
            if not failed(result.error_code) and value:
                parts = urlsplit(value.split(",")[0].strip())
                if parts.scheme == "http" and parts.port:
                    host = parts.hostname if parts.hostname not in (None, "", "0.0.0.0", "::") else broker["host"]
                    url = f"http://{f'[{host}]' if ':' in str(host) else host}:{parts.port}/metrics"
        except (KafkaReadError, OSError, LookupError, ValueError):  # an old broker, a refused request: no byte rates
            url = None
        self._urls[broker["id"]] = (url, time.monotonic())
        return url
