"""A scripted day with known answers: websocket, /api/snapshot and /metrics agree exactly."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import base_config, now
from tests.wsclient import BoardClient

SL_T, SHORT_S = 20.0, 5.0
ANSWER_WAITS = [3.0, 8.0, 12.5, 19.0, 20.0, 25.0, 40.0]  # 20.0 is "within" (<= T)
ABANDON_WAITS = [30.0, 35.0]
SHORT_ABANDON_WAITS = [2.0]
HANDLE = [(120.0, 10.0, 30.0), (200.0, 0.0, 15.0), (90.0, 5.0, 20.0)]  # talk, hold, wrap
CSAT_SCORES = [5, 4, 3, 2, 5]


def script(t0: float) -> list[dict[str, Any]]:
    """10 contacts queued; 7 answered, 2 abandoned after 30+ s, 1 short abandon."""
    events: list[dict[str, Any]] = []
    outcomes = ([("contact.answered", w) for w in ANSWER_WAITS]
                + [("contact.abandoned", w) for w in ABANDON_WAITS + SHORT_ABANDON_WAITS])
    for i, (etype, wait) in enumerate(outcomes):
        cid, start = f"c{i}", t0 + i
        events.append({"type": "contact.queued", "id": f"q{i}", "ts": start, "queue": "sales",
                       "channel": "voice", "contact_id": cid})
        events.append({"type": etype, "id": f"o{i}", "ts": start + wait, "queue": "sales",
                       "channel": "voice", "contact_id": cid})
    for i, (talk, hold, wrap) in enumerate(HANDLE):
        events.append({"type": "contact.ended", "id": f"e{i}", "ts": t0 + 60 + i,
                       "queue": "sales", "contact_id": f"c{i}", "talk_s": talk, "hold_s": hold,
                       "wrap_s": wrap})
    for i, score in enumerate(CSAT_SCORES):
        events.append({"type": "survey.response", "id": f"s{i}", "ts": t0 + 70 + i,
                       "queue": "sales", "kind": "csat", "score": score})
    return sorted(events, key=lambda e: e["ts"])


def expected() -> dict[str, float | int]:
    """The KPIs computed by hand from the script, independently of the engine."""
    in_sl = sum(1 for w in ANSWER_WAITS if w <= SL_T)
    long_abandons = sum(1 for w in ABANDON_WAITS + SHORT_ABANDON_WAITS if w >= SHORT_S)
    completed = len(ANSWER_WAITS) + long_abandons
    return {
        "offered": 10,
        "answered": 7,
        "abandoned": 3,
        "abandoned_short": 1,
        "service_level": round(in_sl / completed, 6),  # 5 / 9
        "asa_s": round(sum(ANSWER_WAITS) / len(ANSWER_WAITS), 6),
        "aht_s": round(sum(sum(h) for h in HANDLE) / len(HANDLE), 6),
        "abandon_rate": round(long_abandons / completed, 6),  # 2 / 9
        "csat": round(sum(1 for s in CSAT_SCORES if s >= 4) / len(CSAT_SCORES), 6),
        "csat_n": len(CSAT_SCORES),
    }


def test_expected_matches_the_worked_numbers() -> None:
    exp = expected()
    assert exp["service_level"] == pytest.approx(5 / 9)
    assert exp["abandon_rate"] == pytest.approx(2 / 9)
    assert exp["csat"] == pytest.approx(3 / 5)


async def test_scripted_sequence_same_kpis_in_websocket_api_and_metrics(live_server) -> None:
    config = base_config()
    config["site"]["min_survey_sample"] = 1  # five survey answers: show CSAT anyway
    live = await live_server(config)
    t0 = now() - 120
    async with BoardClient(f"{live.ws_url}/ws?board=overview") as board:
        await board.receive()  # the snapshot on connect
        events = script(t0)
        status, body = await live.post(events)
        assert status == 202, body
        assert body == {"accepted": len(events), "duplicates": 0, "late": 0, "failed": 0,
                        "rejected": [], "rejected_total": 0, "rejected_reasons": {}}
        exp = expected()
        await board.wait_for(lambda s: s.get("queues.sales.15m.csat_n") == exp["csat_n"])
        api = await live.get_json("/api/snapshot")
        _, metrics_text = await live.get_text("/metrics")

    samples = [s for f in text_string_to_metric_families(metrics_text) for s in f.samples]

    def sample(name: str, **labels: str) -> float:
        for s in samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
        raise AssertionError(f"no sample {name} {labels}")

    for window in ("15m", "1h", "today"):
        for kpi, value in exp.items():
            assert board.state[f"queues.sales.{window}.{kpi}"] == value, (window, kpi)
            assert api["queues"]["sales"][window][kpi] == value, (window, kpi)
            assert api["total"][window][kpi] == value, (window, kpi)
            assert api["channels"]["voice"][window][kpi] == value, (window, kpi)
        sl = sample("wallboard_window_service_level_ratio", queue="sales", window=window)
        assert sl == exp["service_level"]
        assert sample("wallboard_window_abandon_ratio", queue="sales", window=window) == \
            exp["abandon_rate"]
        assert sample("wallboard_window_asa_seconds", queue="sales", window=window) == exp["asa_s"]
        assert sample("wallboard_window_csat_ratio", queue="sales", window=window) == exp["csat"]
    api_waiting = api["queues"]["sales"]["live"]["waiting"]
    assert board.state["queues.sales.live.waiting"] == api_waiting == 0
    assert sample("wallboard_queue_contacts_waiting", queue="sales") == 0
    assert sample("wallboard_contacts_offered_total", queue="sales") == exp["offered"]
    assert sample("wallboard_contacts_answered_total", queue="sales") == exp["answered"]
    assert sample("wallboard_contacts_abandoned_total", queue="sales", short="false") == 2
    assert sample("wallboard_contacts_abandoned_total", queue="sales", short="true") == 1
    # The wait histogram has an edge exactly at the 20 s threshold: answered within T is exact.
    assert sample("wallboard_queue_wait_seconds_bucket", queue="sales", outcome="answered",
                  le="20") == sum(1 for w in ANSWER_WAITS if w <= SL_T)
    assert sample("wallboard_queue_wait_seconds_sum", queue="sales", outcome="answered") == \
        pytest.approx(sum(ANSWER_WAITS))


async def test_contacts_waiting_show_live_and_longest_wait_grows(live_server) -> None:
    live = await live_server(base_config())
    t0 = now()
    await live.post([{"type": "contact.queued", "id": f"w{i}", "ts": t0 - 30 + i,
                      "queue": "sales", "contact_id": f"w{i}"} for i in range(3)])
    async with BoardClient(f"{live.ws_url}/ws?board=overview") as board:
        await board.wait_for(lambda s: s["queues.sales.live.waiting"] == 3)
        first = board.state["queues.sales.live.oldest_wait_s"]
        assert 30 <= first < 40
        await board.wait_for(lambda s: s["queues.sales.live.oldest_wait_s"] >= first + 1.0,
                             timeout=4)
    api = await live.get_json("/api/snapshot")
    assert api["total"]["live"]["waiting"] == 3


async def test_duplicate_event_ids_are_counted_once(live_server) -> None:
    live = await live_server(base_config())
    event = {"type": "contact.queued", "id": "dup-1", "ts": now(), "queue": "sales",
             "contact_id": "d1"}
    assert (await live.post(event))[1]["accepted"] == 1
    status, body = await live.post([event, event])
    assert status == 202 and body["accepted"] == 0 and body["duplicates"] == 2
    api = await live.get_json("/api/snapshot")
    assert api["queues"]["sales"]["today"]["offered"] == 1


async def test_service_level_tile_names_its_formula(live_server) -> None:
    config = base_config()
    config["queues"]["sales"]["service_level"] = {"variant": "abandons_ignored", "target": 0.9,
                                                  "threshold_s": 30}
    config["boards"] = {"b": {"tiles": [{"kpi": "service_level", "queue": "sales"}]}}
    live = await live_server(config)
    status, page = await live.get_text("/board/b")
    assert status == 200
    assert "abandons within T ignored · 90/30s" in page
    api = await live.get_json("/api/snapshot")
    assert api["queues"]["sales"]["sl_variant"] == "abandons_ignored"
