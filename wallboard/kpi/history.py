"""Past values of the KPIs boards chart: one sample per step for sparklines and trend arrows.

Downstream of the KPIs: it reads each built snapshot and adds `series` and `trend` to it, so
data still flows one way. Samples live in memory only; after a restart the series refill.
"""

from __future__ import annotations

import math
from typing import Any

from wallboard.config.windows import parse_window

SERIES_POINTS = 60  # a sparkline: the last 60 steps (60 minutes at the default step)
MAX_SAMPLES = 20_000  # bound per key whatever the step and window spans


def _lookup(tree: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = tree
    for part in path:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node if isinstance(node, int | float) and not isinstance(node, bool) else None


class History:
    """Samples given snapshot paths at each step boundary; keeps as many as trends need."""

    def __init__(self, keys: dict[str, tuple[str, ...]], windows: list[str],
                 step_s: float = 60.0) -> None:
        self.keys: dict[str, tuple[str, ...]] = {}
        self.step_s = step_s
        self.spans = {w: parse_window(w) for w in windows}
        self.rolling = sorted(s.span_s for s in self.spans.values() if s.kind == "rolling")
        self.lags: dict[str, float | None] = {}
        self.size = SERIES_POINTS
        # Per key, slot -> value in slot order (oldest first), at most `size` of them.
        self.samples: dict[str, dict[int, float | None]] = {}
        # The sparkline's earlier points change once per step, not per snapshot: kept here.
        self.past: dict[str, list[float | None]] = {}
        self.track(keys)
        self.last_slot: int | None = None

    def track(self, keys: dict[str, tuple[str, ...]]) -> None:
        """Sample these keys too (a board published by the editor); known ones keep theirs."""
        for key, path in keys.items():
            if key in self.keys:
                continue
            self.keys[key] = path
            spec = self.spans.get(path[-2])
            # The previous window of a live value is the shortest rolling window before now.
            if spec is not None and spec.kind == "rolling":
                self.lags[key] = float(spec.span_s)
            elif path[-2] == "live" and self.rolling:
                self.lags[key] = float(self.rolling[0])
            else:
                self.lags[key] = None  # calendar windows: no earlier window of equal length
            self.samples[key], self.past[key] = {}, []
        longest = max((lag for lag in self.lags.values() if lag), default=0.0)
        self.size = min(MAX_SAMPLES, max(SERIES_POINTS, math.ceil(longest / self.step_s) + 2))

    def observe(self, tree: dict[str, Any], now: float) -> None:
        """Record the current values once per step; add series and trends to the snapshot."""
        slot = math.floor(now / self.step_s)
        current = {key: _lookup(tree, path) for key, path in self.keys.items()}
        if slot != self.last_slot:
            self.last_slot = slot
            earlier = range(slot - SERIES_POINTS + 1, slot)
            for key, value in current.items():
                ring = self.samples[key]
                ring[slot] = value
                while len(ring) > self.size:
                    del ring[next(iter(ring))]
                self.past[key] = [ring.get(s) for s in earlier]
        series: dict[str, list[float | None]] = {}
        trend: dict[str, float | None] = {}
        for key, ring in self.samples.items():
            # The newest point is the value now; earlier points are the step samples.
            series[key] = [*self.past[key], current[key]]
            lag = self.lags[key]
            trend[key] = ring.get(math.floor((now - lag) / self.step_s)) if lag else None
        tree["series"] = series
        tree["trend"] = trend
