"""The bounds of every canonical event field: the checks read them, docs/events.md lists them.

A field's limits are data here (FIELD_LIMITS), so the table in docs/events.md is generated
from the same values the parser enforces (tests/test_event_limits.py keeps the two equal).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

DAY_S = 86_400.0
# 0 <= a wait, talk, hold, wrap, callback promise or oldest wait <= a week: no contact waits or
# talks longer, and sums of such values stay far inside a float's exact range.
MAX_DURATION_S = 7 * DAY_S
# Counts of a queue.snapshot (waiting contacts, agents in a state): no queue is larger.
MAX_COUNT = 100_000
# Survey scales: |scale_min|, |scale_max| and hence |score| at most this.
MAX_SCALE = 1000.0
# Routing priorities of helpdesks and PBXs are small integers; this keeps them one.
MIN_PRIORITY, MAX_PRIORITY = -1_000_000, 1_000_000
# No time before the epoch or from 2100 on, even where "now" is unknown (`wallboard replay`).
MAX_TS = 4_102_444_800.0  # 2100-01-01T00:00:00Z
# A helpdesk's backlog holds tickets opened long ago: ticket times and due dates may lie this
# far from now (the window of other events is the journal's retention).
TICKET_SPAN_S = 3650 * DAY_S
# Control characters (Unicode Cc) and the bidi embedding, override and isolate controls, which
# can disguise a name on a board or in /metrics. Other format characters (ZWJ, ZWNJ, LRM/RLM)
# occur in legitimate names and pass.
BAD_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
KNOWN_REASONS = ("malformed", "missing_field", "bad_value", "unknown_type", "unknown_field",
                 "out_of_range", "too_long", "bad_chars")
MAX_KNOWN_NAMES = 8192  # Limits.names stops growing here (a flood of names only costs time)
_FIELD_PATH = 64  # a field path quoted in an error is cut to this many characters


class EventError(ValueError):
    """An event failed validation; `field` is the dotted path of the offending field."""

    def __init__(self, field: str, message: str, code: str = "bad_value") -> None:
        if len(field) > _FIELD_PATH:  # an unknown key may be a megabyte long
            field = field[:_FIELD_PATH] + "…"
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.code = code


# Slotted dataclasses rather than NamedTuples: their attributes are read on the per-event path,
# and a slot read costs a fraction of a named tuple's field read.
@dataclass(frozen=True, slots=True)
class Limits:
    """The configurable bounds (server.max_name_length, max_queues, max_clock_skew_s, retention)."""

    max_name_length: int = 128
    max_list_items: int = 200
    retention_s: float = 7 * DAY_S
    max_clock_skew_s: float = 300.0
    rules: dict[str, TimeRule] = field(init=False, compare=False, repr=False)
    # Names (queues, agents, teams...) already found within these limits: they recur in
    # nearly every event, and a set lookup costs half of checking them again.
    names: set[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", _time_rules(self))  # once, not per event
        object.__setattr__(self, "names", set())


def limits_of(server: Any, journal: Any) -> Limits:
    """The event limits of a configuration's `server` and `journal` sections."""
    return Limits(server.max_name_length, server.max_queues, journal.retention_days * DAY_S,
                  server.max_clock_skew_s)


def check_name(value: Any, field: str, limits: Limits) -> str:
    """A non-empty name within server.max_name_length, free of control and bidi characters."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            value = str(value)  # numeric ids from PBXs and helpdesks are common
        except ValueError:  # more digits than int->str converts
            raise EventError(field, f"longer than server.max_name_length "
                             f"({limits.max_name_length} characters)", "too_long") from None
    if not isinstance(value, str) or not value:
        raise EventError(field, "must be a non-empty string")
    if len(value) > limits.max_name_length:
        raise EventError(field, f"{len(value):,} characters, longer than "
                         f"server.max_name_length ({limits.max_name_length})", "too_long")
    if not value.isprintable():  # a cheap pre-check: most names are plain
        bad = BAD_CHARS.search(value)
        if bad is not None:
            raise EventError(field, f"control or bidi character U+{ord(bad.group()):04X} at "
                             f"{bad.start()}: not allowed in names", "bad_chars")
    return value


def check_number(value: Any, field: str, low: float, high: float, what: str) -> float:
    """A finite number within [low, high]; `what` names the bound in the error."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EventError(field, "must be a number")
    if not low <= value <= high:  # NaN and infinities fail too; big ints compare exactly
        raise EventError(field, f"must be a finite number within {low:g}..{high:g} ({what})",
                         "out_of_range")
    return float(value)


