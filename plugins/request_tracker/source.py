"""The request_tracker source: RT 5 REST2 polled incrementally on LastUpdated."""

from __future__ import annotations

import base64
from typing import Annotated, Any, ClassVar

from pydantic import Field, Secret, model_validator

from wallboard.kit import Emit, PollConfig, PollSource, SourceError
from wallboard.model import Event

from .mapping import (
    INACTIVE,
    Queue,
    Stub,
    breach,
    history_txns,
    search_stubs,
    sql_time,
    ticket_events,
    to_queue,
    to_ticket,
)

HISTORY_FIELDS = "Type,Created,Creator,Field,OldValue,NewValue"
PER_PAGE = 100  # REST2's maximum page size
MAX_PAGES = 100  # a guard against a search that never ends, not a real limit


class RequestTrackerConfig(PollConfig):
    """Where RT is, how to log in, which queues to follow."""

    url: str = Field(pattern=r"^https?://\S+$")  # WebBaseURL + WebPath, e.g. https://rt.example/rt
    # An RT auth token (RT::Authen::Token).
    token: Secret[Annotated[str, Field(min_length=8)]] | None = None
    username: str | None = Field(None, min_length=1)
    password: Secret[Annotated[str, Field(min_length=1)]] | None = None
    # RT queue name -> board queue name; when given, only these queues are polled.
    queues: dict[str, str] = Field(default_factory=dict)
    interval_s: float = Field(30.0, gt=0)
    overlap_s: float = Field(120.0, ge=0)  # re-read this far behind the last LastUpdated seen
    lookback_s: float = Field(86400.0, gt=0)  # history read at start, besides open tickets

    @model_validator(mode="after")
    def _one_login(self) -> RequestTrackerConfig:
        """Exactly one way to log in: a token, or a username with a password."""
        basic = self.username is not None or self.password is not None
        if self.token is not None and basic:
            raise ValueError("give either token or username and password, not both")
        if self.token is None and (self.username is None or self.password is None):
            raise ValueError("set token, or username and password")
        return self


class RequestTrackerSource(PollSource[RequestTrackerConfig]):
    """Asks RT for the tickets updated since the last poll and maps their history to events."""

    type: ClassVar[str] = "request_tracker"

    def __init__(self, name: str, config: RequestTrackerConfig) -> None:
        super().__init__(name, config)
        self.cfg = config
        self.api = config.url.rstrip("/") + "/REST/2.0"
        if config.token is not None:
            self.headers = {"Authorization": f"token {config.token.get_secret_value()}"}
        else:
            assert config.password is not None  # _one_login: a token, or both of these
            login = f"{config.username}:{config.password.get_secret_value()}".encode()
            self.headers = {"Authorization": "Basic " + base64.b64encode(login).decode()}
        self.since: float | None = None  # the newest LastUpdated read, RT's clock
        self.seen: dict[str, float | None] = {}  # ticket id -> LastUpdated already mapped
        self.queue_cache: dict[str, Queue] = {}
        self.deadlines: dict[str, tuple[float, str]] = {}  # open ticket -> (Due, board queue)

    async def run(self, emit: Emit) -> None:
        """Poll; after a failure the overlap window is mapped again in full."""
        # Events of a poll that failed half-way were never emitted, so forget what the source
        # skips as unchanged; the core drops the ids it has already counted.
        self.seen.clear()
        await super().run(emit)

    async def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        """One REST2 GET; refused credentials get a message that says so."""
        try:
            return await self.get_json(f"{self.api}/{path}", params=params,
                                       headers=self.headers)
        except SourceError as exc:
            if str(exc).endswith(("HTTP 401", "HTTP 403")):
                how = "token" if self.cfg.token is not None else "username and password"
                raise SourceError(f"RT refused the credentials: check the {how} ({exc})") \
                    from None
            raise

    def _query(self, now: float) -> str:
        """The TicketSQL of this poll: changed since the cursor (and, at start, all open)."""
        first = self.since is None
        since = (now - self.cfg.lookback_s) if self.since is None else self.since
        query = f"LastUpdated > '{sql_time(max(0.0, since - self.cfg.overlap_s))}'"
        if first:
            query = f"(Status = '__Active__' OR {query})"  # the backlog, however old
        if self.cfg.queues:
            names = " OR ".join(f"Queue = '{_quote(name)}'" for name in self.cfg.queues)
            query = f"{query} AND ({names})"
        return query

    async def _search(self, query: str) -> list[Stub]:
        """Every ticket the query finds, oldest update first, over all pages."""
        stubs: list[Stub] = []
        for page in range(1, MAX_PAGES + 1):
            found, pages = search_stubs(await self._get("tickets", {
                "query": query, "fields": "LastUpdated", "orderby": "LastUpdated",
                "order": "ASC", "per_page": str(PER_PAGE), "page": str(page)}))
            stubs.extend(found)
            if page >= pages:
                break
        return stubs

    async def _queue(self, queue_id: str) -> Queue:
        """The queue's name and SLA setting, asked once per queue."""
        queue = self.queue_cache.get(queue_id)
        if queue is None:
            queue = self.queue_cache[queue_id] = to_queue(await self._get(f"queue/{queue_id}"))
        return queue

    async def _ticket(self, ticket_id: str, now: float) -> list[dict[str, Any]]:
        """One ticket's events from its record and its whole history."""
        ticket = to_ticket(await self._get(f"ticket/{ticket_id}"))
        queue = await self._queue(ticket.queue_id)
        if self.cfg.queues and queue.name not in self.cfg.queues:
            return []  # moved out of the followed queues
        txns = []
        for page in range(1, MAX_PAGES + 1):
            found, pages = history_txns(await self._get(f"ticket/{ticket_id}/history", {
                "fields": HISTORY_FIELDS, "per_page": str(PER_PAGE), "page": str(page)}))
            txns.extend(found)
            if page >= pages:
                break
        board_queue = self.cfg.queues.get(queue.name, queue.name)
        key = f"rt-{ticket.id}"
        if queue.sla_on and ticket.due is not None and ticket.status not in INACTIVE:
            self.deadlines[key] = (ticket.due, board_queue)  # a breach can come without an update
        else:
            self.deadlines.pop(key, None)
        return ticket_events(ticket, queue, txns, board_queue, now)

    async def poll(self) -> list[Event | dict[str, Any]]:
        """The events of every ticket changed since the previous poll, and passed deadlines."""
        now = self.clock.time()
        events: list[Event | dict[str, Any]] = []
        newest = self.since
        for stub in await self._search(self._query(now)):
            if stub.last_updated is not None:
                newest = max(newest or stub.last_updated, stub.last_updated)
            if stub.id in self.seen and self.seen[stub.id] == stub.last_updated:
                continue  # read again only because of the overlap
            events.extend(await self._ticket(stub.id, now))
            self.seen[stub.id] = stub.last_updated
        for key, (due, board_queue) in list(self.deadlines.items()):
            if due < now:
                events.append(breach(key, board_queue, due))
                del self.deadlines[key]
        if newest is not None:
            self.since = newest
            horizon = newest - self.cfg.overlap_s - 1
            # Tickets behind the overlap are not searched again unless they change.
            self.seen = {k: v for k, v in self.seen.items() if v is None or v >= horizon}
        return events


def _quote(text: str) -> str:
    """A value inside single quotes in TicketSQL."""
    return text.replace("\\", "\\\\").replace("'", "\\'")
