"""freshdesk: mapping, pagination, a 429 waited out, and a restart from the saved cursor."""

from __future__ import annotations

from typing import Any

from wallboard_plugins.freshdesk import FreshdeskConfig, FreshdeskSource
from wallboard_plugins.freshdesk.mapping import Mapper, parse_time

from tests.freshdesk_peer import API_KEY, FreshdeskPeer, recording
from wallboard.kit.testing import SourceHarness, VirtualClock

REC = recording()
NOW = parse_time(REC["now"])
assert NOW is not None


def source(url: str, **extra: Any) -> FreshdeskSource:
    """A freshdesk source reading the peer two tickets a page."""
    config = FreshdeskConfig(type="freshdesk", url=url, api_key=API_KEY, per_page=2,
                             interval_s=1, since="2026-11-22T00:00:00Z",
                             groups={"11": "billing", "12": "support"}, **extra)
    return FreshdeskSource("fd", config)


def kinds(events: list[dict[str, Any]], ticket: str) -> list[str]:
    """The lifecycle event types of one ticket, in order (status events apart)."""
    return [e["type"].removeprefix("ticket.") for e in events
            if e["contact_id"] == ticket and e["type"] != "ticket.status"]


def statuses(events: list[dict[str, Any]]) -> dict[str, str]:
    """The working status each unresolved ticket reported."""
    return {e["contact_id"]: e["status"] for e in events if e["type"] == "ticket.status"}


def test_ticket_objects_map_to_lifecycle_events_with_deadlines() -> None:
    mapper, watch, events = Mapper({"11": "billing", "12": "support"}, "tickets"), {}, []
    for ticket in REC["first"]:
        events += mapper.ticket_events(ticket, NOW, watch)
    assert kinds(events, "105") == ["created", "first_response", "sla_breached", "resolved"]
    assert kinds(events, "101") == ["created", "first_response"]
    assert kinds(events, "102") == ["created", "first_response"]
    assert kinds(events, "103") == ["created", "first_response", "resolved"]
    assert kinds(events, "104") == ["created", "sla_breached", "sla_breached"]
    created = next(e for e in events if e["id"] == "fd-101-created-" + str(int(NOW) - 7200))
    assert created["due_ts"] == NOW + 600 and created["queue"] == "billing"
    breaches = {(e["contact_id"], e["metric"]) for e in events if e["type"].endswith("breached")}
    assert breaches == {("105", "resolution_time"), ("104", "first_response_time"),
                        ("104", "resolution_time")}
    assert set(watch) == {"101", "102"}  # open, deadlines ahead; 104's have both passed
    # Status 2 is open and 3 pending (the backlog's pending split); resolved ones say nothing.
    board = {2: "open", 3: "pending"}
    assert statuses(events) == {str(t["id"]): board[t["status"]]
                                for t in REC["first"] if t["status"] in board}
    assert "pending" in statuses(events).values()
    again: list[dict[str, Any]] = []
    for ticket in REC["first"]:
        again += mapper.ticket_events(ticket, NOW, watch)
    assert [e["id"] for e in again] == [e["id"] for e in events]  # re-reads: the same ids


def test_reopened_ticket_is_resolved_then_reopened() -> None:
    ticket = dict(REC["first"][3], status=2)
    ticket["stats"] = dict(ticket["stats"], reopened_at="2026-11-23T11:20:00Z")
    events = Mapper({}, "tickets").ticket_events(ticket, NOW, {})
    assert kinds(events, "103") == ["created", "first_response", "resolved", "reopened"]


async def test_pages_follow_the_link_header_and_a_429_is_waited_out() -> None:
    clock = VirtualClock(NOW)
    async with FreshdeskPeer(REC["first"]) as peer:
        peer.fail_at[2] = (429, {"Retry-After": "30"})
        src = source(peer.url)
        async with SourceHarness(src, clock=clock) as h:
            await h.wait_for(lambda: len(peer.requests) >= 4, "read three pages")
        pages = [(q["page"], q["per_page"], q["include"]) for q in peer.requests[:4]]
        assert pages == [("1", "2", "stats"), ("2", "2", "stats"), ("2", "2", "stats"),
                         ("3", "2", "stats")]
        assert peer.requests[0]["updated_since"] == "2026-11-22T00:00:00Z"
        assert peer.requests[0]["order_by"] == "updated_at"
    assert src.waited[0] == 30 and 30 in clock.slept  # it waited, then asked again
    assert "down" not in h.statuses and not h.invalid and h.crashes == 0
    created = {e["contact_id"] for e in h.events if e["type"] == "ticket.created"}
    assert created == {"101", "102", "103", "104", "105"}