def check_count(value: Any, field: str) -> float:
    """A whole number within 0..MAX_COUNT."""
    number = check_number(value, field, 0, MAX_COUNT, "a count")
    if number != int(number):
        raise EventError(field, "must be a whole number")
    return number


@dataclass(frozen=True, slots=True)
class TimeRule:
    """How far before and after the server's clock one time field may lie, and why."""

    past_s: float
    past: str  # the setting or constant that bounds it, for the error
    ahead_s: float
    ahead: str


def time_rules(limits: Limits) -> dict[str, TimeRule]:
    """Per kind of time (`ts`, a ticket's `ts`, `due_ts`): its window around now."""
    return limits.rules


def _time_rules(limits: Limits) -> dict[str, TimeRule]:
    retention = f"journal.retention_days ({limits.retention_s / DAY_S:g} days)"
    skew = f"server.max_clock_skew_s ({limits.max_clock_skew_s:g} s)"
    tickets = f"{TICKET_SPAN_S / DAY_S:g} days"
    return {"ts": TimeRule(limits.retention_s, retention, limits.max_clock_skew_s, skew),
            "ticket": TimeRule(TICKET_SPAN_S, tickets, limits.max_clock_skew_s, skew),
            "due": TimeRule(TICKET_SPAN_S, tickets, TICKET_SPAN_S, tickets)}


DEFAULT_LIMITS = Limits()
# The widest value each configurable limit may be set to (config.py's bounds; server.max_queues
# has none): the start-up replay checks stored events against these, so lowering a setting
# never quarantines, for good, what was accepted under the old one. Kept equal to config.py by
# tests/test_event_limits.py.
WIDEST_LIMITS = Limits(max_name_length=4096, max_list_items=sys.maxsize,
                       retention_s=3650 * DAY_S, max_clock_skew_s=86_400.0)


def window(rule: TimeRule, now: float | None) -> tuple[float, float]:
    """The [low, high] epoch seconds a time under `rule` may take at `now` (None: absolute)."""
    if now is None:
        return 0.0, MAX_TS
    low, high = now - rule.past_s, now + rule.ahead_s
    return (low if low > 0.0 else 0.0), (high if high < MAX_TS else MAX_TS)


def time_error(field: str, value: float, rule: TimeRule, now: float | None) -> EventError:
    """The error of a time outside its window, naming the bound it passed."""
    low, high = window(rule, now)
    if value < low and now is not None and low > 0.0:
        why = f"older than {rule.past} before the server's clock"
    elif value > high and now is not None and high < MAX_TS:
        why = f"more than {rule.ahead} ahead of the server's clock"
    else:
        why = f"outside {_iso(0.0)}..{_iso(MAX_TS)}"
    return EventError(field, f"{_iso(value)} is {why}", "out_of_range")


def _iso(ts: float) -> str:
    """A time as RFC 3339 text where a datetime can hold it (years 1..9999), else a number."""
    try:
        text = datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")
    except (OverflowError, ValueError, OSError):
        try:
            return f"{ts:g}"
        except OverflowError:  # an integer past any float
            return "a number past any float"
    return text.replace("+00:00", "Z")


class FieldLimit(NamedTuple):
    """One row of the field table: fields, their type, bounds and the reasons they are refused."""

    fields: tuple[str, ...]
    type: str
    bounds: str
    reasons: tuple[str, ...]


