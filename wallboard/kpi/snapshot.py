"""Building the snapshot: every KPI per queue, channel, team, agent and site, live and windowed.

Each entity is built inside its own boundary: one queue, channel, team or agent whose numbers
raise is left out (its head) or shown with null KPIs (a window), counted under
wallboard_fold_errors_total{stage="snapshot"} (the forecast: stage "staffing"); the rest of
the snapshot is built as usual.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from wallboard.fold import counters as c
from wallboard.fold.agentfold import REASON_BASE
from wallboard.fold.aggregate import Aggregator
from wallboard.fold.counters import add_into
from wallboard.fold.sketch import Sketches, merge_sketches
from wallboard.fold.state import agent_counts
from wallboard.kpi.formulas import agent_window_kpis, sl_variants, window_kpis
from wallboard.kpi.staffing import estimate_patience, forecast

_STATE_TIME = tuple(c.STATE_TIME.items())
_NO_FORECAST = {"agents_needed": None, "forecast_sl": None, "forecast_wait_s": None,
                "forecast_abandon": None}
_TICKET_LIVE = {"tickets_open": 0, "tickets_pending": 0, "tickets_at_risk": 0, "tickets_overdue": 0,
                "oldest_ticket_s": 0.0}


def _agent_vector(agg: Aggregator, agent: str, window: str, now: float) -> list[float]:
    """An agent's window counters plus the time spent so far in its current state and reason."""
    windows = agg.agent_windows[agent]
    vector = list(windows.vector(window)[0])
    live = agg.state.agents.get(agent)
    if live is not None and live.state != "offline":
        low, high = windows.time_range(window, now)
        overlap = min(high, now) - max(low, live.since)
        if overlap > 0:
            if live.state in c.STATE_TIME:
                vector[c.STATE_TIME[live.state]] += overlap
            if live.code is not None:
                vector[REASON_BASE + agg.reasons.index[live.code]] += overlap
    return vector


def _times(agg: Aggregator, block: dict[str, Any], vector: list[float],
           every_code: bool = True) -> dict[str, Any]:
    """Add seconds in each state and in each reason code (the map's, 'other' last) to a block.

    An agent's block lists only the codes it spent time in (`every_code` False): thousands of
    agents times every code would be most of the snapshot's keys.
    """
    block["time_in_state"] = {s: round(vector[k], 3) for s, k in _STATE_TIME}
    block["time_in_reason"] = {code: round(v, 3) for code, v in
                               zip(agg.reasons.codes, vector[REASON_BASE:], strict=True)
                               if v or every_code}
    return block


