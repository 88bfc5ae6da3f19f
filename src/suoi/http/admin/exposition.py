"""The /metrics text, made by prometheus-client once per series and reused (issue 19: a scrape held
the event loop's GIL 3-11 ms).

prometheus-client formats every sample of every scrape from scratch: label names checked, label
values escaped and sorted, and (OpenMetrics, what Prometheus asks for) each sample's name escaped
a character at a time: 6-12 µs a sample, 36-48 ms for a node with 1,000 partitions. Between two
scrapes a series' line changes only in its value. So `Exposition` asks prometheus-client's own
encoder (the one `choose_encoder` picked for the scraper's `Accept`) once for each family's
header and, with the value 0, for each series' line; it keeps the text before the value and
from then on writes that prefix and `floatToGoString(value)`, or the whole previous line when the
value did not change. The bytes are prometheus-client's own, byte-equal for every format and
escaping it offers (tests/unit/test_admin_exposition.py), and a family whose text does not split
that way (timestamps, exemplars, `_created` samples, whatever the check does not recognise) is
encoded by prometheus-client whole, every scrape.

`SeriesTable` is a gauge or counter family held as rows (label values) and values instead of
prometheus-client's Sample objects: the per-partition and per-topic families are built from the
node's tables without an object per sample.

The work is a generator of small steps (`Exposition.steps`), which the admin endpoint runs on
the event loop in slices (`run_sliced`): a scrape is never one long pause, and no thread takes
the GIL from the loop (a thread's encoding cost the loop up to a switch interval per syscall).
"""

from __future__ import annotations

import asyncio
import copy
import functools
import time
from collections import OrderedDict
from collections.abc import Callable, Generator, Hashable, Iterable, Iterator, Sequence
from typing import Any, Literal

from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

#: A prometheus-client encoder (`generate_latest`, or what `choose_encoder` returns).
Encoder = Callable[..., bytes]

#: Rows rendered (or derived through prometheus-client) between two chances to yield the loop.
ROWS_PER_STEP = 256
#: Series whose line is asked of prometheus-client in one call (~6-20 µs each).
DERIVE_PER_STEP = 24
#: Formats (content type, escaping, version) whose text is kept: a scraper can name any version.
MAX_FORMATS = 4

_ZERO = floatToGoString(0)
#: ints strictly between these are written as `f"{value}.0"` (`_value_text`)
_INT_TEXT_MIN, _INT_TEXT_MAX = -10**15, 10**6


class Table:
    """A family held as columns rather than prometheus-client's Sample objects: each sample is
    a key (hashable, the same for the same series scrape after scrape) and a value, in the order
    prometheus-client's own family class would list them."""

    __slots__ = ("documentation", "labelnames", "name", "rows", "type", "unit")

    def __init__(self, name: str, documentation: str, typ: str, labelnames: Sequence[str],
                 rows: list[tuple[str, ...]] | None, unit: str = "") -> None:
        self.name, self.documentation, self.type, self.unit = name, documentation, typ, unit
        self.labelnames = tuple(labelnames)
        #: each series' label values, in `labelnames` order; `()`: the family's unlabelled series
        self.rows: list[tuple[str, ...]] = [] if rows is None else rows

    def keys(self) -> Sequence[Hashable]:
        raise NotImplementedError

    def values(self) -> Sequence[float]:
        """The samples' values, in `keys()` order."""
        raise NotImplementedError

    def sample(self, key: Any) -> tuple[str, dict[str, str]]:
        """The sample name and labels of `key`."""
        raise NotImplementedError

    def labels(self, row: tuple[str, ...]) -> dict[str, str]:
        return dict(zip(self.labelnames, row, strict=False))  # (): no labels

    def to_metric(self, zeroed: Sequence[Hashable] | None = None) -> Metric:
        """The prometheus-client family; with `zeroed`, of those samples only, valued 0."""
        metric = Metric(self.name, self.documentation, self.type, self.unit)
        series = zip(self.keys(), self.values(), strict=True) if zeroed is None else ((key, 0) for key in zeroed)
        for key, value in series:
            name, labels = self.sample(key)
            metric.add_sample(name, labels, value)
        return metric


class SeriesTable(Table):
    """A gauge or counter family: a value per row (what `Gauge/CounterMetricFamily` would hold)."""

    __slots__ = ("_values", "sample_name")

    def __init__(self, name: str, documentation: str, typ: Literal["gauge", "counter"],
                 labelnames: Sequence[str] = (), rows: list[tuple[str, ...]] | None = None,
                 values: list[float] | None = None, unit: str = "") -> None:
        super().__init__(name, documentation, typ, labelnames, rows, unit)
        self.sample_name = name + "_total" if typ == "counter" else name
        self._values: list[float] = [] if values is None else values

    def add(self, labelvalues: tuple[str, ...], value: float) -> None:
        self.rows.append(labelvalues)
        self._values.append(value)

    def keys(self) -> Sequence[Hashable]:
        return self.rows

    def values(self) -> list[float]:
        return self._values

    def sample(self, key: Any) -> tuple[str, dict[str, str]]:
        return self.sample_name, self.labels(key)


