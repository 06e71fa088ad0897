"""Benchmark: interval history sizing and report time with 400 days x 50 queues stored.

One day of synthetic contacts per queue (busy 08:00-20:00 local, 30-120 contacts an hour per
queue, agents in a few teams) is really folded through an `Aggregator`; its closed interval
records are encoded once and stored again for every day, shifted by whole local days, so
the journal fills in seconds. Then it prints:

- bytes per queue per day of history: the SQLite file / (days x queues), and the mean body;
- the time to roll up the stored days (the catch-up after an upgrade; a day's roll-up is
  also what each live write of that day costs the writer at most);
- the CPU time (wall beside it) of `reporting.report` as GET /api/report calls it (rows
  read through `load_records`, the forecast's through `load_offered`, daily rollups through
  `load_days`) for a day at 15m over every queue, a month at 1d over every queue, and a
  year at 1d for one queue; and the same report without rollups (as before them);
- beside each, the floor measured in the same run: the bare SQLite read (`SELECT body`, no
  decoding) of the same rows the report read (its ranges, its queues; rollups included).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from benchio import figure, write_report
from workload import VirtualClock

from wallboard.config.settings import JournalConfig, Settings, parse_settings
from wallboard.fold.aggregate import Aggregator
from wallboard.fold.intervals import IntervalRecord
from wallboard.ingest.historian import (
    HistorianStats,
    load_days,
    load_offered,
    load_records,
    to_row,
)
from wallboard.journal import intervals as journal_intervals
from wallboard.journal import rollups
from wallboard.journal.interface import IntervalRow
from wallboard.journal.sqlite_backend import DB_NAME, SqliteJournal
from wallboard.kpi.report import ROW_SKETCHES, Request, day_span
from wallboard.kpi.reporting import report
from wallboard.kpi.rollups import Part
from wallboard.model.events import Event

ZONE = "Europe/Berlin"  # a zone with clock changes: 400 days cross two of them
LAST_DAY = date(2026, 11, 30)  # the newest stored day (a Monday)
CHANNELS = ("voice", "voice", "chat", "email")
TEAMS = 6
AGENTS_PER_TEAM = 40
REPEAT = 5  # timed runs per figure at most; the median is shown
BUDGET_S = 10.0  # ... fewer when they take longer than this (a slow year report)
TARGET_DAY_S, TARGET_MONTH_S = 0.2, 1.0


def bench_config(queues: int) -> dict[str, Any]:
    """A site in Europe/Berlin with `queues` queues over a few channels."""
    return {"site": {"name": "Bench", "timezone": ZONE},
            "queues": {f"q{i:02d}": {"channel": CHANNELS[i % len(CHANNELS)]}
                       for i in range(queues)},
            "server": {"max_agents": 10_000}}


def day_events(settings: Settings, day: date, seed: int) -> list[Event]:
    """A day of contacts for every queue: 08:00-20:00 local, 30-120 an hour per queue."""
    rng = random.Random(seed)
    tz = ZoneInfo(settings.site.timezone)
    midnight = datetime.combine(day, datetime.min.time(), tz).timestamp()
    agents = [(f"a{t}-{i}", f"team{t}") for t in range(TEAMS) for i in range(AGENTS_PER_TEAM)]
    events: list[Event] = []
    n = 0
    for queue, cfg in settings.queues.items():
        channel = cfg.channel
        for hour in range(8, 20):
            for _ in range(rng.randint(30, 120)):
                n += 1
                cid = f"c{n}"
                t = midnight + hour * 3600 + rng.uniform(0, 3600)
                base: dict[str, Any] = {"source": "bench", "queue": queue, "channel": channel,
                        "contact_id": cid}
                events.append(Event(type="contact.queued", ts=t, **base))
                if rng.random() < 0.1:
                    wait = rng.expovariate(1 / 45)
                    events.append(Event(type="contact.abandoned", ts=t + wait,
                                        wait_s=round(wait, 3), **base))
                    continue
                wait = rng.expovariate(1 / 25)
                talk, wrap = rng.expovariate(1 / 240), rng.expovariate(1 / 30)
                agent, team = rng.choice(agents)
                answered, ended = t + wait, t + wait + talk
                events += [
                    Event(type="contact.answered", ts=answered, agent=agent,
                          wait_s=round(wait, 3), **base),
                    Event(type="agent.state", ts=answered, source="bench", agent=agent,
                          team=team, state="busy", queue=queue),
                    Event(type="contact.ended", ts=ended, agent=agent, talk_s=round(talk, 3),
                          wrap_s=round(wrap, 3), **base),
                    Event(type="agent.state", ts=ended, source="bench", agent=agent, team=team,
                          state="wrapup", queue=queue),
                    Event(type="agent.state", ts=ended + wrap, source="bench", agent=agent,
                          team=team, state="available", queue=queue)]
    events.sort(key=lambda e: e.ts)
    return events


def template_day(settings: Settings, day: date, seed: int) -> tuple[list[IntervalRecord], int]:
    """The closed interval records of one folded day, and the number of events folded."""
    events = day_events(settings, day, seed)
    clock = VirtualClock(events[0].ts)
    agg = Aggregator(settings, clock=clock)
    for event in events:
        if event.ts - clock.now >= 60.0:  # advancing moves every window: not per event
            clock.now = event.ts
            agg.advance(clock.now)
        clock.now = max(clock.now, event.ts)
        agg.fold(event)
    clock.now = events[-1].ts + settings.site.lateness_s + 2 * 3600
    agg.advance(clock.now)
    return agg.history.take(), len(events)


def fill(path: Path, settings: Settings, records: list[IntervalRecord], template: date,
         days: int) -> int:
    """Store the template's records for `days` local days ending LAST_DAY; rows written."""
    tz = ZoneInfo(settings.site.timezone)
    origin = day_span(template, template, tz)[0]
    bodies = [(r.start - origin, to_row(r)) for r in records]
    journal = SqliteJournal(JournalConfig(data_dir=str(path), sync="normal"))
    journal.open()  # the real schema, then a plain connection writes (no writer thread)
    asyncio.run(journal.close())
    con = sqlite3.connect(path / DB_NAME, isolation_level=None)
    written = 0
    for back in range(days - 1, -1, -1):
        midnight = day_span(LAST_DAY - timedelta(days=back), LAST_DAY, tz)[0]
        rows: list[IntervalRow] = [(midnight + offset, level, name, channel, body)
                                   for offset, (_s, level, name, channel, body) in bodies]
        journal_intervals.store(con, rows, True, None)
        written += len(rows)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return written


