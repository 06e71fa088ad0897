"""The zendesk source: mapping, pagination, 429 with Retry-After, restart, signatures, contract."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import pytest
from wallboard_plugins.zendesk import ZendeskConfig, ZendeskSource
from wallboard_plugins.zendesk.mapping import Mapper, parse_time
from wallboard_plugins.zendesk.webhook import compute, verify

from tests.zendesk_peer import DATA, METRICS, TICKETS, ZendeskPeer, recorded
from wallboard.kit.signing import SignatureError
from wallboard.kit.source import SourceError
from wallboard.kit.testing import HttpReplay, SourceContract

VECTOR_BODY = b'{"event_id":"01","event_type":"form_response"}'
VECTOR_TS = "2026-01-01T00:00:00Z"
VECTOR_SIG = "0nXSFGq+y3fEIET5b1vfTV7cEKuvGR9NeQebu8uIxw4="
T = parse_time


def source(url: str, state_dir: Path, **extra: Any) -> ZendeskSource:
    """A zendesk source on the peer, its cursor file in `state_dir`."""
    config = ZendeskConfig(type="zendesk", url=url, email="admin@acme.example",
                           api_token="tok-123456", state_dir=str(state_dir),
                           groups={"360001": "support"}, **extra)
    return ZendeskSource("zd", config)


def by_id(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Events keyed by id, asserting no id was emitted twice."""
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids)), f"an event was emitted twice: {ids}"
    return {e["id"]: e for e in events}


def test_signature_test_vector_from_protocols() -> None:
    assert compute("zdsecret", VECTOR_TS, VECTOR_BODY) == VECTOR_SIG
    verify("zdsecret", VECTOR_BODY, VECTOR_SIG, VECTOR_TS, None, 0.0)


@pytest.mark.parametrize("body, ts, sig, reason", [
    (VECTOR_BODY[:-2] + b"x}", VECTOR_TS, VECTOR_SIG, "bad_signature"),
    (VECTOR_BODY, "2026-01-01T00:00:01Z", VECTOR_SIG, "bad_signature"),
    (VECTOR_BODY, VECTOR_TS, "", "missing_signature"),
    (VECTOR_BODY, None, VECTOR_SIG, "missing_timestamp"),
])
def test_a_one_byte_change_or_a_missing_header_fails(body: bytes, ts: str | None, sig: str,
                                                      reason: str) -> None:
    with pytest.raises(SignatureError) as caught:
        verify("zdsecret", body, sig, ts, None, 0.0)
    assert caught.value.reason == reason


def test_an_old_timestamp_is_refused() -> None:
    with pytest.raises(SignatureError) as caught:
        verify("zdsecret", VECTOR_BODY, VECTOR_SIG, VECTOR_TS, 300.0, T(VECTOR_TS) + 301)
    assert caught.value.reason == "stale_timestamp"
    verify("zdsecret", VECTOR_BODY, VECTOR_SIG, VECTOR_TS, 300.0, T(VECTOR_TS) + 299)


def test_mapping_of_the_recorded_pages() -> None:
    mapper = Mapper({"360001": "support"}, None, "ticket")
    mapper.metric_events(recorded("metric_events_1"))  # the deadlines, first
    later = [e for e in mapper.tickets(recorded("tickets_2")) if e["contact_id"] == "103"]
    # 103's first reply is both in its metric_set and a fulfil event: one id, one time.
    events = {e["id"]: e for e in mapper.tickets(recorded("tickets_1")) + later
              + mapper.metric_events(recorded("metric_events_1"))}
    assert set(events) == {
        "zendesk:101:created", "zendesk:101:first_response", "zendesk:102:created",
        "zendesk:103:created", "zendesk:103:first_response", "zendesk:103:resolved:0",
        "zendesk:102:breach:4",
        # Unresolved tickets say their working status (the backlog's pending split).
        "zendesk:101:status:open:1795425000", "zendesk:102:status:new:1795424700"}
    assert events["zendesk:101:created"] == {
        "type": "ticket.created", "id": "zendesk:101:created", "ts": T("2026-11-23T09:00:00Z"),
        "queue": "support", "channel": "ticket", "contact_id": "101", "priority": 2,
        "due_ts": T("2026-11-23T10:00:00Z")}
    assert events["zendesk:102:created"]["due_ts"] == T("2026-11-23T09:35:00Z")
    assert events["zendesk:101:first_response"]["ts"] == T("2026-11-23T09:10:00Z")
    assert events["zendesk:103:resolved:0"]["ts"] == T("2026-11-23T09:40:00Z")
    assert events["zendesk:102:breach:4"]["metric"] == "reply_time"


def test_pending_and_hold_are_the_backlogs_pending_split() -> None:
    mapper = Mapper({}, "general", "email")
    for zendesk, board in (("pending", "pending"), ("hold", "hold"), ("new", "open")):
        ticket = {"id": 8, "status": zendesk, "created_at": "2026-11-23T09:00:00Z",
                  "updated_at": "2026-11-23T10:00:00Z",
                  "metric_set": {"status_updated_at": "2026-11-23T09:45:00Z"}}
        [status] = [e for e in mapper.ticket(ticket) if e["type"] == "ticket.status"]
        assert status["status"] == board and status["ts"] == T("2026-11-23T09:45:00Z")
        assert status["id"] == f"zendesk:8:status:{zendesk}:{int(T('2026-11-23T09:45:00Z'))}"
    solved = {"id": 9, "status": "solved", "created_at": "2026-11-23T09:00:00Z"}
    assert not [e for e in mapper.ticket(solved) if e["type"] == "ticket.status"]


