"""Storing the fold's closed intervals in the journal's store, and reading history back.

The fold closes an interval once no live event can reach it; this moves the closed ones to
the store every few seconds. After the start-up replay they are written only where missing:
a replay that starts mid-day rebuilds its first intervals from part of their events, and
must not overwrite the complete ones stored before.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from wallboard.fold.aggregate import Aggregator
from wallboard.fold.counters import OFFERED, SKETCH_KINDS
from wallboard.fold.intervals import (
    INTERVAL_S,
    IntervalRecord,
    decode,
    decode_offered,
    encode,
)
from wallboard.fold.rollup import NO_SLOTS, DayRecord, decode_day, decode_slots
from wallboard.journal.interface import IntervalRow, Journal, JournalDown
from wallboard.kpi.forecast import Load
from wallboard.kpi.report import ROW_SKETCHES
from wallboard.kpi.rollups import DayLoad, Part

log = logging.getLogger(__name__)
FLUSH_EVERY_S = 5.0  # an interval is in the store this long after it closes, at most
DAY_S = 86_400
REPORT_RESULTS = ("ok", "bad_request")


@dataclass
class HistorianStats:
    """Counters for /metrics."""

    written: int = 0  # interval records stored
    failures: int = 0  # writes that failed (the records are kept for the next try)
    unreadable: int = 0  # stored rows whose body did not decode (left out of reports)
    reports: Counter[str] = field(default_factory=Counter)  # GET /api/report by result


def to_row(record: IntervalRecord) -> IntervalRow:
    """A record as the store keeps it."""
    return (record.start, record.level, record.name, record.channel,
            encode(record.counters, record.sketches))


def from_row(row: IntervalRow, kinds: int = SKETCH_KINDS) -> IntervalRecord:
    """A stored row back as a record (its first `kinds` sketches); ValueError when its body
    does not decode."""
    start, level, name, channel, body = row
    counters, sketches = decode(body, kinds)
    return IntervalRecord(int(start), level, name, channel, counters, sketches)


class Historian:
    """Moves closed intervals from the fold to the store."""

    def __init__(self, journal: Journal, aggregator: Aggregator,
                 clock: Callable[[], float]) -> None:
        self.journal, self.aggregator, self.clock = journal, aggregator, clock
        self.stats = HistorianStats()
        self.in_flight: list[IntervalRecord] = []  # taken from the fold, not yet written

    def pending(self) -> list[IntervalRecord]:
        """Every interval the store may not hold yet: open, closed, being written (a read)."""
        history = self.aggregator.history
        return [*self.in_flight, *history.closed,
                *history.open_records(self.aggregator.leaves.values())]

    def prune_before(self) -> int:
        """Intervals starting before this go (history.retention_days)."""
        days = self.aggregator.settings.history.retention_days
        return int((self.clock() - days * DAY_S) // INTERVAL_S) * INTERVAL_S

    async def flush(self, *, replace: bool = True) -> int:
        """Store what the fold has closed; on failure keep it for the next call."""
        history = self.aggregator.history
        records = history.take()
        if not records:
            return 0
        self.in_flight = records
        try:
            await self.journal.save_intervals([to_row(r) for r in records], replace=replace,
                                              prune_before=self.prune_before(),
                                              zone=self.aggregator.settings.site.timezone)
        except JournalDown as exc:
            history.put_back(records)
            self.stats.failures += 1
            log.warning("history: %s intervals not stored yet: %s", len(records), exc)
            return 0
        except BaseException:
            history.put_back(records)
            raise
        finally:
            self.in_flight = []
        self.stats.written += len(records)
        return len(records)

    async def catch_up(self) -> int:
        """Roll up the stored days whose rollups are missing or stale (after an upgrade, a
        changed site.timezone, a failed write), off the loop; the days, logged."""
        zone = self.aggregator.settings.site.timezone
        try:
            days = await self.journal.roll_up(zone, self.prune_before())
        except JournalDown as exc:  # the days are read from their intervals meanwhile
            log.warning("history: rolling up stored days failed: %s", exc)
            return 0
        if days:
            log.info("history: %s stored days rolled up (%s)", days, zone)
        return days

    async def run_forever(self) -> None:
        """Flush every FLUSH_EVERY_S."""
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            try:
                await self.flush()
            except Exception:  # a bug here must not end the history of this process
                self.stats.failures += 1
                log.exception("history: storing intervals failed")


def load_records(journal: Journal, since: int, until: int,
                 stats: HistorianStats | None = None,
                 queues: frozenset[str] = frozenset(), *, kinds: int = SKETCH_KINDS
                 ) -> list[IntervalRecord]:
    """Stored intervals starting in [since, until); a row that does not decode is counted.

    With `queues`, only those queues' records (what a report of them reads; teams are left
    out of such a report), chosen by the store before any body is read. Only the first
    `kinds` sketches are decoded (a report's rows need the wait's alone).
    """
    out = []
    for row in journal.intervals(since, until, queues):
        try:
            out.append(from_row(row, kinds))
        except (ValueError, TypeError, AttributeError):
            if stats is not None:
                stats.unreadable += 1
    return out


def load_offered(journal: Journal, since: int, until: int,
                 stats: HistorianStats | None = None,
                 queues: frozenset[str] = frozenset()) -> list[IntervalRecord]:
    """Like load_records, but each record holds its offered counter alone (the forecast's
    need): no sketch is decoded, about ten times cheaper a body."""
    out = []
    for start, level, name, channel, body in journal.intervals(since, until, queues):
        try:
            offered = decode_offered(body)
        except (ValueError, TypeError, AttributeError):
            if stats is not None:
                stats.unreadable += 1
            continue
        out.append(IntervalRecord(int(start), level, name, channel, {OFFERED: offered}, []))
    return out


def load_days(journal: Journal, zone: str, since: int, until: int, part: Part = "rows",
              stats: HistorianStats | None = None, queues: frozenset[str] = frozenset(),
              *, kinds: int = SKETCH_KINDS) -> tuple[set[int], list[DayRecord]]:
    """The local days in [since, until) whose rollups equal their stored intervals, and those
    rollups' `part`: counters and the first `kinds` sketches ("rows"), counters alone
    ("totals", a daily forecast's), or slots ("slots", an intraday forecast's); a day with a
    rollup that does not decode is left out (read from its intervals) and counted."""
    slotted = part == "slots"
    days, rows = journal.rollups(zone, since, until, queues, bodies=not slotted)
    covered = set(days)
    out = []
    for day, level, name, channel, first, body, slots in rows:
        try:
            counters, sketches = ({}, []) if slotted else \
                decode_day(body, kinds if part == "rows" else 0)
            out.append(DayRecord(day, level, name, channel, first, counters, sketches,
                                 decode_slots(slots) if slotted else NO_SLOTS))
        except (ValueError, TypeError, AttributeError, KeyError):
            covered.discard(day)
            if stats is not None:
                stats.unreadable += 1
    return covered, [r for r in out if r.day in covered]


def report_loaders(journal: Journal, zone: str, stats: HistorianStats | None,
                   queues: frozenset[str]) -> tuple[Load, Load, DayLoad]:
    """What `reporting.report` reads from the store: the rows' records and rollups (with the
    sketches a row shows, ROW_SKETCHES), and the forecast's offered counters."""
    return (lambda since, until: load_records(journal, since, until, stats, queues,
                                              kinds=ROW_SKETCHES),
            lambda since, until: load_offered(journal, since, until, stats, queues),
            lambda since, until, part: load_days(journal, zone, since, until, part, stats,
                                                 queues, kinds=ROW_SKETCHES))
