"""The agent part of the fold: roster, transitions, time in state and in reason, limits."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from datetime import time as clock_time
from zoneinfo import ZoneInfo

from wallboard.config.agents import ReasonMap
from wallboard.config.settings import Settings
from wallboard.config.windows import WindowSpec
from wallboard.fold import counters as c
from wallboard.fold.agents import AgentWindows
from wallboard.fold.intervals import IntervalHistory
from wallboard.fold.leaf import AgentLimitError, Leaf
from wallboard.fold.state import LiveState, StaleTransition
from wallboard.model import events as ev
from wallboard.model.events import Event

REASON_BASE = len(c.FIELDS)  # an agent window's slot of reason code i is REASON_BASE + i


class AgentFold:
    """Mixed into the Aggregator: everything an agent event does to live state and windows."""

    settings: Settings
    clock: Callable[[], float]
    tz: ZoneInfo
    specs: list[WindowSpec]
    shift_resets: list[clock_time]
    state: LiveState
    agent_windows: dict[str, AgentWindows]
    history: IntervalHistory
    refused: Counter[str]
    reasons: ReasonMap

    def _seed_roster(self) -> None:
        """Roster agents are known (logged out, in their team and queues) from the start."""
        self.reasons = ReasonMap(self.settings.agents)
        for agent, entry in self.settings.agents.roster.items():
            self.state.seed(agent, tuple(entry.queues), entry.team)

    def _agent(self, agent: str, now: float) -> AgentWindows:
        windows = self.agent_windows.get(agent)
        if windows is None:
            # One-minute buckets: per-agent numbers need less precision than the queues'.
            windows = self.agent_windows[agent] = AgentWindows(
                self.specs, self.tz, self.shift_resets, now, extra=len(self.reasons.codes))
        elif now >= windows.next_check:
            windows.advance(now)
        elif now > windows.now:
            windows.now = now
        return windows

    def _agent_limit(self, event: Event) -> Event:
        """A new agent past server.max_agents: the event to fold instead, without the agent.

        A contact or survey still counts for its queue without the agent; an agent.state has
        nothing left to count and is refused. A copy, never the event itself: a fold that
        raises later quarantines the event by its stored body, which still names the agent.
        """
        self.refused["agent_limit"] += 1
        if event.type == ev.AGENT_STATE:  # `==`: a journal's types are not the module's
            raise AgentLimitError(event.agent)
        return dataclasses.replace(event, agent=None)

    def _agent_state(self, e: Event, leaf: Leaf, now: float) -> None:
        team, teams = e.team, self.state.teams
        if team is not None and team not in teams and len(teams) >= self.settings.server.max_teams:
            # On the paths that skip admission (journal-less ingest, the start-up replay,
            # other nodes' events) the transition counts, the team does not: a metric label
            # must stay bounded.
            e = dataclasses.replace(e, team=None)  # a copy: see _agent_limit
            self.refused["team_limit"] += 1
        try:
            previous = self.state.agent_state(e, self.reasons.code(e.reason))
        except StaleTransition:
            return
        assert e.agent is not None  # parse_event requires it on agent.state
        windows = self._agent(e.agent, now)
        if previous is not None:
            state, since, code = previous
            index = c.STATE_TIME.get(state)
            if index is not None:
                windows.add_interval(since, e.ts, index)
                self.history.team_span(self.state.agents.get(e.agent), since, e.ts, index)
            if code is not None and state != "offline":
                windows.add_interval(since, e.ts, REASON_BASE + self.reasons.index[code])

    def _agent_add(self, agent: str, at: float, deltas: c.Deltas, now: float) -> None:
        self._agent(agent, now).add(at, deltas)
        self.history.team_add(self.state.agents.get(agent), at, deltas)

    def _agent_channel(self, agent: str, channel: str) -> None:
        """An answered contact gives its agent's channel (busy with it, until it changes)."""
        live = self.state.agents.get(agent)
        if live is not None and live.state != "offline":
            live.channel = channel
