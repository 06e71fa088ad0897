"""freshdesk against a real server: KPIs from the recorded tickets, and a restart not doubling."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wallboard_plugins.freshdesk.mapping import iso, parse_time

from tests.conftest import base_config
from tests.freshdesk_peer import API_KEY, FreshdeskPeer, recording

_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def shifted(value: Any, delta: float) -> Any:
    """The recording with every time moved by `delta` seconds (its 'now' becomes today's)."""
    if isinstance(value, dict):
        return {k: shifted(v, delta) for k, v in value.items()}
    if isinstance(value, list):
        return [shifted(v, delta) for v in value]
    if isinstance(value, str) and _TIME.match(value):
        return iso(parse_time(value) + delta)  # type: ignore[operator]
    return value


# Hand-computed from the recording, at its 'now' (12:00): the counts the board must show.
FIRST = {"billing": {"tickets_created": 3, "tickets_resolved": 1, "tickets_open": 2,
                     "tickets_at_risk": 1, "tickets_overdue": 0, "sla_breaches": 1,
                     "first_responses": 3},
         "support": {"tickets_created": 2, "tickets_resolved": 1, "tickets_open": 1,
                     "tickets_at_risk": 0, "tickets_overdue": 1, "sla_breaches": 2,
                     "first_responses": 1}}
LATER = {"billing": {"tickets_created": 3, "tickets_resolved": 2, "tickets_open": 1,
                     "sla_breaches": 1, "first_responses": 3},
         "support": {"tickets_created": 3, "tickets_resolved": 1, "tickets_open": 2,
                     "tickets_overdue": 1, "sla_breaches": 2, "first_responses": 1}}


def config(peer_url: str, tmp_path: Path, since: str) -> dict[str, Any]:
    """One freshdesk source, two ticket queues, a 12-hour window and a journal that stays."""
    cfg = base_config(windows=["12h"], journal={"data_dir": str(tmp_path / "journal")})
    cfg["site"]["lateness_s"] = 86400  # the recorded tickets go back four hours
    cfg["queues"].update({"billing": {"label": "Billing", "channel": "ticket"},
                          "support": {"label": "Support", "channel": "ticket"}})
    cfg["sources"] = {"fd": {"type": "freshdesk", "url": peer_url, "api_key": API_KEY,
                             "interval_s": 0.2, "per_page": 2, "since": since,
                             "state_dir": str(tmp_path / "state"),
                             "groups": {"11": "billing", "12": "support"}}}
    return cfg


async def wait_for_kpis(live: Any, expected: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The snapshot once every expected count holds (or the last one after 10 s).

    Events reach the board after their journal commit, possibly in more than one batch, so
    the test waits for the whole picture rather than for its first part.
    """
    snap: dict[str, Any] = {}
    for _ in range(100):
        snap = await live.get_json("/api/snapshot")
        if all(kpis(snap, q)[k] == v for q, want in expected.items() for k, v in want.items()):
            break
        await asyncio.sleep(0.1)
    return snap


def kpis(snap: dict[str, Any], queue: str) -> dict[str, Any]:
    """The live and 12-hour KPIs of one queue."""
    return {**snap["queues"][queue]["live"], **snap["queues"][queue]["12h"]}


async def test_kpis_from_recorded_tickets_and_a_restart_without_double_counting(
        live_server, tmp_path) -> None:
    rec = recording()
    delta = time.time() - parse_time(rec["now"])  # type: ignore[operator]
    first, later = shifted(rec["first"], delta), shifted(rec["later"], delta)
    since = datetime.fromtimestamp(time.time() - 86400, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    async with FreshdeskPeer(first) as peer:
        live = await live_server(config(peer.url, tmp_path, since))
        snap = await wait_for_kpis(live, FIRST)
        billing, support = kpis(snap, "billing"), kpis(snap, "support")
        # billing: 105 closed (late: one breach), 101 open (due in 10 min), 102 pending.
        assert (billing["tickets_created"], billing["tickets_resolved"]) == (3, 1)
        assert (billing["tickets_open"], billing["tickets_at_risk"]) == (2, 1)
        assert (billing["tickets_overdue"], billing["sla_breaches"]) == (0, 1)
        assert billing["tickets_pending"] == 1 and support["tickets_pending"] == 0  # 102
        assert billing["first_responses"] == 3 and billing["frt_avg_s"] == 1200  # 30, 20, 10 min
        assert 1100 <= billing["frt_p50_s"] <= 1300 and billing["frt_p90_s"] >= 1500
        assert 7200 <= billing["oldest_ticket_s"] < 7300  # 101, created two hours ago
        # support: 103 resolved, 104 open and past both deadlines (two breaches).
        assert (support["tickets_created"], support["tickets_resolved"]) == (2, 1)
        assert (support["tickets_open"], support["tickets_overdue"]) == (1, 1)
        assert (support["sla_breaches"], support["first_responses"]) == (2, 1)
        assert 1800 <= support["oldest_ticket_s"] < 1900
        await asyncio.sleep(0.5)  # more polls at the saved cursor: nothing changes
        await live.session.close()
        await live.server.close()

        peer.update(later)  # meanwhile: 102 resolved, 106 created
        seen = len(peer.requests)
        live = await live_server(config(peer.url, tmp_path, since))
        await wait_for_kpis(live, LATER)
        polls = len(peer.requests)
        for _ in range(200):  # more polls re-read 102, 104 and 106: still counted once
            if len(peer.requests) >= polls + 3:
                break
            await asyncio.sleep(0.05)
        assert len(peer.requests) >= polls + 3  # the re-polls did happen
        snap = await wait_for_kpis(live, LATER)
        assert peer.requests[seen]["updated_since"] == first[4]["updated_at"]  # 104's time
        billing, support = kpis(snap, "billing"), kpis(snap, "support")
        assert (billing["tickets_created"], billing["tickets_resolved"]) == (3, 2)
        assert (billing["tickets_open"], billing["sla_breaches"]) == (1, 1)
        assert (support["tickets_created"], support["tickets_open"]) == (3, 2)
        assert (support["tickets_overdue"], support["sla_breaches"]) == (1, 2)
        assert support["first_responses"] == 1 and billing["first_responses"] == 3
