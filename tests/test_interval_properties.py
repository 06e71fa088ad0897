"""Property: the interval history partitions what the windows count, under disorder and
duplicates; every record closes once the lateness has passed its end, and survives its body."""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.engine import Engine
from tests.test_kpi_properties import SHORT, START, T_SL, VARIANTS, Contact, contacts_strategy
from tests.test_kpi_properties import events_of as contact_events
from wallboard.fold.counters import FIELDS
from wallboard.fold.intervals import (
    INTERVAL_S,
    decode,
    decode_counters,
    decode_sketches,
    encode,
)
from wallboard.fold.rollup import decode_day, decode_slots
from wallboard.fold.sketch import MAX_BIN, ZERO_BIN, quantiles

LATENESS_S = 900


def _config() -> dict:
    return {"site": {"timezone": "Asia/Jerusalem", "lateness_s": LATENESS_S},
            "queues": {v: {"service_level": {"threshold_s": T_SL, "short_abandon_s": SHORT,
                                             "variant": v}} for v in VARIANTS}}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(contacts=contacts_strategy, seed=st.randoms(use_true_random=False),
       duplicate_share=st.floats(0, 0.3), extra_s=st.floats(0, 7200))
def test_intervals_sum_to_the_lifetime_totals_and_close_after_the_lateness(
        contacts: list[Contact], seed, duplicate_share: float, extra_s: float) -> None:
    events = contact_events(contacts)
    deliveries = [(e["ts"] + seed.uniform(0, 300), e) for e in events]
    deliveries += [(at + seed.uniform(0, 60), e) for at, e in deliveries
                   if seed.random() < duplicate_share]
    deliveries.sort(key=lambda d: d[0])
    engine = Engine(_config(), START)
    for at, event in deliveries:
        engine.send(event, at=max(engine.now, at))
    now = max(engine.now, max(e["ts"] for e in events)) + extra_s
    engine.snapshot(now)
    agg = engine.aggregator
    history = agg.history
    closed, still_open = history.take(), history.open_records(agg.leaves.values())
    for record in closed:
        assert record.start + INTERVAL_S <= now - LATENESS_S  # nothing closes early
        assert record.start % INTERVAL_S == 0
    for record in still_open:
        assert record.start + INTERVAL_S > now - LATENESS_S  # and nothing stays open late
    for (queue, channel), leaf in agg.leaves.items():
        assert leaf.windows.book is not None and leaf.windows.book.late == 0
        total = [0.0] * len(FIELDS)
        for record in [*closed, *still_open]:
            if (record.level, record.name, record.channel) == ("queue", queue, channel):
                counters, _ = decode(encode(record.counters, record.sketches))
                for k, value in counters.items():
                    total[k] += value
        lifetime = leaf.windows.lifetime[:len(FIELDS)]
        for k, name in enumerate(FIELDS):
            assert math.isclose(total[k], lifetime[k], rel_tol=1e-9, abs_tol=1e-6), (queue, name)


@pytest.mark.parametrize("body", [b"", b"[]", b"null", b'{"c": {"offered": "x"}}',
                                  b'{"c": [], "s": 3}', b'{"s": [{"a": 1}]}', b"\xff\xfe",
                                  b'{"s": [{"99999999": 1}]}', b'{"s": [{"-99999": 1}]}'])
def test_a_damaged_body_raises_value_or_type_error(body: bytes) -> None:
    with pytest.raises((ValueError, TypeError)):
        counters, sketches = decode(body)
        # A body that does decode must still be usable: finite counters, four sketches, every
        # bin within the sketch's range (its quantiles then never overflow).
        assert all(math.isfinite(v) for v in counters.values()) and len(sketches) == 4
        assert all(ZERO_BIN <= b <= MAX_BIN for s in sketches for b in s)
        assert quantiles(sketches[3], (0.5, 0.9)) is not None
        raise ValueError("decoded to something usable")


def test_unknown_counters_of_a_newer_version_are_left_out() -> None:
    counters, sketches = decode(b'{"c": {"offered": 3, "from_the_future": 9}, "s": []}')
    assert counters == {FIELDS.index("offered"): 3.0}
    assert sketches == [{}, {}, {}, {}]


def test_a_fact_older_than_the_closed_intervals_never_opens_one() -> None:
    """A ticket from last week, read on a poll, counts in the live windows only."""
    engine = Engine(_config(), START)
    engine.send({"type": "contact.queued", "id": "q1", "ts": START, "queue": "answered_only",
                 "contact_id": "c1"})
    engine.snapshot(START + 3 * 3600)  # a tick: the first close sets every book's floor
    engine.aggregator.history.take()
    week_ago = START - 7 * 86_400
    for queue in ("answered_only", "learnt-later"):  # a configured queue, and a new one
        engine.send({"type": "ticket.created", "id": f"t-{queue}", "ts": week_ago,
                     "queue": queue, "contact_id": f"T-{queue}"}, at=START + 3 * 3600)
    engine.snapshot(START + 4 * 3600)
    agg = engine.aggregator
    records = [*agg.history.take(), *agg.history.open_records(agg.leaves.values())]
    assert not [r for r in records if r.start < START - 86_400]
    late = {leaf.queue: leaf.windows.book.late for leaf in agg.leaves.values()
            if leaf.windows.book is not None}
    assert late["answered_only"] == 1 and late["learnt-later"] == 1


