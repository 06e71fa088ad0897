"""At start: rebuild live state and windows from the journal; while running: prune it.

The replay leaves out quarantined events, and quarantines (stage "restore") any stored event
whose fold raises, so a poisoned event never stops a start, this one or the next.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from wallboard.base.clock import VirtualClock
from wallboard.base.gcpause import gc_paused
from wallboard.config.settings import Settings
from wallboard.config.windows import parse_window
from wallboard.fold.guard import reason
from wallboard.fold.periods import day_bounds, shift_bounds
from wallboard.ingest.pipeline import Pipeline
from wallboard.journal.interface import Journal, JournalDown, Quarantine

if TYPE_CHECKING:  # it imports replay_start from here
    from wallboard.ingest.checkpointer import Checkpointer

log = logging.getLogger(__name__)
DAY_S = 86_400


@dataclass
class Restored:
    """What the start-up replay folded back, and the lifetime totals it left per leaf."""

    since: float | None = None
    events: int = 0
    seconds: float = 0.0
    # Lifetime counters right after the replay, per (queue, channel): Prometheus counters
    # start from zero at each start, as they would without a journal.
    baseline: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    checkpoint: str | None = None  # the position of the checkpoint loaded, if one was


def replay_start(settings: Settings, now: float) -> float:
    """The earliest moment any configured window still covers at `now`, minus the lateness."""
    zones = {settings.site.timezone, *(q.timezone for q in settings.queues.values() if q.timezone)}
    resets = [datetime.strptime(t, "%H:%M").time() for t in settings.site.shift_resets]
    starts = [now]
    for spec in map(parse_window, settings.windows):
        if spec.kind == "rolling":
            starts.append(now - spec.span_s)
            continue
        for name in zones:
            tz = ZoneInfo(name)
            if spec.kind == "shift":
                starts.append(shift_bounds(tz, resets)(now)[0])
            else:
                today = day_bounds(tz)(now)[0]
                starts.append(today if spec.kind == "today" else day_bounds(tz)(today - 1)[0])
    return min(starts) - settings.site.lateness_s


def restore(journal: Journal, pipeline: Pipeline, now: float, restored: Restored,
            checkpointer: Checkpointer | None = None) -> None:
    """Fold back what arrived since `replay_start`, each event at the time it arrived.

    With a `checkpointer`, the newest fit checkpoint is loaded first and only the events
    stored after it are folded (from the checkpoint's time on, as a full fold would).
    """
    agg = pipeline.aggregator
    since = replay_start(agg.settings, now)
    started = time.perf_counter()
    events = 0
    failed: list[Quarantine] = []
    # One pause for the checkpoint's objects and the tail's: a collection once, at the end.
    with gc_paused():
        header = checkpointer.load(since, now) if checkpointer is not None else None
        clock = VirtualClock(since if header is None else header.at)
        live_clock, agg.clock = agg.clock, clock
        try:
            for batch in (journal.read(since) if header is None
                          else journal.read_after(header.position)):
                replay = pipeline.replay
                for recv, event in batch:
                    # The arrival time, not the event time: lateness and rolling windows then
                    # decide exactly as they did when the event first came in.
                    if recv > clock.now:
                        clock.now = min(recv, now)
                    error = replay(event, recv)
                    if error is not None:
                        failed.append((recv, event, "restore", reason(error)))
                events += len(batch)
        finally:
            agg.clock = live_clock
    if failed:
        journal.quarantine(failed)
        log.warning("journal: quarantined %s stored events whose fold failed (see `wallboard "
                    "journal stats`); later starts skip them", f"{len(failed):,}")
    if journal.status.skipped:
        log.warning("journal: skipped %s quarantined events", f"{journal.status.skipped:,}")
    try:
        agg.advance(live_clock())
    except Exception as exc:  # the windows move on at the next snapshot; the start goes on
        agg.errors.record("restore", exc, what="advancing the windows to now")
    pipeline.position = journal.position
    restored.since, restored.events = since, events
    restored.checkpoint = header.position if header is not None else None
    restored.seconds = time.perf_counter() - started
    restored.baseline = {key: list(leaf.windows.lifetime) for key, leaf in agg.leaves.items()}
    journal.status.replayed, journal.status.replay_seconds = events, restored.seconds
    log.info("journal: replayed %s events that arrived since %s in %.2fs from %s", f"{events:,}",
             datetime.fromtimestamp(since if header is None else header.at, UTC).isoformat(
                 timespec="seconds") + ("" if header is None else " (the checkpoint)"),
             restored.seconds, journal.location)


def prune_before(settings: Settings, now: float) -> float:
    """Arrival time before which events may go: past retention, and never what a start needs."""
    return min(now - settings.journal.retention_days * DAY_S, replay_start(settings, now))


async def prune_forever(journal: Journal, settings: Settings, clock: Callable[[], float]) -> None:
    """Delete events past retention now and every journal.prune_every_s."""
    while True:
        try:
            removed = await journal.prune(prune_before(settings, clock()))
        except JournalDown:
            removed = 0
        if removed:
            log.info("journal: pruned %s events older than %s days", f"{removed:,}",
                     settings.journal.retention_days)
        await asyncio.sleep(settings.journal.prune_every_s)
