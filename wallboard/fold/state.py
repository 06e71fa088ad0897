"""Live state: who is waiting since when, agents, open tickets, callbacks, queue snapshots."""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, field

from wallboard.base.recent import Recent
from wallboard.model.events import AGENT_STATES, Event

# A contact we never hear about again must not pin "longest wait" forever.
MAX_WAITING_AGE_S = 24 * 3600
# Contacts that left a queue are remembered this many at most, so that a late contact.queued
# arriving after its answer does not leave a ghost waiting forever.
MAX_DEPARTED = 100_000
# A reopen within this long after a resolution takes back its first-contact resolution.
FCR_HORIZON_S = 7 * 24 * 3600
# Resolved tickets are remembered (for reopens and resolution times) up to this many, oldest
# resolution forgotten first: a count, so the result never depends on when snapshots run.
MAX_RESOLVED_TICKETS = 200_000
_ON_CONTACT = frozenset({"busy", "wrapup"})  # states in which an agent has a contact's channel


@dataclass(slots=True)
class Waiting:
    """A contact waiting in a queue, and which of its deadlines were already counted."""

    enqueued: float
    entered: float  # call start (IVR included) when the source gives it, else queue entry
    sl_missed: bool = False
    legal_breached: int = 0  # bit per legal rule


@dataclass(slots=True)
class QueueSnapshot:
    """Counts a source reported for a queue it cannot describe contact by contact."""

    ts: float
    waiting: int
    oldest_wait_s: float | None
    agents: dict[str, int]


@dataclass(slots=True)
class QueueLive:
    """Live values of one queue."""

    waiting: dict[str, Waiting] = field(default_factory=dict)
    agents: Counter[str] = field(default_factory=Counter)
    callbacks: dict[str, float] = field(default_factory=dict)  # contact_id -> requested at
    snapshot: QueueSnapshot | None = None
    sources: set[str] = field(default_factory=set)


@dataclass(slots=True)
class AgentLive:
    """One agent's current state, since when, why, on which channel, and the queues it serves."""

    state: str
    queues: tuple[str, ...]
    team: str | None
    since: float  # the event time of the last change of state or reason (0: never heard of)
    reason: str | None = None  # as the source sent it
    code: str | None = None  # normalised by agents.reasons (config/agents.py)
    channel: str | None = None  # of the contact it handles (busy, wrap-up)


@dataclass(slots=True)
class Ticket:
    """A ticket's lifecycle times; `resolved` is None while it is open."""

    queue: str | None
    created: float | None
    due: float | None = None
    first_response: float | None = None
    resolved: float | None = None
    resolutions: int = 0
    reopened: bool = False
    status: str = "open"  # open, pending or hold while unresolved


class StaleTransition(Exception):
    """An agent transition older than the agent's current state."""


