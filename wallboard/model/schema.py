"""The canonical event model: its types, their fields and the Event record."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal, get_args

CHANNELS = frozenset({"voice", "chat", "email", "messaging", "social", "video", "ticket", "other"})
# The Literal is the one list: config models type fields with it, AGENT_STATES iterates it.
AgentState = Literal["available", "busy", "wrapup", "away", "offline"]
AGENT_STATES: tuple[AgentState, ...] = get_args(AgentState)
SURVEY_KINDS = frozenset({"csat", "nps", "ces"})

CONTACT_QUEUED = "contact.queued"
CONTACT_ANSWERED = "contact.answered"
CONTACT_ABANDONED = "contact.abandoned"
CONTACT_ENDED = "contact.ended"
AGENT_STATE = "agent.state"
TICKET_CREATED = "ticket.created"
TICKET_FIRST_RESPONSE = "ticket.first_response"
TICKET_RESOLVED = "ticket.resolved"
TICKET_REOPENED = "ticket.reopened"
TICKET_SLA_BREACHED = "ticket.sla_breached"
SURVEY_RESPONSE = "survey.response"
SURVEY_RETRACTED = "survey.retracted"
QUEUE_SNAPSHOT = "queue.snapshot"
CONTACT_TRANSFERRED = "contact.transferred"
CALLBACK_REQUESTED = "callback.requested"
CALLBACK_COMPLETED = "callback.completed"
TICKET_STATUS = "ticket.status"
# A ticket's working status while unresolved: pending waits on the requester, hold on a third party.
TICKET_STATUSES = ("open", "pending", "hold")

# Per type: extra fields as (name, kind, required). Kinds: str (a name), num (a duration),
# count, score, list (of names), counts (agents by state), ts (the window of `ts`), due.
_NUM, _STR, _SCORE, _LIST, _COUNTS, _TS = "num", "str", "score", "list", "counts", "ts"
_COUNT, _DUE = "count", "due"
_TYPE_FIELDS: dict[str, tuple[tuple[str, str, bool], ...]] = {
    CONTACT_QUEUED: (("entered_ts", _TS, False),),
    CONTACT_ANSWERED: (("wait_s", _NUM, False),),
    CONTACT_ABANDONED: (("wait_s", _NUM, False),),
    CONTACT_ENDED: (("talk_s", _NUM, False), ("hold_s", _NUM, False), ("wrap_s", _NUM, False)),
    CONTACT_TRANSFERRED: (("to_queue", _STR, False), ("wait_s", _NUM, False)),
    CALLBACK_REQUESTED: (("wait_s", _NUM, False), ("promise_s", _NUM, False)),
    CALLBACK_COMPLETED: (),
    AGENT_STATE: (("state", _STR, True), ("reason", _STR, False), ("queues", _LIST, False)),
    TICKET_CREATED: (("due_ts", _DUE, False),),
    TICKET_FIRST_RESPONSE: (),
    TICKET_RESOLVED: (),
    TICKET_REOPENED: (),
    TICKET_SLA_BREACHED: (("metric", _STR, False),),
    TICKET_STATUS: (("status", _STR, True),),
    SURVEY_RESPONSE: (
        ("kind", _STR, True),
        ("score", _SCORE, True),
        ("scale_min", _SCORE, False),
        ("scale_max", _SCORE, False),
        ("response_id", _STR, False),
    ),
    SURVEY_RETRACTED: (("response_id", _STR, True),),
    QUEUE_SNAPSHOT: (
        ("waiting", _COUNT, True),
        ("oldest_wait_s", _NUM, False),
        ("agents", _COUNTS, False),
    ),
}
EVENT_TYPES = frozenset(_TYPE_FIELDS)
TICKET_TYPES = frozenset(t for t in _TYPE_FIELDS if t.startswith("ticket."))
# The module's own type strings, so handlers can compare with `is` cheaply.
_TYPE_CANON = {t: t for t in _TYPE_FIELDS}
# Events that must say which queue they belong to.
_CONTACT_LEG = frozenset({CONTACT_QUEUED, CONTACT_ANSWERED, CONTACT_ABANDONED, CONTACT_ENDED,
                          CONTACT_TRANSFERRED, CALLBACK_REQUESTED, CALLBACK_COMPLETED})
_NEEDS_QUEUE = _CONTACT_LEG | {QUEUE_SNAPSHOT}
_NEEDS_CONTACT = frozenset(
    _CONTACT_LEG
    | {TICKET_CREATED, TICKET_FIRST_RESPONSE, TICKET_RESOLVED, TICKET_REOPENED}
    | {TICKET_SLA_BREACHED, TICKET_STATUS}
)
_COMMON_STR = ("id", "queue", "contact_id", "agent", "team")
_KNOWN_KEYS = frozenset(
    {"type", "ts", "source", "channel", "priority", *_COMMON_STR}
    | {name for spec in _TYPE_FIELDS.values() for name, _, _ in spec}
)
_DEFAULT_SCALES = {"csat": (1.0, 5.0), "nps": (0.0, 10.0), "ces": (1.0, 7.0)}


def check_channel(value: str) -> str:
    """Return a known channel name, or raise ValueError listing the known ones."""
    if value not in CHANNELS:
        raise ValueError(f"must be one of {', '.join(sorted(CHANNELS))}")
    return value


@dataclass
class Event:
    """One canonical event; only the fields of its type are set."""

    # Not slotted: unset fields fall back to the class defaults, so the parser can build an
    # event by handing it the dict of the fields it validated (a quarter of the cost of
    # __init__ with 29 keyword arguments). Events are short-lived; memory is not at stake.

    type: str
    ts: float
    id: str | None = None
    source: str | None = None
    queue: str | None = None
    channel: str | None = None
    contact_id: str | None = None
    agent: str | None = None
    team: str | None = None
    priority: int | None = None
    wait_s: float | None = None
    talk_s: float | None = None
    hold_s: float | None = None
    wrap_s: float | None = None
    state: str | None = None
    reason: str | None = None
    queues: list[str] | None = None
    due_ts: float | None = None
    metric: str | None = None
    kind: str | None = None
    score: float | None = None
    scale_min: float | None = None
    scale_max: float | None = None
    entered_ts: float | None = None
    to_queue: str | None = None
    promise_s: float | None = None
    waiting: float | None = None
    oldest_wait_s: float | None = None
    agents: dict[str, int] | None = field(default=None)
    status: str | None = None
    response_id: str | None = None  # last: journals written before it decode positionally

    def to_dict(self) -> dict[str, Any]:
        """Return the event as a JSON-ready dict without unset fields."""
        return {k: getattr(self, k) for k in _FIELD_NAMES if getattr(self, k) is not None}


_FIELD_NAMES = tuple(f.name for f in fields(Event))
_new_event = object.__new__


def event_from_fields(fields: dict[str, Any]) -> Event:
    """An Event from the fields of one already validated (another process's `vars(event)`)."""
    event = _new_event(Event)
    event.__dict__ = fields
    return event


