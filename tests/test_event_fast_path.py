"""The parser's one-pass fast path agrees with the full field-by-field check on any input."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from wallboard import events
from wallboard.events import EventError

KEYS = [*sorted(events._KNOWN_KEYS), "type", "ts", "bogus", "Queue"]
TYPES = [*sorted(events.EVENT_TYPES), "contact.unknown", ""]
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**10),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "x", "sales", "voice", "chat", "busy", "available", "csat", "nps",
                     "2026-03-27T00:00:00Z", "2026-03-27T02:30:00.125+02:00",
                     "2026-03-27T00:00:00", "not a time", "1700000000"]),
    st.lists(st.sampled_from(["a", "", 3]), max_size=3),
    st.dictionaries(st.sampled_from(["available", "busy"]), st.integers(-1, 5), max_size=2),
)


def outcome(parse: Any, raw: Any) -> tuple:
    """What a parser made of `raw`: the event's fields, or the error it raised."""
    try:
        return ("ok", parse(raw, "src").to_dict())
    except EventError as exc:
        return ("error", exc.field, exc.code, exc.message)


def same(a: tuple, b: tuple) -> bool:
    """Equal outcomes, with NaN equal to itself (it never reaches an accepted event anyway)."""
    if a[0] != b[0] or a[0] == "error":
        return a == b
    return a[1].keys() == b[1].keys() and all(
        x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y))
        for x, y in zip(a[1].values(), b[1].values(), strict=True))


@settings(max_examples=3000, deadline=None)
@given(etype=st.sampled_from(TYPES),
       fields=st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=8),
       valid_base=st.booleans())
def test_fast_path_equals_full_check(etype: str, fields: dict, valid_base: bool) -> None:
    raw: dict[str, Any] = {"type": etype}
    if valid_base:  # mostly-valid events reach deep into both paths
        raw.update({"ts": 1_700_000_000.5, "queue": "sales", "contact_id": "c1",
                    "agent": "ann", "state": "busy"})
    raw.update(fields)
    fast, full = outcome(events.parse_event, raw), outcome(events._full, raw)
    assert same(fast, full), (raw, fast, full)


def test_fast_path_takes_plain_valid_events() -> None:
    raw = {"type": "contact.answered", "ts": "2026-03-27T00:00:00.250Z", "queue": "sales",
           "contact_id": "c1", "agent": "ann", "wait_s": 12, "id": "e1", "channel": "voice"}
    fast = events._fast(raw, "contact.answered", "src")
    assert fast is not None and fast == events._full(raw, "src")
    assert fast.wait_s == 12.0 and isinstance(fast.wait_s, float)
    assert fast.ts == 1774569600.25


def test_unhashable_type_or_channel_is_a_clear_error() -> None:
    for raw, field in (({"type": ["x"], "ts": 1}, "type"),
                       ({"type": "contact.queued", "ts": 1, "queue": "q", "contact_id": "c",
                         "channel": ["voice"]}, "channel")):
        try:
            events.parse_event(raw)
        except EventError as exc:
            assert exc.field == field
        else:
            raise AssertionError(f"{raw} was accepted")
