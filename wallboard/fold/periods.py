"""Calendar periods (a local day, a shift) in a time zone: 23, 24 or 25 hours long."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from wallboard.fold.counters import Deltas
from wallboard.fold.sketch import SketchDeltas, Sketches, add_sketches


def local_day_bounds(day: date, tz: ZoneInfo) -> tuple[float, float]:
    """UTC epoch bounds of a local calendar day: 23, 24 or 25 hours long."""
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start.timestamp(), end.timestamp()


class DayBounds:
    """Bounds of the local day holding a moment (a class, not a closure: checkpoints pickle it)."""

    __slots__ = ("tz",)

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz

    def __call__(self, now: float) -> tuple[float, float]:
        return local_day_bounds(datetime.fromtimestamp(now, self.tz).date(), self.tz)


class ShiftBounds:
    """Bounds of the shift holding a moment: from the latest local reset time to the next."""

    __slots__ = ("times", "tz")

    def __init__(self, tz: ZoneInfo, resets: Iterable[time]) -> None:
        self.tz, self.times = tz, sorted(resets) or [time(0)]

    def __call__(self, now: float) -> tuple[float, float]:
        tz = self.tz
        local_day = datetime.fromtimestamp(now, tz).date()
        # Wall-clock arithmetic in the zone, so shifts follow DST like the day does.
        edges = [datetime.combine(local_day + timedelta(days=d), t, tzinfo=tz).timestamp()
                 for d in (-1, 0, 1) for t in self.times]
        start = max(e for e in edges if e <= now)
        return start, min(e for e in edges if e > now)


def day_bounds(tz: ZoneInfo) -> Callable[[float], tuple[float, float]]:
    """Bounds of the local day holding a moment."""
    return DayBounds(tz)


def shift_bounds(tz: ZoneInfo, resets: Iterable[time]) -> Callable[[float], tuple[float, float]]:
    """Bounds of the shift holding a moment: from the latest local reset time to the next."""
    return ShiftBounds(tz, resets)


class CalendarPeriod:
    """Totals of the current calendar period (day or shift) and of the one before it."""

    def __init__(self, size: int, bounds: Callable[[float], tuple[float, float]], now: float,
                 sketch_kinds: int = 0) -> None:
        self.size, self.kinds, self.bounds = size, sketch_kinds, bounds
        self.start, self.end = bounds(now)
        self.totals = [0.0] * size
        self.sketches: Sketches = [{} for _ in range(sketch_kinds)]
        self.prev_start, self.prev_end = bounds(self.start - 1)
        self.prev_totals = [0.0] * size
        self.prev_sketches: Sketches = [{} for _ in range(sketch_kinds)]

    def add(self, ts: float, deltas: Deltas, sketch_deltas: SketchDeltas | None = None) -> bool:
        """Fold deltas into the period holding `ts`; False when it is older than both."""
        if ts >= self.start:
            total, sketches = self.totals, self.sketches
        elif ts >= self.prev_start:
            total, sketches = self.prev_totals, self.prev_sketches  # a late event for yesterday
        else:
            return False
        for k, d in deltas:
            total[k] += d
        if sketch_deltas:
            add_sketches(sketches, sketch_deltas)
        return True

    def add_interval(self, start: float, end: float, index: int) -> None:
        """Add a duration, split between this period and the previous one."""
        if end > self.start:
            self.totals[index] += end - max(start, self.start)
        low, high = max(start, self.prev_start), min(end, self.start)
        if high > low:
            self.prev_totals[index] += high - low

    def advance(self, now: float) -> None:
        """Start a new period once `now` passes the end of the current one."""
        if now < self.end:
            return
        start, end = self.bounds(now)
        if start == self.end:
            self.prev_totals, self.prev_sketches = self.totals, self.sketches
        else:  # the clock jumped over whole periods: the one before `start` saw nothing
            self.prev_totals = [0.0] * self.size
            self.prev_sketches = [{} for _ in range(self.kinds)]
        self.prev_start, self.prev_end = self.bounds(start - 1)
        self.start, self.end = start, end
        self.totals = [0.0] * self.size
        self.sketches = [{} for _ in range(self.kinds)]


def kept(period: CalendarPeriod | None, name: str) -> CalendarPeriod:
    """The period a calendar window reads; KeyError, as for any unknown window, if not kept."""
    if period is None:
        raise KeyError(name)
    return period


def calendar_range(day: CalendarPeriod | None, shift: CalendarPeriod | None, name: str,
                   now: float) -> tuple[float, float] | None:
    """The span of time a calendar window covers at `now`; None for a rolling window."""
    if name == "today":
        return kept(day, name).start, now
    if name == "yesterday":
        d = kept(day, name)
        return d.prev_start, d.prev_end
    if name == "shift":
        return kept(shift, name).start, now
    return None
