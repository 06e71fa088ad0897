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
from operator import add
from zoneinfo import ZoneInfo

from wallboard.config.settings import Settings
from wallboard.fold.counters import HANDLE_SUM, HANDLED, OFFERED
from wallboard.fold.intervals import LEVEL_QUEUE, IntervalRecord
from wallboard.fold.rollup import SLOT_COLUMNS, DayRecord
from wallboard.kpi.report import Key, Request, day_span, spans

Load = Callable[[int, int], list[IntervalRecord]]  # records starting in [since, until)
# A local day's start -> its rollups (slots; counters for a daily forecast), or None when
# it has none to read.
RolledDays = Callable[[int], list[DayRecord] | None]
Forecast = dict[tuple[Key, int], float]  # (what, row start) -> forecast offered
Aht = dict[tuple[Key, int], float | None]  # (what, row start) -> historical AHT (None: none)
Time = tuple[int, int, int]  # local (hour, minute, fold): the same interval on another day
Days = list[dict[Time, list[float]]]  # the days used for a row: the chosen counters by time
SITE: Key = ("site", "", "")


def _same_weekdays(load: Load, request: Request, settings: Settings, fields: tuple[int, ...],
                   rolled: RolledDays | None = None) -> Iterator[tuple[date, Key, Days]]:
    """Each requested day's rows with the same weekdays they are forecast from, each day's
    counters `fields` (in that order) summed per row and local time of day.

    The rows' keys are those sum_records makes, but only `fields` are added: no counters
    vector, no sketch (a month's forecast reads about 90 days; `load` may give records
    holding the offered counter alone, `load_offered`, when `fields` is just that). A day
    `rolled` has rollups for is read from their slots, any other from `load`.
    """
    tz = ZoneInfo(settings.site.timezone)
    weeks = settings.history.forecast_weeks
    queues, span = request.queues, spans(tz, request.interval)
    whole = request.interval == "1d"
    columns = [SLOT_COLUMNS[k] for k in fields]
    cache: dict[date, dict[Key, dict[Time, list[float]]]] = {}
    times: dict[int, Time] = {}

    def time_of(start: int) -> Time:
        at = times.get(start)
        if at is None:
            local = datetime.fromtimestamp(span(start)[0], tz)
            at = times[start] = (local.hour, local.minute, local.fold)
        return at

    def add_to(row: dict[Time, list[float]], at: Time, values: list[float]) -> None:
        summed = row.get(at)
        if summed is None:
            row[at] = values
        else:
            summed[:] = map(add, summed, values)

    def by_time(day: date) -> dict[Key, dict[Time, list[float]]]:
        if day not in cache:
            since, until = day_span(day, day, tz)
            by_key: dict[Key, dict[Time, list[float]]] = {}
            for_day = rolled(since) if rolled is not None else None
            if for_day is not None:
                for day_record in for_day:
                    if day_record.level != LEVEL_QUEUE or (queues
                                                           and day_record.name not in queues):
                        continue
                    row = by_key.setdefault(("queue", day_record.name, day_record.channel), {})
                    if whole:  # one row a day: the day's counters (its slots' sums)
                        get = day_record.counters.get
                        add_to(row, time_of(day_record.first), [get(k, 0.0) for k in fields])
                        continue
                    starts = day_record.slots[0]
                    picked = [day_record.slots[i] for i in columns]
                    slots = map(list, zip(*picked, strict=True))
                    if not row:  # the queue's first leaf: one pass, unless slots share a row
                        row.update(zip(map(time_of, starts), slots, strict=True))
                        if len(row) == len(starts):
                            continue
                        row.clear()
                        slots = map(list, zip(*picked, strict=True))
                    for start, slot in zip(starts, slots, strict=True):
                        add_to(row, time_of(start), slot)
            else:
                for record in load(since, until):
                    if record.level != LEVEL_QUEUE or (queues and record.name not in queues):
                        continue  # teams are not offered contacts
                    row = by_key.setdefault(("queue", record.name, record.channel), {})
                    get = record.counters.get
                    add_to(row, time_of(record.start), [get(k, 0.0) for k in fields])
            # Then channels add their queues' sums, and the site the channels' and the
            # unassigned leaf's (queue ""), as sum_records does.
            wider: list[dict[Time, list[float]]] = []
            for (_, name, channel), row in list(by_key.items()):
                if not name:
                    del by_key[("queue", name, channel)]
                    wider.append(row)
                    continue
                into = by_key.get(("channel", channel, channel))
                if into is None:
                    into = by_key[("channel", channel, channel)] = {}
                    wider.append(into)
                _sum_rows(into, row)
            site: dict[Time, list[float]] = {}
            for row in wider:
                _sum_rows(site, row)
            if wider:
                by_key[SITE] = site
            cache[day] = by_key
        return cache[day]

    def keys_of(day: date) -> set[Key] | None:
        """The rows a rolled-up day gives, told by its rollups without reading their slots."""
        found = rolled(day_span(day, day, tz)[0]) if rolled is not None else None
        if found is None:
            return None
        keys: set[Key] = set()
        for r in found:
            if r.level == LEVEL_QUEUE and not (queues and r.name not in queues):
                keys.update((("queue", r.name, r.channel), ("channel", r.channel, r.channel),
                             SITE) if r.name else (SITE,))
        return keys

    day = request.first
    while day <= request.last:
        used: dict[Key, Days] = defaultdict(list)
        for k in range(1, 2 * weeks + 1):
            past = day - timedelta(days=7 * k)
            if k > weeks and past not in cache:
                # The nearest weeks mostly suffice: a further day is read only for a row
                # still short of days (the same rows result, read or not).
                keys = keys_of(past)
                if keys is not None and all(len(used.get(x, ())) >= weeks for x in keys):
                    continue
            for key, row in by_time(past).items():
                if len(used[key]) < weeks:
                    used[key].append(row)
        for key, days in used.items():
            yield day, key, days
        day += timedelta(days=1)


