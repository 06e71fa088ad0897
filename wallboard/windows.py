"""Rolling and calendar windows: time buckets with running totals, bounded memory."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from wallboard.counters import Deltas

# Rolling windows share one ring of buckets; 'today' is a calendar window in the site zone.
ROLLING_SPANS: dict[str, int] = {"15m": 900, "1h": 3600}
WINDOW_NAMES: tuple[str, ...] = (*ROLLING_SPANS, "today")
BUCKET_WIDTH_S = 10


class RollingWindows:
    """A ring of fixed-width buckets; each span keeps a running total of the buckets it covers."""

    def __init__(self, size: int, now: float, spans: dict[str, int] | None = None,
                 width_s: int = BUCKET_WIDTH_S) -> None:
        spans = spans or ROLLING_SPANS
        self.width = width_s
        self.size = size
        # +1 bucket for the partial current one: a span covers between its length and length+width.
        self.span_buckets = {name: seconds // width_s + 1 for name, seconds in spans.items()}
        self.ring_len = max(self.span_buckets.values())
        self.slot_idx: list[int] = [-1] * self.ring_len
        self.slots: list[list[float] | None] = [None] * self.ring_len
        self.totals: dict[str, list[float]] = {name: [0.0] * size for name in spans}
        self._spans = [(self.span_buckets[n], self.totals[n]) for n in spans]
        self.now_idx = int(now // width_s)

    def add(self, ts: float, deltas: Deltas) -> bool:
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
            bucket = self.slots[slot] = [0.0] * self.size
            self.slot_idx[slot] = i
        for k, d in deltas:
            bucket[k] += d
        for covered, total in self._spans:
            if i > now_idx - covered:
                for k, d in deltas:
                    total[k] += d
        return True

    def advance(self, now: float) -> None:
        """Move the ring's clock to `now`, subtracting buckets that leave each span."""
        new_idx = int(now // self.width)
        old_idx = self.now_idx
        if new_idx <= old_idx:
            return
        for covered, total in self._spans:
            first = old_idx - covered + 1
            last = min(old_idx, new_idx - covered)
            for j in range(first, last + 1):
                slot = j % self.ring_len
                bucket = self.slots[slot]
                if bucket is not None and self.slot_idx[slot] == j:
                    for k, value in enumerate(bucket):
                        if value:
                            total[k] -= value
            if not self._any_live(new_idx, covered):
                total[:] = [0.0] * self.size  # drop float residue once a span is empty
        self.now_idx = new_idx

    def _any_live(self, now_idx: int, covered: int) -> bool:
        low = now_idx - covered
        return any(low < j <= now_idx and b is not None
                   for j, b in zip(self.slot_idx, self.slots, strict=True))


def local_day_bounds(day: date, tz: ZoneInfo) -> tuple[float, float]:
    """UTC epoch bounds of a local calendar day: 23, 24 or 25 hours long."""
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start.timestamp(), end.timestamp()


class CalendarDay:
    """Totals since local midnight in a time zone; resets at the next local midnight."""

    def __init__(self, size: int, tz: ZoneInfo, now: float) -> None:
        self.size = size
        self.tz = tz
        self.totals = [0.0] * size
        self.start, self.end = self._bounds(now)

    def _bounds(self, now: float) -> tuple[float, float]:
        return local_day_bounds(datetime.fromtimestamp(now, self.tz).date(), self.tz)

    def add(self, ts: float, deltas: Deltas) -> bool:
        """Fold deltas at `ts`; False when `ts` falls before today's local midnight."""
        if ts < self.start:
            return False
        total = self.totals
        for k, d in deltas:
            total[k] += d
        return True

    def advance(self, now: float) -> None:
        """Start a new day once `now` passes local midnight."""
        if now >= self.end:
            self.start, self.end = self._bounds(now)
            self.totals = [0.0] * self.size
