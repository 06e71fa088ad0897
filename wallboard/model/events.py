"""Validation at the edge: canonical events from JSON objects, every field within its bounds.

The model (types, fields, Event) is in eventtypes.py and the bounds in eventlimits.py; both are
re-exported here, the module sources and plugins import.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from wallboard.model.fast import _AGENT_STATE_SET, _FAST_TYPES, _fast
from wallboard.model.limits import (
    DEFAULT_LIMITS,
    MAX_DURATION_S,
    MAX_PRIORITY,
    MAX_SCALE,
    MAX_TS,
    MIN_PRIORITY,
    EventError,
    FieldLimit,
    Limits,
    TimeRule,
    check_count,
    check_name,
    check_number,
    field_limits,
    time_error,
    time_rules,
    window,
)
from wallboard.model.schema import (
    _COMMON_STR,
    _COUNT,
    _DEFAULT_SCALES,
    _DUE,
    _KNOWN_KEYS,
    _LIST,
    _NEEDS_CONTACT,
    _NEEDS_QUEUE,
    _NUM,
    _SCORE,
    _STR,
    _TS,
    _TYPE_CANON,
    _TYPE_FIELDS,
    AGENT_STATE,
    AGENT_STATES,
    CALLBACK_COMPLETED,
    CALLBACK_REQUESTED,
    CHANNELS,
    CONTACT_ABANDONED,
    CONTACT_ANSWERED,
    CONTACT_ENDED,
    CONTACT_QUEUED,
    CONTACT_TRANSFERRED,
    EVENT_TYPES,
    QUEUE_SNAPSHOT,
    SURVEY_KINDS,
    SURVEY_RESPONSE,
    SURVEY_RETRACTED,
    TICKET_CREATED,
    TICKET_FIRST_RESPONSE,
    TICKET_REOPENED,
    TICKET_RESOLVED,
    TICKET_SLA_BREACHED,
    TICKET_STATUS,
    TICKET_STATUSES,
    TICKET_TYPES,
    AgentState,
    Event,
    check_channel,
    event_from_fields,
)

__all__ = [
    "AGENT_STATE", "AGENT_STATES", "CALLBACK_COMPLETED", "CALLBACK_REQUESTED", "CHANNELS",
    "CONTACT_ABANDONED", "CONTACT_ANSWERED", "CONTACT_ENDED", "CONTACT_QUEUED",
    "CONTACT_TRANSFERRED", "EVENT_TYPES", "FIELD_LIMITS", "QUEUE_SNAPSHOT", "SURVEY_KINDS",
    "SURVEY_RESPONSE", "SURVEY_RETRACTED", "TICKET_CREATED", "TICKET_FIRST_RESPONSE",
    "TICKET_REOPENED", "TICKET_RESOLVED", "TICKET_SLA_BREACHED", "TICKET_STATUS",
    "TICKET_STATUSES", "TICKET_TYPES", "AgentState", "Event", "EventError", "Limits",
    "check_channel", "check_event", "event_from_fields", "parse_event", "parse_ts",
]

_ABSOLUTE = TimeRule(0.0, "", 0.0, "")  # parse_ts: only 1970..2100


def parse_ts(value: Any, field: str = "ts") -> float:
    """Parse an RFC 3339 string or epoch seconds into epoch seconds (1970 to 2100)."""
    if isinstance(value, bool):
        raise EventError(field, "must be RFC 3339 text or epoch seconds, not a boolean")
    if isinstance(value, int | float):
        if not 0.0 <= value <= MAX_TS:  # NaN and infinities fail too
            raise time_error(field, value, _ABSOLUTE, None)
        return float(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise EventError(field, f"not an RFC 3339 timestamp: {value[:40]!r}") from None
        if parsed.tzinfo is None:
            raise EventError(field, "RFC 3339 timestamp needs a UTC offset or 'Z'")
        try:
            ts = parsed.timestamp()
        except (OverflowError, ValueError):
            raise EventError(field, f"not a representable time: {value[:40]!r}") from None
        if not 0.0 <= ts <= MAX_TS:
            raise time_error(field, ts, _ABSOLUTE, None)
        return ts
    raise EventError(field, "must be RFC 3339 text or epoch seconds")


def _time(value: Any, field: str, rule: TimeRule, now: float | None) -> float:
    ts = parse_ts(value, field)
    low, high = window(rule, now)
    if not low <= ts <= high:
        raise time_error(field, ts, rule, now)
    return ts


def _extra(kind: str, value: Any, field: str, now: float | None, limits: Limits,
           ts_rule: TimeRule) -> Any:
    if kind == _NUM:
        return check_number(value, field, 0.0, MAX_DURATION_S, "7 days")
    if kind == _STR:
        return check_name(value, field, limits)
    if kind == _TS:
        return _time(value, field, ts_rule, now)
    if kind == _DUE:
        return _time(value, field, time_rules(limits)["due"], now)
    if kind == _SCORE:
        return check_number(value, field, -MAX_SCALE, MAX_SCALE, "the survey scale limit")
    if kind == _COUNT:
        return check_count(value, field)
    if kind == _LIST:
        if not isinstance(value, list):
            raise EventError(field, "must be a list of strings")
        if len(value) > limits.max_list_items:
            raise EventError(field, f"{len(value):,} items, more than server.max_queues "
                             f"({limits.max_list_items})", "too_long")
        return [check_name(v, f"{field}[{i}]", limits) for i, v in enumerate(value)]
    if not isinstance(value, dict):
        raise EventError(field, "must be an object of counts")
    counts = {}
    for key, count in value.items():
        if key not in _AGENT_STATE_SET:
            raise EventError(f"{field}.{key}", f"not an agent state; known: "
                             f"{', '.join(AGENT_STATES)}")
        counts[key] = int(check_count(count, f"{field}.{key}"))
    return counts


def parse_event(raw: Any, source: str | None = None, now: float | None = None,
                limits: Limits = DEFAULT_LIMITS) -> Event:
    """Validate a decoded JSON object and build an Event, raising EventError with a field path.

    `now` (the server's clock at arrival) bounds the times to the window around it; without
    it (`wallboard replay`, whose clock is the file's own time) only 1970..2100 applies.
    """
    if raw.__class__ is dict:
        etype = raw.get("type")
        if etype.__class__ is str and etype in _FAST_TYPES:
            event = _fast(raw, _TYPE_CANON[etype], source, now, limits)
            if event is not None:
                return event
    return _full(raw, source, now, limits)


def check_event(event: Event, now: float | None = None,
                limits: Limits = DEFAULT_LIMITS) -> Event:
    """An Event built elsewhere (a connector, the journal) checked by the rules of parse_event.

    Returns the checked copy (numbers as floats, survey scales filled in); raises EventError.
    """
    fields = {k: v for k, v in vars(event).items() if v is not None}
    source = fields.pop("source", None)
    if source is not None:
        check_name(source, "source", limits)
    return parse_event(fields, source, now, limits)


def _full(raw: Any, source: str | None, now: float | None = None,
          limits: Limits = DEFAULT_LIMITS) -> Event:
    """The complete check: every field in turn, the first problem raised with its path."""
    if not isinstance(raw, dict):
        raise EventError("<event>", "must be a JSON object", "malformed")
    etype = raw.get("type")
    if not isinstance(etype, str) or (spec := _TYPE_FIELDS.get(etype)) is None:
        if etype is None:
            raise EventError("type", "is required", "missing_field")
        known = ", ".join(sorted(EVENT_TYPES))
        if not isinstance(etype, str):
            # The type name, never the value: a megabyte list would land in the answer and the log.
            raise EventError("type", f"must be text, not {type(etype).__name__}; known: {known}",
                             "unknown_type")
        raise EventError("type", f"unknown event type {etype[:40]!r}; known: {known}",
                         "unknown_type")
    if "ts" not in raw:
        raise EventError("ts", "is required", "missing_field")
    ts_rule = time_rules(limits)["ticket" if etype in TICKET_TYPES else "ts"]
    event = Event(type=etype, ts=_time(raw["ts"], "ts", ts_rule, now), source=source)
    for name in _COMMON_STR:
        value = raw.get(name)
        if value is not None:
            setattr(event, name, check_name(value, name, limits))
    channel = raw.get("channel")
    if channel is not None:
        if not isinstance(channel, str) or channel not in CHANNELS:
            raise EventError("channel", f"must be one of {', '.join(sorted(CHANNELS))}")
        event.channel = channel
    priority = raw.get("priority")
    if priority is not None:
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise EventError("priority", "must be an integer")
        if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
            raise EventError("priority", f"must lie within {MIN_PRIORITY:,}..{MAX_PRIORITY:,}",
                             "out_of_range")
        event.priority = priority
    for name, kind, required in spec:
        value = raw.get(name)
        if value is None:
            if required:
                raise EventError(name, f"is required for {etype}", "missing_field")
            continue
        setattr(event, name, _extra(kind, value, name, now, limits, ts_rule))
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
        raise EventError("score", f"must lie within {event.scale_min:g}..{event.scale_max:g}",
                         "out_of_range")


FIELD_LIMITS: tuple[FieldLimit, ...] = field_limits(
    tuple(sorted(CHANNELS)), AGENT_STATES, TICKET_STATUSES, tuple(sorted(SURVEY_KINDS)))
