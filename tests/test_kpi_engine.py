"""The KPI engine against worked examples: SL variants, SL events, tickets, legal rules."""

from __future__ import annotations

import math

import pytest

from tests.engine import T0, Engine
from wallboard.fold import counters as c
from wallboard.kpi.formulas import sl_variants, wilson
from wallboard.model.events import EventError

VARIANTS = ["answered_only", "abandons_negative", "abandons_ignored", "abandons_positive",
            "removed_within_threshold"]
EXPECTED = [0.8235, 0.7368, 0.7609, 0.7684, 0.7800]  # kpis.md §1.3


def _worked_vector_events(queue: str, start: float) -> list[dict]:
    """70 answered <= 20 s, 15 answered later, 5 short, 3 within-T and 7 late abandons."""
    legs = ([("contact.answered", 10.0)] * 70 + [("contact.answered", 45.0)] * 15
            + [("contact.abandoned", 2.0)] * 5 + [("contact.abandoned", 12.0)] * 3
            + [("contact.abandoned", 60.0)] * 7)
    events = []
    for i, (etype, wait) in enumerate(legs):
        t = start + i * 3
        events += [{"type": "contact.queued", "ts": t, "queue": queue, "contact_id": f"{queue}{i}"},
                   {"type": etype, "ts": t + wait, "queue": queue, "contact_id": f"{queue}{i}"}]
    return sorted(events, key=lambda e: e["ts"])


def test_five_service_level_variants_give_the_worked_vector_of_kpis_md() -> None:
    config = {"queues": {v: {"service_level": {"threshold_s": 20, "short_abandon_s": 5,
                                               "variant": v}} for v in VARIANTS}}
    engine = Engine(config, T0)
    for variant in VARIANTS:
        for event in _worked_vector_events(variant, T0):
            engine.send(event)
    snap = engine.snapshot(T0 + 600)
    for variant, expected in zip(VARIANTS, EXPECTED, strict=True):
        block = snap["queues"][variant]
        assert block["sl_variant"] == variant
        assert round(block["1h"]["service_level"], 4) == expected, variant
        # The counts-based table agrees with the event-attributed value once all have left.
        assert round(block["1h"]["sl_variants"][variant], 4) == expected


def test_sl_variants_from_counts_alone() -> None:
    v = [0.0] * len(c.FIELDS)
    v[c.ANSWERED], v[c.ANSWERED_IN_SL] = 85, 70
    v[c.ABANDONED], v[c.ABANDONED_SHORT], v[c.ABANDONED_IN_SL] = 15, 5, 3
    got = sl_variants(v)
    assert [round(got[name], 4) for name in VARIANTS] == EXPECTED


def test_queue_with_no_agents_shows_service_level_falling_before_anyone_leaves() -> None:
    engine = Engine({"queues": {"q": {"service_level": {"threshold_s": 20}}}}, T0)
    for i in range(4):  # four earlier calls answered at once: SL 100 %
        engine.send({"type": "contact.queued", "ts": T0 + i, "queue": "q", "contact_id": f"a{i}"})
        engine.send({"type": "contact.answered", "ts": T0 + i + 1, "queue": "q",
                     "contact_id": f"a{i}"})
    for i in range(4):  # then four callers wait and nobody answers
        engine.send({"type": "contact.queued", "ts": T0 + 100 + i * 5, "queue": "q",
                     "contact_id": f"w{i}"})
    levels = []
    for t in (T0 + 116, T0 + 121, T0 + 126, T0 + 131, T0 + 136):
        snap = engine.snapshot(t)
        levels.append(snap["queues"]["q"]["15m"]["service_level"])
        assert snap["queues"]["q"]["15m"]["answered"] == 4
        assert snap["queues"]["q"]["15m"]["abandoned"] == 0
    assert levels == [1.0, 4 / 5, round(4 / 6, 6), round(4 / 7, 6), 0.5]
    # A late answer of a contact whose miss was already counted does not count twice.
    engine.send({"type": "contact.answered", "ts": T0 + 160, "queue": "q", "contact_id": "w0"})
    assert engine.snapshot(T0 + 161)["queues"]["q"]["15m"]["sl_missed"] == 4


