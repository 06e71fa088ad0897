"""request_tracker: the mapping on recorded RT 5 REST2 payloads, the poll loop, the contract."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, ClassVar

import orjson
import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from pydantic import ValidationError
from wallboard_plugins.request_tracker import RequestTrackerConfig, RequestTrackerSource
from wallboard_plugins.request_tracker.mapping import (
    Queue,
    history_txns,
    rt_time,
    sql_time,
    ticket_events,
    to_ticket,
)

from wallboard.kit.source import SourceError
from wallboard.kit.testing import HttpReplay, SourceContract
from wallboard.model.events import parse_event

DATA = Path(__file__).resolve().parent / "data"
# Recorded from RT 5.0.3 (Debian 12): ticket 1 created by root for caller@example.com,
# answered by root, then resolved.
TICKET = json.loads((DATA / "rt5_ticket_1.json").read_text())
HISTORY = json.loads((DATA / "rt5_history_1.json").read_text())
CREATED = 1795475439.0  # 2026-11-23T23:10:39Z
GENERAL = Queue("General", sla_on=False)


def events_of(ticket: dict[str, Any], history: dict[str, Any], queue: Queue = GENERAL,
              now: float = CREATED + 3600) -> list[dict[str, Any]]:
    txns, _ = history_txns(history)
    return ticket_events(to_ticket(ticket), queue, txns, queue.name, now)


def test_dates_epoch_zero_is_absent() -> None:
    assert rt_time("1970-01-01T00:00:00Z") is None
    assert rt_time("") is None and rt_time(None) is None and rt_time("soon") is None
    assert rt_time("2026-11-23T23:10:39Z") == CREATED
    assert sql_time(CREATED) == "2026-11-23 23:10:39"


def test_recorded_ticket_maps_to_created_first_response_resolved() -> None:
    events = events_of(TICKET, HISTORY)
    assert [(e["type"], e["id"], e["ts"]) for e in events] == [
        ("ticket.created", "rt-1:created", CREATED),
        ("ticket.first_response", "rt-1:first_response:35", CREATED),
        ("ticket.resolved", "rt-1:resolved:38", CREATED + 1),
    ]
    assert all(e["contact_id"] == "rt-1" and e["queue"] == "General" for e in events)
    assert "due_ts" not in events[0]  # Due is epoch 0: absent
    for event in events:
        parse_event(event)  # valid canonical events


def test_a_requesters_own_correspondence_is_not_a_response() -> None:
    history = copy.deepcopy(HISTORY)
    history["items"][2]["Creator"]["id"] = "caller@example.com"
    assert "ticket.first_response" not in [e["type"] for e in events_of(TICKET, history)]


def test_reopen_then_resolve_again() -> None:
    history = copy.deepcopy(HISTORY)
    history["items"] += [
        {"type": "transaction", "id": "40", "Type": "Status", "Field": "Status",
         "OldValue": "resolved", "NewValue": "open", "Created": "2026-11-23T23:20:00Z",
         "Creator": {"type": "user", "id": "caller@example.com"}},
        {"type": "transaction", "id": "41", "Type": "Status", "Field": "Status",
         "OldValue": "open", "NewValue": "rejected", "Created": "2026-11-23T23:30:00Z",
         "Creator": {"type": "user", "id": "root"}}]
    kinds = [(e["type"], e["id"]) for e in events_of(TICKET, history)][2:]
    assert kinds == [("ticket.resolved", "rt-1:resolved:38"),
                     ("ticket.reopened", "rt-1:reopened:40"),
                     ("ticket.resolved", "rt-1:resolved:41")]


def test_stalled_is_the_pending_split_and_back_to_open_ends_it() -> None:
    history = copy.deepcopy(HISTORY)
    history["items"] += [
        {"type": "transaction", "id": "50", "Type": "Status", "Field": "Status",
         "OldValue": "open", "NewValue": "stalled", "Created": "2026-11-23T23:40:00Z",
         "Creator": {"type": "user", "id": "root"}},
        {"type": "transaction", "id": "51", "Type": "Status", "Field": "Status",
         "OldValue": "stalled", "NewValue": "open", "Created": "2026-11-23T23:50:00Z",
         "Creator": {"type": "user", "id": "caller@example.com"}}]
    statuses = [(e["id"], e["status"]) for e in events_of(TICKET, history)
                if e["type"] == "ticket.status"]
    assert statuses == [("rt-1:status:50", "pending"), ("rt-1:status:51", "open")]
    for event in events_of(TICKET, history):
        parse_event(event, "rt")  # every mapped event is a valid canonical event


def test_sla_due_is_the_deadline_only_when_the_queues_sla_is_on() -> None:
    ticket = {**TICKET, "Due": "2026-11-23T23:10:30Z"}  # before the resolution: breached
    with_sla = events_of(ticket, HISTORY, Queue("General", sla_on=True))
    assert with_sla[0]["due_ts"] == CREATED - 9
    assert with_sla[-1] == {"type": "ticket.sla_breached", "id": f"rt-1:sla:{int(CREATED - 9)}",
                            "ts": CREATED - 9, "queue": "General", "channel": "ticket",
                            "contact_id": "rt-1", "metric": "due"}
    without = events_of(ticket, HISTORY, GENERAL)
    assert "due_ts" not in without[0] and without[-1]["type"] == "ticket.resolved"
    on_time = events_of({**TICKET, "Due": "2026-11-24T00:00:00Z"}, HISTORY,
                        Queue("General", sla_on=True))
    assert "ticket.sla_breached" not in [e["type"] for e in on_time]


def test_bad_payloads_are_source_errors() -> None:
    for payload in (None, [], {}, {"items": 3}):
        with pytest.raises(SourceError):
            history_txns(payload)
    with pytest.raises(SourceError, match="missing id, Queue or Created"):
        to_ticket({"id": 1})


def test_config_needs_exactly_one_login() -> None:
    with pytest.raises(ValidationError, match="set token, or username and password"):
        RequestTrackerConfig(type="request_tracker", url="http://rt", username="root")
    with pytest.raises(ValidationError, match="not both"):
        RequestTrackerConfig(type="request_tracker", url="http://rt", token="1-14-abcdef",
                             username="root", password="x")


class FakeRT:
    """REST2 answers for ticket 1, with the search queries asked recorded."""

    def __init__(self) -> None:
        self.queries: list[str] = []
        self.paths: list[str] = []
        self.status = 200

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/rt/REST/2.0/{path:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        self.paths.append(path)
        if self.status != 200:
            return web.Response(status=self.status, text="no")
        if path == "tickets":
            self.queries.append(request.query["query"])
            body: Any = {"page": 1, "pages": 1, "total": 1, "items": [
                {"type": "ticket", "id": "1", "LastUpdated": TICKET["LastUpdated"]}]}
        elif path == "ticket/1":
            body = TICKET
        elif path == "ticket/1/history":
            body = HISTORY
        elif path == "queue/1":
            body = {"id": 1, "Name": "General", "SLADisabled": "1"}
        else:
            return web.Response(status=404)
        return web.Response(body=orjson.dumps(body), content_type="application/json")


async def test_overlap_rereads_are_skipped_and_bad_credentials_say_so() -> None:
    fake = FakeRT()
    server = TestServer(fake.app(), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        config = RequestTrackerConfig(type="request_tracker",
                                      url=f"http://127.0.0.1:{server.port}/rt",
                                      username="root", password="password123",
                                      overlap_s=60)
        source = RequestTrackerSource("rt", config)
        async with ClientSession() as session:
            source.http = session
            first = await source.poll()
            assert [e["type"] for e in first] == ["ticket.created", "ticket.first_response",
                                                  "ticket.resolved"]
            assert "__Active__" in fake.queries[0]
            fetched = len(fake.paths)
            assert await source.poll() == []  # the overlap finds it again: unchanged, skipped
            assert fake.paths[fetched:] == ["tickets"]
            assert fake.queries[1] == "LastUpdated > '2026-11-23 23:09:40'"  # 60 s overlap
            assert source.queue_cache.keys() == {"1"}
            fake.status = 401
            with pytest.raises(SourceError, match="RT refused the credentials: check the "
                                                  "username and password"):
                await source.poll()
    finally:
        await server.close()


def _contract_body() -> bytes:
    """HttpReplay answers every path with one body, so the recording merges the answers to
    the search (ticket items), the ticket, its history (transaction items) and its queue."""
    body = {**TICKET, "Name": "General", "SLADisabled": "1", "page": 1, "pages": 1,
            "items": [{"type": "ticket", "id": "1", "LastUpdated": TICKET["LastUpdated"]},
                      *HISTORY["items"]]}
    return orjson.dumps(body)


class TestRequestTrackerContract(SourceContract):
    source_class = RequestTrackerSource
    config: ClassVar[dict[str, Any]] = {"url": "{peer_url}/rt", "token": "1-14-40a3fae783f5",
                                        "interval_s": 30}
    bad_configs: ClassVar[list[tuple[dict[str, Any], str]]] = [
        ({"url": "rt.example"}, "sources.contract.url: String should match pattern"),
        ({"token": None}, "set token, or username and password"),
        ({"token": "short"}, "token: String should have at least 8 characters"),
        ({"overlap_s": -1}, "overlap_s: Input should be greater than or equal to 0"),
    ]
    peer = HttpReplay(_contract_body())
