"""The fast path of validation: plainly valid events of the common shapes, checked per shape.

`events.parse_event` tries it first; anything unusual returns None and gets the full check,
which finds and names the problem. It only has to be right for valid input.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wallboard.model.limits import (
    DEFAULT_LIMITS,
    MAX_DURATION_S,
    MAX_KNOWN_NAMES,
    MAX_TS,
    TICKET_SPAN_S,
    Limits,
    time_rules,
    window,
)
from wallboard.model.schema import (
    _COMMON_STR,
    _COUNTS,
    _DUE,
    _KNOWN_KEYS,
    _LIST,
    _NEEDS_CONTACT,
    _NEEDS_QUEUE,
    _NUM,
    _STR,
    _TS,
    _TYPE_FIELDS,
    AGENT_STATE,
    AGENT_STATES,
    CHANNELS,
    EVENT_TYPES,
    QUEUE_SNAPSHOT,
    SURVEY_RESPONSE,
    TICKET_STATUS,
    TICKET_STATUSES,
    TICKET_TYPES,
    Event,
    event_from_fields,
)

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
_IDS = frozenset({"id", "contact_id", "response_id"})


@dataclass(frozen=True, slots=True)  # slots: read per event, faster than a named tuple
class _Plan:
    """How to read one shape of event (its type and its keys, in order)."""

    ids: tuple[str, ...]  # text unique to the event
    names: tuple[str, ...]  # text that recurs: queue, agent, team...
    nums: tuple[str, ...]
    times: tuple[str, ...]
    dues: tuple[str, ...]
    channel: bool
    ticket: bool  # ticket times may lie further back
    drop: tuple[str, ...]


_PLANS: dict[tuple[str, ...], _Plan | None] = {}
# A shape not planned yet: a _Plan itself, so the lookup stays one `get` and one `is`.
_UNKNOWN = _Plan((), (), (), (), (), False, False, ())
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
    strs = of(_STR)
    return _Plan(tuple(k for k in strs if k in _IDS), tuple(k for k in strs if k not in _IDS),
                 of(_NUM), of(_TS), of(_DUE), "channel" in kinds,
                 etype in TICKET_TYPES,
                 tuple(k for k, kind in kinds.items() if kind is None and k != "type"))


def _fast(raw: dict[str, Any], etype: str, source: str | None, now: float | None = None,
          limits: Limits = DEFAULT_LIMITS) -> Event | None:
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
    longest = limits.max_name_length
    # isprintable() is stricter than the rule (it refuses any format or separator character
    # but the space): text it refuses goes to the full check, which decides.
    for key in plan.ids:
        value = raw[key]
        if value.__class__ is not str or not value or len(value) > longest or (
                not value.isprintable()):
            return None  # None, numbers, empty, long or unusual text: the full check decides
    known = limits.names
    for key in plan.names:
        value = raw[key]
        if value.__class__ is not str:
            return None
        if value not in known:
            if not value or len(value) > longest or not value.isprintable():
                return None
            if len(known) < MAX_KNOWN_NAMES:
                known.add(value)
    values = raw.copy()
    for key in plan.nums:
        value = values[key]
        # The chained comparison is False for NaN and the infinities as well.
        if (value.__class__ is not float and value.__class__ is not int) or not (
                0.0 <= value <= MAX_DURATION_S):
            return None
        values[key] = float(value)
    if now is None:
        low, high = 0.0, MAX_TS
    else:
        low = now - (TICKET_SPAN_S if plan.ticket else limits.retention_s)
        high = now + limits.max_clock_skew_s
        if low < 0.0:
            low = 0.0
        if high > MAX_TS:
            high = MAX_TS
    for key in plan.times:
        value = values[key]
        cls = value.__class__
        if cls is str:
            try:
                parsed = datetime.fromisoformat(value)
                # A time without an offset gets -1, which no window holds.
                value = parsed.timestamp() if parsed.tzinfo is not None else -1.0
            except (ValueError, OverflowError):
                return None
        elif cls is not float and cls is not int:
            return None
        if not low <= value <= high:  # False for NaN and the infinities as well
            return None
        values[key] = float(value)
    if plan.dues and not _fast_dues(values, plan.dues, now, limits):
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


def _fast_dues(values: dict[str, Any], keys: tuple[str, ...], now: float | None,
               limits: Limits) -> bool:
    """Due times (tickets only: rare) as epoch seconds in `values`; False if one is unusual."""
    low, high = window(time_rules(limits)["due"], now)
    for key in keys:
        value = values[key]
        if value.__class__ is str:
            try:
                parsed = datetime.fromisoformat(value)
                value = parsed.timestamp() if parsed.tzinfo is not None else -1.0
            except (ValueError, OverflowError):
                return False
        elif value.__class__ is not float and value.__class__ is not int:
            return False
        if not low <= value <= high:
            return False
        values[key] = float(value)
    return True
