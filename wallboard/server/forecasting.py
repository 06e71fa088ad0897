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
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client.core import CounterMetricFamily, Metric

from wallboard.config.settings import QueueConfig, Settings
from wallboard.fold.intervals import INTERVAL_S
from wallboard.ingest.historian import HistorianStats, load_days, load_records
from wallboard.journal.interface import Journal
from wallboard.kpi.erlang import NotComputable, agents_needed
from wallboard.kpi.forecast import Aht, Forecast, forecast_with_aht
from wallboard.kpi.report import Request
from wallboard.kpi.rollups import rolled_up

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


class Day:
    """One row's forecast of today: its intervals by start, with running totals."""

    __slots__ = ("by_start", "cumulative", "starts", "total")

    def __init__(self, slots: list[Slot]) -> None:
        slots = sorted(slots, key=lambda slot: slot.start)
        self.by_start = {slot.start: slot for slot in slots}
        self.starts = [slot.start for slot in slots]
        self.cumulative = [0.0]  # cumulative[i]: the forecast of the first i intervals
        for slot in slots:
            self.cumulative.append(self.cumulative[-1] + slot.offered)
        self.total = self.cumulative[-1]

    def so_far(self, now: float) -> float:
        """The intervals ended by `now`, plus the elapsed share of the current one."""
        ended = bisect_right(self.starts, now - INTERVAL_S)  # start + 900 <= now
        out = self.cumulative[ended]
        if ended < len(self.starts) and self.starts[ended] <= now:
            start = self.starts[ended]
            out += self.by_start[start].offered * (now - start) / INTERVAL_S
        return out


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
        self.day: date | None = None  # the day `days` is for; None: not read yet
        self.read_at = -math.inf
        self.retry_at = -math.inf
        self.failing = False  # the last read failed: try again from retry_at
        self.days: dict[Row, Day] = {}
        # Fixed for the app's life (a config change that touches queues needs a restart).
        self.targets = {name: _target([cfg]) for name, cfg in settings.queues.items()}
        self.site_target = _target(list(settings.queues.values()))
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

    def _read(self, day: date) -> tuple[Forecast, Aht]:
        """Today's forecast and AHT from the same weekdays' rollups (their intervals where a
        day has none), blocking."""
        request, zone = Request(day, day, "15m"), self.settings.site.timezone
        rolled = rolled_up(
            lambda since, until, part: load_days(self.journal, zone, since, until, part,
                                                 self.history),
            request, self.settings, set())
        return forecast_with_aht(
            lambda since, until: load_records(self.journal, since, until, self.history),
            request, self.settings, rolled)

    async def refresh(self) -> None:
        """Read today's forecast from the store, off the loop; on failure keep the last one."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # a forced read and the loop's one: one at a time, in order
            now = self.clock()
            day = self.local_day(now)
            try:
                offered, aht = await asyncio.to_thread(self._read, day)
            except Exception as exc:  # a broken store must not end the boards' forecast
                self.stats.refreshes["failed"] += 1
                self.failing, self.retry_at = True, now + RETRY_S
                log.warning("forecast: reading today's forecast failed: %s", exc)
                return
            slots: dict[Row, list[Slot]] = defaultdict(list)
            for (key, start), value in offered.items():
                if key[0] in ("queue", "site"):
                    row = (key[0], key[1]) if key[0] == "queue" else SITE
                    slots[row].append(Slot(start, value, aht.get((key, start))))
            self.days = {row: Day(found) for row, found in slots.items()}
            self.day, self.read_at = day, now
            self.failing = False
            self.stats.refreshes["ok"] += 1
        self.on_change()

    async def run_forever(self) -> None:
        """Read at start, then whenever due."""
        while True:
            if self.due(self.clock()):
                await self.refresh()
            await asyncio.sleep(POLL_S)

    def block(self, today: Day | None, now: float, next_today: bool,
              offered_so_far: float | None, today_aht: float | None,
              target: Target | None) -> dict[str, Any]:
        """One queue's (or the site's) forecast block at `now`; a read, it changes nothing."""
        if today is None:
            return empty_block()  # no history for it (or today's not read yet)
        so_far = today.so_far(now)
        nxt = int(now // INTERVAL_S) * INTERVAL_S + INTERVAL_S
        out = empty_block()
        out.update(offered_so_far=offered_so_far, forecast_so_far=_round(so_far),
                   forecast_rest=_round(max(0.0, today.total - so_far)),
                   forecast_day=_round(today.total))
        if offered_so_far is not None and so_far > 0:
            out["difference"] = _round((offered_so_far - so_far) / so_far)
        out["next"]["start"] = nxt
        if not next_today:
            return out  # the next interval is tomorrow's: not forecast yet
        upcoming = today.by_start.get(nxt)
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
        days = self.days if self.day == self.local_day(now) else {}  # never another day's
        next_today = self.local_day((now // INTERVAL_S + 1) * INTERVAL_S) == self.day
        queues: dict[str, Any] = {}
        for name, target in self.targets.items():
            live = tree["queues"].get(name, {}).get("today") or {}  # {}: no `today` window
            queues[name] = self.block(days.get(("queue", name)), now, next_today,
                                      _number(live.get("offered")),
                                      _number(live.get("aht_s")), target)
        live = tree["total"].get("today") or {}
        total = self.block(days.get(SITE), now, next_today, _number(live.get("offered")),
                           _number(live.get("aht_s")), self.site_target)
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
