"""Folding events into live state and windows per queue and channel; building snapshots."""

from __future__ import annotations

import time
from collections.abc import Callable
from zoneinfo import ZoneInfo

from wallboard import counters as c
from wallboard import events as ev
from wallboard.config import QueueConfig, Settings
from wallboard.counters import Layout, add_into
from wallboard.events import Event
from wallboard.kpis import SL_VARIANT, window_kpis
from wallboard.state import LiveState
from wallboard.windows import WINDOW_NAMES, CalendarDay, RollingWindows

Clock = Callable[[], float]
UNASSIGNED = ""  # surveys and tickets with no queue count in the totals only


class QueueLimitError(Exception):
    """More distinct queues than the configured limit (labels must stay bounded)."""


class Leaf:
    """Windows for one (queue, channel) pair."""

    __slots__ = ("channel", "lifetime", "queue", "rolling", "short_abandon_s", "sl_threshold_s",
                 "today")

    def __init__(self, queue: str, channel: str, cfg: QueueConfig, layout: Layout,
                 tz: ZoneInfo, now: float) -> None:
        self.queue = queue
        self.channel = channel
        self.sl_threshold_s = cfg.service_level.threshold_s
        self.short_abandon_s = cfg.service_level.short_abandon_s
        self.lifetime = layout.zeros()
        self.rolling = RollingWindows(layout.size, now)
        self.today = CalendarDay(layout.size, tz, now)

    def add(self, ts: float, deltas: c.Deltas, now: float) -> bool:
        """Fold deltas into every window; False when too late for all of them."""
        if now >= self.today.end:
            self.today.advance(now)
        self.rolling.advance(now)
        for k, d in deltas:
            self.lifetime[k] += d
        in_rolling = self.rolling.add(ts, deltas)
        return self.today.add(ts, deltas) or in_rolling

    def advance(self, now: float) -> None:
        """Move every window's clock to `now`."""
        self.rolling.advance(now)
        self.today.advance(now)

    def window(self, name: str) -> list[float]:
        """The counter vector of a window by name (or 'lifetime')."""
        if name == "today":
            return self.today.totals
        if name == "lifetime":
            return self.lifetime
        return self.rolling.totals[name]


