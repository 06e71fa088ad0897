"""Every event field's bounds: enforced at their exact edge, and the table in docs/events.md."""

from __future__ import annotations

import contextlib
import dataclasses
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.engine import T0, Engine
from wallboard.config.settings import JournalConfig, ServerConfig
from wallboard.model.events import FIELD_LIMITS, Event, EventError, check_event, parse_event
from wallboard.model.limits import MAX_DURATION_S, WIDEST_LIMITS, Limits, markdown_table

DOC = Path(__file__).resolve().parents[1] / "docs" / "events.md"
TABLE = re.compile(r"<!-- field-limits:.*?-->\n(.*?)<!-- /field-limits -->", re.DOTALL)
NOW = 1_800_000_000.0
DAY = 86_400.0

# A valid event per field (the field set to a valid value) ...
BASE: dict[str, dict[str, Any]] = {
    "contact": {"type": "contact.ended", "ts": NOW, "id": "e1", "queue": "sales",
                "contact_id": "c1", "agent": "ann", "team": "blue", "channel": "voice",
                "talk_s": 60, "hold_s": 5, "wrap_s": 10, "priority": 3},
    "queued": {"type": "contact.queued", "ts": NOW, "queue": "sales", "contact_id": "c1",
               "entered_ts": NOW - 30},
    "answered": {"type": "contact.answered", "ts": NOW, "queue": "sales", "contact_id": "c1",
                 "wait_s": 10},
    "transfer": {"type": "contact.transferred", "ts": NOW, "queue": "sales",
                 "contact_id": "c1", "to_queue": "support"},
    "callback": {"type": "callback.requested", "ts": NOW, "queue": "sales", "contact_id": "c1",
                 "promise_s": 3600},
    "agent": {"type": "agent.state", "ts": NOW, "agent": "ann", "state": "away",
              "reason": "lunch", "queues": ["sales", "support"]},
    "ticket": {"type": "ticket.created", "ts": NOW, "contact_id": "T-1", "due_ts": NOW + DAY},
    "breach": {"type": "ticket.sla_breached", "ts": NOW, "contact_id": "T-1",
               "metric": "first_reply_time"},
    "status": {"type": "ticket.status", "ts": NOW, "contact_id": "T-1", "status": "pending"},
    "survey": {"type": "survey.response", "ts": NOW, "kind": "csat", "score": 4,
               "scale_min": 1, "scale_max": 5, "response_id": "r1"},
    "snapshot": {"type": "queue.snapshot", "ts": NOW, "queue": "sales", "waiting": 3,
                 "oldest_wait_s": 40, "agents": {"available": 2, "busy": 5}},
}
# ... and per field, (event, value) pairs just past its bounds, with the reason each gets.
PAST: dict[str, list[tuple[str, Any, str]]] = {
    "type": [("contact", "contact.teleported", "unknown_type")],
    "ts": [("contact", NOW + 301, "out_of_range"), ("contact", NOW - 7 * DAY - 1, "out_of_range"),
           ("ticket", NOW - 3650 * DAY - 1, "out_of_range"), ("contact", 1e300, "out_of_range"),
           ("contact", "9999-12-31T23:59:59Z", "out_of_range"), ("contact", "soon", "bad_value")],
    "entered_ts": [("queued", NOW + 301, "out_of_range"), ("queued", -1, "out_of_range")],
    "due_ts": [("ticket", NOW + 3650 * DAY + 1, "out_of_range"), ("ticket", [], "bad_value")],
    "priority": [("contact", 1_000_001, "out_of_range"), ("contact", -1_000_001, "out_of_range"),
                 ("contact", 2.5, "bad_value")],
    "waiting": [("snapshot", 100_001, "out_of_range"), ("snapshot", 1e300, "out_of_range"),
                ("snapshot", 2.5, "bad_value")],
    "agents": [("snapshot", {"available": 1e12}, "out_of_range"),
               ("snapshot", {"on_strike": 1}, "bad_value"), ("snapshot", [1], "bad_value")],
    "queues": [("agent", ["q"] * 201, "too_long"), ("agent", ["a\u202eb"], "bad_chars")],
    "channel": [("contact", "pigeon", "bad_value")],
    "state": [("agent", "asleep", "bad_value")],
    "status": [("status", "closed", "bad_value")],
    "kind": [("survey", "ces2", "bad_value")],
    "scale_min": [("survey", -1001, "out_of_range")],
    "scale_max": [("survey", 1001, "out_of_range"), ("survey", 0.5, "bad_value")],
    "score": [("survey", 5.5, "out_of_range"), ("survey", float("nan"), "out_of_range")],
}
for _name, _event in (("wait_s", "answered"), ("talk_s", "contact"), ("hold_s", "contact"),
                      ("wrap_s", "contact"), ("promise_s", "callback"),
                      ("oldest_wait_s", "snapshot")):
    PAST[_name] = [(_event, MAX_DURATION_S + 0.001, "out_of_range"),
                   (_event, 1.7976931348623157e308, "out_of_range"),
                   (_event, float("inf"), "out_of_range"), (_event, -0.001, "out_of_range"),
                   (_event, "12", "bad_value")]
