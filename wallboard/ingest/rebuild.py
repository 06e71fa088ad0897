"""Rebuilding the interval history of a span from the journal's raw events (after an import).

An offline aggregator on a virtual clock driven by event time folds every stored event of the
span, a day of context before it included (contacts queued before it, agents' teams), in
event time order, so that nothing is late; the intervals it closes from the span's first on
are stored in place of what was there, unless what was there counts events the journal no
longer holds (pruned, or folded while it was down): a rebuild never loses events. The
journal's events are read a week of event time at a time (a scan by event time reads the
whole table, so weeks rather than days), which bounds memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field

from wallboard.base.clock import VirtualClock
from wallboard.config.settings import Settings
from wallboard.fold import counters as c
from wallboard.fold.aggregate import Aggregator
from wallboard.fold.guard import reason
from wallboard.fold.intervals import INTERVAL_S
from wallboard.ingest.historian import from_row, to_row
from wallboard.journal.interface import IntervalRow, Journal

log = logging.getLogger(__name__)
DAY_S = 86_400
CONTEXT_S = DAY_S  # folded before the span's first interval, not stored
SCAN_S = 7 * DAY_S  # event time read from the journal at once
WRITE_ROWS = 5_000  # interval rows per write
# Counts of events (one per event of a kind): a rebuild from every event counts no fewer.
EVENT_COUNTS = (c.OFFERED, c.ANSWERED, c.ABANDONED, c.HANDLED, c.TRANSFERS,
                c.CALLBACKS_REQUESTED, c.CALLBACKS_COMPLETED, c.CSAT_N, c.NPS_N, c.CES_N,
                c.TICKETS_CREATED, c.TICKETS_RESOLVED, c.TICKETS_REOPENED, c.FIRST_RESPONSES)


@dataclass
class Rebuilt:
    """What a rebuild folded and stored."""

    since: int = 0  # the first interval stored (its start)
    until: int = 0  # the end of the last
    events: int = 0  # events folded, context included
    written: int = 0  # interval rows stored (replacing any stored before)
    kept: int = 0  # stored rows left as they were: they count events the journal lacks
    errors: Counter[str] = field(default_factory=Counter)  # fold errors by reason


def _start(ts: float) -> int:
    return int(ts // INTERVAL_S) * INTERVAL_S


class _Writer:
    """Interval rows on their way to the store, in batches."""

    def __init__(self, journal: Journal, since: int, result: Rebuilt, zone: str) -> None:
        self.journal, self.since, self.result, self.zone = journal, since, result, zone
        self.rows: list[IntervalRow] = []

    async def add(self, aggregator: Aggregator, flush: bool = False) -> None:
        """Take the intervals the fold closed (from the span's first on); write a full batch."""
        self.rows += [to_row(r) for r in aggregator.history.take() if r.start >= self.since]
        if self.rows and (flush or len(self.rows) >= WRITE_ROWS):
            await self.write()

    async def write(self) -> None:
        """Store the batch, leaving stored intervals that count events the rebuild lacks."""
        rows, self.rows = self.rows, []
        low, high = min(r[0] for r in rows), max(r[0] for r in rows) + 1
        stored = {row[:4]: row for row in
                  await asyncio.to_thread(self.journal.intervals, low, high)}
        fresh = [row for row in rows if not _fewer(row, stored.get(row[:4]))]
        if fresh:
            await self.journal.save_intervals(fresh, replace=True, zone=self.zone)
        self.result.written += len(fresh)
        self.result.kept += len(rows) - len(fresh)


def _fewer(rebuilt: IntervalRow, stored: IntervalRow | None) -> bool:
    """Whether the stored interval counts events the rebuilt one lacks (then it stays).

    The journal may no longer hold every event a stored interval was built from: past
    journal.retention_days live events are pruned (imported ones too), and events folded
    while the journal was down were never stored. A rebuild never loses them.
    """
    if stored is None:
        return False
    try:
        before = from_row(stored).counters
    except ValueError:  # a damaged stored body: the rebuilt row takes its place
        return False
    after = from_row(rebuilt).counters
    return any(before.get(k, 0.0) > after.get(k, 0.0) for k in EVENT_COUNTS)


async def rebuild_history(journal: Journal, settings: Settings, first: float,
                          last: float) -> Rebuilt:
    """Fold the stored events from a day before `first` to `last`'s interval; store its intervals.

    Intervals from `first`'s on are stored; fold errors are counted, never raised.
    """
    since, until = _start(first), _start(last) + INTERVAL_S
    result = Rebuilt(since, until)
    writer = _Writer(journal, since, result, settings.site.timezone)
    begin = since - CONTEXT_S
    clock = VirtualClock(begin)
    aggregator = Aggregator(settings, clock)
    boundary = begin + INTERVAL_S  # the next interval edge: the fold advances there
    for lo in range(begin, until, SCAN_S):
        hi = min(lo + SCAN_S, until)
        # The scan's bounds are inclusive: the edge belongs to the next chunk.
        events = [e for batch in journal.scan(lo, hi) for e in batch if e.ts < hi]
        events.sort(key=lambda e: e.ts)  # stable: append order among equal times
        for event in events:
            if event.ts > clock.now:
                clock.now = event.ts
                if event.ts >= boundary:
                    _advance(aggregator, event.ts, result)
                    boundary = _start(event.ts) + INTERVAL_S
                    await writer.add(aggregator)
            try:
                aggregator.fold(event)
            except Exception as exc:  # one event's error never stops an import
                result.errors[reason(exc)] += 1
        result.events += len(events)
    # Past the last interval's end by the lateness: every interval the span touched closes.
    clock.now = max(clock.now, until + aggregator.lateness_s)
    _advance(aggregator, clock.now, result)
    await writer.add(aggregator, flush=True)
    if aggregator.history.dropped:
        log.warning("journal import: %s interval records dropped", aggregator.history.dropped)
    return result


def _advance(aggregator: Aggregator, now: float, result: Rebuilt) -> None:
    try:
        aggregator.advance(now)
    except Exception as exc:  # as the hub's tick: the next advance tries again
        result.errors[reason(exc)] += 1
