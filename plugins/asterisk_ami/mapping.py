"""AMI queue events to canonical events, over a caller/member model that snapshots replace."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .protocol import Message

# Device states (ast_device_state): 4 INVALID and 5 UNAVAILABLE mean not logged in;
# 0 UNKNOWN and 1 NOT_INUSE are idle; the rest (in use, busy, ringing, on hold) are busy.
NOT_LOGGED_IN = frozenset({4, 5})
IDLE = frozenset({0, 1})
# Member events; Asterisk 11 spelled the pause event QueueMemberPaused.
MEMBER_EVENTS = frozenset({"QueueMemberStatus", "QueueMemberPause", "QueueMemberPaused",
                           "QueueMemberAdded", "QueueMemberPenalty", "QueueMemberRinginuse"})
_EPOCH_ID = re.compile(r"(\d{9,})\.\d+$")  # "1700000000.42", also "myhost-1700000000.42"

Event = dict[str, Any]


def _int(value: str | None, default: int | None = None) -> int | None:
    try:
        return int(value) if value else default
    except ValueError:
        return default


def _num(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def epoch_of(unique_id: str | None) -> float | None:
    """The channel's creation time encoded in an Asterisk Uniqueid/Linkedid, if it has one."""
    match = _EPOCH_ID.search(unique_id or "")
    return float(match.group(1)) if match else None


@dataclass
class Member:
    """One queue member (keyed by queue and interface, as Asterisk keys them)."""

    queue: str
    interface: str
    name: str
    status: int | None
    paused: bool
    reason: str | None

    @property
    def state(self) -> str:
        """The canonical state under QueueSummary's logged-in/available rule."""
        if self.status in NOT_LOGGED_IN:
            return "offline"
        if self.status is not None and self.status not in IDLE:
            return "busy"
        return "away" if self.paused else "available"


def member_from(msg: Message, queue: str) -> Member | None:
    """A member from a QueueMember item (Name/Location) or an event (MemberName/Interface)."""
    interface = msg.first("Interface", "Location", "StateInterface")
    if not interface:
        return None
    name = msg.first("MemberName", "Name") or interface
    # Asterisk <=16 sends the pause reason as Reason on QueueMemberPause; 18+ as PausedReason.
    # The reason field holds 128 characters: a longer one is cut, never the event refused.
    reason = (msg.first("PausedReason", "Reason") or "")[:128] or None
    return Member(queue, interface, name, _int(msg.get("Status")),
                  msg.get("Paused") == "1", reason)


@dataclass
class Caller:
    """A caller waiting in a queue, keyed by its channel's Uniqueid."""

    since: float