for _name, _event in (("id", "contact"), ("queue", "contact"), ("team", "contact"),
                      ("agent", "contact"), ("contact_id", "contact"), ("reason", "agent"),
                      ("metric", "breach"), ("to_queue", "transfer"), ("response_id", "survey")):
    PAST[_name] = [(_event, "x" * 129, "too_long"), (_event, "x" * 1_000_000, "too_long"),
                   (_event, 10**200, "too_long"), (_event, "sa\x00les", "bad_chars"),
                   (_event, "a\x1bb", "bad_chars"), (_event, "a\x85b", "bad_chars"),
                   (_event, "\u202ecipe", "bad_chars"), (_event, "x\u2069", "bad_chars"),
                   (_event, "", "bad_value")]


def rows_by_field() -> dict[str, Any]:
    return {name: row for row in FIELD_LIMITS for name in row.fields}


def test_the_documented_table_is_the_one_the_code_enforces() -> None:
    match = TABLE.search(DOC.read_text())
    assert match, "docs/events.md lost its <!-- field-limits --> table"
    assert match.group(1) == markdown_table(FIELD_LIMITS), (
        "docs/events.md's field table differs from the code; regenerate it with: python -c "
        "'from wallboard.model.events import FIELD_LIMITS; from wallboard.model.limits import "
        "markdown_table; print(markdown_table(FIELD_LIMITS), end=\"\")'")


def test_every_field_of_an_event_has_exactly_one_row_and_probes() -> None:
    fields = [name for row in FIELD_LIMITS for name in row.fields]
    assert len(fields) == len(set(fields))
    assert set(fields) == {f.name for f in dataclasses.fields(Event)}
    # Every row is probed past its bounds (source is set by the runtime: probed below).
    assert set(PAST) == set(fields) - {"source"}


def test_the_valid_events_pass() -> None:
    for name, raw in BASE.items():
        assert parse_event(dict(raw), "src", NOW).type == raw["type"], name


@pytest.mark.parametrize(("field", "probes"), sorted(PAST.items()))
def test_each_field_is_refused_past_its_bounds_with_a_documented_reason(
        field: str, probes: list[tuple[str, Any, str]]) -> None:
    row = rows_by_field()[field]
    for base, value, reason in probes:
        raw = {**BASE[base], field: value}
        with pytest.raises(EventError) as caught:
            parse_event(raw, "src", NOW)
        assert (caught.value.field.split("[")[0].split(".")[0], caught.value.code) == (
            field, reason), (value, caught.value)
        assert reason in row.reasons, (field, reason)
        assert len(str(caught.value)) < 400  # a megabyte of input is never echoed back