def test_late_answer_within_threshold_takes_back_a_miss_counted_by_the_timer() -> None:
    engine = Engine({"queues": {"q": {}}}, T0)
    engine.send({"type": "contact.queued", "ts": T0, "queue": "q", "contact_id": "x"})
    assert engine.snapshot(T0 + 30)["queues"]["q"]["15m"]["sl_missed"] == 1
    # The answer happened at 15 s but reaches us late.
    engine.send({"type": "contact.answered", "ts": T0 + 15, "queue": "q", "contact_id": "x"},
                at=T0 + 40)
    block = engine.snapshot(T0 + 41)["queues"]["q"]["15m"]
    assert (block["sl_met"], block["sl_missed"], block["service_level"]) == (1, 0, 1.0)


def test_events_later_than_the_lateness_are_dropped_and_counted() -> None:
    engine = Engine({"site": {"lateness_s": 60}, "queues": {"q": {}}}, T0)
    assert engine.send({"type": "contact.queued", "ts": T0 - 30, "queue": "q",
                        "contact_id": "a"}, at=T0) == "accepted"
    assert engine.send({"type": "contact.queued", "ts": T0 - 61, "queue": "q",
                        "contact_id": "b"}, at=T0) == "late"
    snap = engine.snapshot(T0 + 1)
    assert snap["queues"]["q"]["15m"]["offered"] == 1 and snap["meta"]["late_events"] == 1
    assert snap["queues"]["q"]["live"]["waiting"] == 1


def test_duplicate_ids_and_a_late_queued_after_its_answer_leave_no_ghost() -> None:
    engine = Engine({"queues": {"q": {}}}, T0)
    answer = {"type": "contact.answered", "id": "a1", "ts": T0 + 5, "queue": "q",
              "contact_id": "c", "wait_s": 5}
    assert engine.send(answer) == "accepted"
    assert engine.send(answer) == "duplicate"
    engine.send({"type": "contact.queued", "id": "q1", "ts": T0, "queue": "q", "contact_id": "c"})
    snap = engine.snapshot(T0 + 60)
    assert snap["queues"]["q"]["live"]["waiting"] == 0
    assert snap["queues"]["q"]["15m"]["answered"] == 1
    assert snap["queues"]["q"]["15m"]["sl_missed"] == 0


def test_legal_six_minute_rule_counts_from_call_start_and_warns_before() -> None:
    config = {"queues": {"bank": {"legal_rules": [
        {"name": "il_6min", "limit_s": 360, "warn_s": 300, "start": "call"},
        {"name": "es_3min", "limit_s": 180, "target": 0.95, "start": "queue"}]}}}
    engine = Engine(config, T0)
    # Caller spent 100 s in the IVR before joining the queue at T0.
    engine.send({"type": "contact.queued", "ts": T0, "queue": "bank", "contact_id": "a",
                 "entered_ts": T0 - 100})
    engine.send({"type": "contact.queued", "ts": T0 + 1, "queue": "bank", "contact_id": "b"})
    live = engine.snapshot(T0 + 210)["queues"]["bank"]["legal"]
    assert live["il_6min"]["oldest_s"] == 310 and live["il_6min"]["state"] == "warn"
    assert live["es_3min"]["state"] == "breach"
    engine.send({"type": "contact.answered", "ts": T0 + 200, "queue": "bank", "contact_id": "b"})
    snap = engine.snapshot(T0 + 262)
    legal = snap["queues"]["bank"]["today"]["legal"]
    # a: 362 s since call start, still waiting -> breach of the 6-minute rule at 360 s.
    assert legal["il_6min"] == {"breaches": 1, "compliance": 0.5}
    # es_3min from queue entry: a passed 180 s waiting (breach), b answered at 199 s (breach).
    assert legal["es_3min"] == {"breaches": 2, "compliance": 0.0}
    assert snap["queues"]["bank"]["legal"]["il_6min"]["state"] == "breach"


