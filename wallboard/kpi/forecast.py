"""The intraday forecast: an interval's offered as the mean of the same interval on the same
weekday of the last weeks that have data (docs/reports.md#forecast).

Exactly this by default, so anyone can check it by hand: for a day D and a row (site, a
channel or a queue) starting at local time t, take the same weekdays D-7, D-14, ... (at most
2 x history.forecast_weeks back) on which that row has any interval record, the first
`forecast_weeks` of them; the forecast is the mean of their offered at local time t (an
interval without a record on such a day counts 0). No such day: no forecast (null).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from wallboard.config.settings import Settings
from wallboard.fold.counters import OFFERED
from wallboard.fold.intervals import LEVEL_QUEUE, IntervalRecord
from wallboard.kpi.report import Key, Request, day_span, spans

Load = Callable[[int, int], list[IntervalRecord]]  # records starting in [since, until)
Forecast = dict[tuple[Key, int], float]  # (what, row start) -> forecast offered
SITE: Key = ("site", "", "")


def forecast(load: Load, request: Request, settings: Settings) -> Forecast:
    """The forecast offered of every row of the requested days (days before today included)."""
    tz = ZoneInfo(settings.site.timezone)
    weeks = settings.history.forecast_weeks
    out: Forecast = {}
    cache: dict[date, dict[Key, dict[tuple[int, int, int], float]]] = {}
    queues, span = request.queues, spans(tz, request.interval)

    def offered_by_time(day: date) -> dict[Key, dict[tuple[int, int, int], float]]:
        # The rows' keys as sum_records makes them, but only the offered is added: no
        # counters vector, no sketch (a month's forecast reads about 90 days).
        if day not in cache:
            since, until = day_span(day, day, tz)
            by_key: dict[Key, dict[tuple[int, int, int], float]] = {}
            times: dict[int, tuple[int, int, int]] = {}
            for record in load(since, until):
                if record.level != LEVEL_QUEUE or (queues and record.name not in queues):
                    continue  # teams are not offered contacts
                at = times.get(record.start)
                if at is None:
                    local = datetime.fromtimestamp(span(record.start)[0], tz)
                    at = times[record.start] = (local.hour, local.minute, local.fold)
                offered = record.counters.get(OFFERED, 0.0)
                channel = record.channel
                for key in ((("queue", record.name, channel), ("channel", channel, channel),
                             SITE) if record.name else (SITE,)):
                    by_time = by_key.get(key)
                    if by_time is None:
                        by_time = by_key[key] = {}
                    by_time[at] = by_time.get(at, 0.0) + offered
            cache[day] = by_key
        return cache[day]

    day = request.first
    while day <= request.last:
        used: dict[Key, list[dict[tuple[int, int, int], float]]] = defaultdict(list)
        for k in range(1, 2 * weeks + 1):
            for key, by_time in offered_by_time(day - timedelta(days=7 * k)).items():
                if len(used[key]) < weeks:
                    used[key].append(by_time)
        for key, days in used.items():
            times = {t for by_time in days for t in by_time}
            for hour, minute, fold in times:
                at = datetime(day.year, day.month, day.day, hour, minute, fold=fold, tzinfo=tz)
                mean = sum(by_time.get((hour, minute, fold), 0.0) for by_time in days) / len(days)
                out[(key, int(at.timestamp()))] = mean
        day += timedelta(days=1)
    return out
