"""Hypothesis strategies for near-valid canonical events: a valid shape, hostile values mixed in.

A strategy draws *templates*: an event whose `ts` may be an `Age` (seconds before the moment
of posting) and whose `id` is set when the batch is posted, so that every example sends fresh
ids and current times while hypothesis still shrinks the values. Each item says what the
contract (docs/events.md, issue 17) expects of it, so the tests compute the expected counts
from the strategy's own knowledge, never from the server's answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

QUEUES = ("sales", "chat")  # the queues of tests.serverproc.journal_config
QUEUE_CHANNEL = {"sales": "voice", "chat": "chat"}
TEAMS = ("blue", "green")
MAX_VALID_AGE_S = 120.0  # valid events happened within the last two minutes
LATE_AGE_S = 3600.0  # past site.lateness_s (600 s), well inside journal.retention_days
MAX_VALID_DURATION_S = 3600.0

VALID, REJECT, LATE, EITHER, DUPLICATE, RESEND = (
    "valid", "reject", "late", "either", "duplicate", "resend")


@dataclass(frozen=True)
class Age:
    """A timestamp this many seconds before the batch is posted (negative: in the future)."""

    seconds: float


def short(value: Any, limit: int = 60) -> str:
    """A repr that stays readable for 100 KB strings."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}...<{len(text)} chars>"