def test_tickets_backlog_first_response_resolution_reopen_and_at_risk() -> None:
    config = {"site": {"ticket_at_risk_s": 900}, "queues": {"billing": {"channel": "email"}}}
    engine = Engine(config, T0)
    for i in range(4):
        engine.send({"type": "ticket.created", "ts": T0 + i * 60, "queue": "billing",
                     "contact_id": f"T{i}", "due_ts": T0 + 3600 + i * 600})
    engine.send({"type": "ticket.first_response", "ts": T0 + 600, "queue": "billing",
                 "contact_id": "T0"})
    engine.send({"type": "ticket.first_response", "ts": T0 + 1260, "queue": "billing",
                 "contact_id": "T1"})
    engine.send({"type": "ticket.resolved", "ts": T0 + 1800, "queue": "billing",
                 "contact_id": "T0"})
    engine.send({"type": "ticket.resolved", "ts": T0 + 2460, "queue": "billing",
                 "contact_id": "T1"})
    engine.send({"type": "ticket.reopened", "ts": T0 + 2500, "queue": "billing",
                 "contact_id": "T1"})
    snap = engine.snapshot(T0 + 3400)
    live, today = snap["queues"]["billing"]["live"], snap["queues"]["billing"]["today"]
    assert live["tickets_open"] == 3  # T1 reopened, T2, T3
    assert live["tickets_at_risk"] == 1  # T1 is due at T0+4200: 800 s left, under 15 min
    assert live["tickets_overdue"] == 0
    assert live["oldest_ticket_s"] == 3400 - 60  # T1, created at T0+60
    later = engine.snapshot(T0 + 4300)["queues"]["billing"]["live"]
    assert (later["tickets_overdue"], later["tickets_at_risk"]) == (1, 1)  # T1 late, T2 close
    assert today["first_responses"] == 2
    assert today["frt_avg_s"] == (600 + 1200) / 2
    assert today["frt_p50_s"] == pytest.approx(600, rel=0.01)
    assert today["resolution_avg_s"] == (1800 + 2400) / 2
    assert (today["tickets_resolved"], today["tickets_reopened"]) == (2, 1)
    assert (today["fcr"], today["fcr_n"]) == (0.5, 2)


def test_pending_and_hold_split_the_backlog_and_a_reopen_makes_it_open_again() -> None:
    engine = Engine({"queues": {"billing": {"channel": "email"}}}, T0)
    for i in range(3):
        engine.send({"type": "ticket.created", "ts": T0 + i, "queue": "billing",
                     "contact_id": f"P{i}"})
    for i, status in enumerate(("pending", "hold")):
        engine.send({"type": "ticket.status", "ts": T0 + 60, "queue": "billing",
                     "contact_id": f"P{i}", "status": status})
    live = engine.snapshot(T0 + 120)["queues"]["billing"]["live"]
    assert (live["tickets_open"], live["tickets_pending"]) == (3, 2)
    engine.send({"type": "ticket.resolved", "ts": T0 + 180, "queue": "billing",
                 "contact_id": "P0"})
    engine.send({"type": "ticket.status", "ts": T0 + 200, "queue": "billing",
                 "contact_id": "P1", "status": "open"})
    snap = engine.snapshot(T0 + 240)
    assert (snap["queues"]["billing"]["live"]["tickets_open"],
            snap["queues"]["billing"]["live"]["tickets_pending"]) == (2, 0)
    assert snap["total"]["live"]["tickets_pending"] == 0
    engine.send({"type": "ticket.status", "ts": T0 + 250, "queue": "billing",
                 "contact_id": "P2", "status": "pending"})
    engine.send({"type": "ticket.reopened", "ts": T0 + 260, "queue": "billing",
                 "contact_id": "P0"})
    live = engine.snapshot(T0 + 300)["queues"]["billing"]["live"]
    assert (live["tickets_open"], live["tickets_pending"]) == (3, 1)
    with pytest.raises(EventError) as refused:  # an unknown status is refused, with its field
        engine.send({"type": "ticket.status", "ts": T0 + 300, "queue": "billing",
                     "contact_id": "P2", "status": "snoozed"})
    assert refused.value.field == "status"


