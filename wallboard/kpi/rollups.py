"""Reading daily rollups in place of a day's 15-minute intervals (docs/reports.md#sizing).

A rollup is used for a day only when the store marks it equal to the day's stored intervals
and the fold holds no pending interval of that day; any other day is read from its intervals
as before. Rollups come in the intervals' order, so the rows add the same numbers in the same
order, and a report is the same either way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from wallboard.config.settings import Settings
from wallboard.fold.intervals import IntervalRecord
from wallboard.fold.rollup import DayRecord
from wallboard.kpi.forecast import Load, RolledDays
from wallboard.kpi.report import Request, day_span

# What of a rollup is read: counters and sketches for rows, counters alone for a daily
# forecast, the per-interval slots for an intraday one (historian.load_days).
Part = Literal["rows", "totals", "slots"]
# (since, until, part) -> the local days in [since, until) the rollups cover, and theirs.
DayLoad = Callable[[int, int, Part], tuple[set[int], list[DayRecord]]]


def daily(stored: Load, days: DayLoad, request: Request, tz: ZoneInfo,
          busy: set[int]) -> list[IntervalRecord]:
    """A `1d` report's records: a covered day's rollups, any other day's intervals."""
    since, until = day_span(request.first, request.last, tz)
    covered, rolled = days(since, until, "rows")
    covered -= busy
    out = [r.as_record() for r in rolled if r.day in covered]
    run: list[int] = []  # a stretch of days without rollups: their intervals in one read
    day = request.first
    while day <= request.last:
        lo, hi = day_span(day, day, tz)
        if lo in covered:
            if run:
                out += stored(run[0], run[1])
            run = []
        else:
            run = [run[0] if run else lo, hi]
        day += timedelta(days=1)
    if run:
        out += stored(run[0], run[1])
    return out


def rolled_up(days: DayLoad, request: Request, settings: Settings,
              busy: set[int]) -> RolledDays:
    """The forecast's rollups: those of the same weekdays the requested days are forecast
    from, read in runs of consecutive days (a day's report reads 8 days, not 56)."""
    tz = ZoneInfo(settings.site.timezone)
    weeks = 2 * settings.history.forecast_weeks
    wanted = sorted({request.first + timedelta(days=d - 7 * k)
                     for d in range((request.last - request.first).days + 1)
                     for k in range(1, weeks + 1)})
    part: Part = "totals" if request.interval == "1d" else "slots"
    covered: set[int] = set()
    by_day: dict[int, list[DayRecord]] = defaultdict(list)
    run = [wanted[0], wanted[0]]
    for day in [*wanted[1:], None]:
        if day is not None and day == run[1] + timedelta(days=1):
            run[1] = day
            continue
        found, rolled = days(*day_span(run[0], run[1], tz), part)
        covered |= found
        for record in rolled:
            by_day[record.day].append(record)
        if day is not None:
            run = [day, day]
    covered -= busy

    def rollups(day: int) -> list[DayRecord] | None:
        return by_day.get(day, []) if day in covered else None
    return rollups
