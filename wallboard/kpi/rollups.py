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
from zoneinfo import ZoneInfo

from wallboard.config.settings import Settings
from wallboard.fold.intervals import IntervalRecord
from wallboard.fold.rollup import DayRecord
from wallboard.kpi.forecast import Load
from wallboard.kpi.report import Request, day_span

# (since, until, bodies) -> the local days in [since, until) the rollups cover, and theirs.
DayLoad = Callable[[int, int, bool], tuple[set[int], list[DayRecord]]]


def daily(stored: Load, days: DayLoad, request: Request, tz: ZoneInfo,
          busy: set[int]) -> list[IntervalRecord]:
    """A `1d` report's records: a covered day's rollups, any other day's intervals."""
    since, until = day_span(request.first, request.last, tz)
    covered, rolled = days(since, until, True)
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


def rolled_up(fallback: Load, days: DayLoad, request: Request, settings: Settings,
              busy: set[int]) -> Load:
    """The forecast's loader: a covered day's slots, any other day from `fallback`."""
    tz = ZoneInfo(settings.site.timezone)
    back = timedelta(days=7 * 2 * settings.history.forecast_weeks)
    since = day_span(request.first - back, request.first, tz)[0]
    until = day_span(request.last, request.last, tz)[0]  # the days before the last
    covered, rolled = days(since, until, False)
    covered -= busy
    by_day: dict[int, list[DayRecord]] = defaultdict(list)
    for record in rolled:
        by_day[record.day].append(record)
    whole = request.interval == "1d"

    def load(lo: int, hi: int) -> list[IntervalRecord]:
        if lo in covered:  # the forecast reads a whole local day at a time
            return [r for day in by_day.get(lo, ()) for r in day.slot_records(whole)]
        return fallback(lo, hi)
    return load