def test_ticket_history_older_than_the_lateness_fills_the_backlog_not_today() -> None:
    # A helpdesk source's first poll reads tickets opened days ago: they are open now.
    engine = Engine({"queues": {"billing": {"channel": "email"}}}, T0)
    old = T0 - 3 * 86400
    engine.send({"type": "ticket.created", "ts": old, "queue": "billing", "contact_id": "A"})
    engine.send({"type": "ticket.created", "ts": old, "queue": "billing", "contact_id": "B"})
    engine.send({"type": "ticket.first_response", "ts": old + 600, "queue": "billing",
                 "contact_id": "A"})
    engine.send({"type": "ticket.resolved", "ts": T0 - 30, "queue": "billing",
                 "contact_id": "B"})
    engine.send({"type": "contact.queued", "ts": old, "queue": "billing", "contact_id": "c"})
    snap = engine.snapshot(T0 + 60)
    live, today = snap["queues"]["billing"]["live"], snap["queues"]["billing"]["today"]
    assert live["tickets_open"] == 1 and live["oldest_ticket_s"] == 3 * 86400 + 60
    assert today["tickets_created"] == 0 and today["first_responses"] == 0
    assert today["tickets_resolved"] == 1  # resolved half a minute ago: today's
    assert today["offered"] == 0 and snap["meta"]["late_events"] == 1  # contacts: too late


def test_callbacks_pending_completed_within_promise_and_sl_removal() -> None:
    config = {"queues": {"q": {"callback_promise_s": 3600,
                               "service_level": {"variant": "removed_within_threshold"}}}}
    engine = Engine(config, T0)
    for i, wait in enumerate((10, 50)):
        engine.send({"type": "contact.queued", "ts": T0, "queue": "q", "contact_id": f"c{i}"})
        engine.send({"type": "callback.requested", "ts": T0 + wait, "queue": "q",
                     "contact_id": f"c{i}"})
    engine.send({"type": "callback.completed", "ts": T0 + 1000, "queue": "q", "contact_id": "c0"})
    snap = engine.snapshot(T0 + 1200)
    block = snap["queues"]["q"]
    assert block["live"]["callbacks_pending"] == 1 and block["live"]["waiting"] == 0
    assert (block["1h"]["callbacks_requested"], block["1h"]["callbacks_completed"],
            block["1h"]["callbacks_in_promise"]) == (2, 1, 1)
    # Amazon style: a callback requested within T is a success; one after T a miss.
    assert (block["1h"]["sl_met"], block["1h"]["sl_missed"]) == (1, 1)


def test_survey_kpis_with_intervals_and_minimum_sample() -> None:
    engine = Engine({"site": {"min_survey_sample": 10}, "queues": {"q": {}}}, T0)
    scores = [5] * 8 + [2] * 2 + [3] * 2  # 8 of 12 satisfied
    for i, s in enumerate(scores):
        engine.send({"type": "survey.response", "ts": T0 + i, "queue": "q", "kind": "csat",
                     "score": s})
    for i, s in enumerate([10, 10, 9, 7, 3]):
        engine.send({"type": "survey.response", "ts": T0 + i, "queue": "q", "kind": "nps",
                     "score": s})
    today = engine.snapshot(T0 + 60)["queues"]["q"]["today"]
    low, high = wilson(8, 12)
    # Independent Wilson interval: p=2/3, n=12, z=1.96.
    p, n, z = 8 / 12, 12, 1.959964
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert (low, high) == pytest.approx((centre - half, centre + half))
    assert today["csat"] == round(8 / 12, 6) and today["csat_n"] == 12
    assert today["csat_low"] == round(low, 6) and today["csat_high"] == round(high, 6)
    assert today["nps"] is None and today["nps_n"] == 5  # hidden below the minimum sample


