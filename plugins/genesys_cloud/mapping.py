"""Genesys Cloud notifications and observations to canonical events, over a live model."""

from __future__ import annotations

import re
from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wallboard.kit import parse_time

Event = dict[str, Any]
# Genesys ids are UUIDs; anything else that is short and printable is accepted, the rest is
# refused so that a hostile payload cannot push an over-long or control-laden id into events.
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
# Finished conversations remembered, so that a late repeat of their last update emits nothing.
MAX_FINISHED = 20_000
MAX_PARTICIPANTS = 200  # a conversation with more legs than this is refused as hostile
BUSY_ROUTING = frozenset({"INTERACTING", "COMMUNICATING"})


class BadMessage(ValueError):
    """A notification whose body does not have the documented shape.

    `reason` is one of a few fixed words (the label of wallboard_source_skipped_total); the
    message says more, for the log.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def safe_id(value: Any) -> str | None:
    """The id when it is a bounded printable token, else None."""
    return value if isinstance(value, str) and SAFE_ID.match(value) else None


def as_dict(value: Any) -> dict[str, Any]:
    """The value when it is an object, else an empty one (hostile shapes read as absent)."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """The value when it is a list, else an empty one."""
    return value if isinstance(value, list) else []


def when(value: Any, now: float) -> float | None:
    """A Genesys time (`2026-12-07T10:00:00.000Z`) as epoch seconds, never after `now`."""
    ts = parse_time(value)
    return None if ts is None else min(ts, now)


@dataclass
class User:
    """A configured user: board name, board queues, and the last presence and routing seen."""

    name: str
    queues: tuple[str, ...]
    presence: str | None = None
    routing: str | None = None
    emitted: tuple[str, str | None] | None = None

    @property
    def state(self) -> tuple[str, str | None] | None:
        """(canonical state, reason) from presence and routing status; None while unknown."""
        presence, routing = self.presence, self.routing
        if presence is None and routing is None:
            return None
        if presence == "OFFLINE":
            return "offline", None
        if routing in BUSY_ROUTING:
            return "busy", None  # also off queue while finishing a call
        if presence in (None, "ON_QUEUE"):
            if routing == "IDLE":
                return "available", None
            if routing == "NOT_RESPONDING":
                return "away", "not_responding"
            return "away", None
        return "away", presence.lower()  # Available, Break, Meal, Meeting... are off queue


@dataclass
class Conversation:
    """What was already emitted for one conversation in one queue."""

    done: set[str] = field(default_factory=set)


def _participants(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    parts = body.get("participants")
    if not isinstance(parts, list) or len(parts) > MAX_PARTICIPANTS:
        raise BadMessage("bad_conversation", "participants is not a list of at most "
                         f"{MAX_PARTICIPANTS} participants")
    return [p for p in parts if isinstance(p, dict)]


def _acd_leg(parts: list[dict[str, Any]], queue_id: str, since: float,
             now: float) -> dict[str, Any] | None:
    """Another queue's acd leg that connected at or after `since`, if any."""
    for p in parts:
        if p.get("purpose") != "acd" or p.get("queueId") in (None, queue_id):
            continue
        connected = when(p.get("connectedTime"), now)
        if connected is not None and connected >= since:
            return p
    return None


