"""A local Freshdesk: `GET /api/v2/tickets` over recorded ticket objects, paged like the API."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from tests.http_peer import HttpPeer

RECORDING = Path(__file__).resolve().parent / "data" / "freshdesk_tickets.json"
API_KEY = "fd-api-key-0123456789"


def recording() -> dict[str, Any]:
    """The recorded ticket objects: `now`, `first` (before the restart) and `later`."""
    return json.loads(RECORDING.read_text())


class FreshdeskPeer(HttpPeer):
    """Serves the store's tickets updated since `updated_since`, oldest first, `per_page` a page.

    `requests` logs each request's query; `fail_at` maps a request number (1 = the first) to
    a (status, headers) answer given instead of the page, e.g. a 429 with Retry-After.
    """

    def __init__(self, tickets: list[dict[str, Any]], remaining: int = 100) -> None:
        super().__init__()
        self.store = {t["id"]: t for t in tickets}
        self.requests: list[dict[str, str]] = []
        self.fail_at: dict[int, tuple[int, dict[str, str]]] = {}
        self.remaining = remaining

    def update(self, tickets: list[dict[str, Any]]) -> None:
        """Tickets changed in the helpdesk meanwhile."""
        self.store.update({t["id"]: t for t in tickets})

    async def tickets(self, request: web.Request) -> web.Response:
        """The List All Tickets endpoint."""
        query = dict(request.query)
        self.requests.append(query)
        expected = "Basic " + base64.b64encode(f"{API_KEY}:X".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.json_response({"code": "invalid_credentials"}, status=401)
        if len(self.requests) in self.fail_at:
            status, headers = self.fail_at[len(self.requests)]
            return web.json_response({"code": "rate_limited"}, status=status, headers=headers)
        since = query.get("updated_since", "")
        rows = sorted((t for t in self.store.values() if t["updated_at"] >= since),
                      key=lambda t: (t["updated_at"], t["id"]))
        if query.get("include") != "stats":
            rows = [{k: v for k, v in t.items() if k != "stats"} for t in rows]
        page, per_page = int(query.get("page", "1")), int(query.get("per_page", "30"))
        chunk = rows[(page - 1) * per_page: page * per_page]
        self.remaining = max(0, self.remaining - 1)
        headers = {"X-RateLimit-Total": "100", "X-RateLimit-Remaining": str(self.remaining),
                   "X-RateLimit-Used-CurrentRequest": "2"}
        if page * per_page < len(rows):
            nxt = request.url.update_query(page=str(page + 1))
            headers["Link"] = f'<{nxt}>; rel="next"'
        return web.Response(body=orjson.dumps(chunk), content_type="application/json",
                            headers=headers)

    def routes(self, app: web.Application) -> None:
        """The vendor's API paths."""
        app.router.add_get("/api/v2/tickets", self.tickets)