def test_occupancy_from_agent_time_in_state_including_the_current_state() -> None:
    engine = Engine({"queues": {"q": {}}}, T0)
    engine.send({"type": "agent.state", "ts": T0, "agent": "ann", "team": "blue",
                 "state": "available", "queues": ["q"]})
    engine.send({"type": "agent.state", "ts": T0 + 100, "agent": "ann", "state": "busy"})
    engine.send({"type": "agent.state", "ts": T0 + 400, "agent": "ann", "state": "wrapup"})
    engine.send({"type": "agent.state", "ts": T0 + 450, "agent": "ann", "state": "available"})
    snap = engine.snapshot(T0 + 500)  # 150 s available, 350 s handling
    assert snap["queues"]["q"]["15m"]["occupancy"] == 0.7
    assert snap["agents"]["ann"]["15m"]["occupancy"] == 0.7
    assert snap["teams"]["blue"]["15m"]["occupancy"] == 0.7
    assert snap["total"]["15m"]["occupancy"] == 0.7
    assert snap["agents"]["ann"]["state"] == "available"


def _erlang_c_sl(n: int, a: float, aht: float, t: float) -> float:
    """Textbook Erlang C service level, with factorials (independent of wallboard.kpi.erlang)."""
    top = a ** n / math.factorial(n) * n / (n - a)
    p_wait = top / (sum(a ** k / math.factorial(k) for k in range(n)) + top)
    return 1 - p_wait * math.exp(-(n - a) * t / aht)


def test_staffing_forecast_uses_window_rate_aht_and_agents_staffed_now() -> None:
    config = {"windows": ["15m", "today"],
              "queues": {"q": {"staffing": {"model": "erlang_c"},
                               "service_level": {"threshold_s": 20, "target": 0.8}}}}
    engine = Engine(config, T0)
    for i in range(12):
        engine.send({"type": "agent.state", "ts": T0, "agent": f"a{i}", "state": "available",
                     "queues": ["q"]})
    for i in range(50):  # 50 contacts in the last 15 minutes, 180 s each
        t = T0 + 10 + i * 17
        engine.send({"type": "contact.queued", "ts": t, "queue": "q", "contact_id": f"c{i}"})
        engine.send({"type": "contact.answered", "ts": t + 1, "queue": "q", "contact_id": f"c{i}"})
        engine.send({"type": "contact.ended", "ts": t + 2, "queue": "q", "contact_id": f"c{i}",
                     "talk_s": 180})
    live = engine.snapshot(T0 + 880)["queues"]["q"]["live"]
    rate = 50 / 900  # offered over the window's length
    a = rate * 180
    needed = next(n for n in range(math.ceil(a) + 1, 100) if _erlang_c_sl(n, a, 180, 20) >= 0.8)
    assert live["agents_needed"] == needed
    assert live["forecast_sl"] == pytest.approx(_erlang_c_sl(12, a, 180, 20), abs=1e-6)
    assert live["forecast_abandon"] is None  # Erlang C knows no abandons


def test_queue_time_zone_sets_its_own_today() -> None:
    config = {"site": {"timezone": "UTC", "lateness_s": 20000},
              "queues": {"ny": {"timezone": "America/New_York"}, "utc": {}}}
    # 2026-11-18 03:00 UTC is 22:00 the day before in New York.
    start = 1_795_402_800.0
    engine = Engine(config, start)
    for q in ("ny", "utc"):
        engine.send({"type": "contact.queued", "ts": start - 3 * 3600 - 60, "queue": q,
                     "contact_id": f"{q}-early"})  # 23:59 UTC / 18:59 New York
    snap = engine.snapshot(start)
    assert snap["queues"]["utc"]["today"]["offered"] == 0
    assert snap["queues"]["ny"]["today"]["offered"] == 1