def test_bounds_are_exact_and_messages_name_the_limit() -> None:
    ok = lambda **f: parse_event({**BASE["contact"], **f}, "src", NOW)  # noqa: E731
    assert ok(talk_s=MAX_DURATION_S).talk_s == 604_800.0
    assert ok(ts=NOW + 300).ts == NOW + 300 and ok(ts=NOW - 7 * DAY).ts == NOW - 7 * DAY
    assert ok(queue="q" * 128).queue == "q" * 128
    assert ok(priority=-1_000_000).priority == -1_000_000
    messages = {}
    for field, value in (("talk_s", 1e308), ("queue", "q" * 129), ("queue", "a\tb"),
                         ("ts", NOW + 3600), ("ts", NOW - 8 * DAY)):
        with pytest.raises(EventError) as caught:
            ok(**{field: value})
        messages[(field, str(value)[:8])] = caught.value.message
    assert "7 days" in messages[("talk_s", "1e+308")]
    assert "server.max_name_length (128)" in messages[("queue", "q" * 8)]
    assert "U+0009" in messages[("queue", "a\tb")]
    assert "server.max_clock_skew_s (300 s)" in messages[("ts", str(NOW + 3600)[:8])]
    assert "journal.retention_days (7 days)" in messages[("ts", str(NOW - 8 * DAY)[:8])]


def test_right_to_left_and_joined_text_passes() -> None:
    for name in ("מכירות", "خدمة العملاء", "客服", "support 🎧", "नमस्ते", "می\u200cخواهم",
                 "\u200fשירות\u200e", "a\u00a0b", "Zoë's team"):
        event = parse_event({**BASE["agent"], "agent": name, "team": name, "queues": [name]},
                            "src", NOW)
        assert (event.agent, event.team, event.queues) == (name, name, [name])


def test_the_configured_limits_are_used() -> None:
    small = Limits(max_name_length=16, max_list_items=1, retention_s=DAY, max_clock_skew_s=0)
    for field, value, reason in (("agent", "x" * 17, "too_long"),
                                 ("queues", ["a", "b"], "too_long"),
                                 ("ts", NOW + 1, "out_of_range"),
                                 ("ts", NOW - DAY - 1, "out_of_range")):
        with pytest.raises(EventError) as caught:
            parse_event({**BASE["agent"], field: value}, "src", NOW, small)
        assert caught.value.code == reason, field
    # Without "now" (a recorded file's replay) only 1970..2100 holds.
    assert parse_event({**BASE["agent"], "ts": 1_000.0}, "src").ts == 1_000.0


def test_event_objects_and_their_source_are_checked_like_dicts() -> None:
    event = Event(type="contact.ended", ts=NOW, queue="sales", contact_id="c", talk_s=1.7e308)
    with pytest.raises(EventError) as caught:
        check_event(event, NOW)
    assert (caught.value.field, caught.value.code) == ("talk_s", "out_of_range")
    named = Event(type="contact.queued", ts=NOW, queue="sales", contact_id="c",
                  source="pbx\x1b[31m")
    with pytest.raises(EventError) as caught:
        check_event(named, NOW)
    assert (caught.value.field, caught.value.code) == ("source", "bad_chars")
    checked = check_event(Event(type="contact.answered", ts=NOW, queue="q", contact_id="c",
                                wait_s=3, source="pbx"), NOW)  # type: ignore[arg-type]
    assert (checked.wait_s, checked.source) == (3.0, "pbx")


def test_a_huge_unknown_key_is_not_echoed_back() -> None:
    with pytest.raises(EventError) as caught:
        parse_event({**BASE["queued"], "k" * 1_000_000: 1}, "src", NOW)
    assert caught.value.code == "unknown_field" and len(caught.value.field) <= 65


def test_a_huge_non_text_type_is_named_not_echoed_back() -> None:
    with pytest.raises(EventError) as caught:
        parse_event({**BASE["queued"], "type": [0] * 1_000_000}, "src", NOW)
    assert caught.value.code == "unknown_type" and len(str(caught.value)) < 400
    assert "list" in str(caught.value)