_VALUES = st.one_of(st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=False), st.booleans(),
                    st.text(max_size=3), st.none(), st.lists(st.integers(0, 9), max_size=2))
_NAMES = st.one_of(st.sampled_from(FIELDS), st.text(max_size=8))


@settings(max_examples=300, deadline=None)
@given(counters=st.dictionaries(_NAMES, _VALUES, max_size=12),
       sketch=st.dictionaries(st.integers(ZERO_BIN, MAX_BIN).map(str), st.integers(1, 10**6),
                              max_size=5),
       kinds=st.integers(0, 4))
def test_counters_decode_as_named_finite_numbers_whatever_else_a_body_holds(
        counters: dict, sketch: dict, kinds: int) -> None:
    """A stored body's counters are its known names with finite numbers (bool as 0/1), by
    the rule written out here; `kinds` reads that many sketches and leaves the rest empty."""
    body = orjson.dumps({"c": counters, "s": [sketch] * 4})
    got, sketches = decode(body, kinds)
    want = {FIELDS.index(name): float(value) for name, value in counters.items()
            if name in FIELDS and isinstance(value, int | float) and math.isfinite(value)}
    assert got == want
    as_ints = {int(b): n for b, n in sketch.items()}
    assert sketches == [as_ints] * kinds + [{}] * (4 - kinds)


_BIN_KEYS = st.one_of(st.integers(ZERO_BIN - 50, MAX_BIN + 50).map(str),
                      st.sampled_from(["+3", " 4", "1_0", "0x1", "-0", "1.5", ""]))
_COUNTS = st.one_of(st.integers(-5, 10**6), st.integers(2**62, 2**63 - 1), st.floats(0, 9),
                    st.booleans(), st.text(max_size=2))


@settings(max_examples=400, deadline=None)
@given(counters=st.dictionaries(_NAMES, _VALUES, max_size=8),
       sketches=st.lists(st.dictionaries(_BIN_KEYS, _COUNTS, max_size=4), max_size=6),
       kinds=st.integers(0, 4), extra=st.booleans())
def test_the_typed_decoder_reads_every_body_as_the_per_field_rule_does(
        counters: dict, sketches: list, kinds: int, extra: bool) -> None:
    """decode() tries msgspec's typed decoders first: whatever they accept must come out as
    the per-field rule (orjson, decode_counters, decode_sketches) reads it, and a body they
    refuse still decodes, or fails, by that rule."""
    doc: dict = {"c": counters, "s": sketches}
    if extra:
        doc["newer"] = [1, {"x": None}]
    body = orjson.dumps(doc)
    try:
        data = orjson.loads(body)
        want = (decode_counters(data.get("c") or {}),
                decode_sketches(list(data.get("s") or [])[:kinds]))
    except (ValueError, TypeError) as exc:
        with pytest.raises(type(exc)):
            decode(body, kinds)
        return
    assert decode(body, kinds) == want


@settings(max_examples=300, deadline=None)
@given(counters=st.dictionaries(_NAMES, _VALUES, max_size=8),
       sketches=st.lists(st.dictionaries(_BIN_KEYS, _COUNTS, max_size=4), max_size=5),
       kinds=st.integers(0, 4),
       columns=st.lists(st.lists(st.one_of(st.integers(0, 2**40), st.floats(0, 1e6),
                                           st.text(max_size=2)), max_size=3),
                        min_size=4, max_size=4))
def test_a_rollup_decodes_typed_as_by_the_per_field_rule(
        counters: dict, sketches: list, kinds: int, columns: list) -> None:
    """A rollup's body and slots: the typed decoders agree with the per-field rule."""
    body = b"\n".join([orjson.dumps(counters), *map(orjson.dumps, sketches)])
    lines = body.split(b"\n")
    try:
        if len(lines) < kinds + 1:
            raise ValueError("short")
        want: object = (decode_counters(orjson.loads(lines[0])),
                        decode_sketches([orjson.loads(line) for line in lines[1:kinds + 1]]))
    except (ValueError, TypeError) as exc:
        with pytest.raises(type(exc)):
            decode_day(body, kinds)
    else:
        assert decode_day(body, kinds) == want
    slots = orjson.dumps(dict(zip("tohs", columns, strict=True)))
    try:
        t, o, h, s = columns
        want = (list(map(int, t)), list(map(float, o)), list(map(float, h)),
                list(map(float, s)))
        if not want[0] or any(len(c) != len(want[0]) for c in want):
            raise ValueError("ragged")
    except (ValueError, TypeError) as exc:
        with pytest.raises(type(exc)):
            decode_slots(slots)
    else:
        assert decode_slots(slots) == want