class Text(str):
    """A string that hypothesis reports shortened (a falsifying 100 KB name stays readable)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return short(str(self))

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


class Blob(bytes):
    """Bytes that hypothesis reports shortened."""

    __slots__ = ()

    def __repr__(self) -> str:
        return short(bytes(self))

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


@dataclass(frozen=True)
class Item:
    """One event of a batch and what the contract expects of it.

    kind: `valid` (stored and counted), `reject` (refused), `late` (stored, outside the live
    windows), `either` (the contract leaves it open: stored or refused), `duplicate` (a resend
    of item `of` of the same batch), `resend` (a resend of an event stored by an earlier batch,
    picked by `of`).
    """

    kind: str
    template: dict[str, Any] = field(default_factory=dict)
    why: str = ""
    of: int = 0

    @property
    def offered_queue(self) -> str | None:
        """The configured queue whose 'offered' this item raises when it is counted."""
        if self.template.get("type") != "contact.queued":
            return None
        queue = self.template.get("queue")
        return queue if isinstance(queue, str) and queue in QUEUES else None

    def __repr__(self) -> str:
        if self.kind in (DUPLICATE, RESEND):
            return f"Item({self.kind} of {self.of})"
        event = {k: short(v, 40) for k, v in self.template.items()}
        return f"Item({self.kind}, {self.why or 'as is'}, {event})"


@dataclass(frozen=True)
class Batch:
    """The items of one request, and whether to SIGKILL and restart the server after it."""

    items: list[Item]
    restart: bool = False


# -- valid values ----------------------------------------------------------------------------

_SAFE = st.characters(categories=("L", "Nd"), codec="utf-8")
valid_names = st.one_of(
    st.text(_SAFE, min_size=1, max_size=64),
    st.text(st.sampled_from("abcxyz0189-_.:@"), min_size=1, max_size=64),
    st.sampled_from(["דני-כהן", "محمد", "Zoë", "山田", "x" * 64, "42", "a.b-c_d:e@f"]),
)
valid_ages = st.one_of(st.just(0.0), st.floats(0.0, MAX_VALID_AGE_S))
valid_durations = st.one_of(st.sampled_from([0, 0.0, 5e-324, 1, MAX_VALID_DURATION_S]),
                            st.floats(0.0, MAX_VALID_DURATION_S), st.integers(0, 3600))
valid_counts = st.integers(0, 50)


@st.composite
def valid_event(draw: st.DrawFn) -> dict[str, Any]:
    """A template within every documented bound, on a configured queue."""
    queue = draw(st.sampled_from(QUEUES))
    base: dict[str, Any] = {"ts": Age(draw(valid_ages))}
    contact = {"queue": queue, "contact_id": draw(valid_names)}
    kind = draw(st.sampled_from(["contact.queued"] * 4 + [
        "contact.answered", "contact.abandoned", "contact.ended", "agent.state",
        "queue.snapshot", "ticket.created", "survey.response"]))
    if kind == "contact.queued":
        extra = dict(contact)
        if draw(st.booleans()):
            extra["channel"] = QUEUE_CHANNEL[queue]
    elif kind in ("contact.answered", "contact.abandoned"):
        extra = {**contact, "wait_s": draw(valid_durations)}
        if kind == "contact.answered":
            extra["agent"] = draw(valid_names)
    elif kind == "contact.ended":
        extra = {**contact, "agent": draw(valid_names), "talk_s": draw(valid_durations),
                 "hold_s": draw(valid_durations), "wrap_s": draw(valid_durations)}
    elif kind == "agent.state":
        extra = {"agent": draw(valid_names), "team": draw(st.sampled_from(TEAMS)),
                 "state": draw(st.sampled_from(["available", "busy", "wrapup", "away"])),
                 "queues": [queue]}
    elif kind == "queue.snapshot":
        extra = {"queue": queue, "waiting": draw(valid_counts),
                 "oldest_wait_s": draw(valid_durations),
                 "agents": {"available": draw(valid_counts), "busy": draw(valid_counts)}}
    elif kind == "ticket.created":
        extra = {**contact, "priority": draw(st.integers(0, 5))}
    else:
        extra = {"queue": queue, "kind": "csat", "score": draw(st.integers(1, 5))}
    return {"type": kind, **base, **extra}


# -- hostile values --------------------------------------------------------------------------

HUGE_NUMBERS = [1e308, 1.7976931348623157e308, 2**63, 2**64, 1e12, 1.2e29, 1e300]
BAD_NUMBERS = [*HUGE_NUMBERS, -1, -1e-9, -1e308, "NaN", "Infinity", "-Infinity", "12", True,
               [], {}, {"value": 1}, [1, 2]]
BAD_TIMES = [0, -1, 1e300, 2**64, -0.0, "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
             "NaN", True, [], {}, "2026-13-45T99:99:99Z", Age(-366 * 86400), Age(400 * 86400),
             "2026-01-01T00:00:00"]  # the last: no UTC offset
BAD_NAMES = ["x" * 129, "x" * 10_000, "x" * 100_000, "", "a\x00b", "line\nbreak", "tab\there",
             "\x1b[31mred", "a\u202eb", "\u202dltr", "\u2066isolate\u2069", "del\x7f",
             "\u0085nel", 12.5, True, [], {}, {"name": "sales"}, ["sales"]]
NAME_FIELDS = ("queue", "contact_id", "agent", "team", "id", "reason")
NUMBER_FIELDS = ("wait_s", "talk_s", "hold_s", "wrap_s", "waiting", "oldest_wait_s")


def _fields_of(event: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    return [name for name in names if name in event]


@st.composite
def hostile_event(draw: st.DrawFn) -> Item:
    """A valid template with exactly one hostile change, and what the contract expects."""
    event = draw(valid_event())
    etype = event["type"]
    how = draw(st.sampled_from(["number", "time", "name", "shape", "late", "open"]))
    numbers = _fields_of(event, NUMBER_FIELDS)
    if how == "number" and (numbers or etype == "queue.snapshot"):
        if etype == "queue.snapshot" and draw(st.booleans()):
            value = draw(st.sampled_from(BAD_NUMBERS))
            event["agents"] = {**event["agents"], "available": value}
            return Item(REJECT, event, f"agents.available={short(value)}")
        name = draw(st.sampled_from(numbers))
        value = draw(st.sampled_from(BAD_NUMBERS))
        event[name] = value
        return Item(REJECT, event, f"{name}={short(value)}")
    if how == "time":
        value = draw(st.sampled_from(BAD_TIMES))
        event["ts"] = value
        return Item(REJECT, event, f"ts={short(value)}")
    if how == "late" and etype.startswith("contact."):
        event["ts"] = Age(LATE_AGE_S + draw(st.floats(0, 600)))
        return Item(LATE, event, "an hour old")
    if how == "name":
        name = draw(st.sampled_from([*_fields_of(event, NAME_FIELDS), "id"]))
        value = draw(st.sampled_from(BAD_NAMES))
        event[name] = value
        # The issue bounds names (queue, team, agent, contact id, reason...); the event id is
        # not named there, so a sender's odd id may be kept or refused.
        return Item(EITHER if name == "id" else REJECT, event, f"{name}={short(value)}")
    if how == "open":
        # Values the contract leaves open: refused or taken as absent/zero, never a crash.
        name = draw(st.sampled_from([*numbers, "priority", "channel"]))
        value = draw(st.sampled_from([None, -0.0] if name in numbers else [None]))
        event[name] = value
        if name == "waiting" and value is None:
            return Item(REJECT, event, "waiting=None (required)")
        return Item(EITHER, event, f"{name}={value!r}")
    change = draw(st.sampled_from(["unknown_field", "unknown_type", "channel", "priority",
                                   "not_object", "queues"]))
    if change == "unknown_field":
        event["colour"] = "red"
    elif change == "unknown_type":
        event["type"] = draw(st.sampled_from(["contact.Queued", "contact.", "", "x" * 10_000]))
    elif change == "channel":
        event["channel"] = draw(st.sampled_from(["fax", "VOICE", "", 1, "voice\x00"]))
    elif change == "priority":
        event["priority"] = draw(st.sampled_from([1e308, "1", 1.5, [], 2**64]))
    elif change == "queues":
        event = {**event, "type": "agent.state", "agent": "a1", "state": "busy",
                 "queues": draw(st.sampled_from([["x" * 129], ["a\u202eb"], "sales", [1.5],
                                                 ["q"] * 10_000]))}
        for key in ("contact_id", "waiting", "agents", "kind", "score", "talk_s", "hold_s",
                    "wrap_s", "wait_s", "oldest_wait_s", "priority", "channel"):
            event.pop(key, None)
    else:
        return Item(REJECT, {"type": "not_object", "value": draw(st.sampled_from(
            [None, "contact.queued", 1, [], [{"type": "contact.queued"}]]))}, "not an object")
    return Item(REJECT, event, change)


@st.composite
def batches(draw: st.DrawFn, max_items: int = 12, restart_chance: float = 0.1) -> Batch:
    """A request's items: mostly valid, some hostile, some resends; maybe a restart after it."""
    items: list[Item] = []
    for n in range(draw(st.integers(1, max_items))):
        roll = draw(st.integers(0, 19 if n else 16))  # the first is never a resend
        valid_before = [i for i, item in enumerate(items) if item.kind == VALID]
        if roll < 11:
            items.append(Item(VALID, draw(valid_event())))
        elif roll < 17:
            items.append(draw(hostile_event()))
        elif roll < 18 and valid_before:
            items.append(Item(DUPLICATE, of=draw(st.sampled_from(valid_before))))
        else:
            items.append(Item(RESEND, of=draw(st.integers(0, 1000))))
    restart = draw(st.integers(0, 99)) < restart_chance * 100
    return Batch(items, restart)
