"""`wallboard journal import`: recorded events stored at their own times, then their history.

Each NDJSON line is validated like every other path (typed structs first, the full check
names the problem), with its time bounded as a replay bounds it (1970..2100, and not ahead of
the clock by more than server.max_clock_skew_s): lateness and journal retention are for live
arrival, and an import is history. Its other times (entered_ts, due_ts) are checked as if it
arrived at its own time, as the start-up replay checks them. A line is read whole only up to
server.max_body_bytes, the bound of a webhook request. Stored events arrive at their own time
(`recv = ts`) and are de-duplicated by (source, id) in the journal's id table; then the
interval history of the span they touch is rebuilt (`wallboard.ingest.rebuild`).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from wallboard.config.settings import Settings
from wallboard.ingest.rebuild import Rebuilt, rebuild_history
from wallboard.journal.interface import Journal
from wallboard.model.events import Event, EventError, check_event, parse_event
from wallboard.model.limits import Limits, TimeRule, limits_of, time_error
from wallboard.model.wire import Wire

log = logging.getLogger(__name__)
CHUNK_BYTES = 1 << 18
IN_FLIGHT = 5_000  # appends queued before waiting for their commits: bounds memory
REORDER = 50_000  # events held to append in time order (about 50 MB at most)
MAX_SHOWN = 20  # refused lines listed with their number and field in the report


@dataclass
class Imported:
    """What an import did: the report's numbers."""

    lines: int = 0  # non-blank lines read
    blank: int = 0
    stored: int = 0
    duplicates: int = 0  # ids the journal already held (or an earlier line of the file)
    without_id: int = 0  # stored events with no id: importing them again stores them again
    # Appended after a later event by more than site.lateness_s (the file's disorder exceeds
    # REORDER events): a start-up replay counts them late in the live windows.
    out_of_order: int = 0
    refused: Counter[str] = field(default_factory=Counter)  # by reason (error code)
    shown: list[str] = field(default_factory=list)  # the first MAX_SHOWN refusals, in words
    first_ts: float | None = None  # event time span of the valid lines (stored or duplicate)
    last_ts: float | None = None
    history: Rebuilt | None = None

    def refuse(self, name: str, lineno: int, exc: EventError) -> None:
        """Count a refused line; keep its words while few have been shown."""
        self.refused[exc.code] += 1
        if len(self.shown) < MAX_SHOWN:
            self.shown.append(f"{name}:{lineno}: {exc.field}: {exc.message} [{exc.code}]")

    def span(self, ts: float) -> None:
        """Widen the event time span to `ts`."""
        if self.first_ts is None or ts < self.first_ts:
            self.first_ts = ts
        if self.last_ts is None or ts > self.last_ts:
            self.last_ts = ts


def read_lines(handle: IO[bytes], max_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number, line) per line; None for a line past `max_bytes`, which is never held whole.

    A leading UTF-8 byte-order mark is dropped (files saved by spreadsheets and editors).
    """
    lineno = 0
    held = bytearray()
    skipping = False  # inside a line already past the bound: drop until its end
    chunk = handle.read(3)
    if chunk == b"\xef\xbb\xbf":
        chunk = b""
    while chunk or (chunk := handle.read(CHUNK_BYTES)):
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            lineno += 1
            if skipping or len(held) + end - start > max_bytes:
                yield lineno, None
            else:
                held += chunk[start:end]
                yield lineno, bytes(held)
            held.clear()
            skipping = False
            start = end + 1
        if not skipping:
            if len(held) + len(chunk) - start > max_bytes:
                skipping = True
                held.clear()
            else:
                held += chunk[start:]
        chunk = b""
    if skipping or held:
        yield lineno + 1, None if skipping else bytes(held)


class LineReader:
    """Validation of one line: the configured limits, times bounded as for a replay."""

    def __init__(self, settings: Settings, source: str, now: float) -> None:
        self.limits: Limits = limits_of(settings.server, settings.journal)
        self.wire = Wire(self.limits)
        self.source = source
        self.max_bytes = settings.server.max_body_bytes
        skew = settings.server.max_clock_skew_s
        # Past: anything from 1970 (history); ahead: the skew a live event is allowed.
        self.ahead = TimeRule(now, "", skew, f"server.max_clock_skew_s ({skew:g} s)")
        self.now = now

    def event(self, line: bytes | None) -> Event | EventError | None:
        """The line's event, the error that refuses it, or None when it is blank."""
        if line is None:
            return EventError("<line>", f"longer than server.max_body_bytes "
                              f"({self.max_bytes:,} bytes): not read", "too_long")
        event = self.wire.decode(line, self.source, None)
        if event is None:
            try:
                raw = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                if not line.strip():
                    return None
                return EventError("<line>", f"not JSON: {exc}", "malformed")
            try:
                event = parse_event(raw, self.source, None, self.limits)
            except EventError as exc:
                return exc
            except Exception as exc:  # a validation bug must not end an import: refused
                log.exception("journal import: validating a line failed")
                return EventError("<event>", f"cannot be validated ({type(exc).__name__})",
                                  "malformed")
        if event.ts > self.now + self.ahead.ahead_s:
            return time_error("ts", event.ts, self.ahead, self.now)
        if event.entered_ts is not None or event.due_ts is not None:
            # Its other times as if it arrived at its own time, as the start-up replay will
            # check them (recv = ts).
            try:
                event = check_event(event, event.ts, self.limits)
            except EventError as exc:
                return exc
        return event


