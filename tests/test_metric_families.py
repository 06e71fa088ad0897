"""The line-writing metric families write what prometheus_client writes from their samples."""

from __future__ import annotations

import math
from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric

from wallboard.server.exposition import encode
from wallboard.server.families import MAX_PREFIXES, Counter, Gauge, Histogram, Prefixes

label = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
number = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -0.0, 999_999, 1_000_000, 999_999.5, 1e6, 1234567.0, 2e-9]))


class _Families:
    """One family of each fast kind with the rows given, sharing one prefix cache."""

    def __init__(self, rows: list[tuple[str, str, float]], prefixes: Prefixes) -> None:
        self.rows, self.prefixes = rows, prefixes

    def collect(self) -> Iterator[Metric]:
        gauge = Gauge("x_gauge", "A gauge\nwith \\ help", ["queue", "b"], self.prefixes)
        counter = Counter("x_events", "Events", ["z", "a"], self.prefixes)
        hist = Histogram("x_wait_seconds", "Waits", ["queue"], self.prefixes)
        for i, (a, b, value) in enumerate(self.rows):
            gauge.add_metric([a, b], value)
            counter.add_metric([b, f"{a}{i}"], value)
            hist.add_metric([f"{a}{i}"], [("5", i), ("20", value), ("+Inf", value)], value)
        yield from (gauge, counter, hist, Gauge("x_empty", "No series", [], self.prefixes))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(label, label, number), max_size=8))
def test_lines_equal_the_librarys_text(rows: list[tuple[str, str, float]]) -> None:
    registry = CollectorRegistry()
    registry.register(_Families(rows, Prefixes()))
    # Twice: the second scrape writes from the cached prefixes.
    assert encode(registry) == generate_latest(registry)
    assert encode(registry) == generate_latest(registry)


def test_prefixes_are_cached_bounded_and_escaped() -> None:
    prefixes = Prefixes()
    first = prefixes.get("x", ("queue", "b"), ('q"1', "a\\b"))
    assert first == 'x{b="a\\\\b",queue="q\\"1"} '
    assert prefixes.get("x", ("queue", "b"), ('q"1', "a\\b")) is first  # kept, not rebuilt
    prefixes.known.update({("y", (str(i),)): "" for i in range(MAX_PREFIXES)})
    prefixes.get("x", ("queue",), ("new",))
    assert len(prefixes.known) == 1  # past the bound it starts again rather than grow


def test_a_value_that_is_not_a_number_is_nan_and_reported() -> None:
    seen: list[Exception] = []
    registry = CollectorRegistry()
    gauge = Gauge("x", "X", ["q"])
    gauge.add_metric(["a"], 10**400)  # past a float's range
    gauge.add_metric(["b"], math.nan)

    class _One:
        def collect(self) -> Iterator[Metric]:
            yield gauge

    registry.register(_One())
    assert encode(registry, seen.append) == (
        b'# HELP x X\n# TYPE x gauge\nx{q="a"} NaN\nx{q="b"} NaN\n')
    assert [type(e) for e in seen] == [OverflowError]
