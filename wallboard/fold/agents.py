"""Per-agent windows: an agent has a few events a minute, so rolling spans sum a log on read."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import time
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
PENDING_LIMIT = 4096  # additions kept for the stored sums between two ticks
MAX_AHEAD_S = 2 * 86_400  # time in a state counted ahead of the clock (skew is at most a day)


class AgentWindows:
    """The windows of one agent, read like a WindowSet: same spans, same bucket edges.

    A queue's ring of buckets pays off when many events share a bucket; an agent's events are
    sparse, and moving a ring on each of them cost more than everything else in the fold.
    Here counts go into sparse buckets of the `grain` (the gcd of the spans' bucket widths):
    every span's first covered edge is a multiple of the grain, so an event counts in a span
    exactly when its grain bucket does, and time in a state splits at grain edges the same
    way. Memory is a bucket per grain of the longest span, however many events arrive. A
    rolling span is summed when read: the tick's stored sum plus what was added since, or
    from the buckets when its first edge moved (once a bucket width).
    """

    __slots__ = (
        "_cache",
        "_first",
        "_late",
        "_next_change",
        "_next_trim",
        "_pending",
        "_periods",
        "_spans",
        "_top",
        "buckets",
        "day",
        "grain",
        "horizon_s",
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
        self.grain = math.gcd(*(w for w, _ in self._spans.values())) or finest_s
        kinds = {spec.kind for spec in specs}
        self.day = (CalendarPeriod(self.size, day_bounds(tz), now)
                    if kinds & {"today", "yesterday"} else None)
        self.shift = (CalendarPeriod(self.size, shift_bounds(tz, shift_resets), now)
                      if "shift" in kinds else None)
        self._periods = [p for p in (self.day, self.shift) if p is not None]
        self._next_change = min((p.end for p in self._periods), default=math.inf)
        # grain bucket (its start // grain) -> counter slot -> sum. Insertion order is time
        # order but for late buckets (`_late`: the oldest of those, `_top`: the newest key).
        self.buckets: dict[int, dict[int, float]] = {}
        self._top: float = -math.inf
        self._late: float = math.inf
        self._first: float = -math.inf  # no bucket before this one counts in any span any more
        # What went into buckets since the tick stored the sums: (bucket, deltas).
        self._pending: list[tuple[int, Deltas]] = []
        self.horizon_s = max((w * n for w, n in self._spans.values()), default=0)
        self.now = now
        self._next_trim = -math.inf
        self.next_check = -math.inf  # advance() has work to do from then on
        self._cache: dict[str, tuple[int, list[float]]] = {}  # name -> (first edge, sums)
        self.advance(now)

    def add(self, ts: float, deltas: Deltas, sketch_deltas: SketchDeltas | None = None) -> bool:
        """Record deltas at event time `ts`; False when too late for every window."""
        counted = False
        if self._spans and ts >= self.now - self.horizon_s:
            # Like the ring, an event ahead of our clock (skew) counts in the current bucket.
            key = int((ts if ts < self.now else self.now) // self.grain)
            if key >= self._first:
                self._bucket_add(key, deltas)
            counted = True
        for period in self._periods:
            counted = period.add(ts, deltas) or counted
        return counted

    def add_interval(self, start: float, end: float, index: int) -> None:
        """Record time spent in a state over [start, end)."""
        if end <= start:
            return
        if self._spans and end > self.now - self.horizon_s:
            # Split at grain edges: a piece inside a bucket counts whole in a span whose first
            # edge is at or before the bucket's start, and not at all in one whose is after.
            grain = self.grain
            key = int(start // grain)
            at = start
            if key < self._first:  # what lies before the first edge counts nowhere
                key = int(self._first)
                at = key * grain
            # Events are at most a day ahead (server.max_clock_skew_s): this bounds the loop.
            stop = min(end, self.now + MAX_AHEAD_S)
            while at < stop:
                edge = (key + 1) * grain
                self._bucket_add(key, [(index, (stop if stop < edge else edge) - at)])
                key, at = key + 1, edge
        for period in self._periods:
            period.add_interval(start, end, index)

    def _bucket_add(self, key: int, deltas: Deltas) -> None:
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = {}
            if key < self._top:
                self._late = min(self._late, key)
            else:
                self._top = key
        for k, d in deltas:
            bucket[k] = bucket.get(k, 0.0) + d
        pending = self._pending
        if len(pending) >= PENDING_LIMIT:
            # No tick for a while (a replay, a test): sums are redone from the buckets.
            pending.clear()
            self._cache.clear()
        else:
            pending.append((key, deltas))

    def entries(self) -> int:
        """Buckets held for the rolling spans."""
        return len(self.buckets)

    def advance(self, now: float) -> None:
        """Move to `now`: roll calendar periods; at grain edges forget what no span covers."""
        if now > self.now:
            self.now = now
        if now >= self._next_change:
            for period in self._periods:
                period.advance(now)
            self._next_change = min(p.end for p in self._periods)
        if now < self._next_trim:
            self.next_check = min(self._next_change, self._next_trim)
            return
        if not self._spans:
            self._next_trim = self.next_check = self._next_change
            return
        grain = self.grain
        self._next_trim = (self.now // grain + 1) * grain
        self.next_check = min(self._next_change, self._next_trim)
        # The first edge of the longest-reaching span (first edges only move forward).
        first = self._first = min((int(self.now // w) - n + 1) * w
                                  for w, n in self._spans.values()) // grain
        buckets = self.buckets
        while buckets:
            key = next(iter(buckets))  # the oldest, but for late ones
            if key >= first:
                break
            del buckets[key]
        if self._late < first:  # late buckets behind newer ones are stale: sort them out
            self.buckets = {k: buckets[k] for k in sorted(buckets) if k >= first}
            self._late = math.inf

    def store(self) -> None:
        """Bring every rolling sum up to date (the tick's part: a read never stores one)."""
        for name in self._spans:
            self._cache[name] = self._sum(name, True)
        self._pending.clear()

    def _sum(self, name: str, store: bool) -> tuple[int, list[float]]:
        width, buckets = self._spans[name]
        low = (int(self.now // width) - buckets + 1) * width
        first = low // self.grain
        cached = self._cache.get(name)
        if cached is not None and cached[0] == low:
            # Same first edge: only what came since needs adding (live boards read every few
            # hundred ms; a full sum happens when the window moves, once a bucket width).
            vector = cached[1]
            if not self._pending:
                return low, vector
            if not store:  # a read adds to a copy: the same sums the tick then stores
                vector = list(vector)
            for key, deltas in self._pending:
                if key >= first:
                    for k, d in deltas:
                        vector[k] += d
        else:
            vector = [0.0] * self.size
            for key, bucket in self.buckets.items():
                if key >= first:
                    for k, d in bucket.items():
                        vector[k] += d
        return low, vector

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
        return self._sum(name, False)[1], []
