"""Scraping a node's admin endpoint in tests: GET with urllib, parse with prometheus-client's parsers."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def get(url: str, accept: str | None = None, timeout: float = 5.0) -> tuple[int, str, str]:
    """(status, content type, body) of a GET, error statuses included."""
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read().decode()


def get_json(url: str) -> tuple[int, Any]:
    status, _, body = get(url)
    return status, json.loads(body)


def scrape(base: str, openmetrics: bool = False) -> Samples:
    """Every sample of `GET base/metrics`, keyed by (name, labels), parsed by prometheus-client."""
    status, content_type, body = get(f"{base}/metrics", OPENMETRICS if openmetrics else None)
    assert status == 200, body
    parse = parse_openmetrics if openmetrics else parse_prometheus
    assert content_type.startswith("application/openmetrics-text" if openmetrics else "text/plain"), content_type
    return {(s.name, frozenset(s.labels.items())): s.value for family in parse(body) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))