class SnapshotBuilder:
    """Turns the aggregator's state into the nested snapshot the hub publishes."""

    def __init__(self, agg: Aggregator) -> None:
        self.agg = agg
        self.windows = [s.name for s in agg.specs]
        rolling = sorted((s.span_s, s.name) for s in agg.specs if s.kind == "rolling")
        self.shortest_rolling = rolling[0][1] if rolling else None
        self.spans = {s.name: s.span_s for s in agg.specs}
        self._forecast_cache: dict[tuple[float | None, ...], dict[str, Any]] = {}

    def build(self, now: float | None = None) -> dict[str, Any]:
        """Every KPI, nested: meta, queues, channels, teams, agents and the site total.

        A read: it changes nothing. The windows are as of the last `Aggregator.advance`, which
        the hub's tick (or the replay) runs at `now` first.
        """
        agg = self.agg
        now = agg.clock() if now is None else now
        min_sample = agg.settings.site.min_survey_sample
        tickets = agg.state.ticket_live(now, agg.settings.site.ticket_at_risk_s)
        queues: dict[str, dict[str, Any]] = {}
        for name in agg.queue_configs:
            try:
                queues[name] = self._queue_head(name, now, tickets)
            except Exception as exc:  # left out: a broken queue must not blank the board
                agg.errors.record("snapshot", exc, what=f"queue {name!r}")
        channels: dict[str, dict[str, Any]] = {}
        for leaf in agg.leaves.values():
            channels.setdefault(leaf.channel, {})
        for channel, block in list(channels.items()):
            names = {q for q, cfg in agg.queue_configs.items()
                     if cfg.channel == channel and q in queues}
            try:
                block["live"] = self._sum_live([queues[q]["live"] for q in names], names)
            except Exception as exc:
                agg.errors.record("snapshot", exc, what=f"channel {channel!r}")
                del channels[channel]
        total: dict[str, Any] = {"live": self._sum_live([q["live"] for q in queues.values()],
                                                        None)}
        for key in _TICKET_LIVE:
            values = [block[key] for block in tickets.values()]
            total["live"][key] = max(values, default=0.0) if key == "oldest_ticket_s" \
                else sum(values)
        teams: dict[str, dict[str, Any]] = {}
        agents: dict[str, dict[str, Any]] = {}
        for name, live in agg.state.agents.items():
            try:
                agents[name] = {"state": live.state, "since": live.since,
                                "team": live.team or "", "queues": ",".join(live.queues),
                                "reason": live.reason, "code": live.code,
                                "channel": live.channel}
                if live.team:
                    teams.setdefault(live.team, {"live": agent_counts({})})
                    teams[live.team]["live"][f"agents_{live.state}"] += 1
                    if live.state != "offline":
                        teams[live.team]["live"]["agents_staffed"] += 1
            except Exception as exc:
                agg.errors.record("snapshot", exc, what=f"agent {name!r}")
                agents.pop(name, None)
        for name in queues:
            queues[name]["live"].update(_NO_FORECAST)
        for window in self.windows:
            self._window(window, now, queues, channels, total, teams, agents, min_sample)
        return {
            "meta": {"site": agg.settings.site.name, "timezone": agg.settings.site.timezone,
                     "locale": agg.settings.site.locale, "ts": round(now, 3),
                     "windows": ",".join(self.windows), "late_events": agg.late},
            "queues": queues, "channels": channels, "teams": teams, "agents": agents,
            "total": total,
        }

    def _queue_head(self, name: str, now: float,
                    tickets: dict[str | None, dict[str, float]]) -> dict[str, Any]:
        agg = self.agg
        cfg = agg.queue_config(name)
        live = agg.state.queue_live(name, now)
        live.update(tickets.get(name, _TICKET_LIVE))
        block: dict[str, Any] = {
            "label": cfg.label or name, "channel": cfg.channel,
            "sl_variant": cfg.service_level.variant,
            "sl_threshold_s": cfg.service_level.threshold_s,
            "sl_target": cfg.service_level.target,
            "sources": ",".join(sorted(agg.state.sources(name))),
            "live": live,
        }
        if cfg.legal_rules:
            block["legal"] = self._legal_live(name, now)
        return block

    def _legal_live(self, name: str, now: float) -> dict[str, dict[str, Any]]:
        """For each legal rule: the oldest covered wait against its limit, and its state."""
        cfg = self.agg.queue_config(name)
        live = self.agg.state.queues.get(name)
        waiting = live.waiting.values() if live is not None else ()
        out = {}
        for rule in cfg.legal_rules:
            starts = [w.entered if rule.start == "call" else w.enqueued for w in waiting]
            oldest = max(0.0, now - min(starts)) if starts else 0.0
            state = ("breach" if oldest >= rule.limit_s else
                     "warn" if rule.warn_s is not None and oldest >= rule.warn_s else "ok")
            out[rule.name] = {"oldest_s": round(oldest, 3), "limit_s": rule.limit_s,
                              "state": state, "target": rule.target}
        return out

    def _window(self, window: str, now: float, queues: dict[str, dict[str, Any]],
                channels: dict[str, dict[str, Any]], total: dict[str, Any],
                teams: dict[str, dict[str, Any]], agents: dict[str, dict[str, Any]],
                min_sample: int) -> None:
        agg = self.agg
        zeros = agg.layout.zeros

        def fresh() -> tuple[list[float], Sketches]:
            return zeros(), [{} for _ in range(c.SKETCH_KINDS)]

        by_queue = {q: fresh() for q in queues}
        by_channel = {ch: fresh() for ch in channels}
        site = fresh()
        for leaf in agg.leaves.values():
            try:
                vector, sketches = leaf.windows.vector(window)
            except Exception as exc:  # this leaf's numbers are left out of every sum
                agg.errors.record("snapshot", exc, what=f"queue {leaf.queue!r} {leaf.channel}")
                continue
            targets = [site]
            if leaf.channel in by_channel:
                targets.append(by_channel[leaf.channel])
            if leaf.queue in by_queue:
                targets.append(by_queue[leaf.queue])
            for vec, sk in targets:
                add_into(vec, vector)
                merge_sketches(sk, sketches)
        # Agent time in state feeds occupancy for the queues they serve, their team and the site.
        agent_vectors = {}
        reasons = [0.0] * (REASON_BASE + len(agg.reasons.codes))  # the site's time in reason
        for name in agg.agent_windows:
            try:
                agent_vectors[name] = _agent_vector(agg, name, window, now)
            except Exception as exc:
                agg.errors.record("snapshot", exc, what=f"agent {name!r}")
        state_agents = agg.state.agents
        for name, vector in agent_vectors.items():
            live = state_agents.get(name)
            times = [(k, vector[k]) for k in c.STATE_TIME.values()]
            served = [site[0]]
            if live is not None:
                served += [by_queue[q][0] for q in live.queues if q in by_queue]
                channels_served = {agg.queue_config(q).channel for q in live.queues}
                served += [by_channel[ch][0] for ch in channels_served if ch in by_channel]
            for target in served:
                for k, value in times:
                    target[k] += value
            for i in range(REASON_BASE, len(vector)):
                reasons[i] += vector[i]
            if name in agents:
                agents[name][window] = _times(agg, self._kpis(
                    agent_window_kpis, f"agent {name!r}", vector, min_sample), vector, False)
            team = live.team if live else None
            if team and team in teams:
                team_vec = teams[team].setdefault("_vec", [0.0] * len(vector))
                add_into(team_vec, vector)
        for name, (vector, sketches) in by_queue.items():
            rules = [r.name for r in agg.queue_config(name).legal_rules]
            block = queues[name][window] = self._kpis(window_kpis, f"queue {name!r}", vector,
                                                      sketches, min_sample, rules)
            block["sl_variants"] = self._kpis(sl_variants, f"queue {name!r}", vector)
            if window == self._forecast_window(name):
                try:
                    forecast = self._forecast(name, vector, queues[name]["live"])
                except Exception as exc:  # the tile shows "not computable"
                    agg.errors.record("staffing", exc, what=f"queue {name!r}")
                    forecast = _NO_FORECAST
                queues[name]["live"].update(forecast)
        for name, (vector, sketches) in by_channel.items():
            channels[name][window] = self._kpis(window_kpis, f"channel {name!r}", vector,
                                                sketches, min_sample)
        total[window] = self._kpis(window_kpis, "the site total", site[0], site[1], min_sample)
        total[window]["time_in_reason"] = _times(agg, {}, reasons)["time_in_reason"]
        for name, block in teams.items():
            team_vec = block.pop("_vec", [0.0] * len(reasons))
            block[window] = _times(agg, self._kpis(agent_window_kpis, f"team {name!r}",
                                                   team_vec, min_sample), team_vec)

    def _kpis(self, compute: Callable[..., dict[str, Any]], what: str, vector: list[float],
              *args: Any) -> dict[str, Any]:
        """One entity's KPIs; when they raise, the same keys with null values (counted)."""
        try:
            return compute(vector, *args)
        except Exception as exc:
            self.agg.errors.record("snapshot", exc, what=what)
        try:  # the keys of an empty window: the board shows "no data" for this entity
            empty = compute(self.agg.layout.zeros(), *[
                [{} for _ in range(c.SKETCH_KINDS)] if i == 0 and compute is window_kpis
                else arg for i, arg in enumerate(args)])
        except Exception:
            return {}
        return {key: ({k: None for k in value} if isinstance(value, dict) else None)
                for key, value in empty.items()}

    def _forecast_window(self, name: str) -> str | None:
        window = self.agg.queue_config(name).staffing.window or self.shortest_rolling
        return window if window is not None and self.spans.get(window) else None

    def _forecast(self, name: str, v: list[float], live: dict[str, Any]) -> dict[str, Any]:
        """Agents needed now and what the agents staffed now would achieve (Erlang A or C)."""
        cfg = self.agg.queue_config(name)
        span = self.spans[self._forecast_window(name) or ""]
        staffed = live["agents_available"] + live["agents_busy"] + live["agents_wrapup"]
        rate = v[c.OFFERED] / span
        aht = v[c.HANDLE_SUM] / v[c.HANDLED] if v[c.HANDLED] else None
        patience = None
        left = v[c.ANSWERED] + v[c.ABANDONED]
        abandoned_long = v[c.ABANDONED] - v[c.ABANDONED_SHORT]
        if cfg.staffing.model == "erlang_a" and abandoned_long and left:
            # Rough estimator (kpis.md §5.2): mean wait of all leavers / P(abandon).
            mean_wait = (v[c.WAIT_ANSWERED_SUM] + v[c.WAIT_ABANDONED_SUM]) / left
            patience = estimate_patience(mean_wait, abandoned_long / left)
        key = (round(rate, 6), aht and round(aht, 1), staffed, patience and round(patience),
               cfg.service_level.threshold_s, cfg.service_level.target)
        cached = self._forecast_cache.get(key)
        if cached is None:
            if len(self._forecast_cache) > 4096:
                self._forecast_cache.clear()
            raw = forecast(rate, aht, cfg.service_level.threshold_s, cfg.service_level.target,
                           staffed, patience_s=patience,
                           max_occupancy=cfg.staffing.max_occupancy)
            cached = self._forecast_cache[key] = {
                k: round(v, 6) if isinstance(v, float) and math.isfinite(v) else
                (None if isinstance(v, float) else v) for k, v in raw.items()}
        return {k: cached.get(k) for k in _NO_FORECAST}

    def _sum_live(self, blocks: list[dict[str, Any]], names: set[str] | None) -> dict[str, Any]:
        """Waiting adds up across queues; agents are counted once each."""
        agg = self.agg
        out = {"waiting": sum(b["waiting"] for b in blocks),
               "oldest_wait_s": max((b["oldest_wait_s"] for b in blocks), default=0.0),
               "callbacks_pending": sum(b["callbacks_pending"] for b in blocks)}
        queues = agg.state.queues
        if any(q in queues and queues[q].snapshot for q in (names or agg.queue_configs)):
            # Snapshot-fed queues give counts only, so distinct agents cannot be known: sum them.
            for key in blocks[0] if blocks else ():
                if key.startswith("agents_"):
                    out[key] = sum(b[key] for b in blocks)
        else:
            out.update(agg.state.agents_total(names))
        return out