def test_a_reopened_ticket_and_an_unknown_group() -> None:
    mapper = Mapper({}, "general", "email")
    ticket = {"id": 7, "status": "open", "group_id": 1, "created_at": "2026-11-23T09:00:00Z",
              "updated_at": "2026-11-23T10:00:00Z",
              "metric_set": {"reopens": 1, "status_updated_at": "2026-11-23T09:30:00Z"}}
    events = by_id(mapper.ticket(ticket))
    assert events["zendesk:7:reopened:1"]["ts"] == T("2026-11-23T09:30:00Z")
    assert events["zendesk:7:created"]["queue"] == "general"


@pytest.mark.parametrize("payload", [None, [], {}, {"tickets": "x"}, {"tickets": None}])
def test_a_page_of_the_wrong_shape_is_a_source_error(payload: Any) -> None:
    with pytest.raises(SourceError, match="ticket export"):
        Mapper({}, None, "ticket").tickets(payload)


async def test_pages_then_429_with_retry_after_waits_and_resumes(
        tmp_path: Path, source_harness: Any) -> None:
    async with ZendeskPeer() as peer:
        peer.stage(1)
        # The first page of tickets is answered, the second gets a 429 first.
        peer.fail_page[(TICKETS, "c1")] = [(429, {"Retry-After": "42"})]
        zd = source(peer.url, tmp_path, interval_s=60)
        async with source_harness(zd) as h:
            await h.wait_for(lambda: len(h.events) >= 7, "emit the first export")
        assert h.statuses == ["starting", "down", "up"] and not h.crash_errors
        assert any(s >= 42 for s in h.clock.slept), h.clock.slept  # it waited Retry-After
        # The failed page was asked again, and the export restarted from the saved cursors.
        assert peer.cursors(TICKETS)[:4] == ["start", "c1", "start", "c1"]
        events = by_id(h.events)
        assert "zendesk:103:resolved:0" in events and "zendesk:102:breach:4" in events
        state = json.loads((tmp_path / "zendesk-zd.json").read_text())
        assert state == {"metric_events_start": peer.time_of("m1"), "tickets": "c2"}


async def test_restart_resumes_from_the_saved_cursor(tmp_path: Path, source_harness: Any) -> None:
    async with ZendeskPeer() as peer:
        peer.stage(1)
        async with source_harness(source(peer.url, tmp_path, interval_s=60)) as h:
            await h.wait_for(lambda: len(h.events) >= 7, "emit the first export")
        first = by_id(h.events)
        peer.stage(2)
        peer.requests.clear()
        async with source_harness(source(peer.url, tmp_path, interval_s=60)) as h2:
            await h2.wait_for(lambda: len(h2.events) >= 3, "emit what changed after a restart")
        assert peer.cursors(TICKETS)[0] == "c2" and peer.cursors(METRICS)[0] == "m1"
        again = by_id(h2.events)
        assert set(again) == {"zendesk:104:created", "zendesk:101:created",
                              "zendesk:101:first_response", "zendesk:101:resolved:0",
                              "zendesk:101:breach:7", "zendesk:104:status:open:1795427400"}
        assert not set(again) - set(first) & {"zendesk:102:created", "zendesk:103:created"}
        assert again["zendesk:104:created"]["due_ts"] == T("2026-11-23T10:05:00Z")


def test_credentials_are_required() -> None:
    with pytest.raises(ValueError, match="give email and api_token, or oauth_token"):
        ZendeskConfig(type="zendesk", url="https://acme.zendesk.com")
    config = ZendeskConfig(type="zendesk", url="https://acme.zendesk.com", oauth_token="o" * 10)
    assert ZendeskSource("zd", config).headers() == {"Authorization": "Bearer " + "o" * 10}


CONTRACT_PAGE = json.dumps({
    **recorded("tickets_2"), "ticket_metric_events": recorded("metric_events_1")[
        "ticket_metric_events"]}).encode()


class TestZendeskContract(SourceContract):
    source_class = ZendeskSource
    config: ClassVar[dict[str, Any]] = {
        "url": "{peer_url}", "email": "admin@acme.example", "api_token": "tok-123456",
        "state_dir": tempfile.mkdtemp(prefix="zendesk-contract-"), "interval_s": 60,
        "groups": {"360001": "support"}}
    bad_configs: ClassVar[list[tuple[dict[str, Any], str]]] = [
        ({"url": "acme.zendesk.com"}, "url: String should match pattern"),
        ({"api_token": "short"}, "api_token: String should have at least 8 characters"),
        ({"api_token": None}, "give email and api_token, or oauth_token"),
        ({"interval_s": 0}, "interval_s: Input should be greater than 0"),
    ]
    peer = HttpReplay(CONTRACT_PAGE)


def test_recorded_pages_are_valid_json() -> None:
    assert sorted(p.name for p in DATA.glob("*.json")) == [
        "metric_events_1.json", "metric_events_2.json", "tickets_1.json", "tickets_2.json",
        "tickets_3.json"]
