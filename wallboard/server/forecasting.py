"""Today's forecast on the boards: offered so far against the forecast, the rest of the day,
and the agents the next interval needs (docs/reports.md#the-forecast-tile).

The forecast of today's 15-minute intervals (kpi/forecast.py, the report's own) is read from
the stored history off the loop, at start, when the local day changes and every 15 minutes
(history imported meanwhile counts). Each snapshot then adds, per queue and for the site, a
block under the tree's `forecast_today` key, computed from that and the live `today` window.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client.core import CounterMetricFamily, Metric

from wallboard.config.settings import QueueConfig, Settings
from wallboard.fold.intervals import INTERVAL_S
from wallboard.ingest.historian import HistorianStats, load_records
from wallboard.journal.interface import Journal
from wallboard.kpi.erlang import NotComputable, agents_needed
from wallboard.kpi.forecast import forecast_with_aht
from wallboard.kpi.report import Request

log = logging.getLogger(__name__)
TREE_KEY = "forecast_today"  # the snapshot's top-level key: only forecast tiles' boards get it
REFRESH_S = 900.0  # a forecast is read again this often (a backfill may have added days)
RETRY_S = 60.0  # after a failed read
POLL_S = 5.0  # how often the clock is looked at (the day may change under a test's clock)
RESULTS = ("ok", "failed")
SITE = ("site", "")
Row = tuple[str, str]  # ("queue", name) or SITE


@dataclass(frozen=True)
class Slot:
    """One of today's intervals: its start, forecast offered and historical AHT."""

    start: int
    offered: float
    aht_s: float | None


@dataclass(frozen=True)
class Target:
    """What the next interval's staffing is judged by (a queue's service level)."""

    threshold_s: float
    target: float
    max_occupancy: float


