"""Agent windows read incrementally between events equal a sum from scratch, and brute force."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wallboard.config.windows import parse_window
from wallboard.fold import counters as c
from wallboard.fold.agents import AgentWindows

T0 = 1_774_569_600.0  # 2026-03-27T00:00:00Z
SPECS = [parse_window(w) for w in ("15m", "1h", "today")]
STEP = st.tuples(st.sampled_from(["add", "interval", "read"]), st.floats(0, 400),
                 st.floats(0, 300), st.sampled_from([c.ANSWERED, c.HANDLED, c.BUSY_S]))


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(STEP, min_size=1, max_size=60))
def test_incremental_reads_equal_brute_force(steps: list[tuple[str, float, float, int]]) -> None:
    windows = AgentWindows(SPECS, ZoneInfo("UTC"), [], T0)
    now, since = T0, T0
    added: list[tuple[float, int]] = []  # (ts, index) of unit adds
    spans: list[tuple[float, float, int]] = []
    for kind, gap, back, index in steps:
        now += gap
        windows.advance(now)
        if kind == "add":
            ts = max(T0, now - back)  # late by up to 5 minutes
            windows.add(ts, [(index, 1.0)])
            added.append((ts, index))
        elif kind == "interval":
            windows.add_interval(since, now, c.BUSY_S)
            spans.append((since, now, c.BUSY_S))
            since = now
        for name in ("15m", "1h"):
            low, _ = windows.time_range(name, now)
            got = windows.vector(name)[0]
            want = [0.0] * len(c.FIELDS)
            for ts, k in added:
                if ts >= low:
                    want[k] += 1.0
            for start, end, k in spans:
                want[k] += max(0.0, end - max(start, low))
            assert got[c.ANSWERED] == want[c.ANSWERED]
            assert got[c.HANDLED] == want[c.HANDLED]
            assert got[c.BUSY_S] == pytest.approx(want[c.BUSY_S], abs=1e-6)
