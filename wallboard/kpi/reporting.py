"""A report as the API and the CLI give it: parameters checked, rows with forecast, CSV, text."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from wallboard.config.settings import Settings
from wallboard.fold.intervals import IntervalRecord
from wallboard.fold.rollup import local_day
from wallboard.kpi.forecast import Load, forecast
from wallboard.kpi.report import COLUMNS, WIDTHS, Request, build, day_span
from wallboard.kpi.rollups import DayLoad, daily, rolled_up

MAX_SPAN_DAYS = {"15m": 62, "30m": 62, "1h": 186, "1d": 800}  # rows stay in the thousands
MAX_QUEUES = 200
FORMATS = ("json", "csv", "table")


class ReportError(ValueError):
    """A parameter the report cannot take; the message names it."""


def _day(name: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ReportError(f"{name}: expected a date YYYY-MM-DD, got {text[:40]!r}") from None


def parse_request(params: Mapping[str, Sequence[str]], settings: Settings,
                  now: float) -> tuple[Request, str]:
    """The request and the format from query-style parameters (each may repeat)."""
    def one(name: str, default: str) -> str:
        values = params.get(name) or [default]
        if len(values) > 1:
            raise ReportError(f"{name}: given {len(values)} times, once at most")
        return values[0]

    today = datetime.fromtimestamp(now, ZoneInfo(settings.site.timezone)).date()
    first = _day("from", one("from", today.isoformat()))
    last = _day("to", one("to", first.isoformat()))
    if last < first:
        raise ReportError(f"to: {last} is before from ({first})")
    interval = one("interval", "15m")
    if interval not in WIDTHS:
        raise ReportError(f"interval: expected one of {', '.join(WIDTHS)}, got {interval[:20]!r}")
    span = (last - first).days + 1
    if span > MAX_SPAN_DAYS[interval]:
        raise ReportError(f"to: {span} days at {interval} is more than "
                          f"{MAX_SPAN_DAYS[interval]}; choose a wider interval")
    queues = list(params.get("queue") or [])
    if len(queues) > MAX_QUEUES:
        raise ReportError(f"queue: {len(queues)} given, {MAX_QUEUES} at most")
    limit = settings.server.max_name_length
    for queue in queues:
        if not queue or len(queue) > limit or not queue.isprintable():
            raise ReportError(f"queue: {queue[:40]!r} is not a queue name (1 to {limit} "
                              "printable characters)")
    fmt = one("format", "json")
    if fmt not in FORMATS:
        raise ReportError(f"format: expected one of {', '.join(FORMATS)}, got {fmt[:20]!r}")
    return Request(first, last, interval, frozenset(queues)), fmt


def report(load: Load, request: Request, settings: Settings,
           pending: Iterable[IntervalRecord] = (), offered: Load | None = None,
           days: DayLoad | None = None) -> dict[str, Any]:
    """The whole document: rows (stored intervals from `load`, newer ones given), forecast.

    `pending` are the fold's intervals not (or not surely) stored yet: open, closed, being
    written. Each replaces a stored record of the same interval and entity. `offered`, when
    given, loads records holding the offered counter alone, all the forecast reads (cheaper
    to decode than `load`'s). `days`, when given, loads daily rollups: `1d` rows and the
    forecast read them for the days they cover that hold no pending interval.
    """
    tz = ZoneInfo(settings.site.timezone)
    since, until = day_span(request.first, request.last, tz)
    pending = list(pending)
    busy = {local_day(r.start, tz)[0] for r in pending}

    def overlaid(load: Load) -> Load:
        def merged(since: int, until: int) -> list[IntervalRecord]:
            records = {(r.start, r.level, r.name, r.channel): r for r in load(since, until)}
            records.update(((r.start, r.level, r.name, r.channel), r) for r in pending
                           if since <= r.start < until)
            return list(records.values())
        return merged

    stored, counted = overlaid(load), overlaid(offered or load)
    if days is not None and request.interval == "1d":
        records = daily(stored, days, request, tz, busy)
    else:
        records = stored(since, until)
    rolled = None if days is None else rolled_up(days, request, settings, busy)
    rows = build(records, request, settings, forecast(counted, request, settings, rolled))
    queues = {name: {"label": cfg.label or name, "channel": cfg.channel,
                     "sl_target": cfg.service_level.target,
                     "sl_threshold_s": cfg.service_level.threshold_s}
              for name, cfg in settings.queues.items()
              if not request.queues or name in request.queues}
    return {"timezone": settings.site.timezone, "from": request.first.isoformat(),
            "to": request.last.isoformat(), "interval": request.interval, "queues": queues,
            "rows": rows}


def to_csv(rows: Iterable[dict[str, Any]]) -> bytes:
    """RFC 4180 CSV with a header row, UTF-8 with a BOM (spreadsheets then read Hebrew)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(["" if row.get(name) is None else row[name] for name in COLUMNS])
    return ("\ufeff" + out.getvalue()).encode()


def to_table(rows: Sequence[dict[str, Any]]) -> str:
    """Aligned text for a terminal: the main columns, times as local HH:MM."""
    names = ("level", "queue", "channel", "team", "start", "offered", "forecast_offered",
             "answered", "abandoned", "service_level", "asa_s", "aht_s", "abandon_rate",
             "wait_p90_s")
    lines = [[n.replace("forecast_offered", "forecast") for n in names]]
    for row in rows:
        cells = []
        for name in names:
            value = row.get(name)
            if name == "start":
                value = str(value)[:16].replace("T", " ")
            elif isinstance(value, float):
                value = f"{value:.3f}" if name in ("service_level", "abandon_rate") else \
                    f"{value:.1f}"
            cells.append("" if value is None else str(value))
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(names))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True))
                     .rstrip() for line in lines) + "\n"