def test_journal_less_fold_keeps_agents_within_max_agents() -> None:
    """Events that skip admission (journal off, replay, other nodes): the fold bounds agents."""
    engine = Engine({"server": {"max_agents": 2}, "queues": {"sales": {}}}, T0)
    for n in range(3):
        with pytest.raises(EventError) if n == 2 else contextlib.nullcontext():
            engine.send({"type": "agent.state", "ts": T0, "agent": f"a{n}", "state": "busy",
                         "queues": ["sales"]})
    # A known agent's answer counts for the agent; a new one's for the queue only.
    engine.send({"type": "contact.answered", "ts": T0 + 1, "queue": "sales", "contact_id": "x",
                 "agent": "a1", "wait_s": 3})
    engine.send({"type": "contact.answered", "ts": T0 + 2, "queue": "sales", "contact_id": "y",
                 "agent": "a9", "wait_s": 3})
    snap = engine.snapshot(T0 + 3)
    assert sorted(snap["agents"]) == ["a0", "a1"]
    assert snap["queues"]["sales"]["today"]["answered"] == 2
    assert engine.pipeline.rejected["agent_limit"] == 2


def test_replay_checks_an_event_against_its_arrival_time() -> None:
    engine = Engine({"queues": {"sales": {}}}, time.time())
    now = engine.now
    bad = Event(type="contact.ended", ts=now, queue="sales", contact_id="c", talk_s=1.7e308)
    # Returned, not raised: the start-up replay quarantines it and goes on.
    caught = engine.pipeline.replay(bad, now)
    assert isinstance(caught, EventError) and caught.code == "out_of_range"
    assert engine.pipeline.rejected["out_of_range"] == 1
    # Eight days old today, but it arrived a day after it happened: within the window then.
    old = Event(type="contact.queued", ts=now - 8 * DAY, queue="sales", contact_id="d")
    assert engine.pipeline.replay(old, now - 7 * DAY) is None
    # Checked against the widest retention any configuration allows (3650 days): only what
    # no configuration would take is refused.
    old_again = Event(type="contact.queued", ts=now - 8 * DAY, queue="sales", contact_id="e")
    assert engine.pipeline.replay(old_again, now) is None
    ancient = Event(type="contact.queued", ts=now - 3651 * DAY, queue="sales", contact_id="f")
    assert isinstance(engine.pipeline.replay(ancient, now), EventError)


def test_the_widest_limits_are_the_configurations_bounds() -> None:
    def most(model: Any, name: str) -> Any:
        return next((m.le for m in model.model_fields[name].metadata if hasattr(m, "le")),
                    None)

    assert WIDEST_LIMITS.max_name_length == most(ServerConfig, "max_name_length")
    assert WIDEST_LIMITS.max_clock_skew_s == most(ServerConfig, "max_clock_skew_s")
    assert WIDEST_LIMITS.retention_s == most(JournalConfig, "retention_days") * DAY
    assert most(ServerConfig, "max_queues") is None  # unbounded: so is the list length


def test_a_flood_of_new_names_in_one_request_is_admitted_in_linear_time() -> None:
    """Each refusal past the limit costs a lookup, not a scan of the names reserved so far."""
    engine = Engine({"server": {"max_agents": 5_000}, "queues": {"sales": {}}}, T0)
    pipeline = engine.pipeline
    events = [pipeline.parse({"type": "agent.state", "ts": T0, "agent": f"a{n}",
                              "state": "busy"}, "s") for n in range(20_000)]
    refused = 0
    started = time.process_time()
    for event in events:
        try:
            pipeline.admit(event)
        except EventError as exc:
            refused += exc.code == "agent_limit"
    assert refused == 15_000
    assert time.process_time() - started < 1.0  # a scan per refusal took seconds
