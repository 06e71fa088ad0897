"""Rolling windows (time buckets with running totals, bounded memory) and the WindowSet."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import time
from zoneinfo import ZoneInfo

from wallboard.config.windows import BUCKET_WIDTH_S, WindowSpec
from wallboard.fold.counters import Deltas
from wallboard.fold.intervals import IntervalBook
from wallboard.fold.periods import (
    CalendarPeriod,
    calendar_range,
    day_bounds,
    kept,
    shift_bounds,
)
from wallboard.fold.sketch import SketchDeltas, Sketches, add_sketches, merge_sketches


def bucket_width(span_s: int, finest_s: int = BUCKET_WIDTH_S) -> int:
    """`finest_s` buckets up to an hour; longer spans keep about 360 buckets."""
    if span_s <= 3600:
        return finest_s
    return max(finest_s, math.ceil(span_s / 360 / BUCKET_WIDTH_S) * BUCKET_WIDTH_S)


class RollingWindows:
    """A ring of fixed-width buckets; each span keeps a running total of the buckets it covers."""

    def __init__(self, size: int, now: float, spans: dict[str, int], width_s: int = BUCKET_WIDTH_S,
                 sketch_kinds: int = 0) -> None:
        self.width = width_s
        self.size = size
        self.kinds = sketch_kinds
        # +1 bucket for the partial current one: a span covers between its length and length+width.
        self.span_buckets = {name: seconds // width_s + 1 for name, seconds in spans.items()}
        self.ring_len = max(self.span_buckets.values())
        self.slot_idx: list[int] = [-1] * self.ring_len
        # Buckets hold only the counters they touched: eviction then costs what was added.
        self.slots: list[dict[int, float] | None] = [None] * self.ring_len
        self.slot_sketches: list[Sketches | None] = [None] * self.ring_len
        self.totals: dict[str, list[float]] = {name: [0.0] * size for name in spans}
        self.sketches: dict[str, Sketches] = {name: [{} for _ in range(sketch_kinds)]
                                              for name in spans}
        self._spans = [(self.span_buckets[n], self.totals[n], self.sketches[n]) for n in spans]
        self.now_idx = int(now // width_s)
        self.last_idx = -1  # the newest bucket ever written: older spans hold nothing

    def covers(self, ts: float) -> bool:
        """True when an event at `ts` still falls inside the ring."""
        return int(ts // self.width) > self.now_idx - self.ring_len

    def add(self, ts: float, deltas: Deltas, sketch_deltas: SketchDeltas | None = None) -> bool:
        """Fold deltas at event time `ts`; False when the event is older than the ring."""
        i = int(ts // self.width)
        now_idx = self.now_idx
        if i > now_idx:
            i = now_idx  # ahead of our clock (skew): count it now rather than lose it
        elif i <= now_idx - self.ring_len:
            return False
        slot = i % self.ring_len
        bucket = self.slots[slot]
        if bucket is None or self.slot_idx[slot] != i:
            # Same residue within the ring's span means the old index is already evicted.
            bucket = self.slots[slot] = {}
            self.slot_sketches[slot] = None
            self.slot_idx[slot] = i
        for k, d in deltas:
            bucket[k] = bucket.get(k, 0.0) + d
        if i > self.last_idx:
            self.last_idx = i
        if sketch_deltas:
            sketches = self.slot_sketches[slot]
            if sketches is None:
                sketches = self.slot_sketches[slot] = [{} for _ in range(self.kinds)]
            add_sketches(sketches, sketch_deltas)
        for covered, total, total_sketches in self._spans:
            if i > now_idx - covered:
                for k, d in deltas:
                    total[k] += d
                if sketch_deltas:
                    add_sketches(total_sketches, sketch_deltas)
        return True

    def add_interval(self, start: float, end: float, index: int) -> None:
        """Spread a duration (time in a state) over the buckets it overlaps."""
        width, now_idx, ring_len = self.width, self.now_idx, self.ring_len
        first = max(int(start // width), now_idx - ring_len + 1)
        last = min(int(end // width), now_idx)
        for i in range(first, last + 1):
            # The current bucket also takes any part beyond it (clock skew), like add() does.
            high = end if i == now_idx else min(end, (i + 1) * width)
            piece = high - max(start, i * width)
            if piece <= 0:
                continue
            slot = i % ring_len
            bucket = self.slots[slot]
            if bucket is None or self.slot_idx[slot] != i:
                bucket = self.slots[slot] = {}
                self.slot_sketches[slot] = None
                self.slot_idx[slot] = i
            bucket[index] = bucket.get(index, 0.0) + piece
            if i > self.last_idx:
                self.last_idx = i
            for covered, total, _ in self._spans:
                if i > now_idx - covered:
                    total[index] += piece

    def coverage(self, name: str) -> float:
        """Start time of the buckets a span covers now."""
        return (self.now_idx - self.span_buckets[name] + 1) * self.width

    def advance(self, now: float) -> None:
        """Move the ring's clock to `now`, subtracting buckets that leave each span."""
        new_idx = int(now // self.width)
        old_idx = self.now_idx
        if new_idx <= old_idx:
            return
        for covered, total, total_sketches in self._spans:
            for j in range(old_idx - covered + 1, min(old_idx, new_idx - covered) + 1):
                slot = j % self.ring_len
                bucket = self.slots[slot]
                if bucket is not None and self.slot_idx[slot] == j:
                    for k, value in bucket.items():
                        total[k] -= value
                    sketches = self.slot_sketches[slot]
                    if sketches is not None:
                        merge_sketches(total_sketches, sketches, -1)
            if self.last_idx <= new_idx - covered:
                total[:] = [0.0] * self.size  # drop float residue once a span is empty
        self.now_idx = new_idx


class WindowSet:
    """Every configured window over one counter vector, plus lifetime totals."""

    def __init__(self, specs: Iterable[WindowSpec], size: int, tz: ZoneInfo,
                 shift_resets: Iterable[time], now: float, sketch_kinds: int = 0,
                 finest_s: int = BUCKET_WIDTH_S) -> None:
        specs = list(specs)
        self.size = size
        by_width: dict[int, dict[str, int]] = {}
        for spec in specs:
            if spec.kind == "rolling":
                by_width.setdefault(bucket_width(spec.span_s, finest_s), {})[spec.name] = \
                    spec.span_s
        self.rings = [RollingWindows(size, now, spans, width, sketch_kinds)
                      for width, spans in sorted(by_width.items())]
        kinds = {spec.kind for spec in specs}
        self.day = (CalendarPeriod(size, day_bounds(tz), now, sketch_kinds)
                    if kinds & {"today", "yesterday"} else None)
        self.shift = (CalendarPeriod(size, shift_bounds(tz, shift_resets), now, sketch_kinds)
                      if "shift" in kinds else None)
        self._periods = [p for p in (self.day, self.shift) if p is not None]
        self._next_change = min((p.end for p in self._periods), default=math.inf)
        # Nothing moves before the next bucket edge: advance() is a comparison until then.
        self.next_edge = -math.inf
        # Events of the current bucket are summed here first and folded into every window in
        # one go when the bucket ends or a window is read: most events then cost one dict add.
        self._batch_idx = -1
        self._batch_width = finest_s
        self._batch: defaultdict[int, float] = defaultdict(float)
        self._batch_sketches: SketchDeltas = []
        self._lifetime = [0.0] * size
        self.book: IntervalBook | None = None  # a queue leaf's interval history

    @property
    def lifetime(self) -> list[float]:
        """Totals since start (for Prometheus counters); a read, batched events included."""
        if not self._batch:
            return self._lifetime
        return self._with_batch(self._lifetime)

    def _with_batch(self, totals: list[float]) -> list[float]:
        # What flush() would make of `totals`, on a copy: the same additions, in the same order.
        out = list(totals)
        for k, d in self._batch.items():
            out[k] += d
        return out

    def batched(self) -> tuple[float, Deltas, SketchDeltas]:
        """The events of the current bucket not folded yet: (bucket start, deltas, sketches)."""
        return self._batch_idx * self._batch_width, list(self._batch.items()), \
            list(self._batch_sketches)

    def flush(self) -> None:
        """Fold the batched events of the current bucket into every window."""
        if not self._batch and not self._batch_sketches:
            return
        deltas, sketches = list(self._batch.items()), self._batch_sketches
        self._batch, self._batch_sketches = defaultdict(float), []
        self._add(self._batch_idx * self._batch_width, deltas, sketches)

    def add(self, ts: float, deltas: Deltas, sketch_deltas: SketchDeltas | None = None) -> bool:
        """Fold deltas at `ts` everywhere it belongs; False when too late for every window."""
        idx = int(ts // self._batch_width)
        if idx == self._batch_idx:
            batch = self._batch
            for k, d in deltas:
                batch[k] += d
            if sketch_deltas:
                self._batch_sketches.extend(sketch_deltas)
            return True
        return self._add(ts, deltas, sketch_deltas)

    def _add(self, ts: float, deltas: Deltas, sketch_deltas: SketchDeltas | None) -> bool:
        for k, d in deltas:
            self._lifetime[k] += d
        if self.book is not None:
            self.book.add(ts, deltas, sketch_deltas)
        counted = False
        for ring in self.rings:
            counted = ring.add(ts, deltas, sketch_deltas) or counted
        for period in self._periods:
            counted = period.add(ts, deltas, sketch_deltas) or counted
        return counted

    def add_interval(self, start: float, end: float, index: int) -> None:
        """Add time spent in a state over [start, end) to every window it overlaps."""
        if end <= start:
            return
        self.flush()
        self._lifetime[index] += end - start
        if self.book is not None:
            self.book.add_span(start, end, index)
        for ring in self.rings:
            ring.add_interval(start, end, index)
        for period in self._periods:
            period.add_interval(start, end, index)

    def time_range(self, name: str, now: float) -> tuple[float, float]:
        """The span of time a window covers at `now`."""
        span = calendar_range(self.day, self.shift, name, now)
        if span is not None:
            return span
        for ring in self.rings:
            if name in ring.totals:
                return ring.coverage(name), now
        raise KeyError(name)

    def advance(self, now: float) -> None:
        """Move every window to `now`."""
        if now < self.next_edge:
            return
        self.flush()
        for ring in self.rings:
            ring.advance(now)
        if now >= self._next_change:
            for period in self._periods:
                period.advance(now)
            self._next_change = min(p.end for p in self._periods)
        edges = [(r.now_idx + 1) * r.width for r in self.rings]
        self.next_edge = min([*edges, self._next_change])
        # Batch only events of the bucket holding `now`, and only when the whole bucket lies
        # in the current calendar periods (every window then takes them alike).
        width = self._batch_width
        idx = int(now // width)
        starts = [p.start for p in self._periods]
        self._batch_idx = idx if all(idx * width >= s for s in starts) and all(
            (r.now_idx + 1) * r.width >= (idx + 1) * width for r in self.rings) else -1

    def vector(self, name: str) -> tuple[list[float], Sketches]:
        """Counters and sketches of a window by name: a read, batched events included.

        The batch holds events of the bucket holding now, which every window but yesterday
        takes: they are added to copies, and stored only by the next `flush` (the tick's).
        """
        if name == "yesterday":
            day = kept(self.day, name)
            return day.prev_totals, day.prev_sketches
        totals, sketches = self._stored(name)
        if not self._batch and not self._batch_sketches:
            return totals, sketches
        sketches = [dict(sketch) for sketch in sketches]
        add_sketches(sketches, self._batch_sketches)
        return self._with_batch(totals), sketches

    def _stored(self, name: str) -> tuple[list[float], Sketches]:
        if name == "today":
            day = kept(self.day, name)
            return day.totals, day.sketches
        if name == "shift":
            shift = kept(self.shift, name)
            return shift.totals, shift.sketches
        for ring in self.rings:
            if name in ring.totals:
                return ring.totals[name], ring.sketches[name]
        raise KeyError(name)

    def period_start(self, name: str) -> float | None:
        """Start of a calendar window (None for rolling ones)."""
        if name == "today":
            return kept(self.day, name).start
        if name == "yesterday":
            return kept(self.day, name).prev_start
        if name == "shift":
            return kept(self.shift, name).start
        return None
