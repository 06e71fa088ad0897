"""Rolling and calendar windows against brute-force recomputation from raw events."""

from __future__ import annotations

import random
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from wallboard.config.settings import parse_settings
from wallboard.config.windows import BUCKET_WIDTH_S
from wallboard.fold.aggregate import Aggregator
from wallboard.fold.periods import CalendarPeriod, day_bounds, local_day_bounds
from wallboard.fold.windows import RollingWindows
from wallboard.kpi.snapshot import SnapshotBuilder
from wallboard.model.events import parse_event

JERUSALEM = ZoneInfo("Asia/Jerusalem")


def brute_rolling(events: list[tuple[float, int, float]], now: float, span: int,
                  width: int) -> dict[int, float]:
    """Sum of deltas whose bucket lies in the span's buckets ending at now's bucket."""
    now_idx = int(now // width)
    covered = span // width + 1
    out: dict[int, float] = {}
    for ts, k, d in events:
        idx = min(int(ts // width), now_idx)
        if now_idx - covered < idx <= now_idx:
            out[k] = out.get(k, 0.0) + d
    return out


@pytest.mark.parametrize("seed", range(20))
def test_rolling_windows_equal_brute_force_with_disorder(seed: int) -> None:
    rng = random.Random(seed)
    width, spans = 10, {"short": 120, "long": 600}
    clock = 1_700_000_000.0
    windows = RollingWindows(3, clock, spans, width)
    accepted: list[tuple[float, int, float]] = []
    for _ in range(2000):
        clock += rng.expovariate(1 / 3.0)
        if rng.random() < 0.05:
            clock += rng.uniform(100, 900)  # idle gaps that empty whole spans
        windows.advance(clock)
        ts = clock - rng.uniform(0, 700) if rng.random() < 0.3 else clock  # late, out of order
        k, d = rng.randrange(3), rng.choice([1.0, 2.5, 7.0])
        if windows.add(ts, [(k, d)]):
            accepted.append((ts, k, d))
        else:
            assert int(ts // width) <= int(clock // width) - windows.ring_len
        if rng.random() < 0.1:
            for name, span in spans.items():
                expect = brute_rolling(accepted, clock, span, width)
                got = windows.totals[name]
                for k in range(3):
                    assert got[k] == pytest.approx(expect.get(k, 0.0), abs=1e-9), (name, k)


def test_local_day_spans_23_and_25_hours_across_dst_in_jerusalem() -> None:
    start, end = local_day_bounds(datetime(2026, 3, 27).date(), JERUSALEM)
    assert (end - start) / 3600 == 23
    assert datetime.fromtimestamp(start, ZoneInfo("UTC")).isoformat() == "2026-03-26T22:00:00+00:00"
    start, end = local_day_bounds(datetime(2026, 10, 25).date(), JERUSALEM)
    assert (end - start) / 3600 == 25
    start, end = local_day_bounds(datetime(2026, 6, 1).date(), JERUSALEM)
    assert (end - start) / 3600 == 24


def test_today_resets_at_local_midnight_and_refuses_yesterday() -> None:
    midnight = datetime(2026, 10, 26, 0, 0, tzinfo=JERUSALEM).timestamp()
    day = CalendarPeriod(1, day_bounds(JERUSALEM), midnight - 60)
    assert day.add(midnight - 30, [(0, 1.0)])
    day.advance(midnight + 1)
    assert day.totals == [0.0] and day.prev_totals == [1.0]
    assert day.add(midnight - 1, [(0, 1.0)])  # just before midnight: a late one for yesterday
    assert day.add(midnight, [(0, 1.0)])  # exactly midnight: today
    assert day.totals == [1.0] and day.prev_totals == [2.0]
    assert not day.add(midnight - 25 * 3600 - 1, [(0, 1.0)])  # the day before yesterday


def test_aggregator_today_counts_events_either_side_of_local_midnight() -> None:
    midnight = datetime(2026, 10, 26, 0, 0, tzinfo=JERUSALEM).timestamp()
    clock = [midnight - 120]
    settings = parse_settings({"site": {"timezone": "Asia/Jerusalem"},
                               "windows": ["15m", "today", "yesterday"],
                               "queues": {"sales": {}}})
    agg = Aggregator(settings, clock=lambda: clock[0])
    for i, ts in enumerate([midnight - 90, midnight - 1]):
        agg.fold(parse_event({"type": "contact.queued", "id": f"a{i}", "ts": ts,
                              "queue": "sales", "contact_id": f"a{i}"}))
    clock[0] = midnight + 5
    agg.fold(parse_event({"type": "contact.queued", "id": "b", "ts": midnight + 2,
                          "queue": "sales", "contact_id": "b"}))
    snap = SnapshotBuilder(agg).build()
    assert snap["queues"]["sales"]["today"]["offered"] == 1
    assert snap["queues"]["sales"]["yesterday"]["offered"] == 2
    assert snap["queues"]["sales"]["15m"]["offered"] == 3


def test_memory_per_queue_does_not_grow_with_events() -> None:
    settings = parse_settings({"queues": {"sales": {}}})
    clock = [1_700_000_000.0]
    agg = Aggregator(settings, clock=lambda: clock[0])

    def run(n: int, start: int) -> int:
        for i in range(start, start + n):
            clock[0] += 1.0
            cid = f"c{i}"
            agg.fold(parse_event({"type": "contact.queued", "id": f"q{i}", "ts": clock[0],
                                  "queue": "sales", "contact_id": cid}))
            agg.fold(parse_event({"type": "contact.answered", "id": f"a{i}", "ts": clock[0],
                                  "queue": "sales", "contact_id": cid, "wait_s": 3}))
        leaf = next(iter(agg.leaves.values()))
        ring = leaf.windows.rings[0]
        return sum(1 for b in ring.slots if b is not None) + len(
            agg.state.queue("sales").waiting)

    small = run(5_000, 0)
    large = run(20_000, 5_000)
    assert small == large == 3600 // BUCKET_WIDTH_S + 1