async def _settle(pending: list[asyncio.Future[Any]], report: Imported) -> None:
    """Wait for queued appends; count what the journal already held."""
    results = await asyncio.gather(*pending, return_exceptions=True)  # each one retrieved
    pending.clear()
    for result in results:
        if isinstance(result, BaseException):
            raise result  # JournalDown: what was committed before stays stored
        # A list of the duplicates' positions (a shared store may answer with a count).
        report.duplicates += result if isinstance(result, int) else len(result)


class _Appender:
    """Appends in event time order through a bounded reordering heap, each at its own time.

    A start-up replay folds the journal in append order with a clock that only moves
    forward: an event appended after a later one by more than site.lateness_s is late for
    the live windows. Files derived from call records are out of order by a call's length;
    REORDER events of slack puts them back in order (the history is rebuilt sorted anyway).
    """

    def __init__(self, journal: Journal, report: Imported, lateness_s: float) -> None:
        self.journal, self.report, self.lateness_s = journal, report, lateness_s
        self.heap: list[tuple[float, int, Event]] = []
        self.order = itertools.count()
        self.pending: list[asyncio.Future[Any]] = []
        self.newest = -math.inf  # the latest event time appended so far

    async def add(self, event: Event) -> None:
        """Hold `event`; append the oldest held once more than REORDER are."""
        heapq.heappush(self.heap, (event.ts, next(self.order), event))
        if len(self.heap) > REORDER:
            await self._append(heapq.heappop(self.heap)[2])

    async def finish(self) -> None:
        """Append what is held, oldest first, and wait for every commit."""
        while self.heap:
            await self._append(heapq.heappop(self.heap)[2])
        await _settle(self.pending, self.report)

    async def _append(self, event: Event) -> None:
        if event.ts < self.newest - self.lateness_s:
            self.report.out_of_order += 1
        elif event.ts > self.newest:
            self.newest = event.ts
        # Arrived at its own time: a start-up replay treats it as having come in then.
        self.pending.append(self.journal.append([event], event.ts))
        if len(self.pending) >= IN_FLIGHT:
            await _settle(self.pending, self.report)


async def import_events(handle: IO[bytes], name: str, journal: Journal, settings: Settings,
                        source: str, now: float | None = None) -> Imported:
    """Store the valid lines of `handle` at their own times, then rebuild their history.

    The journal must be open and started. Raises JournalDown (or JournalError) when the
    store fails; what was committed before stays stored.
    """
    reader = LineReader(settings, source, time.time() if now is None else now)
    report = Imported()
    appender = _Appender(journal, report, settings.site.lateness_s)
    valid = 0
    for lineno, line in read_lines(handle, reader.max_bytes):
        read = reader.event(line)
        if read is None:
            report.blank += 1
            continue
        report.lines += 1
        if isinstance(read, EventError):
            report.refuse(name, lineno, read)
            continue
        valid += 1
        report.span(read.ts)
        if read.id is None:
            report.without_id += 1
        await appender.add(read)
    await appender.finish()
    report.stored = valid - report.duplicates
    if report.first_ts is not None and report.last_ts is not None:
        report.history = await rebuild_history(journal, settings, report.first_ts,
                                               report.last_ts)
    return report
