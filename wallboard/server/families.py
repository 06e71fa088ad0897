"""Metric families that keep their rows raw and write their own exposition lines.

A scrape at 200 queues and 500 agents has ~20,000 series. prometheus_client's families build
a Sample (a label dict) per series and the writer sorts and escapes each label set again at
every scrape: most of a scrape's cost. These families keep (label values, value) rows and
write each series' `name{labels} ` prefix once, kept between scrapes in a `Prefixes` cache.
Their `samples` are still built on demand, so prometheus_client's own writer reads them as
before (tests compare the two outputs byte for byte).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

OnError = Callable[[Exception], None] | None
Row = tuple[tuple[str, ...], Any]
# Labels are bounded (max_queues, max_agents, allow-lists), so the cache is too; past this
# many prefixes (a leak would be a bug) it starts again rather than grow.
MAX_PREFIXES = 500_000


def escape(text: str) -> str:
    """A label value as the text format writes it."""
    if "\\" in text or '"' in text or "\n" in text:
        return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return text


def value_text(value: object, on_error: OnError) -> str:
    """A sample value as prometheus_client writes it; one that is not a number becomes NaN."""
    # Most values are finite and below 10^6: no Go-style exponent, so repr is the text.
    # `kind is float` (not isinstance: a bool is an int, and this runs per series) does not
    # narrow `value` for mypy, hence the ignores.
    kind = value.__class__
    if kind is float and -math.inf < value < 1e6:  # type: ignore[operator]  # a float: above
        return repr(value)
    if kind is int and -1_000_000 < value < 1_000_000:  # type: ignore[operator]  # an int
        return f"{value}.0"
    try:
        text: str = floatToGoString(value)  # untyped in prometheus_client: say what it returns
        return text
    except (OverflowError, TypeError, ValueError) as exc:
        if on_error is not None:
            on_error(exc)
        return "NaN"


class Prefixes:
    """`name{sorted labels} ` per series, kept between scrapes."""

    def __init__(self) -> None:
        self.known: dict[tuple[str, tuple[str, ...]], str] = {}
        # A histogram series' bucket prefixes, one per edge, with the edges they were made for.
        self.buckets: dict[tuple[str, tuple[str, ...]], tuple[tuple[str, ...], list[str]]] = {}

    def get(self, sample: str, names: Sequence[str], values: tuple[str, ...]) -> str:
        """The line prefix of one series (label names in sorted order, as the format wants)."""
        return self.known.get((sample, values)) or self.make(sample, names, values)

    def make(self, sample: str, names: Sequence[str], values: tuple[str, ...]) -> str:
        """Write and keep a series' prefix."""
        if len(self.known) >= MAX_PREFIXES:
            self.known.clear()
            self.buckets.clear()
        pairs = sorted(zip(names, values, strict=True))
        inner = ",".join([f'{k}="{escape(v)}"' for k, v in pairs])
        prefix = self.known[(sample, values)] = f"{sample}{{{inner}}} " if pairs else f"{sample} "
        return prefix


class _Raw:
    """Rows instead of samples; `samples` made on demand by the library's own family."""

    name: str
    documentation: str
    _labelnames: tuple[str, ...]
    _library: type[Any]
    _suffix = ""  # of the sample name: a counter's "_total"

    def __init__(self, name: str, documentation: str, labels: Sequence[str] = (),
                 prefixes: Prefixes | None = None) -> None:
        self.rows: list[Row] = []
        self.prefixes = prefixes if prefixes is not None else Prefixes()
        self._library.__init__(self, name, documentation, labels=labels)

    def add_metric(self, labels: Sequence[str], value: float, *_: None) -> None:
        """One series (a timestamp, created time or exemplar is never given here)."""
        self.rows.append((tuple(labels), value))

    def lines(self, out: list[str], on_error: OnError) -> None:
        """Append each series' line."""
        _scalar_lines(self.name + self._suffix, self._labelnames, self.rows, self.prefixes, out,
                      on_error)

    @property
    def samples(self) -> list[Sample]:
        """What prometheus_client's family would hold after the same add_metric calls."""
        family = self._library(self.name, self.documentation, labels=self._labelnames)
        for labels, value in self.rows:
            self._add_to(family, labels, value)
        samples: list[Sample] = family.samples
        return samples

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        # Metric.__init__ sets an empty list; the rows are the truth here.
        if value:
            raise ValueError("these families take rows through add_metric")

    @staticmethod
    def _add_to(family: Any, labels: tuple[str, ...], value: Any) -> None:
        family.add_metric(list(labels), value)