def field_limits(channels: tuple[str, ...], agent_states: tuple[str, ...],
                 ticket_statuses: tuple[str, ...], survey_kinds: tuple[str, ...],
                 limits: Limits = DEFAULT_LIMITS) -> tuple[FieldLimit, ...]:
    """Every event field's row, from the constants the checks use (defaults of the settings)."""
    days = f"{limits.retention_s / DAY_S:g} days"
    skew = f"`server.max_clock_skew_s` ({limits.max_clock_skew_s:g} s)"
    span = f"{TICKET_SPAN_S / DAY_S:g} days"
    name = (f"1..{limits.max_name_length} characters (`server.max_name_length`); no control "
            "characters (Unicode Cc) nor bidi embedding, override or isolate controls "
            "(U+202A–U+202E, U+2066–U+2069)")
    time = "RFC 3339 text with offset, or epoch seconds"
    def one_of(values: Iterable[str]) -> str:
        return "one of " + ", ".join(f"`{v}`" for v in values)

    return (
        FieldLimit(("type",), "text", "one of the event types below",
                   ("missing_field", "unknown_type")),
        FieldLimit(("ts",), time,
                   f"now − `journal.retention_days` ({days}) .. now + {skew}; for `ticket.*` "
                   f"events from now − {span}; never before 1970 nor from 2100 on",
                   ("missing_field", "bad_value", "out_of_range")),
        FieldLimit(("entered_ts",), time, "the window of `ts`", ("bad_value", "out_of_range")),
        FieldLimit(("due_ts",), time, f"now − {span} .. now + {span}",
                   ("bad_value", "out_of_range")),
        FieldLimit(("id", "source", "queue", "team", "agent", "contact_id", "reason", "metric",
                    "to_queue", "response_id"), "text (a number is turned into text)", name,
                   ("bad_value", "too_long", "bad_chars")),
        FieldLimit(("queues",), "list of text",
                   f"at most {limits.max_list_items} items (`server.max_queues`), each a name "
                   "as above", ("bad_value", "too_long", "bad_chars")),
        FieldLimit(("channel",), "text", one_of(channels), ("bad_value",)),
        FieldLimit(("priority",), "integer", f"−{-MIN_PRIORITY:,}..{MAX_PRIORITY:,}",
                   ("bad_value", "out_of_range")),
        FieldLimit(("wait_s", "talk_s", "hold_s", "wrap_s", "promise_s", "oldest_wait_s"),
                   "number (seconds)", f"finite, 0..{MAX_DURATION_S:,.0f} (7 days)",
                   ("bad_value", "out_of_range")),
        FieldLimit(("waiting",), "whole number", f"0..{MAX_COUNT:,}",
                   ("missing_field", "bad_value", "out_of_range")),
        FieldLimit(("agents",), "object of whole numbers",
                   f"keys: {one_of(agent_states)}; each value 0..{MAX_COUNT:,}",
                   ("bad_value", "out_of_range")),
        FieldLimit(("state",), "text", one_of(agent_states), ("missing_field", "bad_value")),
        FieldLimit(("status",), "text", one_of(ticket_statuses), ("missing_field", "bad_value")),
        FieldLimit(("kind",), "text", one_of(survey_kinds), ("missing_field", "bad_value")),
        FieldLimit(("scale_min", "scale_max"), "number",
                   f"finite, −{MAX_SCALE:,.0f}..{MAX_SCALE:,.0f}; `scale_min` < `scale_max`",
                   ("bad_value", "out_of_range")),
        FieldLimit(("score",), "number", "finite, within `scale_min`..`scale_max`",
                   ("missing_field", "bad_value", "out_of_range")),
    )


def markdown_table(rows: tuple[FieldLimit, ...]) -> str:
    """The field table of docs/events.md, as generated from `rows`."""
    lines = ["| field | type | bounds | refused as |", "|---|---|---|---|"]
    for row in rows:
        fields = ", ".join(f"`{f}`" for f in row.fields)
        reasons = ", ".join(f"`{r}`" for r in row.reasons)
        lines.append(f"| {fields} | {row.type} | {row.bounds} | {reasons} |")
    return "\n".join(lines) + "\n"