class Aggregator:
    """Owns live state and windows; the only writer is `fold`."""

    def __init__(self, settings: Settings, clock: Clock = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.tz = ZoneInfo(settings.site.timezone)
        self.queue_configs = dict(settings.queues)
        thresholds = [q.service_level.threshold_s for q in settings.queues.values()]
        self.layout = Layout([*thresholds, QueueConfig().service_level.threshold_s])
        self.state = LiveState()
        self.leaves: dict[tuple[str, str], Leaf] = {}
        self.late = 0
        now = clock()
        for name, cfg in settings.queues.items():
            self.state.queue(name)
            self._leaf(name, cfg.channel, now)

    def queue_config(self, name: str) -> QueueConfig:
        """The configured settings of a queue, or defaults for one learnt from events."""
        return self.queue_configs.get(name) or QueueConfig()

    def _leaf(self, queue: str, channel: str, now: float) -> Leaf:
        key = (queue, channel)
        leaf = self.leaves.get(key)
        if leaf is None:
            if queue not in self.queue_configs and queue != UNASSIGNED:
                if len(self.queue_configs) >= self.settings.server.max_queues:
                    raise QueueLimitError(queue)
                self.queue_configs[queue] = QueueConfig(channel=channel)
            leaf = self.leaves[key] = Leaf(queue, channel, self.queue_config(queue), self.layout,
                                           self.tz, now)
        return leaf

    def fold(self, event: Event) -> bool:
        """Apply one validated event; False when it was too late for every window."""
        etype = event.type
        queue = event.queue or UNASSIGNED
        channel = event.channel or (
            self.queue_config(queue).channel if queue else
            ("ticket" if etype.startswith("ticket.") else "other"))
        now = self.clock()
        leaf = self._leaf(queue, channel, now)
        if event.source and queue:
            self.state.queue(queue).sources.add(event.source)
        state = self.state
        deltas: c.Deltas
        if etype == ev.CONTACT_QUEUED:
            state.contact_queued(event)
            deltas = [(c.OFFERED, 1.0)]
        elif etype == ev.CONTACT_ANSWERED:
            wait = state.contact_left_queue(event)
            deltas = [(c.ANSWERED, 1.0), (c.WAIT_ANSWERED_SUM, wait),
                      (self.layout.answered_hist + self.layout.wait_bin(wait), 1.0)]
            if wait <= leaf.sl_threshold_s:
                deltas.append((c.ANSWERED_IN_SL, 1.0))
        elif etype == ev.CONTACT_ABANDONED:
            wait = state.contact_left_queue(event)
            deltas = [(c.ABANDONED, 1.0), (c.WAIT_ABANDONED_SUM, wait),
                      (self.layout.abandoned_hist + self.layout.wait_bin(wait), 1.0)]
            if wait < leaf.short_abandon_s:
                deltas.append((c.ABANDONED_SHORT, 1.0))
            elif wait <= leaf.sl_threshold_s:
                deltas.append((c.ABANDONED_IN_SL, 1.0))
        elif etype == ev.CONTACT_ENDED:
            handle = (event.talk_s or 0.0) + (event.hold_s or 0.0) + (event.wrap_s or 0.0)
            deltas = [(c.HANDLED, 1.0), (c.HANDLE_SUM, handle)]
        elif etype == ev.SURVEY_RESPONSE:
            deltas = survey_deltas(event)
        elif etype in (ev.TICKET_CREATED, ev.TICKET_REOPENED):
            state.ticket_opened(event.contact_id, event.queue)  # type: ignore[arg-type]
            deltas = [(c.TICKETS_CREATED, 1.0)] if etype == ev.TICKET_CREATED else []
        elif etype == ev.TICKET_RESOLVED:
            state.ticket_closed(event.contact_id)  # type: ignore[arg-type]
            deltas = [(c.TICKETS_RESOLVED, 1.0)]
        elif etype == ev.AGENT_STATE:
            state.agent_state(event)
            return True
        elif etype == ev.QUEUE_SNAPSHOT:
            state.queue_snapshot(event)
            return True
        else:
            return True  # first response and SLA breaches feed KPIs of a later release
        if not deltas:
            return True
        counted = leaf.add(event.ts, deltas, now)
        if not counted:
            self.late += 1
        return counted

    def advance(self, now: float) -> None:
        """Move every window to `now` and expire forgotten contacts."""
        for leaf in self.leaves.values():
            leaf.advance(now)
        self.state.expire(now)

    def window_totals(self, window: str) -> tuple[dict[str, list[float]], dict[str, list[float]],
                                                  list[float]]:
        """One pass over the leaves: a window's vectors per queue, per channel and in total."""
        zeros = self.layout.zeros
        by_queue: dict[str, list[float]] = {q: zeros() for q in self.queue_configs}
        by_channel: dict[str, list[float]] = {}
        total = zeros()
        for leaf in self.leaves.values():
            vector = leaf.window(window)
            if leaf.queue in by_queue:
                add_into(by_queue[leaf.queue], vector)
            channel = by_channel.get(leaf.channel)
            if channel is None:
                channel = by_channel[leaf.channel] = zeros()
            add_into(channel, vector)
            add_into(total, vector)
        return by_queue, by_channel, total

    def snapshot(self, now: float | None = None) -> dict:
        """Every KPI, nested: queues, channels and the site total, live and per window."""
        now = self.clock() if now is None else now
        self.advance(now)
        queues: dict[str, dict] = {}
        for name in self.queue_configs:
            cfg = self.queue_config(name)
            queues[name] = {
                "label": cfg.label or name,
                "channel": cfg.channel,
                "sl_threshold_s": cfg.service_level.threshold_s,
                "sl_target": cfg.service_level.target,
                "sources": ",".join(sorted(self.state.queue(name).sources)),
                "live": self.state.queue_live(name, now),
            }
        channel_names = sorted({leaf.channel for leaf in self.leaves.values()})
        channels: dict[str, dict] = {}
        for channel in channel_names:
            names = {q for q, cfg in self.queue_configs.items() if cfg.channel == channel}
            channels[channel] = {"live": self._sum_live([queues[q]["live"] for q in names], names)}
        total: dict = {"live": self._sum_live([q["live"] for q in queues.values()], None)}
        total["live"]["tickets_open"] = len(self.state.open_tickets)
        for w in WINDOW_NAMES:
            by_queue, by_channel, site = self.window_totals(w)
            for name, vector in by_queue.items():
                queues[name][w] = window_kpis(vector)
            for name, vector in by_channel.items():
                channels[name][w] = window_kpis(vector)
            total[w] = window_kpis(site)
        return {
            "meta": {"site": self.settings.site.name, "timezone": self.settings.site.timezone,
                     "locale": self.settings.site.locale, "ts": round(now, 3),
                     "sl_variant": SL_VARIANT, "today_start": self._today_start(now)},
            "queues": queues, "channels": channels, "total": total,
        }

    def _today_start(self, now: float) -> float:
        return CalendarDay(0, self.tz, now).start

    def _sum_live(self, blocks: list[dict], names: set[str] | None) -> dict:
        """Waiting and tickets add up across queues; agents are counted once each."""
        out = {"waiting": sum(b["waiting"] for b in blocks),
               "oldest_wait_s": max((b["oldest_wait_s"] for b in blocks), default=0.0),
               "tickets_open": sum(b["tickets_open"] for b in blocks)}
        if any(self.state.queue(q).snapshot for q in (names or self.queue_configs)):
            # Snapshot-fed queues give counts only, so distinct agents cannot be known: sum them.
            for key in blocks[0] if blocks else ():
                if key.startswith("agents_"):
                    out[key] = sum(b[key] for b in blocks)
        else:
            out.update(self.state.agents_total(names))
        return out


def survey_deltas(event: Event) -> c.Deltas:
    """Counter deltas for one survey response, on its declared scale."""
    low, high, score = event.scale_min or 0.0, event.scale_max or 0.0, event.score or 0.0
    if event.kind == "csat":
        # Top-2-box: the two highest points of the scale (4–5 on 1–5).
        return [(c.CSAT_N, 1.0), (c.CSAT_GOOD, 1.0 if score >= high - 1 else 0.0)]
    if event.kind == "nps":
        on_ten = (score - low) * 10.0 / (high - low)
        return [(c.NPS_N, 1.0), (c.NPS_PROMOTERS, 1.0 if on_ten >= 9 else 0.0),
                (c.NPS_DETRACTORS, 1.0 if on_ten <= 6 else 0.0)]
    return [(c.CES_N, 1.0), (c.CES_SUM, score)]