class Mapper:
    """Keeps waiting contacts and user states as Genesys reports them; emits what changed."""

    def __init__(self, queues: Mapping[str, str], users: Mapping[str, tuple[str, list[str]]],
                 ) -> None:
        self.queues = dict(queues)  # Genesys queue id -> board queue
        self.users = {uid: User(name, tuple(sorted({self.queues[q] for q in qs})))
                      for uid, (name, qs) in users.items()}
        self.waiting: dict[str, dict[str, float]] = {q: {} for q in self.queues.values()}
        self.convs: OrderedDict[tuple[str, str], Conversation] = OrderedDict()
        self.observed_agents: dict[str, dict[str, int]] = {}  # queues without configured users

    # -- queue snapshots ----------------------------------------------------------------------

    def queue_snapshot(self, queue: str, now: float) -> Event:
        """The queue's waiting contacts and its agents by state, as last reported."""
        waits = self.waiting.get(queue, {})
        members = [u.emitted[0] for u in self.users.values()
                   if queue in u.queues and u.emitted is not None]
        agents = dict(Counter(members)) if members else self.observed_agents.get(queue, {})
        event: Event = {"type": "queue.snapshot", "ts": now, "queue": queue,
                        "waiting": len(waits), "agents": agents}
        if waits:
            event["oldest_wait_s"] = max(0.0, now - min(waits.values()))
        return event

    # -- conversations ------------------------------------------------------------------------

    def conversation(self, queue_id: str, body: Any, now: float) -> list[Event]:
        """Events for one `v2.routing.queues.{id}.conversations` body (the whole conversation)."""
        queue = self.queues.get(queue_id)
        if queue is None:
            return []
        if not isinstance(body, dict):
            raise BadMessage("bad_conversation", "eventBody is not an object")
        cid = safe_id(body.get("id"))
        if cid is None:
            raise BadMessage("bad_conversation", "conversation id missing or not a bounded token")
        parts = _participants(body)
        acd = [p for p in parts if p.get("purpose") == "acd" and p.get("queueId") == queue_id]
        queued_ts = next((t for p in acd if (t := when(p.get("connectedTime"), now))), None)
        if queued_ts is None:
            return []  # not yet in this queue (or an outbound leg): nothing to count
        key = (cid, queue)
        conv = self.convs.get(key)
        if conv is None:
            conv = self.convs[key] = Conversation()
            while len(self.convs) > MAX_FINISHED:
                self.convs.popitem(last=False)
        base = {"queue": queue, "contact_id": cid}
        events: list[Event] = []

        def once(kind: str, ts: float, **fields: Any) -> None:
            if kind not in conv.done:
                conv.done.add(kind)
                events.append({"type": f"contact.{kind}", "id": f"{cid}@{queue}:{kind}",
                               "ts": ts, **base, **fields})

        once("queued", queued_ts)
        waits = self.waiting.setdefault(queue, {})
        agent = next((p for p in parts if p.get("purpose") == "agent"
                      and p.get("queueId") == queue_id and when(p.get("connectedTime"), now)),
                     None)
        left = when(acd[-1].get("endTime"), now)
        if agent is not None:
            answered = when(agent.get("connectedTime"), now) or now
            name = self._agent_name(agent.get("userId"))
            who = {"agent": name} if name else {}
            once("answered", answered, wait_s=max(0.0, answered - queued_ts), **who)
            ended = when(agent.get("endTime"), now)
            if ended is not None:
                once("ended", ended, talk_s=max(0.0, ended - answered), **who)
                # Passed on by the agent: another queue's acd leg began as the agent's ended
                # (a blind or consult transfer to a queue); that queue counts its own join.
                onward = _acd_leg(parts, queue_id, since=ended - 1.0, now=now)
                if onward is not None:
                    target = self.queues.get(str(onward.get("queueId")))
                    once("transferred", ended, **who, **({"to_queue": target} if target else {}))
        elif left is not None:
            moved = next((p for p in parts if p.get("purpose") == "acd"
                          and p.get("queueId") not in (None, queue_id)
                          and when(p.get("connectedTime"), now)), None)
            customer_gone = any(p.get("purpose") == "customer" and p.get("endTime")
                                for p in parts)
            if moved is not None:
                target = self.queues.get(str(moved.get("queueId")))
                extra = {"to_queue": target} if target else {}
                once("transferred", left, wait_s=max(0.0, left - queued_ts), **extra)
            elif customer_gone:
                once("abandoned", left, wait_s=max(0.0, left - queued_ts))
        in_queue = left is None and agent is None
        changed = (cid in waits) != in_queue
        if in_queue:
            waits[cid] = queued_ts
        else:
            waits.pop(cid, None)
        if events or changed:
            events.append(self.queue_snapshot(queue, now))
        return events

    def _agent_name(self, user_id: Any) -> str | None:
        uid = safe_id(user_id)
        if uid is None:
            return None
        user = self.users.get(uid)
        return user.name if user is not None else uid

    # -- users --------------------------------------------------------------------------------

    def user_update(self, user_id: str, now: float, *, presence: str | None = None,
                    routing: str | None = None) -> list[Event]:
        """agent.state (and the snapshots of its queues) when a user's state changed."""
        user = self.users.get(user_id)
        if user is None:
            return []
        if presence is not None:
            user.presence = presence.strip().upper().replace(" ", "_")[:32]
        if routing is not None:
            user.routing = routing.strip().upper()[:32]
        state = user.state
        if state is None or state == user.emitted:
            return []
        user.emitted = state
        event: Event = {"type": "agent.state", "ts": now, "agent": user.name,
                        "state": state[0], "queues": list(user.queues)}
        if state[1]:
            event["reason"] = state[1]
        return [event, *(self.queue_snapshot(q, now) for q in user.queues)]

    def routing_status(self, user_id: str, body: Any, now: float) -> list[Event]:
        """A `v2.users.{id}.routingStatus` body: {"routingStatus": {"status": ...}}."""
        status = body.get("routingStatus") if isinstance(body, dict) else None
        value = status.get("status") if isinstance(status, dict) else None
        if not isinstance(value, str):
            raise BadMessage("bad_user_status", "routingStatus.status missing")
        return self.user_update(user_id, now, routing=value)

    def presence(self, user_id: str, body: Any, now: float) -> list[Event]:
        """A `v2.users.{id}.presence` body: {"presenceDefinition": {"systemPresence": ...}}."""
        definition = body.get("presenceDefinition") if isinstance(body, dict) else None
        value = definition.get("systemPresence") if isinstance(definition, dict) else None
        if not isinstance(value, str):
            raise BadMessage("bad_user_status",
                             "presenceDefinition.systemPresence missing")
        return self.user_update(user_id, now, presence=value)

    # -- the snapshot on connect --------------------------------------------------------------

    def apply_users(self, entities: Any, now: float) -> list[Event]:
        """GET /api/v2/users?expand=presence,routingStatus: every configured user's state."""
        events: list[Event] = []
        for entity in map(as_dict, as_list(entities)):
            uid = safe_id(entity.get("id"))
            if uid is None or uid not in self.users:
                continue
            presence = as_dict(as_dict(entity.get("presence")).get("presenceDefinition"))
            system = presence.get("systemPresence")
            status = as_dict(entity.get("routingStatus")).get("status")
            events += [e for e in self.user_update(
                uid, now, presence=system if isinstance(system, str) else None,
                routing=status if isinstance(status, str) else None)
                if e["type"] == "agent.state"]
        return events

    def apply_observations(self, results: Any, now: float) -> list[Event]:
        """A queue observations answer replaces the waiting contacts; events that say so."""
        waiting: dict[str, dict[str, float]] = {q: {} for q in self.queues.values()}
        observed: dict[str, Counter[str]] = {}
        events: list[Event] = []
        for result in map(as_dict, as_list(results)):
            queue = self.queues.get(str(as_dict(result.get("group")).get("queueId")))
            if queue is None:
                continue
            for item in map(as_dict, as_list(result.get("data"))):
                metric, count = item.get("metric"), as_dict(item.get("stats")).get("count")
                if metric == "oWaiting":
                    for obs in map(as_dict, as_list(item.get("observations"))):
                        cid = safe_id(obs.get("conversationId"))
                        since = when(obs.get("observationDate"), now) if cid else None
                        if cid is not None and since is not None:
                            waiting[queue][cid] = since
                elif metric in ("oOnQueueUsers", "oOffQueueUsers") and isinstance(count, int):
                    qualifier = str(item.get("qualifier") or "").upper()
                    state = ("away" if metric == "oOffQueueUsers" or qualifier == "NOT_RESPONDING"
                             else "available" if qualifier == "IDLE" else "busy")
                    observed.setdefault(queue, Counter())[state] += max(0, min(count, 100_000))
        for queue, contacts in waiting.items():
            for cid, since in contacts.items():
                if (cid, queue) not in self.convs:
                    # Joined while we were away (or before start): the id the live update
                    # would have had, so a join the journal already holds is a duplicate.
                    self.convs[(cid, queue)] = Conversation({"queued"})
                    events.append({"type": "contact.queued", "id": f"{cid}@{queue}:queued",
                                   "ts": since, "queue": queue, "contact_id": cid})
        self.waiting = waiting
        self.observed_agents = {q: dict(c) for q, c in observed.items()}
        return events + [self.queue_snapshot(q, now) for q in sorted(self.waiting)]
