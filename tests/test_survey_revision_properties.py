"""Property: revisions, deletions, replays and disorder in any order equal a brute-force recount."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.engine import T0, Engine

CONFIG = {"site": {"min_survey_sample": 1, "lateness_s": 86_400},
          "queues": {"sales": {}, "support": {}}}

revision = st.tuples(
    st.integers(0, 5),  # response
    st.integers(0, 3000),  # event time offset
    st.integers(0, 5),  # score on 1–5, or 0: the response is deleted
    st.sampled_from(["sales", "support"]),
    st.sampled_from(["ann", "bob"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(revision, min_size=1, max_size=30), st.randoms(use_true_random=False))
def test_counts_equal_the_latest_revision_of_each_response(revisions: list, rnd) -> None:
    events = [{"type": "survey.response", "id": f"r{r}@{dt}", "response_id": f"r{r}",
               "ts": T0 + dt, "queue": q, "agent": a, "kind": "csat", "score": s} if s else
              {"type": "survey.retracted", "id": f"r{r}@{dt}", "response_id": f"r{r}",
               "ts": T0 + dt}
              for r, dt, s, q, a in revisions]
    deliveries = events + rnd.sample(events, k=len(events) // 3)  # some re-delivered
    rnd.shuffle(deliveries)
    engine = Engine(CONFIG, T0)
    for name in ("ann", "bob"):
        engine.send({"type": "agent.state", "id": f"s-{name}", "ts": T0, "agent": name,
                     "state": "available", "queues": ["sales"]}, at=T0)
    arrival = T0 + 3000
    counted: dict[str, dict] = {}  # brute force: the latest revision by ts, ties to arrival
    seen: set[str] = set()
    for event in deliveries:
        arrival += 1
        engine.send(dict(event), at=arrival)
        if event["id"] in seen:
            continue
        seen.add(event["id"])
        current = counted.get(event["response_id"])
        if current is None or event["ts"] >= current["ts"]:
            counted[event["response_id"]] = event
    counted = {rid: e for rid, e in counted.items() if e["type"] == "survey.response"}
    now = arrival + 1
    snap = engine.snapshot(now)
    start_15m, _ = next(iter(engine.aggregator.leaves.values())).windows.time_range("15m", now)
    for window, since in (("today", 0.0), ("1h", 0.0), ("15m", start_15m)):
        for queue in ("sales", "support"):
            mine = [e for e in counted.values() if e["queue"] == queue and e["ts"] >= since]
            block = snap["queues"][queue][window]
            assert block["csat_n"] == len(mine), (window, queue)
            good = sum(1 for e in mine if e["score"] >= 4)
            assert block["csat"] == (round(good / len(mine), 6) if mine else None)
        if window == "15m":
            continue  # agents' rolling windows have one-minute buckets: another coverage
        for agent in ("ann", "bob"):
            mine = [e for e in counted.values() if e["agent"] == agent]
            assert snap["agents"][agent][window]["csat_n"] == len(mine), (window, agent)
