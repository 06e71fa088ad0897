"""A local Zendesk API: recorded export pages by cursor or start time, scripted failures, a log.

The ticket export is cursor-based; the ticket metric events export is time-based (`start_time`
in, `end_time` out, as documented). Metric pages are staged under a name (`start`, `m1`, ...):
a page's `end_time` names the page the next request reaches, so tests read like cursors.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.http_peer import HttpPeer

DATA = Path(__file__).parent / "data" / "zendesk"
TICKETS = "/api/v2/incremental/tickets/cursor.json"
METRICS = "/api/v2/incremental/ticket_metric_events.json"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def recorded(name: str, shift_s: float = 0.0) -> Any:
    """A recorded page, every ISO time in it moved by `shift_s` seconds."""
    def move(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: move(v) for k, v in value.items()}
        if isinstance(value, list):
            return [move(v) for v in value]
        if isinstance(value, str) and ISO.match(value) and shift_s:
            moved = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() + shift_s
            return datetime.fromtimestamp(moved, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return value
    page = move(json.loads((DATA / f"{name}.json").read_text()))
    for key in ("end_time", "generated_timestamp"):  # epoch seconds move with the ISO times
        if isinstance(page.get(key), int):
            page[key] += int(shift_s)
    for ticket in page.get("tickets", []):
        ticket["generated_timestamp"] += int(shift_s)
    return page


def empty(key: str, cursor: str) -> dict[str, Any]:
    """The page Zendesk answers when nothing changed after `cursor` (a mark for metric events)."""
    if key == "ticket_metric_events":  # time-based: end_time is the mark, resolved when served
        return {key: [], "next_page": None, "count": 0, "end_time": cursor, "end_of_stream": True}
    return {key: [], "after_cursor": cursor, "end_of_stream": True}


class ZendeskPeer(HttpPeer):
    """Serves `pages[(path, cursor or 'start')]`; `failures` and `fail_page` answer first."""

    def __init__(self, shift_s: float = 0.0) -> None:
        super().__init__()
        self.shift_s = shift_s
        self.pages: dict[tuple[str, str], Any] = {}
        self.failures: list[tuple[int, dict[str, str]]] = []
        self.fail_page: dict[tuple[str, str], list[tuple[int, dict[str, str]]]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.marks: dict[int, str] = {}  # a metric page's end_time -> the name it leads to

    def stage(self, n: int) -> None:
        """Stage 1: the first export; stage 2: what changed after it (read after a restart)."""
        s = self.shift_s
        first, second = recorded("metric_events_1", s), recorded("metric_events_2", s)
        self.marks = {first["end_time"]: "m1", second["end_time"]: "m2"}
        if n == 1:
            self.pages = {(METRICS, "start"): first,
                          (METRICS, "m1"): empty("ticket_metric_events", "m1"),
                          (TICKETS, "start"): recorded("tickets_1", s),
                          (TICKETS, "c1"): recorded("tickets_2", s),
                          (TICKETS, "c2"): empty("tickets", "c2")}
        else:
            self.pages = {(METRICS, "m1"): second,
                          (METRICS, "m2"): empty("ticket_metric_events", "m2"),
                          (TICKETS, "c2"): recorded("tickets_3", s),
                          (TICKETS, "c3"): empty("tickets", "c3")}

    async def handle(self, request: web.Request) -> web.Response:
        """One export page, or the next scripted failure."""
        self.requests.append((request.path, dict(request.query)))
        key = (request.path, self.name(request.path, dict(request.query)))
        if self.failures or self.fail_page.get(key):
            status, headers = (self.failures or self.fail_page[key]).pop(0)
            return web.json_response({"error": "APIRateLimitExceeded"}, status=status,
                                     headers=headers)
        page = self.pages.get(key)
        if page is None:
            return web.json_response({"error": "InvalidCursor"}, status=400)
        if isinstance(page.get("end_time"), str):  # an empty metric page: its mark's time
            page = {**page, "end_time": self.time_of(page["end_time"])}
        return web.json_response(page)

    def time_of(self, mark: str) -> int:
        """The end_time that leads to `mark`, made up (before any recorded time) if new."""
        for when, name in self.marks.items():
            if name == mark:
                return when
        when = 1_000_000_000 + len(self.marks)
        self.marks[when] = mark
        return when

    def name(self, path: str, query: dict[str, str]) -> str:
        """The staged name a request reaches: its cursor, or its start_time's mark."""
        if path == METRICS and "cursor" not in query:
            return self.marks.get(int(query.get("start_time", "0")), "start")
        return query.get("cursor", "start")

    def cursors(self, path: str) -> list[str]:
        """The staged name each request to `path` reached, in order ('start' at first)."""
        return [self.name(p, q) for p, q in self.requests if p == path]

    def routes(self, app: web.Application) -> None:
        """The vendor's API paths."""
        app.router.add_get("/{tail:.*}", self.handle)