def roll_up(path: Path, zone: str) -> tuple[int, float, float]:
    """Roll up every stored day as the start-up catch-up does: (days, CPU s, wall s)."""
    con = sqlite3.connect(path / DB_NAME, isolation_level=None)
    started, started_cpu = time.perf_counter(), time.process_time()
    rollups.drop_other_zones(con, zone)
    days, at = 0, 0
    while (step := rollups.catch_up_step(con, zone, 0, at)) is not None:
        at, done = step
        days += done
    cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return days, cpu, wall


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """Median (CPU seconds, wall seconds) of up to REPEAT calls (fewer past BUDGET_S).

    CPU time of this process is the figure: the report and its SQLite reads run here, on
    one thread, and CPU time suffers less than wall time when other processes share the
    cores. Wall time is printed beside it.
    """
    cpu: list[float] = []
    wall: list[float] = []
    while len(wall) < REPEAT and sum(wall) < BUDGET_S:
        started, started_cpu = time.perf_counter(), time.process_time()
        fn()
        cpu.append(time.process_time() - started_cpu)
        wall.append(time.perf_counter() - started)
    return statistics.median(cpu), statistics.median(wall)


def measure(journal: SqliteJournal, settings: Settings, request: Request,
            daily: bool = True) -> dict[str, float]:
    """The report as GET /api/report runs it (`daily`: with rollups), and the bare SELECT of
    the ranges it read."""
    ranges: list[tuple[int, int]] = []
    rolled: list[tuple[int, int, Part]] = []
    stats = HistorianStats()
    queues, zone = request.queues, settings.site.timezone

    def load(since: int, until: int) -> list[IntervalRecord]:
        ranges.append((since, until))
        return load_records(journal, since, until, stats, queues, kinds=ROW_SKETCHES)

    def offered(since: int, until: int) -> list[IntervalRecord]:
        ranges.append((since, until))
        return load_offered(journal, since, until, stats, queues)

    def days(since: int, until: int, part: Part) -> Any:
        rolled.append((since, until, part))
        return load_days(journal, zone, since, until, part, stats, queues, kinds=ROW_SKETCHES)

    def run() -> dict[str, Any]:
        return report(load, request, settings, (), offered, days if daily else None)

    doc = run()
    assert not stats.unreadable, "a stored body did not decode"
    wanted, wanted_days = list(ranges), list(rolled)
    read = sum(len(journal.intervals(s, u, queues)) for s, u in wanted)
    read_days = sum(len(journal.rollups(zone, s, u, queues, bodies=p != "slots")[1])
                    for s, u, p in wanted_days)
    names = sorted(queues)
    where = f" AND level = 'queue' AND name IN ({', '.join('?' * len(names))})" if names else ""

    def bare() -> None:
        with sqlite3.connect(f"{journal.path.absolute().as_uri()}?mode=ro", uri=True) as con:
            for since, until in wanted:
                con.execute(f"SELECT body FROM intervals WHERE start >= ? AND start < ?{where}",
                            (since, until, *names)).fetchall()
            for since, until, part in wanted_days:
                con.execute(f"SELECT {'slots' if part == 'slots' else 'body'} FROM rollups "
                            f"WHERE zone = ? AND day >= ? AND day < ?{where}",
                            (zone, since, until, *names)).fetchall()

    floor_cpu, floor_wall = timed(bare)
    cpu, wall = timed(run)
    return {"cpu_ms": cpu * 1000, "wall_ms": wall * 1000, "floor_cpu_ms": floor_cpu * 1000,
            "floor_wall_ms": floor_wall * 1000, "records_read": read,
            "rollups_read": read_days, "rows": len(doc["rows"])}


