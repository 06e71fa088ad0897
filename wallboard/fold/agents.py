"""Per-agent windows: an agent has a few events a minute, so rolling spans sum a log on read."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import time
from itertools import islice
from zoneinfo import ZoneInfo

from wallboard.config.windows import WindowSpec
from wallboard.fold.counters import FIELDS, Deltas
from wallboard.fold.periods import (
    CalendarPeriod,
    calendar_range,
    day_bounds,
    kept,
    shift_bounds,
)
from wallboard.fold.sketch import SketchDeltas, Sketches
from wallboard.fold.windows import bucket_width

AGENT_BUCKET_S = 60


class AgentWindows:
    """The windows of one agent, read like a WindowSet: same spans, same bucket edges.

    A queue's ring of buckets pays off when many events share a bucket; an agent's events are
    sparse (one every half-minute or so), and moving a ring on each of them cost more than
    everything else in the fold. Here an event is one append; a rolling span is summed from
    the log when read (cached until the agent's next event or the next bucket edge), and
    covers exactly what the ring would: whole buckets from its first covered edge.
    """

    __slots__ = (
        "_appended",
        "_cache",
        "_next_change",
        "_next_trim",
        "_periods",
        "_spans",
        "counts",
        "day",
        "horizon_s",
        "intervals",
        "next_check",
        "now",
        "shift",
        "size",
    )

    def __init__(self, specs: Iterable[WindowSpec], tz: ZoneInfo, shift_resets: Iterable[time],
                 now: float, finest_s: int = AGENT_BUCKET_S, extra: int = 0) -> None:
        specs = list(specs)
        self.size = len(FIELDS) + extra  # the reason codes' slots follow the counters
        # name -> (bucket width, buckets covered including the partial current one)
        self._spans: dict[str, tuple[int, int]] = {}
        for spec in specs:
            if spec.kind == "rolling":
                width = bucket_width(spec.span_s, finest_s)
                self._spans[spec.name] = (width, spec.span_s // width + 1)
        kinds = {spec.kind for spec in specs}
        self.day = (CalendarPeriod(self.size, day_bounds(tz), now)
                    if kinds & {"today", "yesterday"} else None)
        self.shift = (CalendarPeriod(self.size, shift_bounds(tz, shift_resets), now)
                      if "shift" in kinds else None)
        self._periods = [p for p in (self.day, self.shift) if p is not None]
        self._next_change = min((p.end for p in self._periods), default=math.inf)
        self.counts: deque[tuple[float, Deltas]] = deque()
        self.intervals: deque[tuple[float, float, int]] = deque()
        self.horizon_s = max((w * n for w, n in self._spans.values()), default=0)
        self.now = now
        self._next_trim = -math.inf
        self.next_check = -math.inf  # advance() has work to do from then on
        self._appended = [0, 0]  # entries ever appended to counts and to intervals
        self._cache: dict[str, tuple[float, int, int, list[float]]] = {}
        self.advance(now)

    def add(self, ts: float, deltas: Deltas, sketch_deltas: SketchDeltas | None = None) -> bool:
        """Record deltas at event time `ts`; False when too late for every window."""
        counted = False
        if self._spans and ts >= self.now - self.horizon_s:
            # Like the ring, an event ahead of our clock (skew) counts in the current bucket.
            self.counts.append((ts if ts < self.now else self.now, deltas))
            self._appended[0] += 1
            counted = True
        for period in self._periods:
            counted = period.add(ts, deltas) or counted
        return counted

    def add_interval(self, start: float, end: float, index: int) -> None:
        """Record time spent in a state over [start, end)."""
        if end <= start:
            return
        if self._spans and end > self.now - self.horizon_s:
            self.intervals.append((start, end, index))
            self._appended[1] += 1
        for period in self._periods:
            period.add_interval(start, end, index)

    def advance(self, now: float) -> None:
        """Move to `now`: roll calendar periods, now and then forget what no span covers."""
        if now > self.now:
            self.now = now
        if now >= self._next_change:
            for period in self._periods:
                period.advance(now)
            self._next_change = min(p.end for p in self._periods)
        if now < self._next_trim:
            self.next_check = min(self._next_change, self._next_trim)
            return
        # Forgetting is only about memory, so it runs a few times per longest span.
        self._next_trim = now + max(self.horizon_s / 8, AGENT_BUCKET_S)
        self.next_check = min(self._next_change, self._next_trim)
        horizon = self.now - self.horizon_s
        counts, intervals = self.counts, self.intervals
        # Entries may be out of order (late events); a stale head only delays forgetting.
        while counts and counts[0][0] < horizon:
            counts.popleft()
        while intervals and intervals[0][1] <= horizon:
            intervals.popleft()

    def store(self) -> None:
        """Bring every rolling sum up to date (the tick's part: a read never stores one)."""
        for name in self._spans:
            self._rolling(name, store=True)

    def _rolling(self, name: str, store: bool = False) -> list[float]:
        width, buckets = self._spans[name]
        low = (int(self.now // width) - buckets + 1) * width
        n_counts, n_intervals = self._appended
        cached = self._cache.get(name)
        counts: Iterator[tuple[float, Deltas]]
        intervals: Iterator[tuple[float, float, int]]
        if cached is not None and cached[0] == low:
            # Same first bucket: only entries appended since need adding (live boards read
            # every few hundred ms; a full sum happens when the window moves, once a bucket).
            _, seen_counts, seen_intervals, vector = cached
            if seen_counts == n_counts and seen_intervals == n_intervals:
                return vector
            if not store:  # a read adds to a copy: the same sums the tick then stores
                vector = list(vector)
            counts = islice(reversed(self.counts), n_counts - seen_counts)
            intervals = islice(reversed(self.intervals), n_intervals - seen_intervals)
        else:
            vector = [0.0] * self.size
            counts, intervals = iter(self.counts), iter(self.intervals)
        for ts, deltas in counts:
            if ts >= low:
                for k, d in deltas:
                    vector[k] += d
        for start, end, k in intervals:
            piece = end - (start if start > low else low)
            if piece > 0:
                vector[k] += piece
        if store:
            self._cache[name] = (low, n_counts, n_intervals, vector)
        return vector

    def time_range(self, name: str, now: float) -> tuple[float, float]:
        """The span of time a window covers at `now`."""
        span = calendar_range(self.day, self.shift, name, now)
        if span is not None:
            return span
        width, buckets = self._spans[name]
        return (int(self.now // width) - buckets + 1) * width, now

    def vector(self, name: str) -> tuple[list[float], Sketches]:
        """Counters of a window by name (agents keep no sketches)."""
        if name == "today":
            return kept(self.day, name).totals, []
        if name == "yesterday":
            return kept(self.day, name).prev_totals, []
        if name == "shift":
            return kept(self.shift, name).totals, []
        return self._rolling(name), []
