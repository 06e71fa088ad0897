"""A local Zendesk API: recorded export pages by cursor, scripted failures, a request log."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

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
    return move(json.loads((DATA / f"{name}.json").read_text()))


def empty(key: str, cursor: str) -> dict[str, Any]:
    """The page Zendesk answers when nothing changed after `cursor`."""
    return {key: [], "after_cursor": cursor, "end_of_stream": True}


class ZendeskPeer:
    """Serves `pages[(path, cursor or 'start')]`; `failures` and `fail_page` answer first."""

    def __init__(self, shift_s: float = 0.0) -> None:
        self.shift_s = shift_s
        self.pages: dict[tuple[str, str], Any] = {}
        self.failures: list[tuple[int, dict[str, str]]] = []
        self.fail_page: dict[tuple[str, str], list[tuple[int, dict[str, str]]]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    def stage(self, n: int) -> None:
        """Stage 1: the first export; stage 2: what changed after it (read after a restart)."""
        s = self.shift_s
        if n == 1:
            self.pages = {(METRICS, "start"): recorded("metric_events_1", s),
                          (METRICS, "m1"): empty("ticket_metric_events", "m1"),
                          (TICKETS, "start"): recorded("tickets_1", s),
                          (TICKETS, "c1"): recorded("tickets_2", s),
                          (TICKETS, "c2"): empty("tickets", "c2")}
        else:
            self.pages = {(METRICS, "m1"): recorded("metric_events_2", s),
                          (METRICS, "m2"): empty("ticket_metric_events", "m2"),
                          (TICKETS, "c2"): recorded("tickets_3", s),
                          (TICKETS, "c3"): empty("tickets", "c3")}

    async def handle(self, request: web.Request) -> web.Response:
        """One export page, or the next scripted failure."""
        self.requests.append((request.path, dict(request.query)))
        key = (request.path, request.query.get("cursor", "start"))
        if self.failures or self.fail_page.get(key):
            status, headers = (self.failures or self.fail_page[key]).pop(0)
            return web.json_response({"error": "APIRateLimitExceeded"}, status=status,
                                     headers=headers)
        page = self.pages.get(key)
        if page is None:
            return web.json_response({"error": "InvalidCursor"}, status=400)
        return web.json_response(page)

    def cursors(self, path: str) -> list[str]:
        """The cursor of each request to `path` in order ('start' for a start_time)."""
        return [q.get("cursor", "start") for p, q in self.requests if p == path]

    async def __aenter__(self) -> ZendeskPeer:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()
