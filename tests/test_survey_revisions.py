"""A survey response counts once: replays are de-duplicated, a revision replaces the earlier one."""

from __future__ import annotations

from typing import Any

from tests.engine import T0, Engine
from wallboard.fold.surveys import SURVEY_MEMORY_S
from wallboard.model.events import parse_event

CONFIG: dict[str, Any] = {"site": {"min_survey_sample": 1},
                          "queues": {"sales": {}, "support": {}}}


def response(rid: str, rev: int, score: float, ts: float, *, kind: str = "csat",
             queue: str = "sales", agent: str | None = "ann") -> dict[str, Any]:
    """Revision `rev` of response `rid`: its own event id, the shared response id."""
    event = {"type": "survey.response", "id": f"{rid}@{rev}", "response_id": rid, "ts": ts,
             "queue": queue, "kind": kind, "score": score}
    if agent:
        event["agent"] = agent
    return event


def engine_with_agent() -> Engine:
    engine = Engine(CONFIG, T0)
    engine.send({"type": "agent.state", "id": "s1", "ts": T0, "agent": "ann", "team": "blue",
                 "state": "available", "queues": ["sales"]})
    return engine


def csat(snap: dict[str, Any], window: str, queue: str = "sales") -> tuple[Any, int]:
    block = snap["queues"][queue][window]
    return block["csat"], block["csat_n"]


def test_a_replayed_event_id_is_counted_once() -> None:
    engine = engine_with_agent()
    first = response("r1", 1, 2, T0 + 10)
    assert engine.send(first) == "accepted"
    assert engine.send(dict(first)) == "duplicate"
    snap = engine.snapshot(T0 + 20)
    assert csat(snap, "today") == (0.0, 1)
    assert snap["agents"]["ann"]["today"]["csat_n"] == 1


def test_an_updated_score_replaces_the_earlier_one_in_every_window_and_grouping() -> None:
    engine = engine_with_agent()
    engine.send(response("r1", 1, 2, T0 + 10))  # dissatisfied
    engine.send(response("r2", 1, 5, T0 + 11))  # another response, satisfied
    snap = engine.snapshot(T0 + 30)
    assert csat(snap, "15m") == (0.5, 2)
    engine.send(response("r1", 2, 4, T0 + 40))  # the customer revised 2 → 4
    snap = engine.snapshot(T0 + 50)
    for window in ("15m", "1h", "today"):
        assert csat(snap, window) == (1.0, 2), window
        assert snap["total"][window]["csat_n"] == 2
        assert snap["agents"]["ann"][window]["csat"] == 1.0
        assert snap["agents"]["ann"][window]["csat_n"] == 2
        assert snap["teams"]["blue"][window]["csat_n"] == 2
    assert engine.aggregator.surveys.replaced == 1


def test_nps_and_ces_revisions_leave_exact_counts_and_means() -> None:
    engine = Engine(CONFIG, T0)
    engine.send(response("n1", 1, 3, T0 + 1, kind="nps", agent=None))   # detractor
    engine.send(response("n2", 1, 10, T0 + 2, kind="nps", agent=None))  # promoter
    engine.send(response("n1", 2, 8, T0 + 3, kind="nps", agent=None))   # now passive
    engine.send(response("c1", 1, 2, T0 + 1, kind="ces", agent=None))
    engine.send(response("c2", 1, 6, T0 + 2, kind="ces", agent=None))
    engine.send(response("c1", 2, 7, T0 + 3, kind="ces", agent=None))
    today = engine.snapshot(T0 + 10)["queues"]["sales"]["today"]
    # By hand: NPS over {8, 10} = 100·(1/2 − 0) = 50; CES mean of {7, 6} = 6.5.
    assert (today["nps"], today["nps_n"]) == (50.0, 2)
    assert (today["ces"], today["ces_n"]) == (6.5, 2)
    # CES margin by hand: s = sample sd of {7, 6} = √0.5, 1.96·s/√2 = 0.98.
    assert today["ces_margin"] == 0.98


def test_an_older_revision_arriving_late_does_not_replace_a_newer_one() -> None:
    engine = Engine(CONFIG, T0)
    engine.send(response("r1", 2, 5, T0 + 50, agent=None))
    engine.send(response("r1", 1, 1, T0 + 10, agent=None), at=T0 + 60)  # delivered out of order
    assert csat(engine.snapshot(T0 + 70), "today") == (1.0, 1)
    assert engine.aggregator.surveys.superseded == 1


