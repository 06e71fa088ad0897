"""Sparkline series and trend arrows: sampled once per step, compared with the previous window."""

from __future__ import annotations

from wallboard.kpi.history import SERIES_POINTS, History

KEYS = {"queues.sales.live.waiting": ("queues", "sales", "live", "waiting"),
        "total.15m.offered": ("total", "15m", "offered"),
        "total.today.answered": ("total", "today", "answered")}


def tree(waiting: float, offered: float, answered: float = 0) -> dict:
    return {"queues": {"sales": {"live": {"waiting": waiting}}},
            "total": {"15m": {"offered": offered}, "today": {"answered": answered}}}


def test_series_holds_one_sample_per_minute_and_the_value_now_last() -> None:
    history = History(KEYS, ["15m", "1h", "today"], step_s=60)
    start = 1_800_000_000.0  # a minute boundary
    values = {}
    for minute in range(90):
        for second in (0, 20, 40):  # several snapshots a minute; the first of each is sampled
            now = start + minute * 60 + second
            snapshot = tree(waiting=minute + second / 100, offered=2 * minute)
            history.observe(snapshot, now)
            values.setdefault(minute, minute + second / 100)
    series = snapshot["series"]["queues.sales.live.waiting"]
    assert len(series) == SERIES_POINTS
    # Minutes 30..88 as sampled at their first snapshot, then the value now (minute 89, :40).
    assert series == [values[m] for m in range(30, 89)] + [89.4]


def test_trend_compares_with_the_value_one_window_span_ago() -> None:
    history = History(KEYS, ["15m", "1h", "today"], step_s=60)
    start = 1_800_000_000.0
    for minute in range(40):
        snapshot = tree(waiting=minute % 7, offered=minute * 3)
        history.observe(snapshot, start + minute * 60 + 1)
    trend = snapshot["trend"]
    # The 15-minute window now (minute 39) against the 15-minute window ending at minute 24.
    assert trend["total.15m.offered"] == 24 * 3
    # A live value against the shortest rolling window (15 min) before now.
    assert trend["queues.sales.live.waiting"] == 24 % 7
    # Calendar windows have no earlier window of equal length: no arrow.
    assert trend["total.today.answered"] is None


def test_gaps_in_sampling_are_missing_points_not_repeated_values() -> None:
    history = History(KEYS, ["15m"], step_s=60)
    start = 1_800_000_000.0
    history.observe(tree(1, 1), start)
    snapshot = tree(5, 5)
    history.observe(snapshot, start + 10 * 60)  # nothing built for ten minutes
    series = snapshot["series"]["total.15m.offered"]
    assert series[-11:] == [1, None, None, None, None, None, None, None, None, None, 5]
    assert snapshot["trend"]["total.15m.offered"] is None  # 15 min ago: before any sample
