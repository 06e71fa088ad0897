"""The intraday forecast: an interval's offered as the mean of the same interval on the same
weekday of the last weeks that have data (docs/reports.md#forecast).

Exactly this by default, so anyone can check it by hand: for a day D and a row (site, a
channel or a queue) starting at local time t, take the same weekdays D-7, D-14, ... (at most
2 x history.forecast_weeks back) on which that row has any interval record, the first
`forecast_weeks` of them; the forecast is the mean of their offered at local time t (an
interval without a record on such a day counts 0). No such day: no forecast (null).
The live forecast tile also takes the AHT of those intervals on those days (a ratio of sums).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from wallboard.config.settings import Settings
from wallboard.fold.counters import HANDLE_SUM, HANDLED, OFFERED
from wallboard.fold.intervals import IntervalRecord
from wallboard.kpi.report import Key, Request, day_span, sum_records

Load = Callable[[int, int], list[IntervalRecord]]  # records starting in [since, until)
Forecast = dict[tuple[Key, int], float]  # (what, row start) -> forecast offered
Aht = dict[tuple[Key, int], float | None]  # (what, row start) -> historical AHT (None: none)
Time = tuple[int, int, int]  # local (hour, minute, fold): the same interval on another day
Days = list[dict[Time, list[float]]]  # the days used for a row: counters by time of day


def _same_weekdays(load: Load, request: Request, settings: Settings
                   ) -> Iterator[tuple[date, Key, Days]]:
    """Each requested day's rows with the same weekdays they are forecast from."""
    tz = ZoneInfo(settings.site.timezone)
    weeks = settings.history.forecast_weeks
    cache: dict[date, dict[Key, dict[Time, list[float]]]] = {}

    def by_time(day: date) -> dict[Key, dict[Time, list[float]]]:
        if day not in cache:
            since, until = day_span(day, day, tz)
            totals = sum_records(load(since, until), tz, request.interval, request.queues,
                                 sketches=False)  # offered and handle time only
            by_key: dict[Key, dict[Time, list[float]]] = defaultdict(dict)
            for (key, start, _end), (vector, _sketches) in totals.items():
                if key[0] == "team":
                    continue  # teams are not offered contacts
                local = datetime.fromtimestamp(start, tz)
                by_key[key][(local.hour, local.minute, local.fold)] = vector
            cache[day] = dict(by_key)
        return cache[day]

    day = request.first
    while day <= request.last:
        used: dict[Key, Days] = defaultdict(list)
        for k in range(1, 2 * weeks + 1):
            for key, times in by_time(day - timedelta(days=7 * k)).items():
                if len(used[key]) < weeks:
                    used[key].append(times)
        for key, days in used.items():
            yield day, key, days
        day += timedelta(days=1)


def _at(day: date, time: Time, tz: ZoneInfo) -> int:
    hour, minute, fold = time
    return int(datetime(day.year, day.month, day.day, hour, minute, fold=fold,
                        tzinfo=tz).timestamp())


def forecast(load: Load, request: Request, settings: Settings) -> Forecast:
    """The forecast offered of every row of the requested days (days before today included)."""
    tz = ZoneInfo(settings.site.timezone)
    out: Forecast = {}
    for day, key, days in _same_weekdays(load, request, settings):
        for time in {t for by_time in days for t in by_time}:
            total = sum(by_time[time][OFFERED] for by_time in days if time in by_time)
            out[(key, _at(day, time, tz))] = total / len(days)
    return out


def forecast_with_aht(load: Load, request: Request, settings: Settings
                      ) -> tuple[Forecast, Aht]:
    """The forecast offered, and the AHT of the same intervals on the same days.

    The AHT is a ratio of sums, as everywhere in reports: the handle time of the contacts
    that ended in those intervals over their number (None when none ended).
    """
    tz = ZoneInfo(settings.site.timezone)
    offered: Forecast = {}
    aht: Aht = {}
    for day, key, days in _same_weekdays(load, request, settings):
        for time in {t for by_time in days for t in by_time}:
            vectors = [by_time[time] for by_time in days if time in by_time]
            at = (key, _at(day, time, tz))
            offered[at] = sum(v[OFFERED] for v in vectors) / len(days)
            handled = sum(v[HANDLED] for v in vectors)
            aht[at] = sum(v[HANDLE_SUM] for v in vectors) / handled if handled else None
    return offered, aht
