"""Agent windows in grain buckets equal a per-event recount and hold a bounded number of them."""

from __future__ import annotations

import math
import pickle
import random
from zoneinfo import ZoneInfo

from hypothesis import example, given, settings
from hypothesis import strategies as st

from wallboard.config.windows import parse_window
from wallboard.fold import counters as c
from wallboard.fold.agents import AgentWindows
from wallboard.fold.windows import bucket_width

T0 = 1_774_569_600.0  # 2026-03-27T00:00:00Z
UTC = ZoneInfo("UTC")
# Multiples of 1/4 s: every sum below is exact, so results compare with ==.
QUARTERS = st.integers(0, 4 * 400).map(lambda q: q / 4)
LONG = st.integers(0, 4 * 20_000).map(lambda q: q / 4)
STEP = st.tuples(
    st.sampled_from(["add", "add", "interval", "read", "tick", "restore"]),
    st.one_of(st.just(0.0), QUARTERS, LONG),  # how far the clock moves
    # How late (negative: ahead of the clock); about a span late: at a window's first edge.
    st.one_of(QUARTERS.map(lambda b: b - 60), LONG,
              st.tuples(st.sampled_from([90, 900, 3600, 28_800]), QUARTERS).map(sum)),
    QUARTERS,  # an interval's length
    st.sampled_from([c.ANSWERED, c.HANDLED, c.BUSY_S, c.HANDLE_SUM]),
    st.integers(1, 3),  # a count
)


class Reference:
    """Every event and interval as given, summed from scratch for a span's first edge."""

    def __init__(self) -> None:
        self.added: list[tuple[float, int, float]] = []
        self.spans: list[tuple[float, float, int]] = []

    def total(self, low: float, size: int) -> list[float]:
        want = [0.0] * size
        for ts, k, d in self.added:
            if ts >= low:
                want[k] += d
        for start, end, k in self.spans:
            want[k] += max(0.0, end - max(start, low))
        return want


def first_edge(span_s: int, now: float) -> float:
    """A rolling span's first covered edge, from its definition (whole buckets)."""
    width = bucket_width(span_s, 60)
    return (math.floor(now / width) - span_s // width) * width


@settings(max_examples=300, deadline=None)
@given(names=st.lists(st.sampled_from(["15m", "1h", "8h", "90s"]), min_size=1, max_size=3,
                      unique=True),
       steps=st.lists(STEP, min_size=1, max_size=80))
# A late event in a span's first bucket, added to the sums the tick stored.
@example(names=["15m"], steps=[("tick", 10.0, 0.0, 0.0, c.ANSWERED, 1),
                               ("add", 0.0, 905.0, 0.0, c.ANSWERED, 1)])
def test_buckets_equal_a_per_event_recount(names: list[str],
                                           steps: list[tuple[str, float, float, float, int, int]]
                                           ) -> None:
    specs = [parse_window(n) for n in names] + [parse_window("today")]
    windows = AgentWindows(specs, UTC, [], T0)
    ref = Reference()
    now = T0
    for kind, gap, late, length, index, count in steps:
        now += gap
        # As the fold does: advance when due, otherwise only the clock moves.
        if now >= windows.next_check:
            windows.advance(now)
        elif now > windows.now:
            windows.now = now
        if kind == "add":
            ts = now - late
            windows.add(ts, [(index, float(count)), (c.OFFERED, 1.0)])
            at = min(ts, now)  # ahead of the clock: counted now, like the ring
            if ts >= now - windows.horizon_s:
                ref.added += [(at, index, float(count)), (at, c.OFFERED, 1.0)]
        elif kind == "interval":
            start = now - late  # out of order, late, or ahead of the clock
            windows.add_interval(start, start + length, index)
            if start + length > now - windows.horizon_s:
                ref.spans.append((start, start + length, index))
        elif kind == "tick":
            windows.advance(now)
            windows.store()
        elif kind == "restore":  # a checkpoint taken and read back
            windows = pickle.loads(pickle.dumps(windows))
        for name in names:
            low, _ = windows.time_range(name, now)
            assert low == first_edge(parse_window(name).span_s, now)
            before = pickle.dumps(windows)
            got = windows.vector(name)[0]
            assert pickle.dumps(windows) == before  # a read never changes state
            assert got == ref.total(low, windows.size), (name, now)


def test_buckets_stay_bounded_however_many_events() -> None:
    specs = [parse_window(n) for n in ("15m", "1h", "8h", "today")]
    windows = AgentWindows(specs, UTC, [], T0)
    horizon, grain = windows.horizon_s, windows.grain
    assert (horizon, grain) == (8 * 3600 + 80, 20)  # 60 s and 80 s buckets
    bound = horizon // grain + 4
    rng = random.Random(25)
    ref = Reference()
    now, since, most = T0, T0, 0
    for second in range(1, 10 * 3600, 2):  # 10 hours, an event every 2 s, some late
        now = T0 + second
        if now >= windows.next_check:
            windows.advance(now)
        else:
            windows.now = now
        ts = now - (rng.uniform(0, 600) if rng.random() < 0.1 else 0.0)
        windows.add(ts, [(c.ANSWERED, 1.0)])
        ref.added.append((min(ts, now), c.ANSWERED, 1.0))
        if rng.random() < 0.1:  # a state change: the time since the last one
            windows.add_interval(since, now, c.BUSY_S)
            ref.spans.append((since, now, c.BUSY_S))
            since = now
        if second % 60 == 1:
            windows.store()
        most = max(most, windows.entries())
        assert windows.entries() <= bound, second
    # 18,000 events and ~1,800 intervals held in at most a bucket per 20 s of the 8 hours.
    assert len(ref.added) == 18_000 and most > horizon // grain - 10
    for name in ("15m", "1h", "8h"):
        low, _ = windows.time_range(name, now)
        assert windows.vector(name)[0] == ref.total(low, windows.size)