def empty_block() -> dict[str, Any]:
    """The block when there is no forecast: null everywhere."""
    return {"offered_so_far": None, "forecast_so_far": None, "forecast_rest": None,
            "forecast_day": None, "difference": None,
            "next": {"start": None, "forecast_offered": None, "aht_s": None,
                     "agents_needed": None}}


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _number(value: object) -> float | None:
    """A finite number from the snapshot as it is, else None (a window's KPI may be null)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


@dataclass
class ForecastStats:
    """Counters for /metrics."""

    refreshes: Counter[str] = field(default_factory=Counter)  # reads of the forecast by result


class TodayForecast:
    """Today's forecast per queue and for the site, and the snapshot block made from it."""

    def __init__(self, settings: Settings, journal: Journal, history: HistorianStats,
                 clock: Callable[[], float]) -> None:
        self.settings, self.journal, self.history, self.clock = settings, journal, history, clock
        self.tz = ZoneInfo(settings.site.timezone)
        self.day: date | None = None  # the day `slots` is for; None: not read yet
        self.read_at = -math.inf
        self.retry_at = -math.inf
        self.failing = False  # the last read failed: try again from retry_at
        self.slots: dict[Row, dict[int, Slot]] = {}
        self.stats = ForecastStats()
        self._lock: asyncio.Lock | None = None
        self._agents: dict[tuple[float, float, Target], int | None] = {}
        self.on_change: Callable[[], None] = lambda: None  # the hub: boards see it at once

    def local_day(self, ts: float) -> date:
        """The site's day holding `ts`."""
        return datetime.fromtimestamp(ts, self.tz).date()

    def due(self, now: float) -> bool:
        """Whether to read again: a new day, 15 minutes since the last read, a failed one."""
        if now < self.retry_at:
            return False
        return (self.failing or self.day != self.local_day(now)
                or now - self.read_at >= REFRESH_S)

    async def refresh(self) -> None:
        """Read today's forecast from the store, off the loop; on failure keep the last one."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # a forced read and the loop's one: one at a time, in order
            now = self.clock()
            day = self.local_day(now)
            try:
                offered, aht = await asyncio.to_thread(
                    forecast_with_aht,
                    lambda since, until: load_records(self.journal, since, until, self.history),
                    Request(day, day, "15m"), self.settings)
            except Exception as exc:  # a broken store must not end the boards' forecast
                self.stats.refreshes["failed"] += 1
                self.failing, self.retry_at = True, now + RETRY_S
                log.warning("forecast: reading today's forecast failed: %s", exc)
                return
            slots: dict[Row, dict[int, Slot]] = defaultdict(dict)
            for ((level, name, _channel), start), value in offered.items():
                if level in ("queue", "site"):
                    row = (level, name) if level == "queue" else SITE
                    slots[row][start] = Slot(start, value, aht.get(((level, name, _channel),
                                                                     start)))
            self.slots, self.day, self.read_at = dict(slots), day, now
            self.failing = False
            self.stats.refreshes["ok"] += 1
        self.on_change()

    async def run_forever(self) -> None:
        """Read at start, then whenever due."""
        while True:
            if self.due(self.clock()):
                await self.refresh()
            await asyncio.sleep(POLL_S)

    def block(self, row: Row, now: float, offered_so_far: float | None,
              today_aht: float | None, target: Target | None) -> dict[str, Any]:
        """One queue's (or the site's) forecast block at `now`; a read, it changes nothing."""
        slots = self.slots.get(row) if self.day == self.local_day(now) else None
        if not slots:
            return empty_block()  # no history for it (or today's not read yet)
        so_far = 0.0
        for slot in slots.values():
            if slot.start + INTERVAL_S <= now:
                so_far += slot.offered
            elif slot.start <= now:  # the current interval: its elapsed share
                so_far += slot.offered * (now - slot.start) / INTERVAL_S
        day = sum(slot.offered for slot in slots.values())
        nxt = int(now // INTERVAL_S) * INTERVAL_S + INTERVAL_S
        out = empty_block()
        out.update(offered_so_far=offered_so_far, forecast_so_far=_round(so_far),
                   forecast_rest=_round(max(0.0, day - so_far)), forecast_day=_round(day))
        if offered_so_far is not None and so_far > 0:
            out["difference"] = _round((offered_so_far - so_far) / so_far)
        out["next"]["start"] = nxt
        if self.local_day(nxt) != self.day:
            return out  # the next interval is tomorrow's: not forecast yet
        upcoming = slots.get(nxt)
        offered = upcoming.offered if upcoming is not None else 0.0  # none then on those days
        aht = (upcoming.aht_s if upcoming is not None and upcoming.aht_s is not None
               else today_aht)
        out["next"] = {"start": nxt, "forecast_offered": _round(offered),
                       "aht_s": _round(aht, 3),
                       "agents_needed": self._needed(offered, aht, target)}
        return out

    def _needed(self, offered: float, aht: float | None, target: Target | None) -> int | None:
        """Erlang C agents for `offered` contacts in 15 minutes at `aht` (cached)."""
        if aht is None or aht <= 0 or target is None:
            return None
        key = (offered, aht, target)
        if key not in self._agents:
            if len(self._agents) > 4096:
                self._agents.clear()
            try:
                self._agents[key] = agents_needed(
                    offered / INTERVAL_S, aht, target.threshold_s, target.target,
                    max_occupancy=target.max_occupancy).agents
            except (NotComputable, ValueError):
                self._agents[key] = None
        return self._agents[key]

    def add_to(self, tree: dict[str, Any], now: float) -> None:
        """Add every configured queue's block and the site's to a snapshot tree."""
        queues: dict[str, Any] = {}
        for name, cfg in self.settings.queues.items():
            today = tree["queues"].get(name, {}).get("today") or {}  # {}: no `today` window
            queues[name] = self.block(("queue", name), now, _number(today.get("offered")),
                                      _number(today.get("aht_s")), _target([cfg]))
        today = tree["total"].get("today") or {}
        total = self.block(SITE, now, _number(today.get("offered")),
                           _number(today.get("aht_s")),
                           _target(list(self.settings.queues.values())))
        tree[TREE_KEY] = {"total": total, "queues": queues}


def _target(queues: list[QueueConfig]) -> Target | None:
    """The queues' shared service level; None when they differ (the site: no one target)."""
    targets = {Target(q.service_level.threshold_s, q.service_level.target,
                      q.staffing.max_occupancy) for q in queues}
    return targets.pop() if len(targets) == 1 else None


class ForecastCollector:
    """Prometheus view of the forecast's reads (memory only)."""

    def __init__(self, forecast: TodayForecast) -> None:
        self.forecast = forecast

    def collect(self) -> Iterator[Metric]:
        """Read memory only."""
        family = CounterMetricFamily("wallboard_forecast_refreshes",
                                     "Reads of today's forecast from the history by result",
                                     labels=["result"])
        for result in RESULTS:
            family.add_metric([result], self.forecast.stats.refreshes[result])
        yield family
