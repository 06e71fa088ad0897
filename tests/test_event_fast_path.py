"""The parser's one-pass fast path agrees with the full field-by-field check on any input."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from wallboard.model import events
from wallboard.model import fast as eventfast
from wallboard.model.events import EventError
from wallboard.model.limits import Limits

KEYS = [*sorted(events._KNOWN_KEYS), "type", "ts", "bogus", "Queue"]
TYPES = [*sorted(events.EVENT_TYPES), "contact.unknown", ""]
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**10),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "x", "sales", "voice", "chat", "busy", "available", "csat", "nps",
                     "2026-03-27T00:00:00Z", "2026-03-27T02:30:00.125+02:00",
                     "2026-03-27T00:00:00", "not a time", "1700000000"]),
    # Near-valid and hostile: long, control and bidi characters, legit RTL text, huge,
    # tiny and far-off numbers and times (the bounds must agree on both paths).
    st.sampled_from(["q" * 16, "q" * 17, "q" * 128, "q" * 129, "a\x07b", "ab\u202ecd",
                     "x\u2066y", "\x85", "מכירות", "مبيعات", "a\u200db", "a\xa0b",
                     "9999-12-31T00:00:00Z", "0001-01-01T00:00:00+14:00",
                     "2023-11-14T22:13:20Z", "2023-11-14T22:18:21Z"]),
    st.sampled_from([1e300, 1.7976931348623157e308, 1.2e29, 10**20, 10**400, -1e-9, 0.0,
                     604_800, 604_800.5, 100_000, 100_001, 1_000_000, 1_000_001, 1000.0,
                     1_700_000_000.0, 1_699_395_200.0, 1_699_395_199.0, 1_700_000_300.0,
                     1_700_000_301.0, 4_102_444_800.0, 4_102_444_801.0]),
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


NOW = 1_700_000_000.0  # the window of `ts` is [NOW - 7 days, NOW + 300 s] by default
SMALL = Limits(max_name_length=16, max_list_items=2, retention_s=3600.0, max_clock_skew_s=0.0)


@settings(max_examples=3000, deadline=None)
@given(etype=st.sampled_from(TYPES),
       fields=st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=8),
       valid_base=st.booleans(), now=st.sampled_from([None, NOW, 1000.0, 4_102_444_000.0]),
       small=st.booleans())
def test_fast_path_equals_full_check(etype: str, fields: dict, valid_base: bool,
                                     now: float | None, small: bool) -> None:
    raw: dict[str, Any] = {"type": etype}
    if valid_base:  # mostly-valid events reach deep into both paths
        raw.update({"ts": 1_700_000_000.5 if now is None else now - 0.5, "queue": "sales",
                    "contact_id": "c1", "agent": "ann", "state": "busy"})
    raw.update(fields)
    limits = SMALL if small else Limits()
    fast = outcome(lambda r, s: events.parse_event(r, s, now, limits), raw)
    full = outcome(lambda r, s: events._full(r, s, now, limits), raw)
    assert same(fast, full), (raw, fast, full)


def test_fast_path_takes_plain_valid_events() -> None:
    raw = {"type": "contact.answered", "ts": "2026-03-27T00:00:00.250Z", "queue": "sales",
           "contact_id": "c1", "agent": "ann", "wait_s": 12, "id": "e1", "channel": "voice"}
    fast = eventfast._fast(raw, "contact.answered", "src")
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