def test_a_revision_moving_the_response_to_another_queue_leaves_the_first_queue() -> None:
    engine = Engine(CONFIG, T0)
    engine.send(response("r1", 1, 5, T0 + 1, agent=None))
    engine.send(response("r1", 2, 1, T0 + 2, queue="support", agent=None))
    snap = engine.snapshot(T0 + 10)
    assert csat(snap, "today", "sales") == (None, 0)
    assert csat(snap, "today", "support") == (0.0, 1)
    assert snap["total"]["today"]["csat_n"] == 1


def test_the_earlier_revision_is_taken_back_where_it_was_counted() -> None:
    """Revised 20 minutes later: the 15m window holds the new score only, today holds one."""
    engine = Engine(CONFIG, T0)
    engine.send(response("r1", 1, 1, T0 + 5, agent=None))
    engine.send(response("r1", 2, 5, T0 + 1205, agent=None))
    snap = engine.snapshot(T0 + 1210)
    assert csat(snap, "15m") == (1.0, 1)
    assert csat(snap, "today") == (1.0, 1)
    # Without response_id the same two answers are two responses (what a plain source sends).
    plain = Engine(CONFIG, T0)
    for i, (score, ts) in enumerate(((1, T0 + 5), (5, T0 + 1205))):
        plain.send({"type": "survey.response", "id": f"p{i}", "ts": ts, "queue": "sales",
                    "kind": "csat", "score": score})
    assert csat(plain.snapshot(T0 + 1210), "today") == (0.5, 2)


def test_replaying_the_journal_order_rebuilds_the_same_numbers() -> None:
    """A restart folds the stored revisions back in order: the same KPIs come out."""
    events = [response("r1", 1, 2, T0 + 10), response("r2", 1, 5, T0 + 11),
              response("r1", 2, 4, T0 + 40), response("r3", 1, 1, T0 + 41),
              response("r3", 2, 3, T0 + 42)]
    live = engine_with_agent()
    for event in events:
        live.send(event)
    restarted = engine_with_agent()
    for event in events:
        restarted.now = event["ts"]
        restarted.pipeline.replay(parse_event(event, "test"))
    assert live.snapshot(T0 + 60)["queues"] == restarted.snapshot(T0 + 60)["queues"]
    assert csat(restarted.snapshot(T0 + 60), "today") == (round(2 / 3, 6), 3)


def test_remembered_responses_are_forgotten_after_every_window_has_passed_them() -> None:
    engine = Engine(CONFIG, T0)
    engine.send(response("r1", 1, 5, T0 + 1, agent=None))
    engine.snapshot(T0 + 100)
    assert len(engine.aggregator.surveys.counted) == 1
    engine.snapshot(T0 + 1 + SURVEY_MEMORY_S + 1)
    assert len(engine.aggregator.surveys.counted) == 0


def retracted(rid: str, ts: float) -> dict[str, Any]:
    return {"type": "survey.retracted", "id": f"{rid}@deleted", "response_id": rid, "ts": ts}


def test_a_deleted_response_leaves_every_window_and_a_late_older_revision_stays_out() -> None:
    engine = engine_with_agent()
    engine.send(response("r1", 1, 5, T0 + 10))
    engine.send(response("r2", 1, 1, T0 + 11))
    engine.send(retracted("r1", T0 + 20))
    snap = engine.snapshot(T0 + 30)
    for window in ("15m", "today"):
        assert csat(snap, window) == (0.0, 1)
        assert snap["agents"]["ann"][window]["csat_n"] == 1
    engine.send(response("r1", 0, 4, T0 + 5), at=T0 + 40)  # older than the deletion
    assert csat(engine.snapshot(T0 + 50), "today") == (0.0, 1)
    engine.send(retracted("r9", T0 + 60))  # never counted: nothing to take back
    assert csat(engine.snapshot(T0 + 70), "today") == (0.0, 1)
    assert engine.aggregator.surveys.retracted == 1
    # A deletion older than the revision counted (delivered out of order) leaves it counted.
    engine.send(response("r3", 2, 5, T0 + 100))
    engine.send(retracted("r3", T0 + 90), at=T0 + 110)
    assert csat(engine.snapshot(T0 + 120), "today") == (0.5, 2)


def test_survey_retracted_needs_a_response_id() -> None:
    engine = Engine(CONFIG, T0)
    try:
        engine.send({"type": "survey.retracted", "id": "x", "ts": T0})
    except ValueError as exc:
        assert "response_id" in str(exc)
    else:
        raise AssertionError("a survey.retracted without response_id was accepted")
