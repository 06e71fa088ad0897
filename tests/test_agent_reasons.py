"""Agents' reasons and roster in the fold: time in reason per window equals a recount."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tests.engine import T0, Engine

DAY = 86400.0
MIDNIGHT = T0 - T0 % DAY  # the site is on UTC
START = MIDNIGHT - 2 * 3600  # the script starts at 22:00 the day before: windows cross midnight
END = MIDNIGHT + 9 * 3600
ROSTER = {"a1": {"name": "Ada Lovelace", "team": "red", "queues": ["sales"]},
          "a2": {"name": "Alan Turing", "team": "red"},
          "a3": {"name": "Grace Hopper", "team": "blue", "queues": ["support"]}}
REASONS = {"Lunch break": "lunch", "Coffee": "break", "break": "break", "Training": "training"}
TEXTS = ["Lunch break", "lunch BREAK", "Coffee", "break", "Dentist", "Training", None]
CONFIG: dict[str, Any] = {
    "windows": ["1h", "today", "yesterday"],
    "site": {"timezone": "UTC", "lateness_s": 86400},
    "queues": {"sales": {}, "support": {}},
    "agents": {"roster": ROSTER, "reasons": REASONS},
}


def code_of(text: str | None) -> str | None:
    """The test's own normalisation: the map, case-insensitively; unknown texts are 'other'."""
    if text is None:
        return None
    folded = {k.casefold(): v for k, v in REASONS.items()}
    return folded.get(text.casefold(), "other")


def window_range(window: str, now: float) -> tuple[float, float]:
    """What each window covers at `now`: whole one-minute buckets for 1h, the UTC days."""
    today = now - now % DAY
    if window == "1h":
        return (now // 60 - 60) * 60, now
    if window == "today":
        return today, now
    return today - DAY, today


def recount(events: list[dict[str, Any]], now: float, window: str) -> dict[str, dict[str, float]]:
    """Seconds in each reason code per agent over the window, from the events alone."""
    low, high = window_range(window, now)
    high = min(high, now)
    out: dict[str, dict[str, float]] = {a: {} for a in ROSTER}
    for agent in ROSTER:
        mine = [e for e in events if e["agent"] == agent and e["ts"] <= now]
        for i, e in enumerate(mine):
            end = mine[i + 1]["ts"] if i + 1 < len(mine) else now
            code = code_of(e.get("reason"))
            if code is None or e["state"] == "offline":
                continue
            piece = min(end, high) - max(e["ts"], low)
            if piece > 0:
                out[agent][code] = out[agent].get(code, 0.0) + piece
    return out


def script(seed: int) -> list[dict[str, Any]]:
    """A day of transitions for three agents, with repeats of the same state and reason."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for agent in ROSTER:
        ts = START + rng.uniform(0, 600)
        last: dict[str, Any] | None = None
        while ts < END:
            if last is not None and rng.random() < 0.15:
                event = {**last, "ts": ts}  # a source's reconciliation: the same again
            else:
                state = rng.choice(["available", "busy", "wrapup", "away", "away", "offline"])
                event = {"type": "agent.state", "agent": agent, "state": state, "ts": ts}
                text = rng.choice(TEXTS) if state in ("away", "available") else None
                if text is not None:
                    event["reason"] = text
            events.append(event)
            last = event
            ts += rng.choice([rng.uniform(5, 120), rng.uniform(300, 5400)])
    return sorted(events, key=lambda e: e["ts"])


def test_roster_agents_are_logged_out_in_their_teams_before_any_event() -> None:
    snap = Engine(CONFIG, now=START).snapshot()
    assert {a: snap["agents"][a]["state"] for a in ROSTER} == dict.fromkeys(ROSTER, "offline")
    assert snap["agents"]["a1"]["queues"] == "sales"
    assert snap["teams"]["red"]["live"]["agents_offline"] == 2
    assert snap["teams"]["blue"]["live"]["agents_offline"] == 1
    assert snap["queues"]["sales"]["live"]["agents_offline"] == 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_time_in_reason_per_window_equals_a_recount(seed: int) -> None:
    engine = Engine(CONFIG, now=START)
    events = script(seed)
    rng = random.Random(seed + 100)
    samples = [*(rng.uniform(START, END) for _ in range(12)), MIDNIGHT + 1, END]
    pending = sorted(samples)
    checked = 0
    for event in events:
        while pending and pending[0] < event["ts"]:
            checked += check(engine, events, pending.pop(0))
        engine.send(dict(event))
    for at in pending:
        checked += check(engine, events, at)
    assert checked > 0


def check(engine: Engine, events: list[dict[str, Any]], at: float) -> int:
    """Compare agents', teams' and the site's time in reason with the recount at `at`."""
    snap = engine.snapshot(at)
    codes = ["break", "lunch", "training", "other"]
    compared = 0
    for window in ("1h", "today", "yesterday"):
        expected = recount(events, at, window)
        for agent, by_code in expected.items():
            block = snap["agents"][agent].get(window)
            if block is None:  # no event of this agent yet: nothing counted either
                assert not by_code
                continue
            got = block["time_in_reason"]
            assert set(got) <= set(codes)  # an agent lists the codes it spent time in
            for code in codes:
                assert got.get(code, 0.0) == pytest.approx(by_code.get(code, 0.0), abs=0.01), \
                    (agent, window, code, at - MIDNIGHT)
                compared += 1
        for team, members in (("red", ["a1", "a2"]), ("blue", ["a3"])):
            got = snap["teams"][team][window]["time_in_reason"]
            assert list(got) == codes  # teams and the site list every code, 'other' last
            for code in codes:
                want = sum(expected[a].get(code, 0.0) for a in members)
                assert got[code] == pytest.approx(want, abs=0.03), (team, window, code)
        site = snap["total"][window]["time_in_reason"]
        for code in codes:
            want = sum(expected[a].get(code, 0.0) for a in ROSTER)
            assert site[code] == pytest.approx(want, abs=0.03), ("site", window, code)
    return compared


def test_live_state_carries_reason_code_since_and_channel() -> None:
    engine = Engine(CONFIG, now=MIDNIGHT + 3600)
    t = MIDNIGHT + 3600
    engine.send({"type": "agent.state", "agent": "a1", "state": "away", "reason": "Coffee",
                 "ts": t})
    engine.send({"type": "agent.state", "agent": "a1", "state": "away", "reason": "Coffee",
                 "ts": t + 30})  # a repeat: the time in state goes on from the first
    engine.send({"type": "agent.state", "agent": "a2", "state": "busy", "ts": t + 40})
    engine.send({"type": "contact.queued", "queue": "sales", "contact_id": "c1", "ts": t + 41,
                 "channel": "chat"})
    engine.send({"type": "contact.answered", "queue": "sales", "contact_id": "c1",
                 "agent": "a2", "ts": t + 50, "channel": "chat"})
    snap = engine.snapshot(t + 60)
    a1, a2 = snap["agents"]["a1"], snap["agents"]["a2"]
    assert (a1["state"], a1["reason"], a1["code"], a1["since"]) == ("away", "Coffee", "break", t)
    assert a1["today"]["time_in_reason"]["break"] == pytest.approx(60)
    assert (a2["state"], a2["channel"], a2["team"]) == ("busy", "chat", "red")
    engine.send({"type": "agent.state", "agent": "a2", "state": "available", "ts": t + 70})
    assert engine.snapshot(t + 71)["agents"]["a2"]["channel"] is None