class DistributionTable(Table):
    """A histogram (cumulative counts per bucket bound `le`, then count and sum, as
    `HistogramMetricFamily` lists them) or a summary (count and sum) per row."""

    __slots__ = ("bounds", "counts", "sums")

    def __init__(self, name: str, documentation: str, typ: Literal["histogram", "summary"],
                 labelnames: Sequence[str] = (), bounds: Sequence[str] = (), unit: str = "") -> None:
        super().__init__(name, documentation, typ, labelnames, None, unit)
        #: a histogram's bucket bounds, "+Inf" last (a summary: none)
        self.bounds = tuple(bounds)
        self.counts: list[Sequence[float]] = []
        self.sums: list[float] = []

    def add(self, labelvalues: tuple[str, ...], counts: Sequence[float], sum_value: float) -> None:
        """`counts`: cumulative, one per bound (a histogram), or the count alone (a summary)."""
        self.rows.append(labelvalues)
        self.counts.append(counts)
        self.sums.append(sum_value)

    def keys(self) -> list[Hashable]:
        per_row = range(len(self.bounds) + 2)
        return [(row, i) for row in self.rows for i in per_row]

    def values(self) -> list[float]:
        out: list[float] = []
        buckets = len(self.bounds)
        for counts, sum_value in zip(self.counts, self.sums, strict=True):
            if buckets:
                out.extend(counts)
            out.append(counts[-1])
            out.append(sum_value)
        return out

    def sample(self, key: Any) -> tuple[str, dict[str, str]]:
        row, i = key
        labels = self.labels(row)
        if i < len(self.bounds):
            labels["le"] = self.bounds[i]
            return self.name + "_bucket", labels
        return self.name + ("_count" if i == len(self.bounds) else "_sum"), labels


#: A family `Exposition` encodes.
Family = Metric | Table


class _Families:
    """Yields the given families to prometheus-client's encoders (which want `collect()`)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


class _FamilyText:
    """One family's text in one format: the header, and per series (prefix, value, line)."""

    __slots__ = ("header", "lines")

    def __init__(self, header: str | None) -> None:
        self.header = header  # None: prometheus-client encodes this family whole, each scrape
        self.lines: dict[Hashable, tuple[str, float, str]] = {}


