"""The interval report: closed (and open) 15-minute records summed into rows of KPIs.

Rows per queue, channel, team and site for every interval of the chosen width (15m, 30m, 1h
or 1d) in the site's time zone. Counts and sums add across intervals and sketches merge, so a
row's KPIs are exactly what a window over that span would show (docs/reports.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from operator import add, itemgetter
from typing import Any
from zoneinfo import ZoneInfo

from wallboard.config.settings import Settings
from wallboard.fold.counters import FIELDS, HANDLED, SKETCH_WAIT
from wallboard.fold.intervals import LEVEL_QUEUE, LEVEL_TEAM, IntervalRecord
from wallboard.fold.rollup import AGGREGATES, local_day
from wallboard.fold.sketch import merge_sketches
from wallboard.kpi.formulas import agent_window_kpis, row_kpis

WIDTHS = {"15m": 900, "30m": 1800, "1h": 3600, "1d": 86_400}
MIN_SAMPLE = 1  # an interval row shows what happened in it, however few responses
MAX_DAYS = 400  # one report's span, like history.retention_days' default
LEVELS = ("site", "channel", "queue", "team")
ROW_SKETCHES = 1  # a row's percentiles are the wait's (SKETCH_WAIT, the first): read no other
COLUMNS = ("level", "queue", "channel", "team", "start", "end", "offered", "forecast_offered",
           "answered", "abandoned", "abandoned_short", "service_level", "asa_s", "aht_s",
           "abandon_rate", "wait_p50_s", "wait_p90_s", "handled", "transfers", "occupancy")
Key = tuple[str, str, str]  # (level, name, channel): what a row is about
Totals = tuple[list[float], dict[int, int]]  # counters, and the wait sketch (a row's only)


@dataclass
class Request:
    """What a report asks for: local days (inclusive), the row width, optional queues."""

    first: date
    last: date
    interval: str = "15m"
    queues: frozenset[str] = field(default_factory=frozenset)  # empty: every queue


def bucket(ts: int, tz: ZoneInfo, width: str) -> tuple[int, int]:
    """(start, end) in epoch seconds of the row holding `ts`, in local time."""
    if width == "1d":
        return local_day(ts, tz)  # as the daily rollups are keyed
    local = datetime.fromtimestamp(ts, tz)
    minutes = WIDTHS[width] // 60
    floored = local.replace(minute=local.minute - local.minute % minutes, second=0,
                            microsecond=0)  # keeps `fold`: the repeated hour stays apart
    start_ts = int(floored.timestamp())
    return start_ts, start_ts + WIDTHS[width]


def day_span(first: date, last: date, tz: ZoneInfo) -> tuple[int, int]:
    """Epoch seconds from local midnight of `first` to local midnight after `last`."""
    start = datetime.combine(first, datetime.min.time(), tz)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tz)
    return int(start.timestamp()), int(end.timestamp())


def _add(totals: dict[Any, Totals], key: Any, record: IntervalRecord) -> None:
    entry = totals.get(key)
    if entry is None:
        # A copy (a pending record is the fold's), by dict() in one C pass: a daily rollup's
        # sketch spans hundreds of bins. A zero bin it may hold weighs nothing in a quantile.
        entry = totals[key] = ([0.0] * len(FIELDS), dict(record.sketches[SKETCH_WAIT]))
        vector = entry[0]
        for k, value in record.counters.items():
            vector[k] += value
        return
    vector = entry[0]
    for k, value in record.counters.items():
        vector[k] += value
    merge_sketches([entry[1]], [record.sketches[SKETCH_WAIT]])


def _add_totals(totals: dict[Any, Totals], key: Any, other: Totals) -> None:
    entry = totals.get(key)
    if entry is None:
        totals[key] = (list(other[0]), dict(other[1]))
        return
    entry[0][:] = map(add, entry[0], other[0])
    merge_sketches([entry[1]], [other[1]])


def spans(tz: ZoneInfo, width: str) -> Callable[[int], tuple[int, int]]:
    """`bucket` for one report: its records share a few hundred starts, each computed once."""
    cache: dict[int, tuple[int, int]] = {}

    def span(ts: int) -> tuple[int, int]:
        found = cache.get(ts)
        if found is None:
            found = cache[ts] = bucket(ts, tz, width)
        return found
    return span


def sum_records(records: Iterable[IntervalRecord], tz: ZoneInfo, width: str,
                queues: frozenset[str]) -> dict[tuple[Key, int, int], Totals]:
    """Totals per (what, row start, row end): queue records also feed channel and site.

    A queue's key carries the channel its records came in on (a queue's leaves share one).
    Records are summed per queue leaf first, and channels and the site add those totals: one
    sketch merge per record, not three (a month's daily report sums 10^5 records).
    """
    totals: dict[tuple[Key, int, int], Totals] = {}
    span = spans(tz, width)
    given: set[tuple[int, int]] = set()  # rows whose channels and site came summed
    for record in records:
        start, end = span(record.start)
        if record.level in AGGREGATES:  # a daily rollup's: only in a report of every queue
            if not queues:
                _add(totals, ((record.level, record.name, record.channel), start, end), record)
                given.add((start, end))
            continue
        if record.level == LEVEL_TEAM:
            if not queues:
                _add(totals, ((LEVEL_TEAM, record.name, ""), start, end), record)
            continue
        if record.level != LEVEL_QUEUE or (queues and record.name not in queues):
            continue
        # The unassigned leaf (surveys, tickets without a queue) is kept under the queue ""
        # until the site has it: it has no queue or channel row.
        _add(totals, (("queue", record.name, record.channel), start, end), record)
    site: Key = ("site", "", "")
    wider: list[tuple[Key, int, int, Totals]] = []  # channels and unassigned leaves, as met
    for (key, start, end), entry in list(totals.items()):
        if key[0] != "queue":
            continue
        _, name, channel = key
        if not name:
            del totals[(key, start, end)]
        if (start, end) in given:
            continue
        if name:
            channel_key: Key = ("channel", channel, channel)
            if (channel_key, start, end) not in totals:
                wider.append((channel_key, start, end, totals.setdefault(
                    (channel_key, start, end), ([0.0] * len(FIELDS), {}))))
            _add_totals(totals, (channel_key, start, end), entry)
        else:
            wider.append((key, start, end, entry))
    # The site adds its channels' totals (and the unassigned leaves'), not every queue's:
    # half the sketch merges (rollup.roll sums the site's day the same way).
    for _key, start, end, entry in wider:
        _add_totals(totals, (site, start, end), entry)
    return totals


def _row(key: Key, start: str, end: str, totals: Totals | None,
         min_sample: int) -> dict[str, Any]:
    level, name, channel = key
    vector, wait = totals if totals is not None else ([0.0] * len(FIELDS), {})
    row: dict[str, Any] = {
        "level": level, "queue": name if level == "queue" else "", "channel": channel,
        "team": name if level == LEVEL_TEAM else "", "start": start, "end": end,
    }
    if level == LEVEL_TEAM:
        kpis = agent_window_kpis(vector, min_sample)
        row.update(_EMPTY)
        row.update(zip(_TEAM_KPIS, _team_kpis(kpis), strict=True))
        return row
    row.update(zip(_ROW_KPIS, _row_kpis(row_kpis(vector, wait)), strict=True))
    row["handled"] = int(vector[HANDLED])
    return row


# What a row takes of the KPIs (itemgetter: one C call a row, thousands of rows).
_ROW_KPIS = ("offered", "answered", "abandoned", "abandoned_short", "service_level", "asa_s",
             "aht_s", "abandon_rate", "wait_p50_s", "wait_p90_s", "transfers", "occupancy")
_TEAM_KPIS = ("answered", "aht_s", "handled", "transfers", "occupancy")
_row_kpis, _team_kpis = itemgetter(*_ROW_KPIS), itemgetter(*_TEAM_KPIS)
_EMPTY = dict.fromkeys(COLUMNS[6:])  # a team row's columns before its own are set


def build(records: Iterable[IntervalRecord], request: Request, settings: Settings,
          forecast: dict[tuple[Key, int], float] | None = None) -> list[dict[str, Any]]:
    """The report's rows, ordered by level (site, channel, queue, team), name, then time.

    `forecast` maps (what, row start) to the forecast offered; a forecast row without
    actuals is still listed (the rest of today), with zero counts.
    """
    tz = ZoneInfo(settings.site.timezone)
    since, until = day_span(request.first, request.last, tz)
    totals = sum_records((r for r in records if since <= r.start < until), tz,
                         request.interval, request.queues)
    ends = {(key, start): end for key, start, end in totals}
    forecast = forecast or {}
    for key, start in forecast:
        if (key, start) not in ends and since <= start < until:
            ends[(key, start)] = bucket(start, tz, request.interval)[1]
    rows = []
    # A report's rows share a few hundred starts and ends: each formatted once.
    stamps: dict[int, str] = {}

    def stamp(ts: int) -> str:
        text = stamps.get(ts)
        if text is None:
            text = stamps[ts] = datetime.fromtimestamp(ts, tz).isoformat()
        return text
    for (key, start), end in sorted(ends.items(), key=lambda item: (
            LEVELS.index(item[0][0][0]), item[0][0][1], item[0][1])):
        row = _row(key, stamp(start), stamp(end), totals.get((key, start, end)), MIN_SAMPLE)
        value = forecast.get((key, start))
        row["forecast_offered"] = None if value is None else round(value, 4)
        rows.append(row)
    return rows
