"""CSAT, NPS and CES per agent and per team: n, intervals and the sample floor, by hand."""

from __future__ import annotations

import math
from typing import Any

from tests.engine import T0, Engine

Z95 = 1.959963984540054


def config(min_sample: int) -> dict[str, Any]:
    return {"site": {"min_survey_sample": min_sample}, "queues": {"sales": {}}}


def engine(min_sample: int) -> Engine:
    """Ann and Bob in team blue, each with a few survey answers."""
    eng = Engine(config(min_sample), T0)
    for agent in ("ann", "bob"):
        eng.send({"type": "agent.state", "id": f"s-{agent}", "ts": T0, "agent": agent,
                  "team": "blue", "state": "available", "queues": ["sales"]})
    answers = [("ann", "nps", 10), ("ann", "nps", 9), ("ann", "nps", 3), ("ann", "nps", 7),
               ("ann", "ces", 2), ("ann", "ces", 4), ("ann", "csat", 5), ("ann", "csat", 2),
               ("bob", "nps", 0), ("bob", "csat", 4)]
    for n, (agent, kind, score) in enumerate(answers):
        eng.send({"type": "survey.response", "id": f"r{n}", "ts": T0 + 10 + n, "queue": "sales",
                  "agent": agent, "kind": kind, "score": score})
    return eng


def nps(scores: list[int]) -> tuple[float, float]:
    """NPS and its 95% margin from raw 0-10 scores."""
    n = len(scores)
    p = sum(s >= 9 for s in scores) / n
    d = sum(s <= 6 for s in scores) / n
    return 100 * (p - d), 100 * Z95 * math.sqrt((p + d - (p - d) ** 2) / n)


def test_agent_and_team_blocks_carry_nps_ces_and_csat_intervals() -> None:
    snap = engine(1).snapshot(T0 + 60)
    ann = snap["agents"]["ann"]["today"]
    score, margin = nps([10, 9, 3, 7])  # 2 promoters, 1 detractor of 4: +25
    assert score == 25.0
    assert (ann["nps"], ann["nps_n"]) == (score, 4)
    assert ann["nps_margin"] == round(margin, 2)
    assert (ann["ces"], ann["ces_n"]) == (3.0, 2)  # mean of 2 and 4; sample variance 2
    assert ann["ces_margin"] == round(Z95 * math.sqrt(2 / 2), 4)
    assert (ann["csat"], ann["csat_n"]) == (0.5, 2)  # 5 satisfied, 2 not
    assert ann["csat_low"] < 0.5 < ann["csat_high"]
    team = snap["teams"]["blue"]["today"]
    score, margin = nps([10, 9, 3, 7, 0])  # Bob's 0 joins: 2 promoters, 2 detractors of 5
    assert (team["nps"], team["nps_n"], team["nps_margin"]) == (0.0, 5, round(margin, 2))
    assert (team["csat"], team["csat_n"]) == (round(2 / 3, 6), 3)
    assert team["ces_n"] == 2


def test_below_the_sample_floor_an_agent_shows_n_but_no_score() -> None:
    snap = engine(3).snapshot(T0 + 60)
    ann, bob = snap["agents"]["ann"]["today"], snap["agents"]["bob"]["today"]
    assert (ann["nps"] is not None, ann["nps_n"]) == (True, 4)  # 4 answers: over the floor
    assert (ann["csat"], ann["csat_n"], ann["ces"], ann["ces_n"]) == (None, 2, None, 2)
    assert (bob["nps"], bob["nps_n"], bob["csat"], bob["csat_n"]) == (None, 1, None, 1)
    assert snap["teams"]["blue"]["today"]["csat"] == round(2 / 3, 6)  # 3 answers: shown
