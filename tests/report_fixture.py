"""Data for the report page's browser tests: a fixed /api/report answer for what the server
cannot easily produce in a test (last week's day, every threshold colour), answered by
Playwright's routing; and the calls the tests of the real API post through the webhook."""

from __future__ import annotations

import copy
import json
import time
import urllib.parse
from datetime import date, timedelta
from typing import Any

from tests.test_board_browser import Server

HOSTILE = "<img src=x onerror=alert(1)>"

SLOTS = ["09:00", "09:15", "09:30"]
QUEUES = {"sales": {"label": "Sales", "channel": "voice", "sl_target": 0.8, "sl_threshold_s": 20},
          "support": {"label": HOSTILE, "channel": "voice", "sl_target": 0.9,
                      "sl_threshold_s": 30}}
# (offered, answered, abandoned, service_level, asa_s, aht_s, wait_p90_s, forecast) per slot.
TODAY = {"sales": [(10, 9, 1, 0.85, 12.4, 200.0, 30.0, 11.5),
                   (20, 15, 5, 0.72, 41.0, 180.0, 95.0, 18.0),
                   (4, 4, 0, 0.5, 25.0, 150.0, 40.0, None)],
         "support": [(3, 3, 0, 1.0, 5.0, 300.0, 8.0, 2.5)]}
LAST_WEEK = {"sales": [(8, 8, 0, 0.9, 9.0, 190.0, 20.0, None),
                       (12, 10, 2, 0.6, 30.0, 170.0, 80.0, None),
                       None, (2, 2, 0, 1.0, 3.0, 120.0, 5.0, None)]}
DAY_TOTALS = {"today": {"site": (37, 31, 6, 0.7, 26.0, 190.0, 70.0, 32.0),
                        "sales": (34, 28, 6, 0.68, 28.0, 182.0, 75.0, 29.5),
                        "support": (3, 3, 0, 1.0, 5.0, 300.0, 8.0, 2.5)},
              "last": {"site": (22, 20, 2, 0.77, 19.0, 176.0, 60.0, None),
                       "sales": (22, 20, 2, 0.77, 19.0, 176.0, 60.0, None)}}


def _row(level: str, queue: str, day: str, start: str, minutes: int,
         values: tuple[Any, ...]) -> dict[str, Any]:
    offered, answered, abandoned, sl, asa, aht, p90, forecast = values
    h, m = map(int, start.split(":"))
    end = h * 60 + m + minutes
    end_day = day if end < 24 * 60 else (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    return {"level": level, "queue": queue, "channel": "voice" if queue else "", "team": "",
            "start": f"{day}T{start}:00+00:00",
            "end": f"{end_day}T{end // 60 % 24:02d}:{end % 60:02d}:00+00:00",
            "offered": offered, "answered": answered, "abandoned": abandoned,
            "abandoned_short": 0, "asa_s": asa, "aht_s": aht, "service_level": sl,
            "abandon_rate": round(abandoned / offered, 4) if offered else None,
            "wait_p50_s": None, "wait_p90_s": p90, "handled": answered, "transfers": 0,
            "forecast_offered": forecast}


def fixed_report(today: str, day: str, interval: str) -> dict[str, Any]:
    """The fixture: today's three slots and last week's, at 15m or as whole days."""
    which = "today" if day == today else "last" if day == (
        date.fromisoformat(today) - timedelta(days=7)).isoformat() else None
    rows: list[dict[str, Any]] = []
    if which and interval == "1d":
        for key, values in DAY_TOTALS[which].items():
            level, queue = ("site", "") if key == "site" else ("queue", key)
            rows.append(_row(level, queue, day, "00:00", 24 * 60, values))
    elif which:
        per_queue = TODAY if which == "today" else LAST_WEEK
        for queue, slots in per_queue.items():
            for i, values in enumerate(slots):
                if values is not None:
                    rows.append(_row("queue", queue, day, f"09:{15 * i:02d}", 15, values))
        site = [r for r in rows if r["queue"] == "sales"]  # support's one slot is added below
        for r in site:
            r2 = copy.deepcopy(r)
            r2.update(level="site", queue="", channel="")
            rows.append(r2)
    return {"timezone": "UTC", "from": day, "to": day, "interval": interval, "queues": QUEUES,
            "rows": rows}


def route_fixture(page: Any, today: str, seen: list[dict[str, Any]]) -> None:
    """Answer /api/report from the fixture, recording each request's query and headers."""
    def handle(route: Any) -> None:
        request = route.request
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(request.url).query)
        seen.append({"query": q, "headers": request.headers})
        body = fixed_report(today, q["from"][0], q["interval"][0])
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))
    page.route("**/api/report?*", handle)


_ids = iter(range(1, 1_000_000))


def event(type_: str, ts: float, **fields: Any) -> dict[str, Any]:
    return {"type": type_, "id": f"rp{next(_ids)}", "ts": ts, "channel": "voice", **fields}


def post_calls(srv: Server) -> None:
    """Three sales calls (answered in 10 s, in 40 s, abandoned after 30 s), one support call."""
    now = time.time()
    srv.post_events([
        event("contact.queued", now - 60, queue="sales", contact_id="c1"),
        event("contact.answered", now - 50, queue="sales", contact_id="c1", wait_s=10,
              agent="alice"),
        event("contact.ended", now - 20, queue="sales", contact_id="c1", agent="alice",
              talk_s=25, wrap_s=5),
        event("contact.queued", now - 50, queue="sales", contact_id="c2"),
        event("contact.answered", now - 10, queue="sales", contact_id="c2", wait_s=40,
              agent="bob"),
        event("contact.queued", now - 40, queue="sales", contact_id="c3"),
        event("contact.abandoned", now - 10, queue="sales", contact_id="c3", wait_s=30),
        event("contact.queued", now - 30, queue="support", contact_id="u1"),
        event("contact.answered", now - 25, queue="support", contact_id="u1", wait_s=5,
              agent="carol"),
    ])