class Mapper:
    """Keeps callers and members as AMI reports them and turns changes into canonical events."""

    def __init__(self, queue_name: Callable[[str], str | None], entered_from: str = "none",
                 ) -> None:
        self.queue_name = queue_name
        self.entered_from = entered_from
        self.callers: dict[tuple[str, str], Caller] = {}
        self.members: dict[tuple[str, str], Member] = {}
        self.agents: dict[str, tuple[str, tuple[str, ...], str | None]] = {}  # last emitted

    # -- helpers ------------------------------------------------------------------------------

    def _queue(self, msg: Message) -> str | None:
        raw = msg.get("Queue")
        return self.queue_name(raw) if raw else None

    @staticmethod
    def _ts(msg: Message, now: float) -> float:
        stamp = _num(msg.get("Timestamp"))  # present with timestampevents=yes
        return stamp if stamp is not None else now

    def _entered(self, msg: Message) -> float | None:
        if self.entered_from == "linkedid":
            return epoch_of(msg.first("Linkedid", "Uniqueid"))
        if self.entered_from == "uniqueid":
            return epoch_of(msg.get("Uniqueid"))
        return None

    def _queued(self, queue: str, uid: str, ts: float, entered: float | None) -> Event:
        event: Event = {"type": "contact.queued", "id": f"{uid}@{queue}:queued", "ts": ts,
                        "queue": queue, "contact_id": uid}
        if entered is not None and entered <= ts:
            event["entered_ts"] = entered
        return event

    def queue_snapshot(self, queue: str, now: float) -> Event:
        """The queue's waiting callers and members by state, as AMI last told us."""
        waits = [c.since for (q, _), c in self.callers.items() if q == queue]
        agents = Counter(m.state for (q, _), m in self.members.items() if q == queue)
        event: Event = {"type": "queue.snapshot", "ts": now, "queue": queue,
                        "waiting": len(waits), "agents": dict(agents)}
        if waits:
            event["oldest_wait_s"] = max(0.0, now - min(waits))
        return event

    def agent_events(self, ts: float) -> list[Event]:
        """agent.state for every agent whose state or queues changed since last emitted."""
        by_agent: dict[str, list[Member]] = {}
        for member in self.members.values():
            by_agent.setdefault(member.name, []).append(member)
        events = []
        for agent in sorted(set(by_agent) | set(self.agents)):
            members = by_agent.get(agent, [])
            states = {m.state for m in members}
            # One state per agent: a call in any queue makes it busy; idle in any unpaused
            # queue makes it available; paused everywhere is away.
            state = next((s for s in ("busy", "available", "away") if s in states), "offline")
            queues = tuple(sorted({m.queue for m in members}))
            reason = next((m.reason for m in members if m.paused and m.reason), None)
            current = (state, queues, reason if state == "away" else None)
            if self.agents.get(agent) == current:
                continue
            self.agents[agent] = current
            event: Event = {"type": "agent.state", "ts": ts, "agent": agent, "state": state,
                            "queues": list(queues)}
            if current[2]:
                event["reason"] = current[2]
            events.append(event)
        for agent, (state, _, _) in list(self.agents.items()):
            if agent not in by_agent and state == "offline":
                del self.agents[agent]  # told offline; forget it
        return events

    # -- the snapshot -------------------------------------------------------------------------

    def apply_snapshot(self, items: Iterable[Message], now: float) -> list[Event]:
        """Replace callers and members with a QueueStatus answer; events that say so."""
        callers: dict[tuple[str, str], Caller] = {}
        members: dict[tuple[str, str], Member] = {}
        queues: set[str] = {q for q, _ in self.callers} | {q for q, _ in self.members}
        events: list[Event] = []
        for msg in items:
            queue = self._queue(msg)
            if queue is None:
                continue
            queues.add(queue)
            if msg.event == "QueueMember":
                member = member_from(msg, queue)
                if member is not None:
                    members[(queue, member.interface)] = member
            elif msg.event == "QueueEntry" and msg.get("Uniqueid"):
                uid = msg.get("Uniqueid") or ""
                wait = _num(msg.get("Wait")) or 0.0
                since = now - max(0.0, wait)
                callers[(queue, uid)] = Caller(since)
                if (queue, uid) not in self.callers:
                    # Joined while we were away (or at start). Its id is the one the live
                    # join would have had, so a join the core already counted is a duplicate.
                    events.append(self._queued(queue, uid, since, self._entered(msg)))
        self.callers, self.members = callers, members
        events += self.agent_events(now)
        events += [self.queue_snapshot(q, now) for q in sorted(queues)]
        return events

    # -- live events --------------------------------------------------------------------------

    def handle(self, msg: Message, now: float) -> list[Event]:
        """Canonical events for one asynchronous AMI event (none for the ones not counted)."""
        name = msg.event
        if name is None:
            return []
        queue = self._queue(msg)
        if queue is None:
            return []
        ts = self._ts(msg, now)
        if name in MEMBER_EVENTS or name == "QueueMemberRemoved":
            return self._member(msg, name, queue, ts)
        uid = msg.get("Uniqueid")
        if not uid:
            return []
        key = (queue, uid)
        events: list[Event] = []
        agent = msg.first("MemberName", "Interface")
        if name == "QueueCallerJoin":
            self.callers.setdefault(key, Caller(ts))
            events.append(self._queued(queue, uid, ts, self._entered(msg)))
        elif name == "QueueCallerLeave":
            self.callers.pop(key, None)
        elif name == "QueueCallerAbandon":
            caller = self.callers.pop(key, None)
            wait = _num(msg.get("HoldTime"))
            if wait is None:
                wait = ts - caller.since if caller else 0.0
            events.append({"type": "contact.abandoned", "id": f"{uid}@{queue}:abandoned",
                           "ts": ts, "queue": queue, "contact_id": uid, "wait_s": wait})
        elif name == "AgentConnect":
            caller = self.callers.pop(key, None)
            wait = _num(msg.get("HoldTime"))
            if wait is None:
                wait = ts - caller.since if caller else 0.0
            event: Event = {"type": "contact.answered", "id": f"{uid}@{queue}:answered",
                            "ts": ts, "queue": queue, "contact_id": uid, "wait_s": wait}
            if agent:
                event["agent"] = agent
            events.append(event)
        elif name == "AgentComplete":
            # Its HoldTime is the queue wait again, not time on hold: no hold_s is sent.
            event = {"type": "contact.ended", "id": f"{uid}@{queue}:ended", "ts": ts,
                     "queue": queue, "contact_id": uid, "talk_s": _num(msg.get("TalkTime")) or 0.0}
            if agent:
                event["agent"] = agent
            events.append(event)
            if msg.get("Reason") == "transfer":
                # An answered call passed on: a transfer; a receiving queue sends its own join.
                moved: Event = {"type": "contact.transferred", "id": f"{uid}@{queue}:transferred",
                                "ts": ts, "queue": queue, "contact_id": uid}
                if agent:
                    moved["agent"] = agent
                events.append(moved)
        else:
            return []  # AgentCalled, AgentRingNoAnswer, AgentDump: not counted
        if name in ("QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon", "AgentConnect"):
            events.append(self.queue_snapshot(queue, ts))
        return events

    def _member(self, msg: Message, name: str, queue: str, ts: float) -> list[Event]:
        member = member_from(msg, queue)
        if member is None:
            return []
        key = (queue, member.interface)
        if name == "QueueMemberRemoved":
            self.members.pop(key, None)
        else:
            known = self.members.get(key)
            if known is not None and msg.get("Status") is None:
                member.status = known.status  # older releases omit fields: keep what we knew
            if known is not None and msg.get("Paused") is None:
                member.paused, member.reason = known.paused, known.reason
            self.members[key] = member
        return [*self.agent_events(ts), self.queue_snapshot(queue, ts)]
