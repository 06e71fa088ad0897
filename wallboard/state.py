"""Live state: who is waiting since when, agent states, open tickets, queue snapshots."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from wallboard.events import AGENT_STATES, Event

# A contact we never hear about again must not pin "longest wait" forever.
MAX_WAITING_AGE_S = 24 * 3600


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

    waiting: dict[str, float] = field(default_factory=dict)  # contact_id -> enqueue ts
    agents: Counter[str] = field(default_factory=Counter)
    tickets_open: int = 0
    snapshot: QueueSnapshot | None = None
    sources: set[str] = field(default_factory=set)


@dataclass(slots=True)
class AgentLive:
    """One agent's current state and the queues it serves."""

    state: str
    queues: tuple[str, ...]
    team: str | None
    since: float


class LiveState:
    """Current contact-center state, updated by events, read by KPIs."""

    def __init__(self) -> None:
        self.queues: dict[str, QueueLive] = {}
        self.agents: dict[str, AgentLive] = {}
        self.open_tickets: dict[str, str | None] = {}  # ticket id -> queue

    def queue(self, name: str) -> QueueLive:
        """The live record of a queue, created on first use."""
        live = self.queues.get(name)
        if live is None:
            live = self.queues[name] = QueueLive()
        return live

    def contact_queued(self, event: Event) -> None:
        """A contact starts waiting."""
        self.queue(event.queue).waiting[event.contact_id] = event.ts  # type: ignore[arg-type,index]

    def contact_left_queue(self, event: Event) -> float:
        """A contact stops waiting (answered or abandoned); returns its wait in seconds."""
        queued_at = self.queue(event.queue).waiting.pop(event.contact_id, None)  # type: ignore[arg-type]
        if event.wait_s is not None:
            return event.wait_s
        # Without a queued event or a wait from the source, the wait is unknown: count it as 0.
        return max(0.0, event.ts - queued_at) if queued_at is not None else 0.0

    def agent_state(self, event: Event) -> None:
        """An agent changes state or queue membership."""
        previous = self.agents.get(event.agent)  # type: ignore[arg-type]
        if event.queues is not None:
            queues = tuple(event.queues)
        elif event.queue is not None:
            queues = (event.queue,)
        else:
            queues = previous.queues if previous else ()
        if previous is not None:
            if event.ts < previous.since:
                return  # an older transition must not undo a newer one
            for name in previous.queues:
                self.queue(name).agents[previous.state] -= 1
        for name in queues:
            self.queue(name).agents[event.state] += 1  # type: ignore[index]
        team = event.team if event.team is not None else (previous.team if previous else None)
        self.agents[event.agent] = AgentLive(event.state, queues, team, event.ts)  # type: ignore

    def ticket_opened(self, ticket_id: str, queue: str | None) -> None:
        """A ticket enters (or re-enters) the backlog."""
        if ticket_id in self.open_tickets:
            return
        self.open_tickets[ticket_id] = queue
        if queue is not None:
            self.queue(queue).tickets_open += 1

    def ticket_closed(self, ticket_id: str) -> None:
        """A ticket leaves the backlog."""
        if ticket_id not in self.open_tickets:
            return
        queue = self.open_tickets.pop(ticket_id)
        if queue is not None:
            self.queue(queue).tickets_open -= 1

    def queue_snapshot(self, event: Event) -> None:
        """Replace a queue's live counts with what a snapshot-only source reports."""
        self.queue(event.queue).snapshot = QueueSnapshot(  # type: ignore[arg-type]
            event.ts, int(event.waiting or 0), event.oldest_wait_s, dict(event.agents or {})
        )

    def expire(self, now: float) -> None:
        """Forget waiting contacts we have not heard about for a day."""
        horizon = now - MAX_WAITING_AGE_S
        for live in self.queues.values():
            stale = [cid for cid, ts in live.waiting.items() if ts < horizon]
            for cid in stale:
                del live.waiting[cid]

    def queue_live(self, name: str, now: float) -> dict[str, float | int | None]:
        """Live KPIs of one queue at `now`."""
        live = self.queue(name)
        snap = live.snapshot
        if snap is not None:
            waiting = snap.waiting
            oldest = (snap.oldest_wait_s + max(0.0, now - snap.ts)
                      if snap.oldest_wait_s is not None and waiting else 0.0)
            agents: dict[str, int] = snap.agents
        else:
            waiting = len(live.waiting)
            oldest = max(0.0, now - min(live.waiting.values())) if waiting else 0.0
            agents = live.agents
        out: dict[str, float | int | None] = {"waiting": waiting, "oldest_wait_s": round(oldest, 3)}
        out.update(agent_counts(agents))
        out["tickets_open"] = live.tickets_open
        return out

    def agents_total(self, queues: set[str] | None = None) -> dict[str, int]:
        """Distinct agents by state, across all queues or those serving any of `queues`."""
        states: Counter[str] = Counter()
        for agent in self.agents.values():
            if queues is None or queues.intersection(agent.queues):
                states[agent.state] += 1
        return agent_counts(states)


def agent_counts(states: dict[str, int] | Counter[str]) -> dict[str, int]:
    """Agent counts under their KPI names; staffed means logged in (not offline)."""
    out = {f"agents_{s}": int(states.get(s, 0)) for s in AGENT_STATES}
    out["agents_staffed"] = sum(out[f"agents_{s}"] for s in AGENT_STATES if s != "offline")
    return out
