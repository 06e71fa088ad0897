"""The fastest path of validation: JSON bytes decoded straight into typed structs (msgspec).

Types, required fields, lengths, ranges, enumerations and the unknown-field policy are checked
in C while decoding; what depends on the clock (time windows) or on a rule no type states
(printable names, survey scales) is checked here after. Like `fast`, it only has to be right
for valid input: anything it does not accept returns None, and the caller decodes the bytes
with orjson and calls `parse_event`, whose full check finds and names the problem (so the
error messages and field paths stay those of `events`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Annotated, Any, Literal

import msgspec
from msgspec.structs import asdict

from wallboard.model.limits import (
    MAX_COUNT,
    MAX_DURATION_S,
    MAX_PRIORITY,
    MAX_SCALE,
    MAX_TS,
    MIN_PRIORITY,
    TICKET_SPAN_S,
    Limits,
)
from wallboard.model.schema import (
    _COMMON_STR,
    _COUNT,
    _COUNTS,
    _DEFAULT_SCALES,
    _DUE,
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
    CHANNELS,
    SURVEY_KINDS,
    TICKET_STATUSES,
    TICKET_TYPES,
    Event,
)

_new_event = object.__new__  # Events are built from their fields: see event_from_fields
_Time = float | str  # epoch seconds or RFC 3339 text: the window is checked after decoding
_Duration = Annotated[float, msgspec.Meta(ge=0.0, le=MAX_DURATION_S)]
_Score = Annotated[float, msgspec.Meta(ge=-MAX_SCALE, le=MAX_SCALE)]
_Count = Annotated[float, msgspec.Meta(ge=0.0, le=MAX_COUNT)]
_Priority = Annotated[int, msgspec.Meta(ge=MIN_PRIORITY, le=MAX_PRIORITY)]


def _literal(values: frozenset[str] | tuple[str, ...]) -> Any:
    return Literal[tuple(sorted(values))]  # a Literal of strings: checked in C by msgspec


@dataclass(frozen=True, slots=True)
class _Shape:
    """One event type's struct: its canonical type string and what to check after decoding."""

    etype: str
    names: Callable[[Any], tuple[str | None, ...]]  # its text fields, read in one C call
    needs: tuple[int, ...]  # in `names`: required by a rule of the type, not by the struct
    ticket: bool  # ticket times may lie further back
    # A field whose value means more to check (entered_ts, due_ts, queues; a survey's score and a
    # snapshot's count, which are required): see `_rare`.
    rare: str | None


