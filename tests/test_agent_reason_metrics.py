"""The reasons family in /metrics: bounded by agents.reasons (unknown texts are 'other'),
equal to the snapshot's time in reason, and accepted by `promtool check metrics`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.conftest import base_config, require_program
from tests.opsmetrics import samples
from tests.test_metrics_catalogue import PROMTOOL, promtool_check


async def test_agents_in_reason_and_seconds_in_reason(live_server, tmp_path: Path) -> None:
    config = base_config(journal={"data_dir": str(tmp_path / "journal")},
                         windows=["15m", "today"],
                         agents={"reasons": {"Lunch break": "lunch", "Coffee": "break",
                                             "coffee break": "break"}})
    live = await live_server(config)
    now = time.time()
    agents = [("a1", "away", "Lunch break"), ("a2", "away", "COFFEE"), ("a3", "away", "Dentist"),
              ("a4", "away", "Training on {\"x\"}\\n"), ("a5", "available", None),
              ("a6", "offline", "Lunch break")]  # logged out: in no reason now
    events = [{"type": "agent.state", "id": f"s-{a}", "ts": now - 60, "agent": a, "state": s,
               **({"reason": r} if r else {})} for a, s, r in agents]
    status, body = await live.post(events)
    assert status == 202, body
    for _ in range(200):
        _, text = await live.get_text("/metrics")
        if 'wallboard_agents_in_reason{reason="other"} 2.0' in text:
            break
        await asyncio.sleep(0.05)
    now_in = {labels["reason"]: value for name, labels, value in samples(text)
              if name == "wallboard_agents_in_reason"}
    # Bounded by the map: the sources' free texts never become labels.
    assert now_in == {"break": 1.0, "lunch": 1.0, "other": 2.0}
    snapshot = await live.get_json("/api/snapshot")
    _, text = await live.get_text("/metrics")
    spent = {(labels["window"], labels["reason"]): value for name, labels, value in samples(text)
             if name == "wallboard_reason_seconds"}
    assert set(spent) == {(w, r) for w in ("15m", "today") for r in ("break", "lunch", "other")}
    # a1 has been at lunch for about 60 s: the same number as the snapshot's, within a tick.
    assert 55 <= spent[("today", "lunch")] <= 120
    assert abs(spent[("today", "other")] - 2 * spent[("today", "lunch")]) < 5
    assert abs(snapshot["total"]["today"]["time_in_reason"]["lunch"]
               - spent[("today", "lunch")]) < 5
    require_program(PROMTOOL, "apt-get install prometheus (promtool checks the exposition)")
    result = promtool_check(text)
    assert result.returncode == 0, result.stdout + result.stderr