def _sum_rows(into: dict[Time, list[float]], row: dict[Time, list[float]]) -> None:
    """Add a row's sums into a wider row's, time for time (copies where it has none)."""
    for at, values in row.items():
        summed = into.get(at)
        if summed is None:
            into[at] = list(values)
        else:
            summed[:] = map(add, summed, values)


def _starts(tz: ZoneInfo) -> Callable[[date, Time], int]:
    """Epoch seconds of a local time on a day; each computed once (rows share a hundred)."""
    cache: dict[tuple[date, Time], int] = {}

    def at(day: date, time: Time) -> int:
        found = cache.get((day, time))
        if found is None:
            hour, minute, fold = time
            found = cache[(day, time)] = int(datetime(
                day.year, day.month, day.day, hour, minute, fold=fold, tzinfo=tz).timestamp())
        return found
    return at


def forecast(load: Load, request: Request, settings: Settings,
             rolled: RolledDays | None = None) -> Forecast:
    """The forecast offered of every row of the requested days (days before today included).

    `load` needs to give only the records' offered counter (`load_offered`); `rolled`, the
    rollups of the days that have them (`rollups.rolled_up`)."""
    at = _starts(ZoneInfo(settings.site.timezone))
    out: Forecast = {}
    for day, key, days in _same_weekdays(load, request, settings, (OFFERED,), rolled):
        for time in {t for row in days for t in row}:
            total = sum(row[time][0] for row in days if time in row)
            out[(key, at(day, time))] = total / len(days)
    return out


def forecast_with_aht(load: Load, request: Request, settings: Settings,
                      rolled: RolledDays | None = None) -> tuple[Forecast, Aht]:
    """The forecast offered (`forecast`'s, from the same days), and the AHT of the same
    intervals on the same days.

    The AHT is a ratio of sums, as everywhere in reports: the handle time of the contacts
    that ended in those intervals over their number (None when none ended). `load` must give
    the handled counters too (`load_records`).
    """
    start_of = _starts(ZoneInfo(settings.site.timezone))
    offered: Forecast = {}
    aht: Aht = {}
    for day, key, days in _same_weekdays(load, request, settings,
                                         (OFFERED, HANDLED, HANDLE_SUM), rolled):
        for time in {t for row in days for t in row}:
            vectors = [row[time] for row in days if time in row]
            at = (key, start_of(day, time))
            offered[at] = sum(v[0] for v in vectors) / len(days)
            handled = sum(v[1] for v in vectors)
            aht[at] = sum(v[2] for v in vectors) / handled if handled else None
    return offered, aht
