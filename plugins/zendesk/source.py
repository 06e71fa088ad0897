"""The zendesk source: incremental cursor exports polled, the cursors kept in a state file."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import Field, Secret, model_validator

from wallboard.kit import (
    PollConfig,
    PollSource,
    SourceError,
    load_state_file,
    save_state_file,
)
from wallboard.model import Event

from .mapping import Mapper

TICKETS_PATH = "/api/v2/incremental/tickets/cursor.json"
METRIC_EVENTS_PATH = "/api/v2/incremental/ticket_metric_events.json"
EXPORT_LAG_S = 60.0  # the export leaves out what changed in the minute before the request


class ZendeskConfig(PollConfig):
    """The account, its credentials, where the cursors persist, and groups mapped to queues."""

    url: str = Field(pattern=r"^https?://[^/\s]+/?$")  # https://acme.zendesk.com
    email: str | None = Field(None, min_length=3)
    api_token: Secret[Annotated[str, Field(min_length=8)]] | None = None
    oauth_token: Secret[Annotated[str, Field(min_length=8)]] | None = None
    start_time: int = Field(0, ge=0)  # where the very first export starts (unix seconds)
    state_dir: str = Field("./wallboard-data", min_length=1)  # the cursor file lives here
    interval_s: float = Field(60.0, gt=0)
    max_requests_per_s: float | None = Field(9 / 60, gt=0)  # under the export's 10/minute
    burst: int = Field(2, ge=1, le=1000)
    max_pages_per_poll: int = Field(5, ge=1, le=100)
    metric_events: bool = True  # SLA: apply_sla deadlines, breaches, first-reply fulfils
    groups: dict[str, str] = Field(default_factory=dict)  # group_id -> queue
    queue: str | None = None  # the queue of tickets whose group is not mapped
    channel: str = "ticket"
    webhook_secret: Secret[Annotated[str, Field(min_length=8)]] | None = None
    webhook_tolerance_s: float = Field(300.0, gt=0)

    @model_validator(mode="after")
    def _credentials(self) -> ZendeskConfig:
        if self.oauth_token is None and (self.email is None or self.api_token is None):
            raise ValueError("give email and api_token, or oauth_token")
        return self


class ZendeskSource(PollSource[ZendeskConfig]):
    """Every `interval_s`: new ticket metric events and tickets since the saved cursors."""

    type: ClassVar[str] = "zendesk"
    lag_s: ClassVar[float] = EXPORT_LAG_S

    def __init__(self, name: str, config: ZendeskConfig) -> None:
        super().__init__(name, config)
        self.mapper = Mapper(config.groups, config.queue, config.channel)
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        self.state_path = Path(config.state_dir) / f"zendesk-{safe}.json"
        self.cursors: dict[str, Any] | None = None  # read from the state file at the first poll

    def load_state(self) -> dict[str, Any]:
        """The saved cursors, or none when there is no state file yet."""
        return load_state_file(self.state_path)

    async def save_state(self, cursors: dict[str, Any]) -> None:
        """Write the cursors atomically, off the event loop."""
        await save_state_file(self.state_path, json.dumps(cursors, sort_keys=True))
        self.cursors = cursors

    def headers(self) -> dict[str, str]:
        """Basic `{email}/token:{api_token}`, or a Bearer OAuth token."""
        config = self.config
        if config.oauth_token is not None:
            return {"Authorization": f"Bearer {config.oauth_token.get_secret_value()}"}
        assert config.api_token is not None  # _credentials: oauth_token, or email and api_token
        login = f"{config.email}/token:{config.api_token.get_secret_value()}".encode()
        return {"Authorization": "Basic " + base64.b64encode(login).decode()}

    async def export(self, path: str, params: dict[str, Any], key: str,
                     cursors: dict[str, Any]) -> list[Any]:
        """The pages of one cursor export from the saved cursor to the end of the stream."""
        config = self.config
        url = config.url.rstrip("/") + path
        pages = []
        for _ in range(config.max_pages_per_poll):
            query = dict(params)
            if cursors.get(key):
                query["cursor"] = cursors[key]
            else:
                query["start_time"] = cursors.get(f"{key}_start", config.start_time)
            page = await self.get_json(url, params=query, headers=self.headers())
            if not isinstance(page, dict):
                raise SourceError(f"GET {url}: expected a JSON object")
            pages.append(page)
            after = page.get("after_cursor")
            if isinstance(after, str) and after:
                cursors[key] = after
            elif isinstance(page.get("end_time"), int):  # the time-based variant
                cursors[f"{key}_start"] = page["end_time"]
            if page.get("end_of_stream", True) is not False:
                break
        return pages

    async def poll(self) -> list[Event | dict[str, Any]]:
        """Both exports from the saved cursors; the new cursors saved once all pages are read."""
        config = self.config
        if self.cursors is None:
            self.cursors = self.load_state()
        cursors = dict(self.cursors)  # committed only when every page has been read
        metric_pages = []
        if config.metric_events:
            metric_pages = await self.export(METRIC_EVENTS_PATH, {}, "metric_events", cursors)
        ticket_pages = await self.export(
            TICKETS_PATH, {"include": "metric_sets", "exclude_deleted": "true"}, "tickets",
            cursors)
        for page in metric_pages:  # deadlines first, so a new ticket's creation carries one
            self.mapper.metric_events(page)
        from_tickets = [e for page in ticket_pages for e in self.mapper.tickets(page)]
        from_metrics = [e for page in metric_pages for e in self.mapper.metric_events(page)]
        # One event per id (a fulfil's exact first reply wins over the metric_set's minutes),
        # in time order so a ticket's creation comes before its first reply.
        unique = {e["id"]: e for e in reversed(from_metrics + from_tickets)}
        ordered = sorted(unique.values(), key=lambda e: e["ts"])
        events: list[Event | dict[str, Any]] = [*ordered]
        await self.save_state(cursors)
        return events
