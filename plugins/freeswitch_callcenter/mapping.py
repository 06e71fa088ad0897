"""mod_callcenter events and list tables mapped to canonical events, over a mirror of the queues."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

Out = list[dict[str, Any]]
# Member rows in these states still wait for an agent (Trying: an agent is being offered).
WAITING_STATES = frozenset({"Waiting", "Trying", "Unknown"})


def agent_state(status: str, state: str) -> str:
    """The canonical agent state for mod_callcenter's (status, state) pair."""
    if status == "Logged Out":
        return "offline"
    if status == "On Break":
        return "away"
    if state in ("Receiving", "In a queue call", "Reserved"):
        return "busy"
    if state == "Idle":
        return "away"  # logged in but taking no calls
    return "available"  # Waiting (mod_callcenter reports wrap-up as Waiting too)


def agent_reason(status: str, state: str) -> str | None:
    """Why an agent is away, in mod_callcenter's words: its status (On Break) or state (Idle)."""
    if agent_state(status, state) != "away":
        return None
    return (status if status == "On Break" else state)[:128]


def _epoch(value: Any) -> float | None:
    """Epoch seconds from a header or table cell; None when absent, zero or not a number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


@dataclass
class Agent:
    """An agent as mod_callcenter last described it."""

    status: str = "Logged Out"
    state: str = "Waiting"
    queues: set[str] = field(default_factory=set)


@dataclass
class Mirror:
    """Who waits in which queue and each agent's status, as the source last knew it."""

    # The core takes a queue's live values from its latest queue.snapshot, so the source sends
    # one built from this mirror whenever it changes; a reconnect rebuilds it from the lists.

    rename: dict[str, str] = field(default_factory=dict)
    waiting: dict[str, dict[str, float]] = field(default_factory=dict)  # queue -> uuid -> joined
    agents: dict[str, Agent] = field(default_factory=dict)
    followed: set[str] = field(default_factory=set)  # queues listed at the last (re)connect

    def name(self, queue: str) -> str:
        """The wallboard name of a mod_callcenter queue."""
        return self.rename.get(queue, queue)

    def snapshot(self, queue: str, now: float) -> dict[str, Any]:
        """A queue.snapshot event of one queue from the mirror."""
        members = self.waiting.get(queue, {})
        states = Counter(agent_state(a.status, a.state) for a in self.agents.values()
                         if queue in a.queues)
        oldest = max(0.0, now - min(members.values())) if members else None
        return {"type": "queue.snapshot", "ts": now, "queue": self.name(queue),
                "waiting": len(members), "oldest_wait_s": oldest, "agents": dict(states)}

    def agent_event(self, name: str, ts: float, event_id: str | None) -> dict[str, Any]:
        """An agent.state event for one agent as the mirror has it."""
        agent = self.agents[name]
        out: dict[str, Any] = {"type": "agent.state", "ts": ts, "agent": name,
                               "state": agent_state(agent.status, agent.state)}
        reason = agent_reason(agent.status, agent.state)
        if reason:  # normalised by the site's agents.reasons map (e.g. "On Break": break)
            out["reason"] = reason
        if event_id is not None:
            out["id"] = event_id
        if agent.queues:
            out["queues"] = sorted(self.name(q) for q in agent.queues)
        return out

    # -- snapshot on (re)connect -----------------------------------------------------------

    def rebuild(self, members: dict[str, list[dict[str, str]]],
                agents: dict[str, list[dict[str, str]]], now: float) -> Out:
        """Replace the mirror with the list tables; return the events that state it."""
        # Contact events carry the same ids as the live events they stand for, so a call
        # already reported before the reconnect is counted once (the core drops a repeated id).
        self.waiting = {queue: {} for queue in members}
        self.followed = set(members)
        self.agents = {}
        out: Out = []
        for queue, rows in members.items():
            for row in rows:
                out += self._member_row(queue, row)
        for queue, rows in agents.items():
            for row in rows:
                name = row.get("name")
                if not name:
                    continue
                agent = self.agents.setdefault(name, Agent())
                agent.status = row.get("status", agent.status)
                agent.state = row.get("state", agent.state)
                agent.queues.add(queue)
        out += [self.agent_event(name, now, None) for name in sorted(self.agents)]
        out += [self.snapshot(queue, now) for queue in members]
        return out

    def _member_row(self, queue: str, row: dict[str, str]) -> Out:
        uuid = row.get("uuid")
        joined = _epoch(row.get("joined_epoch"))
        if not uuid or joined is None:
            return []
        name = self.name(queue)
        out: Out = [_contact("contact.queued", uuid, "queued", joined, name)]
        state = row.get("state", "")
        bridged = _epoch(row.get("bridge_epoch"))
        abandoned = _epoch(row.get("abandoned_epoch"))
        if state == "Answered" and bridged is not None:
            out.append(_contact("contact.answered", uuid, "answered", bridged, name,
                                wait_s=max(0.0, bridged - joined),
                                agent=row.get("serving_agent") or None))
        elif state == "Abandoned" and abandoned is not None:
            out.append(_contact("contact.abandoned", uuid, "abandoned", abandoned, name,
                                wait_s=max(0.0, abandoned - joined)))
        elif state in WAITING_STATES:
            self.waiting[queue][uuid] = joined
        return out

    # -- live events -----------------------------------------------------------------------

    def apply(self, event: dict[str, Any], now: float) -> Out:
        """Canonical events for one callcenter::info event; [] for those not counted."""
        action = event.get("CC-Action")
        ts = _epoch(event.get("Event-Date-Timestamp"))
        ts = ts / 1e6 if ts is not None else now  # FreeSWITCH stamps events in microseconds
        if action in ("agent-status-change", "agent-state-change"):
            return self._agent(event, action, ts)
        queue, uuid = event.get("CC-Queue"), event.get("CC-Member-UUID")
        if not isinstance(queue, str) or not isinstance(uuid, str) or not uuid:
            return []
        if queue not in self.followed:
            return []  # a queue the config does not ask for
        if action in ("member-queue-start", "member-queue-resume"):
            joined = _epoch(event.get("CC-Member-Joined-Time")) or ts
            self.waiting.setdefault(queue, {})[uuid] = joined
            # A resumed member is a new offer after it left: its own id, not the first one's.
            tag = "queued" if action == "member-queue-start" else f"resumed:{joined:.0f}"
            return [_contact("contact.queued", uuid, tag, joined, self.name(queue)),
                    self.snapshot(queue, now)]
        if action == "bridge-agent-start":
            self.waiting.get(queue, {}).pop(uuid, None)
            return [*self._answered(event, queue, uuid, ts), self.snapshot(queue, now)]
        if action == "member-queue-end":
            self.waiting.get(queue, {}).pop(uuid, None)
            return [*self._ended(event, queue, uuid, ts), self.snapshot(queue, now)]
        return []

    def _answered(self, event: dict[str, Any], queue: str, uuid: str, ts: float) -> Out:
        answered = _epoch(event.get("CC-Agent-Answered-Time")) or ts
        joined = _epoch(event.get("CC-Member-Joined-Time"))
        extra: dict[str, Any] = {"agent": event.get("CC-Agent") or None}
        if joined is not None:
            extra["wait_s"] = max(0.0, answered - joined)
        return [_contact("contact.answered", uuid, "answered", answered, self.name(queue),
                         **extra)]

    def _ended(self, event: dict[str, Any], queue: str, uuid: str, ts: float) -> Out:
        left = _epoch(event.get("CC-Member-Leaving-Time")) or ts
        joined = _epoch(event.get("CC-Member-Joined-Time"))
        name = self.name(queue)
        if event.get("CC-Cause") == "Terminated":
            # Also the answer, under the same id as bridge-agent-start's: if we missed that
            # event (e.g. while reconnecting) the call is still counted as answered, once.
            out = self._answered(event, queue, uuid, ts)
            answered = out[0]["ts"]
            out.append(_contact("contact.ended", uuid, "ended", left, name,
                                agent=event.get("CC-Agent") or None,
                                talk_s=max(0.0, left - answered)))
            return out
        extra: dict[str, Any] = {}
        if joined is not None:
            extra["wait_s"] = max(0.0, left - joined)
        return [_contact("contact.abandoned", uuid, "abandoned", left, name, **extra)]

    def _agent(self, event: dict[str, Any], action: str, ts: float) -> Out:
        name = event.get("CC-Agent")
        if not isinstance(name, str) or not name:
            return []
        agent = self.agents.setdefault(name, Agent())
        if action == "agent-status-change":
            value = event.get("CC-Agent-Status")
            if not isinstance(value, str):
                return []
            agent.status = value
        else:
            value = event.get("CC-Agent-State")
            if not isinstance(value, str):
                return []
            agent.state = value
        micros = event.get("Event-Date-Timestamp", f"{ts:.6f}")
        out = [self.agent_event(name, ts, f"{name}:{action}:{micros}")]
        out += [self.snapshot(queue, ts) for queue in sorted(agent.queues)]
        return out


def _contact(kind: str, uuid: str, tag: str, ts: float, queue: str, **extra: Any
             ) -> dict[str, Any]:
    """A contact event whose id is the member's UUID and what happened to it."""
    out = {"type": kind, "id": f"{uuid}:{tag}", "ts": ts, "queue": queue, "contact_id": uuid}
    out.update({key: value for key, value in extra.items() if value is not None})
    return out