class Gauge(_Raw, GaugeMetricFamily):  # type: ignore[misc]  # add_metric: rows, not samples
    """A gauge family written line by line."""

    _library = GaugeMetricFamily


class Counter(_Raw, CounterMetricFamily):  # type: ignore[misc]  # add_metric: rows, not samples
    """A counter family written line by line."""

    _library = CounterMetricFamily
    _suffix = "_total"


class Histogram(_Raw, HistogramMetricFamily):
    """A histogram family written line by line."""

    _library = HistogramMetricFamily

    def add_metric(self, labels: Sequence[str],  # type: ignore[override]  # no timestamps
                   buckets: Sequence[tuple[str, float]], sum_value: float | None,
                   timestamp: None = None) -> None:
        """One series: cumulative (le, count) buckets ending at +Inf, and the sum."""
        les = tuple(le for le, _ in buckets)
        self.add_cumulative(labels, les, [n for _, n in buckets], sum_value)

    def add_cumulative(self, labels: Sequence[str], les: tuple[str, ...],
                       counts: Sequence[float], sum_value: float | None) -> None:
        """One series from its bucket edges (the same tuple each time is cheapest) and counts."""
        self.rows.append((tuple(labels), (les, counts, sum_value)))

    @staticmethod
    def _add_to(family: Any, labels: tuple[str, ...], value: Any) -> None:
        les, counts, sum_value = value
        family.add_metric(list(labels), list(zip(les, counts, strict=True)), sum_value)

    def lines(self, out: list[str], on_error: OnError) -> None:
        """Append each series' bucket, count and sum lines."""
        get, append = self.prefixes.get, out.append
        names = self._labelnames
        with_le = (*names, "le")
        bucket, count, total = self.name + "_bucket", self.name + "_count", self.name + "_sum"
        known, inf = self.prefixes.buckets, math.inf
        for values, (les, counts, sum_value) in self.rows:
            key = (bucket, values)
            entry = known.get(key)
            if entry is None or entry[0] != les:
                entry = known[key] = (les, [get(bucket, with_le, (*values, le)) for le in les])
            for prefix, n in zip(entry[1], counts, strict=True):
                if n.__class__ is float and -inf < n < 1e6:
                    append(f"{prefix}{n!r}\n")
                else:
                    append(f"{prefix}{value_text(n, on_error)}\n")
            # As the library: no count and sum with a negative first bucket or no sum.
            if float(les[0]) >= 0 and sum_value is not None:
                append(get(count, names, values) + value_text(counts[-1], on_error) + "\n")
                append(get(total, names, values) + value_text(sum_value, on_error) + "\n")


def _scalar_lines(sample: str, names: tuple[str, ...], rows: list[Row], prefixes: Prefixes,
                  out: list[str], on_error: OnError) -> None:
    known, make, append, inf = prefixes.known, prefixes.make, out.append, math.inf
    for values, value in rows:
        prefix = known.get((sample, values)) or make(sample, names, values)
        # value_text's first case inlined: this loop runs once per series.
        if value.__class__ is float and -inf < value < 1e6:
            append(f"{prefix}{value!r}\n")
        else:
            append(f"{prefix}{value_text(value, on_error)}\n")


Family = Gauge | Counter | Histogram
