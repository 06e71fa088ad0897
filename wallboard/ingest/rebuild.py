"""Rebuilding the interval history of a span from the journal's raw events (after an import).

An offline aggregator on a virtual clock driven by event time folds every stored event of the
span, a day of context before it included (contacts queued before it, agents' teams), in
event time order, so that nothing is late; the intervals it closes from the span's first on
are stored in place of what was there. The journal's events are read a week of event time
at a time (a scan by event time reads the whole table, so weeks rather than days), which
bounds memory.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field

from wallboard.base.clock import VirtualClock
from wallboard.config.settings import Settings
from wallboard.fold.aggregate import Aggregator
from wallboard.fold.guard import reason
from wallboard.fold.intervals import INTERVAL_S
from wallboard.ingest.historian import to_row
from wallboard.journal.interface import IntervalRow, Journal

log = logging.getLogger(__name__)
DAY_S = 86_400
CONTEXT_S = DAY_S  # folded before the span's first interval, not stored
SCAN_S = 7 * DAY_S  # event time read from the journal at once
WRITE_ROWS = 5_000  # interval rows per write


@dataclass
class Rebuilt:
    """What a rebuild folded and stored."""

    since: int = 0  # the first interval stored (its start)
    until: int = 0  # the end of the last
    events: int = 0  # events folded, context included
    written: int = 0  # interval rows stored (replacing any stored before)
    kept: int = 0  # rows older than the raw events' retention left as they were
    errors: Counter[str] = field(default_factory=Counter)  # fold errors by reason


def _start(ts: float) -> int:
    return int(ts // INTERVAL_S) * INTERVAL_S


class _Writer:
    """Interval rows on their way to the store, in batches."""

    def __init__(self, journal: Journal, since: int, horizon: float, result: Rebuilt) -> None:
        self.journal, self.since, self.horizon, self.result = journal, since, horizon, result
        self.rows: list[IntervalRow] = []
        # Older than the raw events' retention, the journal may no longer hold the live
        # events a stored interval was built from: rebuilding it from what is left would
        # lose them, so there an interval is written only where none is stored.
        self.old: set[tuple[int, str, str, str]] = set()
        if since < horizon:
            self.old = {row[:4] for row in journal.intervals(since, math.ceil(horizon))}

    async def add(self, aggregator: Aggregator, flush: bool = False) -> None:
        self.rows += [to_row(r) for r in aggregator.history.take() if r.start >= self.since]
        if flush or len(self.rows) >= WRITE_ROWS:
            await self.write()

    async def write(self) -> None:
        rows, self.rows = self.rows, []
        fresh = [row for row in rows if row[0] >= self.horizon]
        old = [row for row in rows if row[0] < self.horizon]
        if fresh:
            await self.journal.save_intervals(fresh, replace=True)
        if old:
            await self.journal.save_intervals(old, replace=False)
        kept = sum(row[:4] in self.old for row in old)
        self.result.kept += kept
        self.result.written += len(rows) - kept


async def rebuild_history(journal: Journal, settings: Settings, first: float, last: float,
                          now: float) -> Rebuilt:
    """Fold the journal's events of [first - a day, the end of last's interval] and store the
    intervals from first's on. Fold errors are counted, never raised."""
    since, until = _start(first), _start(last) + INTERVAL_S
    result = Rebuilt(since, until)
    horizon = now - settings.journal.retention_days * DAY_S
    writer = _Writer(journal, since, horizon, result)
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