class LiveState:
    """Current contact-center state, updated by events, read by KPIs."""

    def __init__(self) -> None:
        self.queues: dict[str, QueueLive] = {}
        self.agents: dict[str, AgentLive] = {}
        self.teams: set[str] = set()  # every team named so far: bounded by server.max_teams
        self.tickets: dict[str, Ticket] = {}
        self.resolved_order: OrderedDict[str, None] = OrderedDict()
        # Tombstones: the newest half to all of the last MAX_DEPARTED departures.
        self.departed = Recent(MAX_DEPARTED)

    def queue(self, name: str) -> QueueLive:
        """The live record of a queue, created on first use."""
        live = self.queues.get(name)
        if live is None:
            live = self.queues[name] = QueueLive()
        return live

    def sources(self, name: str) -> set[str]:
        """The sources that fed a queue so far (a read: an unknown queue stays unknown)."""
        live = self.queues.get(name)
        return live.sources if live is not None else set()

    def enqueue(self, queue: str, contact_id: str, ts: float, entered: float | None
                ) -> Waiting | None:
        """A contact starts waiting; None when it already left (a late queued event)."""
        key = (queue, contact_id)
        if key in self.departed:
            return None
        waiting = Waiting(ts, entered if entered is not None and entered <= ts else ts)
        live = self.queues.get(queue) or self.queue(queue)
        live.waiting[contact_id] = waiting
        return waiting

    def dequeue(self, queue: str, contact_id: str, ts: float) -> Waiting | None:
        """A contact leaves the queue; returns its waiting record if we had one."""
        live = self.queues.get(queue) or self.queue(queue)
        waiting = live.waiting.pop(contact_id, None)
        self.departed.add((queue, contact_id))
        return waiting

    def agent_state(self, event: Event, code: str | None = None
                    ) -> tuple[str, float, str | None] | None:
        """Apply an agent transition; returns the previous state, its start and reason code.

        None for a new agent, and for a repeat of the current state and reason (a source's
        reconciliation): the time in state goes on from the first.
        """
        agent, state, ts = event.agent, event.state, event.ts
        assert agent is not None and state is not None  # parse_event requires both
        if event.team is not None:
            self.teams.add(event.team)
        live = self.agents.get(agent)
        if live is None:
            queues = (tuple(event.queues) if event.queues is not None else
                      (event.queue,) if event.queue is not None else ())
            self.agents[agent] = AgentLive(state, queues, event.team, ts, event.reason, code,
                                           event.channel if state in _ON_CONTACT else None)
            for name in queues:
                self.queue(name).agents[state] += 1
            return None
        if ts < live.since:
            raise StaleTransition  # an older transition must not undo a newer one
        previous: tuple[str, float, str | None] | None = None
        if state != live.state or event.reason != live.reason:
            previous = (live.state, live.since, live.code)
        queues = (tuple(event.queues) if event.queues is not None else
                  (event.queue,) if event.queue is not None else live.queues)
        by_name = self.queues
        if queues == live.queues:
            if state != live.state:
                for name in queues:
                    counts = by_name[name].agents
                    counts[live.state] -= 1
                    counts[state] += 1
        else:
            for name in live.queues:
                by_name[name].agents[live.state] -= 1
            for name in queues:
                self.queue(name).agents[state] += 1
            live.queues = queues
        if previous is not None:
            live.state, live.since, live.reason, live.code = state, ts, event.reason, code
        if state not in _ON_CONTACT:
            live.channel = None
        elif event.channel is not None:
            live.channel = event.channel
        if event.team is not None:
            live.team = event.team
        return previous

    def seed(self, agent: str, queues: tuple[str, ...], team: str | None) -> None:
        """A roster agent, logged out until its first event (since 0: never stale)."""
        if agent in self.agents:
            return
        self.agents[agent] = AgentLive("offline", queues, team, 0.0)
        for name in queues:
            self.queue(name).agents["offline"] += 1
        if team is not None:
            self.teams.add(team)

    def queue_snapshot(self, event: Event) -> None:
        """Replace a queue's live counts with what a snapshot-only source reports."""
        assert event.queue is not None  # parse_event requires it on queue.snapshot
        self.queue(event.queue).snapshot = QueueSnapshot(
            event.ts, int(event.waiting or 0), event.oldest_wait_s, dict(event.agents or {})
        )

    def ticket_resolved(self, ticket_id: str) -> None:
        """Remember a resolved ticket, forgetting the oldest resolved one beyond the cap."""
        self.resolved_order[ticket_id] = None
        self.resolved_order.move_to_end(ticket_id)
        while len(self.resolved_order) > MAX_RESOLVED_TICKETS:
            oldest, _ = self.resolved_order.popitem(last=False)
            self.tickets.pop(oldest, None)

    def ticket_reopened(self, ticket_id: str) -> None:
        """A reopened ticket is open again: no longer a candidate for forgetting."""
        self.resolved_order.pop(ticket_id, None)

    def expire(self, now: float) -> None:
        """Forget waiting contacts and callbacks silent for a day."""
        horizon = now - MAX_WAITING_AGE_S
        for live in self.queues.values():
            stale = [cid for cid, w in live.waiting.items() if w.enqueued < horizon]
            for cid in stale:
                del live.waiting[cid]
            old = [cid for cid, ts in live.callbacks.items() if ts < horizon]
            for cid in old:
                del live.callbacks[cid]

    def queue_live(self, name: str, now: float) -> dict[str, float | int | None]:
        """Live KPIs of one queue at `now` (a read: an unknown queue is not created)."""
        live = self.queues.get(name) or QueueLive()
        snap = live.snapshot
        if snap is not None:
            waiting = snap.waiting
            oldest = (snap.oldest_wait_s + max(0.0, now - snap.ts)
                      if snap.oldest_wait_s is not None and waiting else 0.0)
            agents: dict[str, int] = snap.agents
        else:
            waiting = len(live.waiting)
            oldest = (max(0.0, now - min(w.enqueued for w in live.waiting.values()))
                      if waiting else 0.0)
            agents = live.agents
        out: dict[str, float | int | None] = {"waiting": waiting, "oldest_wait_s": round(oldest, 3)}
        out.update(agent_counts(agents))
        out["callbacks_pending"] = len(live.callbacks)
        return out

    def agents_total(self, queues: set[str] | None = None) -> dict[str, int]:
        """Distinct agents by state, across all queues or those serving any of `queues`."""
        states: Counter[str] = Counter()
        for agent in self.agents.values():
            if queues is None or queues.intersection(agent.queues):
                states[agent.state] += 1
        return agent_counts(states)

    def ticket_live(self, now: float, at_risk_s: float) -> dict[str | None, dict[str, float]]:
        """Backlog, at-risk, overdue and oldest open ticket, per queue (None: no queue)."""
        out: dict[str | None, dict[str, float]] = {}
        for ticket in self.tickets.values():
            if ticket.resolved is not None:
                continue
            block = out.setdefault(ticket.queue, {"tickets_open": 0, "tickets_pending": 0,
                                                  "tickets_at_risk": 0,
                                                  "tickets_overdue": 0, "oldest_ticket_s": 0.0})
            block["tickets_open"] += 1
            if ticket.status != "open":
                block["tickets_pending"] += 1
            if ticket.due is not None:
                if ticket.due <= now:
                    block["tickets_overdue"] += 1
                elif ticket.due - now <= at_risk_s:
                    block["tickets_at_risk"] += 1
            if ticket.created is not None:
                block["oldest_ticket_s"] = max(block["oldest_ticket_s"],
                                               round(now - ticket.created, 3))
        return out


def agent_counts(states: dict[str, int] | Counter[str]) -> dict[str, int]:
    """Agent counts under their KPI names; staffed means logged in (not offline)."""
    out = {f"agents_{s}": int(states.get(s, 0)) for s in AGENT_STATES}
    out["agents_staffed"] = sum(out[f"agents_{s}"] for s in AGENT_STATES if s != "offline")
    return out