class _Format:
    """The text kept for one encoder (content type, escaping, version)."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.trailer = encoder(_Families([])).decode()  # OpenMetrics: "# EOF\n"
        self.families: dict[tuple[str, str, str, str], _FamilyText] = {}

    def whole(self, metric: Metric) -> str:
        """One family as prometheus-client encodes it."""
        text = self.encoder(_Families([metric])).decode()
        return text[:len(text) - len(self.trailer)] if self.trailer and text.endswith(self.trailer) else text

    def family(self, family: Family) -> _FamilyText:
        key = (family.name, family.type, family.documentation, family.unit)
        text = self.families.get(key)
        if text is None:
            if isinstance(family, Table):
                empty = family.to_metric(())
            else:
                empty = copy.copy(family)
                empty.samples = []
            header = self.whole(empty)
            ok = all(line.startswith("#") for line in header.split("\n")[:-1]) and header.endswith("\n")
            text = self.families[key] = _FamilyText(header if ok else None)
        return text

    def derive(self, text: _FamilyText, zeroed: Metric, keys: Sequence[Hashable],
               lines: dict[Hashable, tuple[str, float, str]]) -> bool:
        """Each key's line prefix from prometheus-client's text of `zeroed` (its samples, valued
        0, one per key in order) into `lines`; False when that text does not split into a
        header and one `<prefix>0.0` line per sample (the family is then encoded whole)."""
        header = text.header
        assert header is not None
        out = self.whole(zeroed)
        if not out.startswith(header):
            return False
        body = out[len(header):].split("\n")
        if len(body) != len(keys) + 1 or body[-1]:
            return False
        suffix = " " + _ZERO
        for key, line in zip(keys, body, strict=False):
            if line.startswith("#") or not line.endswith(suffix):
                return False
            lines[key] = (line[:-len(_ZERO)], 0, line + "\n")
        return True


class Exposition:
    """Encodes families as prometheus-client would, keeping each series' text between scrapes."""

    def __init__(self, max_formats: int = MAX_FORMATS) -> None:
        self._formats: OrderedDict[Hashable, _Format] = OrderedDict()
        self._max_formats = max_formats

    def encode(self, families: Iterable[Family | None], encoder: Encoder) -> bytes:
        """All at once (tests, and callers off the event loop)."""
        steps = self.steps(families, encoder)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    def steps(self, families: Iterable[Family | None], encoder: Encoder) -> Generator[None, None, bytes]:
        """Encode `families` (None items: the source did a step of its own work) in steps of at
        most `ROWS_PER_STEP` rows or `DERIVE_PER_STEP` new series; returns the body."""
        fmt = self._format(encoder)
        out: list[str] = []
        used: dict[tuple[str, str, str, str], _FamilyText] = {}
        for family in families:
            if family is None:
                yield
                continue
            text = fmt.family(family)
            used[(family.name, family.type, family.documentation, family.unit)] = text
            if text.header is None:
                out.append(fmt.whole(family.to_metric() if isinstance(family, Table) else family))
            elif isinstance(family, Table):
                yield from self._table(fmt, text, family, out)
            else:
                yield from self._metric(fmt, text, family, out)
            yield
        out.append(fmt.trailer)
        fmt.families = used  # the text of families gone since the last scrape goes
        return "".join(out).encode("utf-8")

    def _format(self, encoder: Encoder) -> _Format:
        if isinstance(encoder, functools.partial):
            key: Hashable = (encoder.func, encoder.args, tuple(sorted(encoder.keywords.items())))
        else:
            key = encoder
        fmt = self._formats.get(key)
        if fmt is None:
            fmt = self._formats[key] = _Format(encoder)
            while len(self._formats) > self._max_formats:
                self._formats.popitem(last=False)
        else:
            self._formats.move_to_end(key)
        return fmt

    def _table(self, fmt: _Format, text: _FamilyText, table: Table, out: list[str]) -> Iterator[None]:
        lines = text.lines  # this scrape's own reference: another scrape may replace text.lines meanwhile
        keys, values = table.keys(), table.values()
        missing = [key for key in keys if key not in lines]
        for start in range(0, len(missing), DERIVE_PER_STEP):
            chunk = missing[start:start + DERIVE_PER_STEP]
            if not fmt.derive(text, table.to_metric(chunk), chunk, lines):
                text.header = None
                out.append(fmt.whole(table.to_metric()))
                return
            yield
        out.append(text.header)  # type: ignore[arg-type]
        for start in range(0, len(keys), ROWS_PER_STEP):
            _render(zip(keys[start:start + ROWS_PER_STEP], values[start:start + ROWS_PER_STEP], strict=True),
                    lines, out)
            yield
        _prune(text, lines, keys)

    def _metric(self, fmt: _Format, text: _FamilyText, metric: Metric, out: list[str]) -> Iterator[None]:
        samples = metric.samples
        keys: list[Hashable] = []
        for s in samples:
            if s.timestamp is not None or s.exemplar is not None or s.native_histogram is not None or s.value is None:
                text.header = None
                out.append(fmt.whole(metric))
                return
            keys.append((s.name, tuple(s.labels.items())))
        lines = text.lines
        missing = [i for i, key in enumerate(keys) if key not in lines]
        for start in range(0, len(missing), DERIVE_PER_STEP):
            chunk = missing[start:start + DERIVE_PER_STEP]
            zeroed = copy.copy(metric)
            zeroed.samples = [samples[i]._replace(value=0) for i in chunk]
            if not fmt.derive(text, zeroed, [keys[i] for i in chunk], lines):
                text.header = None
                out.append(fmt.whole(metric))
                return
            yield
        out.append(text.header)  # type: ignore[arg-type]
        _render(zip(keys, (s.value for s in samples), strict=True), lines, out)
        _prune(text, lines, keys)


def _render(series: Iterable[tuple[Hashable, float]], lines: dict[Hashable, tuple[str, float, str]],
            out: list[str]) -> None:
    """Each series' line into `out`: the last one when its value is the same (an `is` for 0,
    whose text has a sign when it is a float), else its prefix and the value's text."""
    append = out.append
    for key, value in series:
        entry = lines[key]
        last = entry[1]
        if last is not value and (last != value or not value):
            entry = lines[key] = (entry[0], value, entry[0] + _value_text(value) + "\n")
        append(entry[2])


def _value_text(value: float) -> str:
    """`floatToGoString(value)`, which is `repr(float(value))` for an int below 10**6 (Go's
    exponent form starts there) and above -10**15 (Python's, at -10**16): the same text for the
    counts and offsets most lines carry, without the float round trip (byte-equal: tested)."""
    if type(value) is int and _INT_TEXT_MIN < value < _INT_TEXT_MAX:
        return f"{value}.0"
    return floatToGoString(value)


def _prune(text: _FamilyText, lines: dict[Hashable, tuple[str, float, str]], keys: Sequence[Hashable]) -> None:
    """Drop the text of series gone since the last scrape: a new dict, as another scrape may be
    reading `lines` (which then only gains entries, all of them right)."""
    if len(lines) > len(keys):
        text.lines = {key: lines[key] for key in keys}


async def run_sliced(steps: Generator[None, None, bytes], slice_s: float) -> bytes:
    """Run `steps` on the event loop, letting it run its other callbacks every `slice_s`."""
    clock = time.perf_counter
    started = clock()
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        if clock() - started >= slice_s:
            await asyncio.sleep(0)
            started = clock()