async def test_a_spent_budget_pauses_before_the_next_page() -> None:
    clock = VirtualClock(NOW)
    async with FreshdeskPeer(REC["first"], remaining=2) as peer:
        src = source(peer.url, low_budget_pause_s=45)
        async with SourceHarness(src, clock=clock) as h:
            await h.wait_for(lambda: len(peer.requests) >= 3, "read three pages")
    assert src.waited[:2] == [45, 45] and 45 in clock.slept


async def test_restart_resumes_from_the_saved_cursor(tmp_path) -> None:
    clock = VirtualClock(NOW)
    async with FreshdeskPeer(REC["first"]) as peer:
        first = source(peer.url, state_dir=str(tmp_path))
        async with SourceHarness(first, clock=clock) as h1:
            await h1.wait_for(lambda: (tmp_path / "freshdesk-fd.json").exists(), "save")
        assert first.cursor == "2026-11-23T11:30:00Z"
        peer.update(REC["later"])
        seen = len(peer.requests)
        second = source(peer.url, state_dir=str(tmp_path))
        async with SourceHarness(second, clock=clock) as h2:
            await h2.wait_for(lambda: len(peer.requests) > seen + 1, "poll after restart")
            # The requests are made before the page's events are emitted: wait for those too.
            await h2.wait_for(lambda: any(e["contact_id"] == "106" for e in h2.events),
                              "the new ticket's events")
        assert peer.requests[seen]["updated_since"] == "2026-11-23T11:30:00Z"
    assert set(second.watch) == {"101", "106"}  # 101 from the state file; 102 is resolved
    new = {(e["contact_id"], e["type"]) for e in h2.events}
    assert ("106", "ticket.created") in new and ("102", "ticket.resolved") in new
    assert ("105", "ticket.created") not in new  # not re-read: before the cursor
    ids1 = {e["id"] for e in h1.events}
    overlap = {e["id"] for e in h2.events} & ids1
    # Re-read tickets (104 at the cursor, 102 changed) repeat their earlier ids: deduped.
    assert {i.split("-")[1] for i in overlap} == {"102", "104"}


async def test_repeated_429s_put_the_source_down_with_the_wait(tmp_path) -> None:
    clock = VirtualClock(NOW)
    async with FreshdeskPeer(REC["first"]) as peer:
        for n in (1, 2):
            peer.fail_at[n] = (429, {"Retry-After": "20"})
        src = source(peer.url, max_retries=1)
        async with SourceHarness(src, clock=clock) as h:
            await h.wait_for(lambda: h.status == "up", "recover after the 429s")
    assert h.statuses[:3] == ["starting", "down", "up"] and h.crashes == 0
    assert clock.slept.count(20) >= 2  # once in the poll, once by the runtime's Retry-After
    assert peer.requests[2]["page"] == "1"  # the poll starts again from the same cursor


async def test_an_unreadable_state_file_is_a_source_error(tmp_path) -> None:
    (tmp_path / "freshdesk-fd.json").write_text("{not json")
    async with (FreshdeskPeer(REC["first"]) as peer,
                SourceHarness(source(peer.url, state_dir=str(tmp_path))) as h):
        await h.wait_for(lambda: h.status == "down", "go down")
        assert "unreadable state file" in (h.last_error or "")
        await h.wait_for(lambda: h.status == "up", "start again from `since`")
    assert h.crashes == 0 and peer.requests[0]["updated_since"] == "2026-11-22T00:00:00Z"
    assert '"updated_since": "2026-11-23T11:30:00Z"' in (tmp_path / "freshdesk-fd.json").read_text()