def main(argv: list[str] | None = None) -> int:
    """Build the history, time the reports, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--queues", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--dir", type=Path, help="where the journal goes (default: a temp dir)")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "reports.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.days, args.queues = 40, 4
    started = time.perf_counter()
    load_avg = round(os.getloadavg()[0], 2)
    print(f"reports benchmark: {args.days} days x {args.queues} queues, python "
          f"{platform.python_version()}, {os.cpu_count()} cpus, load average {load_avg}",
          flush=True)
    settings = parse_settings(bench_config(args.queues), "<bench>")
    template = LAST_DAY - timedelta(days=7)
    t = time.perf_counter()
    records, events = template_day(settings, template, seed=21)
    fold_s = time.perf_counter() - t
    queue_records = [r for r in records if r.level == "queue"]
    bodies = [len(to_row(r)[4]) for r in records]
    print(f"folded {events:,} events of one day in {fold_s:.1f}s: {len(records)} interval "
          f"records ({len(queue_records)} of queues), mean body {statistics.mean(bodies):.0f} B")
    with tempfile.TemporaryDirectory(prefix="wallboard-reports-bench-", dir=args.dir) as tmp:
        data = Path(tmp)
        t = time.perf_counter()
        rows = fill(data, settings, records, template, args.days)
        size = (data / DB_NAME).stat().st_size
        per_queue_day = size / (args.days * args.queues)
        print(f"stored {rows:,} rows in {time.perf_counter() - t:.1f}s: {size / 2**20:.1f} MiB, "
              f"{per_queue_day:,.0f} B per queue per day (teams included), "
              f"{per_queue_day * 365 / 2**20:.2f} MiB per queue per year", flush=True)
        rolled_days, roll_cpu, roll_wall = roll_up(data, settings.site.timezone)
        with_rollups = (data / DB_NAME).stat().st_size
        print(f"rolled up {rolled_days} days in {roll_cpu:.1f}s CPU ({roll_wall:.1f}s wall): "
              f"{roll_cpu / max(1, rolled_days) * 1000:.0f} ms a day; the file grew by "
              f"{(with_rollups - size) / 2**20:.1f} MiB "
              f"({(with_rollups - size) / max(1, rolled_days * args.queues):,.0f} B per queue "
              "per day)", flush=True)
        journal = SqliteJournal(JournalConfig(data_dir=str(data)))
        journal.open(writable=False)
        month_first = LAST_DAY - timedelta(days=min(30, args.days) - 1)
        year_first = LAST_DAY - timedelta(days=min(365, args.days) - 1)
        cases = [
            (f"report: a day at 15m, {args.queues} queues, forecast", "day",
             Request(LAST_DAY, LAST_DAY, "15m"), TARGET_DAY_S),
            (f"report: a month at 1d, {args.queues} queues, forecast", "month",
             Request(month_first, LAST_DAY, "1d"), TARGET_MONTH_S),
            ("report: a year at 1d, one queue, forecast", "year",
             Request(year_first, LAST_DAY, "1d", frozenset({"q00"})), None)]
        report_doc: dict[str, Any] = {
            "name": "reports", "quick": args.quick, "days": args.days, "queues": args.queues,
            "events_folded_per_day": events, "records_per_day": len(records),
            "mean_body_bytes": round(statistics.mean(bodies), 1), "file_bytes": size,
            "bytes_per_queue_per_day": round(per_queue_day, 1),
            "rolled_up_days": rolled_days, "roll_up_cpu_s": round(roll_cpu, 2),
            "roll_up_wall_s": round(roll_wall, 2), "rollup_file_bytes": with_rollups - size,
            "python": platform.python_version(), "load_average_at_start": load_avg}
        figure(report_doc, "history: bytes per queue per day (SQLite file / days x queues)",
               per_queue_day, "B")
        for name, key, request, target in cases:
            before = measure(journal, settings, request, daily=False)
            print(f"{name}, without rollups: {before['cpu_ms']:.0f} ms CPU "
                  f"({before['wall_ms']:.0f} ms wall) from {before['records_read']:,} "
                  f"stored records", flush=True)
            report_doc[f"{key}_without_rollups"] = {k: round(v, 1) for k, v in before.items()}
            m = measure(journal, settings, request)
            ms = m["cpu_ms"]
            met = None if target is None else ms <= target * 1000
            goal = "" if target is None else f"<= {target * 1000:g} ms"
            print(f"{name}: {ms:.0f} ms CPU ({m['wall_ms']:.0f} ms wall) for {m['rows']:,} "
                  f"rows from {m['records_read']:,} stored records and "
                  f"{m['rollups_read']:,} rollups; floor (bare SELECT body "
                  f"of the same rows) {m['floor_cpu_ms']:.0f} ms CPU "
                  f"({m['floor_wall_ms']:.0f} ms wall), x{ms / m['floor_cpu_ms']:.1f}"
                  + (f"  TARGET {goal}: {'met' if met else 'MISSED'}" if target else ""),
                  flush=True)
            report_doc[key] = {k: round(v, 1) for k, v in m.items()}
            figure(report_doc, name, ms, "ms CPU", floor=round(m["floor_cpu_ms"], 2),
                   floor_name="bare SELECT body of the same rows", target=goal, met=met)
    print("TARGET: a day's report <= 200 ms, a month's daily report <= 1 s (above)")
    write_report(report_doc, args.out, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
