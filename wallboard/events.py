"""The canonical event model: the one contract between sources and the core."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, NamedTuple

CHANNELS = frozenset({"voice", "chat", "email", "messaging", "social", "video", "ticket", "other"})
AGENT_STATES = ("available", "busy", "wrapup", "away", "offline")
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

# Per type: extra fields as (name, kind, required). Kinds: str, num (>= 0), score, list, counts.
_NUM, _STR, _SCORE, _LIST, _COUNTS, _TS = "num", "str", "score", "list", "counts", "ts"
_TYPE_FIELDS: dict[str, tuple[tuple[str, str, bool], ...]] = {
    CONTACT_QUEUED: (("entered_ts", _TS, False),),
    CONTACT_ANSWERED: (("wait_s", _NUM, False),),
    CONTACT_ABANDONED: (("wait_s", _NUM, False),),
    CONTACT_ENDED: (("talk_s", _NUM, False), ("hold_s", _NUM, False), ("wrap_s", _NUM, False)),
    CONTACT_TRANSFERRED: (("to_queue", _STR, False), ("wait_s", _NUM, False)),
    CALLBACK_REQUESTED: (("wait_s", _NUM, False), ("promise_s", _NUM, False)),
    CALLBACK_COMPLETED: (),
    AGENT_STATE: (("state", _STR, True), ("reason", _STR, False), ("queues", _LIST, False)),
    TICKET_CREATED: (("due_ts", _TS, False),),
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
        ("waiting", _NUM, True),
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


class EventError(ValueError):
    """An event failed validation; `field` is the dotted path of the offending field."""

    def __init__(self, field: str, message: str, code: str = "bad_value") -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.code = code


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


def parse_ts(value: Any, field: str = "ts") -> float:
    """Parse an RFC 3339 string or epoch seconds into epoch seconds."""
    if isinstance(value, bool):
        raise EventError(field, "must be RFC 3339 text or epoch seconds, not a boolean")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise EventError(field, "epoch seconds must be a finite, non-negative number")
        return float(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise EventError(field, f"not an RFC 3339 timestamp: {value[:40]!r}") from None
        if parsed.tzinfo is None:
            raise EventError(field, "RFC 3339 timestamp needs a UTC offset or 'Z'")
        return parsed.timestamp()
    raise EventError(field, "must be RFC 3339 text or epoch seconds")


def _number(value: Any, field: str, minimum: float | None = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EventError(field, "must be a number")
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        raise EventError(field, "must be a finite number >= 0")
    return float(value)


def _text(value: Any, field: str) -> str:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # numeric ids from PBXs and helpdesks are common
    raise EventError(field, "must be a non-empty string")


def _extra(kind: str, value: Any, field: str) -> Any:
    if kind == _NUM:
        return _number(value, field)
    if kind == _TS:
        return parse_ts(value, field)
    if kind == _SCORE:
        return _number(value, field, minimum=None)
    if kind == _STR:
        return _text(value, field)
    if kind == _LIST:
        if not isinstance(value, list):
            raise EventError(field, "must be a list of strings")
        return [_text(v, f"{field}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, dict):
        raise EventError(field, "must be an object of counts")
    return {str(k): int(_number(v, f"{field}.{k}")) for k, v in value.items()}


# Per type, every key the fast path may meet and how to read it; None means "ignore the key"
# (type and source are set apart; fields of other types are tolerated, as in the full check).
_FAST_TYPES = frozenset(EVENT_TYPES - {SURVEY_RESPONSE, QUEUE_SNAPSHOT})
_FAST_SPECS: dict[str, dict[str, str | None]] = {
    etype: {**dict.fromkeys(_KNOWN_KEYS), **dict.fromkeys(_COMMON_STR, _STR),
            "ts": _TS, "channel": "channel", "priority": "priority",
            **{name: kind for name, kind, _ in spec}, "type": None, "source": None}
    for etype, spec in _TYPE_FIELDS.items() if etype in _FAST_TYPES
}
_FAST_REQUIRED = {
    etype: tuple({"ts", *(n for n, _, req in spec if req),
                  *(("queue",) if etype in _NEEDS_QUEUE else ()),
                  *(("contact_id",) if etype in _NEEDS_CONTACT else ()),
                  *(("agent",) if etype == AGENT_STATE else ())})
    for etype, spec in _TYPE_FIELDS.items() if etype in _FAST_TYPES
}
_AGENT_STATE_SET = frozenset(AGENT_STATES)
_UNKNOWN = "unknown"
_isfinite = math.isfinite


class _Plan(NamedTuple):
    """How to read one shape of event (its type and its keys, in order)."""

    strs: tuple[str, ...]
    nums: tuple[str, ...]
    times: tuple[str, ...]
    channel: bool
    drop: tuple[str, ...]


_PLANS: dict[tuple[str, ...], _Plan | None] = {}
_MAX_PLANS = 1024  # senders use a handful of shapes; a flood of odd ones is not cached


def _plan(etype: str, keys: tuple[str, ...]) -> _Plan | None:
    """The plan for a shape, or None when events of that shape need the full check."""
    spec = _FAST_SPECS[etype]
    if any(key not in spec for key in keys) or any(
            name not in keys for name in _FAST_REQUIRED[etype]):
        return None
    kinds = {key: spec[key] for key in keys}
    if any(kind in ("priority", _LIST, _COUNTS) for kind in kinds.values()):
        return None  # rare: left to the full check
    of = lambda wanted: tuple(k for k, kind in kinds.items() if kind == wanted)  # noqa: E731
    return _Plan(of(_STR), of(_NUM), of(_TS), "channel" in kinds,
                 tuple(k for k, kind in kinds.items() if kind is None and k != "type"))


def _fast(raw: dict[str, Any], etype: str, source: str | None) -> Event | None:
    """Build the Event of a plainly valid object; None sends it to the full check.

    Most traffic is valid and comes in a few shapes, so the keys are checked once per shape
    and the values once per event. This path only has to be right for valid input: on
    anything unusual it gives up, and the full check finds (and names) the problem.
    """
    shape = (etype, *raw)
    plan = _PLANS.get(shape, _UNKNOWN)
    if plan is _UNKNOWN:
        plan = _plan(etype, shape[1:])
        if len(_PLANS) < _MAX_PLANS:
            _PLANS[shape] = plan
    if plan is None:
        return None
    for key in plan.strs:
        value = raw[key]
        if value.__class__ is not str or not value:
            return None  # None, numbers and empty text: the full check decides
    values = raw.copy()
    for key in plan.nums:
        value = values[key]
        if (value.__class__ is not float and value.__class__ is not int) or not (
                _isfinite(value) and value >= 0):
            return None
        values[key] = float(value)
    for key in plan.times:
        value = values[key]
        cls = value.__class__
        if cls is str:
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                return None
            if parsed.tzinfo is None:
                return None
            values[key] = parsed.timestamp()
        elif (cls is float or cls is int) and _isfinite(value) and value >= 0:
            values[key] = float(value)
        else:
            return None
    if plan.channel and (values["channel"].__class__ is not str
                         or values["channel"] not in CHANNELS):
        return None
    if etype is AGENT_STATE and values["state"] not in _AGENT_STATE_SET:
        return None
    if etype is TICKET_STATUS and values["status"] not in TICKET_STATUSES:
        return None
    for key in plan.drop:
        del values[key]
    values["type"] = etype
    values["source"] = source
    return event_from_fields(values)


def parse_event(raw: Any, source: str | None = None) -> Event:
    """Validate a decoded JSON object and build an Event, raising EventError with a field path."""
    if raw.__class__ is dict:
        etype = raw.get("type")
        if etype.__class__ is str and etype in _FAST_TYPES:
            event = _fast(raw, _TYPE_CANON[etype], source)
            if event is not None:
                return event
    return _full(raw, source)


def _full(raw: Any, source: str | None) -> Event:
    """The complete check: every field in turn, the first problem raised with its path."""
    if not isinstance(raw, dict):
        raise EventError("<event>", "must be a JSON object", "malformed")
    etype = raw.get("type")
    spec = _TYPE_FIELDS.get(etype) if isinstance(etype, str) else None
    if spec is None:
        if etype is None:
            raise EventError("type", "is required", "missing_field")
        known = ", ".join(sorted(EVENT_TYPES))
        raise EventError("type", f"unknown event type {etype!r}; known: {known}", "unknown_type")
    if "ts" not in raw:
        raise EventError("ts", "is required", "missing_field")
    event = Event(type=etype, ts=parse_ts(raw["ts"]), source=source)
    for name in _COMMON_STR:
        value = raw.get(name)
        if value is not None:
            setattr(event, name, _text(value, name))
    channel = raw.get("channel")
    if channel is not None:
        if not isinstance(channel, str) or channel not in CHANNELS:
            raise EventError("channel", f"must be one of {', '.join(sorted(CHANNELS))}")
        event.channel = channel
    priority = raw.get("priority")
    if priority is not None:
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise EventError("priority", "must be an integer")
        event.priority = priority
    for name, kind, required in spec:
        value = raw.get(name)
        if value is None:
            if required:
                raise EventError(name, f"is required for {etype}", "missing_field")
            continue
        setattr(event, name, _extra(kind, value, name))
    if etype in _NEEDS_QUEUE and event.queue is None:
        raise EventError("queue", f"is required for {etype}", "missing_field")
    if etype in _NEEDS_CONTACT and event.contact_id is None:
        raise EventError("contact_id", f"is required for {etype}", "missing_field")
    if etype == AGENT_STATE:
        if event.agent is None:
            raise EventError("agent", "is required for agent.state", "missing_field")
        if event.state not in AGENT_STATES:
            raise EventError("state", f"must be one of {', '.join(AGENT_STATES)}")
    elif etype == SURVEY_RESPONSE:
        _check_survey(event)
    elif etype == TICKET_STATUS and event.status not in TICKET_STATUSES:
        raise EventError("status", f"must be one of {', '.join(TICKET_STATUSES)}")
    if len(raw) > len(_KNOWN_KEYS) or not _KNOWN_KEYS.issuperset(raw):
        unknown = sorted(set(raw) - _KNOWN_KEYS)
        raise EventError(unknown[0], "unknown field", "unknown_field")
    return event


def _check_survey(event: Event) -> None:
    if event.kind not in SURVEY_KINDS:
        raise EventError("kind", f"must be one of {', '.join(sorted(SURVEY_KINDS))}")
    low, high = _DEFAULT_SCALES[event.kind]
    event.scale_min = low if event.scale_min is None else event.scale_min
    event.scale_max = high if event.scale_max is None else event.scale_max
    if event.scale_max <= event.scale_min:
        raise EventError("scale_max", "must be greater than scale_min")
    if not event.scale_min <= (event.score or 0.0) <= event.scale_max:
        raise EventError("score", f"must lie within {event.scale_min:g}..{event.scale_max:g}")
