"""Admission: places for new queues, teams and agents held while their events are stored."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Collection

from wallboard.fold.aggregate import UNASSIGNED, Aggregator
from wallboard.fold.leaf import AGENT_TYPES
from wallboard.model.events import AGENT_STATE, Event, EventError


class Admission:
    """Refuses, before storing, an event that would pass server.max_queues, teams or agents."""

    def __init__(self, aggregator: Aggregator, rejected: Counter[str]) -> None:
        self.agg = aggregator
        self.rejected = rejected  # the pipeline's refusals by reason
        self.reserve_s = 60.0  # a reservation never folded lapses after this
        self._new_queues: dict[str, float] = {}  # admitted, not folded yet: when (see admit)
        self._new_teams: dict[str, float] = {}
        self._new_agents: dict[str, float] = {}
        self._swept: dict[str, int] = {}  # per kind: how many names were known at the last sweep

    def held(self) -> int:
        """Places held for new queues, teams and agents whose events are being stored."""
        return len(self._new_queues) + len(self._new_teams) + len(self._new_agents)

    def admit(self, event: Event) -> None:
        """Refuse, before it is stored, an event over server.max_queues, max_teams or max_agents.

        New names admitted but not folded yet (later in the same request, or while the journal
        writes) hold their place, so a batch cannot pass the limit between admission and fold.
        """
        server = self.agg.settings.server
        queue = event.queue
        if queue and queue != UNASSIGNED:
            self._reserve(queue, self.agg.queue_configs, self._new_queues,
                          server.max_queues, "queue")
        if event.team is not None:
            self._reserve(event.team, self.agg.state.teams, self._new_teams,
                          server.max_teams, "team")
        if event.agent is not None and event.type in AGENT_TYPES:
            # Only an agent.state is refused: a contact or survey naming a new agent past the
            # limit still counts for its queue, the fold drops the agent (as without admission).
            self._reserve(event.agent, self.agg.agent_windows, self._new_agents,
                          server.max_agents, "agent", refuse=event.type == AGENT_STATE)

    def _reserve(self, name: str, known: Collection[str], new: dict[str, float], limit: int,
                 field: str, refuse: bool = True) -> None:
        if name in known:
            return
        now = time.monotonic()
        if name in new:
            del new[name]  # to the end: `new` stays in the order of the latest reservation
        elif len(known) + len(new) >= limit:
            self._sweep(known, new, now, field)
            if len(known) + len(new) >= limit:
                if not refuse:
                    return  # admitted without a place: the fold counts agent_limit
                self.rejected[f"{field}_limit"] += 1
                raise EventError(field, f"{field} {name[:40]!r} would exceed "
                                 f"server.max_{field}s ({limit})", f"{field}_limit")
        new[name] = now

    def _sweep(self, known: Collection[str], new: dict[str, float], now: float,
               field: str) -> None:
        """Drop reservations whose names were folded, or that lapsed; cheap when nothing did.

        A reservation lasts while its events are being stored; one never folded (a 503, a
        late event, a sender that gave up) lapses after reserve_s instead of holding on.
        """
        # Oldest first: when the first reservation is fresh, none lapsed.
        if new and now - next(iter(new.values())) >= self.reserve_s:
            for name in [n for n, at in new.items() if now - at >= self.reserve_s]:
                del new[name]
        # Names only become known by folding: rescan only when more are known than last time,
        # so a flood of refusals in one batch costs a lookup each, not a scan each.
        if len(known) != self._swept.get(field):
            self._swept[field] = len(known)
            for name in [n for n in new if n in known]:
                del new[name]
