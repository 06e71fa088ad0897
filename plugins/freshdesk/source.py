"""The freshdesk poll source: `updated_since` pages with stats, rate limits, a saved cursor."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar

import aiohttp
import orjson
from pydantic import Field, Secret

from wallboard.kit import (
    PollConfig,
    PollSource,
    SourceError,
    load_state_file,
    parse_retry_after,
    parse_time,
    save_state_file,
)
from wallboard.model import Event

from .mapping import Deadline, Mapper, check_deadlines, iso

_NEXT = re.compile(r'rel="?next"?')


class FreshdeskConfig(PollConfig):
    """Where the helpdesk is, its API key, and how groups map to the board's queues."""

    url: str = Field(pattern=r"^https?://\S+$")  # e.g. https://acme.freshdesk.com
    api_key: Secret[Annotated[str, Field(min_length=8)]]
    interval_s: float = Field(60.0, gt=0)
    per_page: int = Field(100, ge=1, le=100)
    max_pages: int = Field(50, ge=1)  # per poll; the rest is read on the next poll
    groups: dict[str, str] = Field(default_factory=dict)  # group_id -> queue
    default_queue: str = Field("tickets", min_length=1)
    since: str | None = Field(None, pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")  # 1st poll
    initial_lookback_s: float = Field(86400.0, gt=0)  # used when `since` is not set
    state_dir: str | None = None  # where the cursor is saved; None keeps it in memory
    min_remaining: int = Field(1, ge=0)  # pause when X-RateLimit-Remaining drops to this
    low_budget_pause_s: float = Field(60.0, ge=0)  # Freshdesk's budget is per minute
    max_retries: int = Field(3, ge=0)  # 429s waited out within one poll


class FreshdeskSource(PollSource[FreshdeskConfig]):
    """Reads tickets updated since the saved cursor, oldest first, every `interval_s`."""

    type: ClassVar[str] = "freshdesk"

    def __init__(self, name: str, config: FreshdeskConfig) -> None:
        super().__init__(name, config)
        self.settings = config
        self.mapper = Mapper(config.groups, config.default_queue)
        self.cursor: str | None = None
        self.watch: dict[str, Deadline] = {}
        self.waited: list[float] = []  # Retry-After and low-budget pauses, for the tests
        self._loaded = False

    @property
    def state_path(self) -> Path | None:
        """The JSON file holding this source's cursor and watched deadlines."""
        if self.settings.state_dir is None:
            return None
        return Path(self.settings.state_dir) / f"freshdesk-{self.name}.json"

    def load_state(self) -> None:
        """Read the saved cursor and deadlines, once; a missing file means a first start."""
        self._loaded = True
        path = self.state_path
        if path is None:
            return
        data = load_state_file(path)
        if not data:
            return
        try:
            self.cursor = data.get("updated_since")
            self.watch = {k: Deadline.from_json(v) for k, v in data.get("watch", {}).items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SourceError(f"{path}: unreadable state file: {exc}") from None

    async def save_state(self) -> None:
        """Write the cursor and deadlines atomically, off the event loop."""
        if self.state_path is None:
            return
        data = {"updated_since": self.cursor,
                "watch": {k: v.to_json() for k, v in self.watch.items()}}
        await save_state_file(self.state_path, json.dumps(data, sort_keys=True))

    def first_since(self) -> str:
        """The `updated_since` of the very first poll."""
        if self.settings.since is not None:
            return self.settings.since
        return iso(self.clock.time() - self.settings.initial_lookback_s)

    async def get_page(self, url: str, params: dict[str, str]) -> tuple[Any, bool]:
        """One page and whether its `Link` header names a next one; waits out 429s."""
        key = base64.b64encode(f"{self.settings.api_key.get_secret_value()}:X".encode()).decode()
        auth = {"Authorization": f"Basic {key}"}  # Freshdesk: the API key, password "X"
        for attempt in range(self.settings.max_retries + 1):
            if self.limiter is not None:
                await self.limiter.acquire()
            try:
                async with self.http.get(url, params=params, headers=auth) as response:
                    body = await response.read()
                    headers = response.headers
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise SourceError(f"GET {url}: {type(exc).__name__}: {exc}") from None
            if response.status == 429:
                wait = parse_retry_after(headers.get("Retry-After"), self.clock.time())
                if wait is None or attempt == self.settings.max_retries:
                    raise SourceError(f"GET {url}: HTTP 429", retry_after_s=wait)
                self.waited.append(wait)
                await self.clock.sleep(wait)
                continue
            if response.status >= 400:
                raise SourceError(f"GET {url}: HTTP {response.status}")
            try:
                payload = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise SourceError(f"GET {url}: response is not JSON: {exc}") from None
            await self._mind_budget(headers.get("X-RateLimit-Remaining"))
            return payload, _NEXT.search(headers.get("Link", "")) is not None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _mind_budget(self, remaining: str | None) -> None:
        """Pause before the next request when the minute's budget is (nearly) spent."""
        try:
            left = int(remaining) if remaining is not None else None
        except ValueError:
            return
        if left is not None and left <= self.settings.min_remaining:
            self.waited.append(self.settings.low_budget_pause_s)
            await self.clock.sleep(self.settings.low_budget_pause_s)

    async def poll(self) -> list[Event | dict[str, Any]]:
        """All tickets updated since the cursor, as events; the cursor moves after the pass."""
        if not self._loaded:
            self.load_state()
        since = self.cursor or self.first_since()
        url = self.settings.url.rstrip("/") + "/api/v2/tickets"
        params = {
            "updated_since": since, "include": "stats", "order_by": "updated_at",
            "order_type": "asc", "per_page": str(self.settings.per_page), "page": "1"}
        events: list[Event | dict[str, Any]] = []
        newest = parse_time(since)
        now = self.clock.time()
        for page in range(1, self.settings.max_pages + 1):
            params["page"] = str(page)
            payload, more = await self.get_page(url, params)
            if not isinstance(payload, list):
                raise SourceError(f"GET {url}: expected a list of tickets")
            for ticket in payload:
                events.extend(self.mapper.ticket_events(ticket, now, self.watch))
                updated = parse_time(ticket.get("updated_at"))
                if updated is not None and (newest is None or updated > newest):
                    newest = updated
            if not more:
                break  # the key goes only to the configured host, never to a link's
        events.extend(check_deadlines(self.watch, now))
        if newest is not None:
            self.cursor = iso(newest)
        await self.save_state()
        return events
