"""Properties of the forecast the tile shows: the same offered as the report's forecast, an AHT
that is a ratio of sums over the days used, and a forecast so far that only grows, from 0 at
midnight to the day's total."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from wallboard.config.settings import parse_settings
from wallboard.fold.counters import HANDLE_SUM, HANDLED, OFFERED
from wallboard.fold.intervals import IntervalRecord
from wallboard.kpi.forecast import forecast, forecast_with_aht
from wallboard.kpi.report import Request
from wallboard.server.forecasting import Day, Slot

DAY = date(2026, 11, 30)
MIDNIGHT = int(datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC).timestamp())
SETTINGS = parse_settings({"site": {"name": "S", "timezone": "UTC"},
                           "queues": {"a": {}, "b": {}}}, "<test>")
ROWS = st.lists(st.tuples(st.integers(1, 10), st.integers(0, 95), st.sampled_from("ab"),
                          st.integers(0, 20), st.integers(0, 5),
                          st.floats(1, 900, allow_nan=False)), max_size=60)


@settings(max_examples=150, deadline=None)
@given(ROWS)
def test_the_tiles_forecast_is_the_reports_and_its_aht_a_ratio_of_sums(
        rows: list[tuple[int, int, str, int, int, float]]) -> None:
    cells = {(week, slot, queue): (offered, handled, handled * per)
             for week, slot, queue, offered, handled, per in rows}
    records = [IntervalRecord(MIDNIGHT - 7 * 86_400 * week + 900 * slot, "queue", queue,
                              "voice", {OFFERED: float(o), HANDLED: float(h), HANDLE_SUM: s},
                              [{}, {}, {}, {}])
               for (week, slot, queue), (o, h, s) in cells.items()]

    def load(since: int, until: int) -> list[IntervalRecord]:
        return [r for r in records if since <= r.start < until]

    request = Request(DAY, DAY, "15m")
    offered, aht = forecast_with_aht(load, request, SETTINGS)
    assert offered == forecast(load, request, SETTINGS)  # the report's, unchanged
    for queue in "ab":
        used = sorted({w for (w, _s, q) in cells if q == queue and w <= 8})[:4]
        sums: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
        for (week, slot, q), values in cells.items():
            if q == queue and week in used:
                for i, value in enumerate(values):
                    sums[slot][i] += value
        got = {start: value for ((level, name, _), start), value in offered.items()
               if level == "queue" and name == queue}
        assert got.keys() == {MIDNIGHT + 900 * slot for slot in sums}
        for slot, (o, h, s) in sums.items():
            key = (("queue", queue, "voice"), MIDNIGHT + 900 * slot)
            assert offered[key] == o / len(used)
            if h:
                value = aht[key]
                assert value is not None and abs(value - s / h) <= 1e-9 * (1 + s / h)
            else:  # no contact ended then on those days: no AHT, not 0
                assert aht[key] is None


@given(st.dictionaries(st.integers(0, 95), st.floats(0, 1e6, allow_nan=False), max_size=96),
       st.lists(st.floats(0, 86_400, allow_nan=False), min_size=2, max_size=20))
def test_the_forecast_so_far_grows_from_nothing_to_the_days_total(
        offered: dict[int, float], offsets: list[float]) -> None:
    day = Day([Slot(MIDNIGHT + 900 * k, v, None) for k, v in offered.items()])
    assert day.so_far(MIDNIGHT) == 0
    assert abs(day.so_far(MIDNIGHT + 86_400) - sum(offered.values())) <= 1e-9 * (
        1 + sum(offered.values()))
    values = [day.so_far(MIDNIGHT + t) for t in sorted(offsets)]
    assert all(b >= a - 1e-9 * (1 + abs(a)) for a, b in pairwise(values))
    for t in offsets:  # by hand: whole intervals ended, and the share of the current one
        now = MIDNIGHT + t
        want = sum(v * min(1.0, max(0.0, (now - (MIDNIGHT + 900 * k)) / 900))
                   for k, v in offered.items())
        assert abs(day.so_far(now) - want) <= 1e-6 * (1 + want)


def test_a_day_without_history_has_no_forecast() -> None:
    request = Request(DAY, DAY, "15m")
    assert forecast_with_aht(lambda since, until: [], request, SETTINGS) == ({}, {})