class Wire:
    """The decoder for one configuration's limits; `decode` is the per-event path."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        name = Annotated[str, msgspec.Meta(min_length=1, max_length=limits.max_name_length)]
        kinds: dict[str, Any] = {
            _NUM: _Duration, _STR: name, _SCORE: _Score, _COUNT: _Count, _TS: _Time,
            _DUE: _Time,
            _LIST: Annotated[list[name], msgspec.Meta(max_length=limits.max_list_items)],
            _COUNTS: dict[_literal(AGENT_STATES), _Count],  # type: ignore[misc]  # a Literal made at run time
        }
        typed: dict[str, Any] = {"state": _literal(AGENT_STATES),
                                 "status": _literal(TICKET_STATUSES),
                                 "kind": _literal(SURVEY_KINDS)}
        structs: list[type[msgspec.Struct]] = []
        self.shapes: dict[type[msgspec.Struct], _Shape] = {}
        for etype, spec in _TYPE_FIELDS.items():
            fields: list[tuple[str, Any, Any]] = [("ts", _Time, msgspec.NODEFAULT)]
            fields += [(common, name | None, None) for common in _COMMON_STR]
            fields += [("channel", _literal(CHANNELS) | None, None),
                       ("priority", _Priority | None, None),
                       ("source", msgspec.Raw, None)]  # tolerated, never read: kept raw
            for field, kind, required in spec:
                wire = typed.get(field, kinds[kind])
                fields.append((field, wire, msgspec.NODEFAULT) if required
                              else (field, wire | None, None))
            struct = msgspec.defstruct(
                f"Wire_{etype.replace('.', '_')}", fields, tag_field="type", tag=etype,
                forbid_unknown_fields=True, kw_only=True,
                gc=False)  # short-lived and never in a cycle: no work for the collector
            structs.append(struct)
            needs = (*(("queue",) if etype in _NEEDS_QUEUE else ()),
                     *(("contact_id",) if etype in _NEEDS_CONTACT else ()),
                     *(("agent",) if etype == AGENT_STATE else ()))
            names = (*_COMMON_STR, *(f for f, k, _ in spec if k == _STR and f not in typed))
            self.shapes[struct] = _Shape(
                _TYPE_CANON[etype], attrgetter(*names), tuple(map(names.index, needs)),
                etype in TICKET_TYPES,
                next((f for f, k, _ in spec if k in (_TS, _DUE, _LIST, _SCORE, _COUNT)), None))
        self.decoder = msgspec.json.Decoder(
            _union(structs))  # tagged by "type": one struct per event type

    def decode(self, data: bytes | str, source: str | None, now: float | None) -> Event | None:
        """The Event of plainly valid JSON, or None when the full check must decide."""
        try:
            wire = self.decoder.decode(data)
        except (msgspec.DecodeError, RecursionError, UnicodeError):
            return None  # invalid, deeply nested, a lone surrogate: the full check decides
        shape = self.shapes[wire.__class__]
        names = shape.names(wire)
        for at in shape.needs:
            if names[at] is None:
                return None
        # isprintable() is stricter than the rule (it refuses any format or separator
        # character but the space): text it refuses goes to the full check, which decides.
        if not "".join(filter(None, names)).isprintable():
            return None
        limits = self.limits
        if now is None:
            low, high = 0.0, MAX_TS
        else:
            low = now - (TICKET_SPAN_S if shape.ticket else limits.retention_s)
            high = now + limits.max_clock_skew_s
            low = low if low > 0.0 else 0.0
            high = high if high < MAX_TS else MAX_TS
        ts = wire.ts
        if ts.__class__ is str:
            ts = _seconds(ts)
            if ts is None:
                return None
        if not low <= ts <= high:
            return None
        fields = asdict(wire)  # every field of the type, None where unset (like Event(...))
        fields["ts"] = ts
        if (shape.rare is not None and fields[shape.rare] is not None
                and not _rare(fields, low, high, now)):
            return None
        fields["type"] = shape.etype
        fields["source"] = source
        event = _new_event(Event)  # event_from_fields, inlined: one call less per event
        event.__dict__ = fields
        return event


def _union(structs: list[type[msgspec.Struct]]) -> Any:
    union: Any = structs[0]
    for struct in structs[1:]:
        union = union | struct
    return union


def _rare(fields: dict[str, Any], low: float, high: float, now: float | None) -> bool:
    """The checks of the less common types and fields; False when the full check must decide."""
    entered = fields.get("entered_ts")
    if entered is not None:
        entered = _seconds(entered)
        if entered is None or not low <= entered <= high:
            return False
        fields["entered_ts"] = entered
    due = fields.get("due_ts")
    if due is not None:
        low, high = (0.0, MAX_TS) if now is None else (
            max(0.0, now - TICKET_SPAN_S), min(MAX_TS, now + TICKET_SPAN_S))
        due = _seconds(due)
        if due is None or not low <= due <= high:
            return False
        fields["due_ts"] = due
    queues = fields.get("queues")
    if queues is not None and not "".join(queues).isprintable():
        return False
    if "score" in fields and not _survey(fields):
        return False
    return "waiting" not in fields or _snapshot(fields)


def _seconds(value: float | str) -> float | None:
    """Epoch seconds of a decoded time, None when it is not plainly one."""
    if value.__class__ is str:
        try:
            parsed = datetime.fromisoformat(value)
            return parsed.timestamp() if parsed.tzinfo is not None else None
        except (ValueError, OverflowError):
            return None
    return float(value)


def _survey(fields: dict[str, Any]) -> bool:
    """Scales filled in from the kind; False when the scale or the score is off."""
    low, high = _DEFAULT_SCALES[fields["kind"]]
    if fields["scale_min"] is None:
        fields["scale_min"] = low
    if fields["scale_max"] is None:
        fields["scale_max"] = high
    low, high = fields["scale_min"], fields["scale_max"]
    return bool(high > low and low <= fields["score"] <= high)


def _snapshot(fields: dict[str, Any]) -> bool:
    """Counts are whole numbers; the agents' counts become integers."""
    if fields["waiting"] != int(fields["waiting"]):
        return False
    agents = fields.get("agents")
    if agents is not None:
        if any(count != int(count) for count in agents.values()):
            return False
        fields["agents"] = {state: int(count) for state, count in agents.items()}
    return True
