"""`suoi.http.admin.exposition`: the cached /metrics text is byte-equal to prometheus-client's own
encoding of the same families, for every format and escaping `choose_encoder` offers, scrape after
scrape as values, series and families change."""

from __future__ import annotations

import math
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
    StateSetMetricFamily,
    SummaryMetricFamily,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.utils import floatToGoString

from suoi.http.admin.exposition import (
    DERIVE_PER_STEP,
    ROWS_PER_STEP,
    DistributionTable,
    Exposition,
    Family,
    SeriesTable,
    Table,
    _value_text,
)

ACCEPTS = [
    "",  # Prometheus text 0.0.4
    "text/plain;version=1.0.0;escaping=allow-utf-8",
    "text/plain;version=1.0.0;escaping=dots",
    "text/plain;version=1.0.0;escaping=values",
    "application/openmetrics-text",
    "application/openmetrics-text;version=1.0.0",
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8",
    "application/openmetrics-text;version=1.0.0;escaping=dots",
    "application/openmetrics-text;version=1.0.0;escaping=values",
    # Prometheus 2.x's and 3.x's default Accept
    "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,"
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;"
    "version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
]

TRICKY = ['a"b', "back\\slash", "new\nline", "unicode é ✓", "", " spaced ", "#hash", "line\u2028sep", "cr\rhere"]


class _Registry:
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> list[Metric]:
        return self._families


def reference(families: Iterable[Family], accept: str) -> bytes:
    encoder, _ = choose_encoder(accept)
    return encoder(_Registry(f.to_metric() if isinstance(f, Table) else f for f in families))


def families(scrape: int) -> list[Family]:
    """Every kind of family, changing with `scrape`: values, series added and gone, one family gone."""
    out: list[Family] = []
    g = GaugeMetricFamily("suoi_test_gauge", 'Help with "quotes", a \\ and a\nnewline.', labels=["topic", "partition"])
    for i, topic in enumerate(TRICKY):
        g.add_metric([topic, str(i)], i * scrape)
    if scrape > 1:
        g.add_metric(["added", "0"], 7)
    out.append(g)
    c = CounterMetricFamily("suoi_test_requests", "Counted.", labels=["request"])
    for i, value in enumerate([0, -0.0, 1, 2**53 + 1, 1234567.0, 1e-7, math.inf, -math.inf, math.nan, True, 0.5]):
        c.add_metric([f"r{i}"], value if scrape != 3 else i)
    out.append(c)
    out.append(CounterMetricFamily("suoi_test_created", "With _created.", value=scrape, created=1700000000.5))
    out.append(GaugeMetricFamily("suoi_test_stamped", "With a timestamp.", value=scrape) if scrape == 2 else
               _stamped(scrape))
    h = HistogramMetricFamily("suoi_test_latency", "Histogram.", labels=["request"])
    h.add_metric(["Produce"], [("0.5", 1), ("1.0", 3 * scrape), ("+Inf", 4 * scrape)], 12.5 * scrape)
    out.append(h)
    s = SummaryMetricFamily("suoi_test_summary", "Summary.", labels=["request"])
    s.add_metric(["Fetch"], scrape, 0.25 * scrape)
    out.append(s)
    out.append(InfoMetricFamily("suoi_test_build", "Info.", value={"version": "1.0", "odd": 'x"y'}))
    out.append(StateSetMetricFamily("suoi_test_state", "State set.", value={"leader": scrape == 1, "follower": True}))
    gh = GaugeHistogramMetricFamily("suoi_test_gh", "Gauge histogram.", buckets=[("1.0", 1), ("+Inf", 2)],
                                    gsum_value=3)
    out.append(gh)
    out.append(GaugeMetricFamily("suoi_test_bytes", "With a unit.", value=scrape, unit="bytes"))
    out.append(GaugeMetricFamily("suoi_test_empty", "No series.", labels=["x"]))
    if scrape != 2:
        out.append(GaugeMetricFamily("suoi.dotted:name", "Not a legacy name.", value=1))
    table = SeriesTable("suoi_test_table", "Per partition.", "gauge", ("topic", "partition"))
    for p in range(ROWS_PER_STEP + 5 - (scrape == 3) * 3):
        table.add(("t", str(p)), p * (scrape if p % 2 else 1))
    out.append(table)
    meter = SeriesTable("suoi_test_meter", "Per topic and all.", "counter", ("topic",))
    for topic in TRICKY:
        meter.add((topic,), len(topic) * scrape)
    meter.add((), 99 * scrape)
    out.append(meter)
    out.extend(distributions(scrape))
    return out


def distributions(scrape: int) -> list[Table]:
    hist = DistributionTable("suoi_test_times", "Per API.", "histogram", ("request",), ("0.5", "1.0", "+Inf"))
    summary = DistributionTable("suoi_test_local", "Per API.", "summary", ("request",))
    for i, api in enumerate(["Produce", "Fetch", 'we"ird'][:1 + scrape]):
        hist.add((api,), [i, i + scrape, 2 * i + scrape], 0.25 * i * scrape)
        summary.add((api,), (i + scrape,), i / 3)
    pauses = DistributionTable("suoi_test_pauses", "Unlabelled.", "histogram", (), ("0.001", "+Inf"))
    pauses.add((), [scrape, scrape + 1], 1e-3 * scrape)
    return [hist, summary, pauses]


def _stamped(scrape: int) -> Metric:
    m = GaugeMetricFamily("suoi_test_stamped", "With a timestamp.")
    m.add_metric([], scrape, timestamp=1700000000 + scrape)
    return m


@pytest.mark.parametrize("accept", ACCEPTS)
def test_byte_equal_to_prometheus_client_scrape_after_scrape(accept: str) -> None:
    exposition = Exposition()
    encoder, _ = choose_encoder(accept)
    for scrape in (1, 1, 2, 3, 3, 1):
        fams = families(scrape)
        assert exposition.encode(fams, encoder) == reference(fams, accept), (accept, scrape)


def test_formats_kept_are_bounded_and_each_stays_exact() -> None:
    exposition = Exposition(max_formats=2)
    for _ in range(2):
        for accept in ACCEPTS:
            fams = families(2)
            assert exposition.encode(fams, choose_encoder(accept)[0]) == reference(fams, accept)
            assert len(exposition._formats) <= 2


def test_a_large_family_is_encoded_in_bounded_steps() -> None:
    """Steps of at most DERIVE_PER_STEP new series (first scrape) or ROWS_PER_STEP rows (later)."""
    table = SeriesTable("kafka_log_log_size", "Bytes.", "gauge", ("topic", "partition"))
    for p in range(1000):
        table.add(("t", str(p)), p)
    encoder = choose_encoder("application/openmetrics-text;version=1.0.0")[0]
    exposition = Exposition()
    first = list(_steps(exposition, [table], encoder))
    assert len(first) >= 1000 // DERIVE_PER_STEP + 1000 // ROWS_PER_STEP
    table = SeriesTable(table.name, table.documentation, "gauge", table.labelnames, table.rows,
                        [v + 1 for v in table.values()])
    again = list(_steps(exposition, [table], encoder))
    assert 1000 // ROWS_PER_STEP <= len(again) <= 1000 // ROWS_PER_STEP + 3
    assert exposition.encode([table], encoder) == reference([table], "application/openmetrics-text;version=1.0.0")


def _steps(exposition: Exposition, fams: list[Family], encoder: object) -> Iterable[None]:
    return exposition.steps(fams, encoder)  # type: ignore[arg-type]


labels = st.text(max_size=12)
values = st.one_of(st.integers(min_value=-(2**63), max_value=2**63), st.floats(allow_nan=True, allow_infinity=True))


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(labels, labels, values, values), max_size=12, unique_by=lambda r: (r[0], r[1])),
       accept=st.sampled_from(ACCEPTS))
def test_any_label_values_and_values(rows: list[tuple[str, str, float, float]], accept: str) -> None:
    exposition = Exposition()
    encoder = choose_encoder(accept)[0]
    for which in (2, 3, 3):  # first values, then the second ones twice (new lines, then reused ones)
        table = SeriesTable("suoi_any", "Any.", "counter", ("topic", "partition"))
        gauge = GaugeMetricFamily("suoi_any_gauge", "Any.", labels=["group"])
        for row in rows:
            table.add((row[0], row[1]), row[which])
            gauge.add_metric([row[0] + row[1]], row[which])
        assert exposition.encode([table, gauge], encoder) == reference([table, gauge], accept)


def test_tables_hold_what_prometheus_clients_family_classes_would() -> None:
    """The families the collector now builds as tables are the ones it built before."""
    gauge = SeriesTable("g", "Doc.", "gauge", ("topic", "partition"))
    gauge.add(("t", "0"), 5)
    old_gauge = GaugeMetricFamily("g", "Doc.", labels=["topic", "partition"])
    old_gauge.add_metric(["t", "0"], 5)
    counter = SeriesTable("c", "Doc.", "counter", ("topic",))
    counter.add(("t",), 3)
    counter.add((), 4)
    old_counter = CounterMetricFamily("c", "Doc.")
    old_counter.add_sample("c_total", {"topic": "t"}, 3)
    old_counter.add_sample("c_total", {}, 4)
    hist = DistributionTable("h", "Doc.", "histogram", ("request",), ("0.5", "+Inf"))
    hist.add(("Produce",), [1, 3], 2.5)
    old_hist = HistogramMetricFamily("h", "Doc.", labels=["request"])
    old_hist.add_metric(["Produce"], [("0.5", 1), ("+Inf", 3)], 2.5)
    summary = DistributionTable("s", "Doc.", "summary", ("request",))
    summary.add(("Fetch",), (2,), 0.5)
    old_summary = SummaryMetricFamily("s", "Doc.", labels=["request"])
    old_summary.add_metric(["Fetch"], 2, 0.5)
    for table, old in ((gauge, old_gauge), (counter, old_counter), (hist, old_hist), (summary, old_summary)):
        assert table.to_metric() == old


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(st.integers(min_value=-(10**17), max_value=10**17),
                       st.sampled_from([0, -1, 999_999, 1_000_000, -(10**15) + 1, -(10**15), -(10**16), 2**53 + 1])))
def test_an_ints_text_is_prometheus_clients(value: int) -> None:
    assert _value_text(value) == floatToGoString(value)
