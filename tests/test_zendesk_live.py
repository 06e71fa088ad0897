"""The zendesk source end to end: a local export peer, a real server, /api/snapshot."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from wallboard_plugins.zendesk.mapping import parse_time
from wallboard_plugins.zendesk.webhook import compute

from tests.conftest import base_config
from tests.metrics_text import refused_by_source, rejected_by_reason
from tests.zendesk_peer import METRICS, TICKETS, ZendeskPeer, empty

NOW_IN_RECORDING = "2026-11-23T09:58:00Z"  # the recorded pages are moved so that this is now
SECRET = "whsecret-123"


def zendesk_config(url: str, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    """One ticket queue, fed by a zendesk source on the peer; journal and cursor in tmp_path."""
    source = {"type": "zendesk", "url": url, "email": "admin@acme.example",
              "api_token": "tok-123456", "state_dir": str(tmp_path / "state"),
              "interval_s": 0.2, "max_requests_per_s": 100, "burst": 10,
              "groups": {"360001": "support"}, **extra}
    # Tickets are read up to an hour after they were created: the lateness must allow it.
    site = {"name": "Test site", "timezone": "UTC", "lateness_s": 7200}
    return base_config(site=site, queues={"support": {"label": "Support", "channel": "email"}},
                       sources={"zd": source}, journal={"data_dir": str(tmp_path / "journal")})


async def wait_for_snapshot(live: Any, ready: Any, what: str) -> dict[str, Any]:
    """Poll /api/snapshot until `ready(support queue)` holds."""
    deadline = time.monotonic() + 15
    while True:
        snapshot = await live.get_json("/api/snapshot")
        support = snapshot["queues"]["support"]
        if ready(support):
            return support
        assert time.monotonic() < deadline, f"{what}: {snapshot['sources']} {support['today']}"
        await asyncio.sleep(0.05)


async def test_kpis_from_the_export_and_a_restart_that_does_not_double_count(
        live_server: Any, tmp_path: Path) -> None:
    now = time.time()
    if datetime.fromtimestamp(now - 3600, UTC).date() != datetime.fromtimestamp(now, UTC).date():
        pytest.skip("the recorded hour would straddle midnight, and 'today' with it")
    async with ZendeskPeer(shift_s=now - parse_time(NOW_IN_RECORDING)) as peer:
        peer.stage(1)
        live = await live_server(zendesk_config(peer.url, tmp_path))
        support = await wait_for_snapshot(
            live, lambda q: q["today"]["tickets_created"] == 3 and q["today"]["sla_breaches"] == 1
            and q["today"]["first_responses"] == 2, "the first export")
        await asyncio.sleep(0.5)  # a few more polls, which find nothing new
        today, live_kpis = support["today"], support["live"]
        assert (today["tickets_created"], today["tickets_resolved"], today["first_responses"],
                today["sla_breaches"]) == (3, 1, 2, 1)
        assert today["frt_avg_s"] == pytest.approx(450)  # 101 after 10 min, 103 after 5
        assert today["frt_p90_s"] == pytest.approx(600, rel=0.05)
        assert today["frt_p50_s"] == pytest.approx(300, rel=0.05)
        # Open: 101 (pending, due 10:00: at risk) and 102 (new, due 09:35: overdue).
        assert (live_kpis["tickets_open"], live_kpis["tickets_at_risk"],
                live_kpis["tickets_overdue"]) == (2, 1, 1)
        assert live_kpis["oldest_ticket_s"] == pytest.approx(58 * 60, abs=30)
        # The export's lag reaches the board beside the numbers it delays.
        assert (await live.get_json("/api/snapshot"))["sources"]["zd"]["lag_s"] == 60
        status = await live.get_json("/api/zendesk/zd/status")
        assert status["lag_s"] == 60 and status["cursors"] == {
            "tickets": "c2", "metric_events_start": peer.time_of("m1")}
        await live.session.close()
        await live.server.close()  # the restart: this app stops, a new one reads the state

        peer.stage(2)
        peer.requests.clear()
        live = await live_server(zendesk_config(peer.url, tmp_path))
        support = await wait_for_snapshot(
            live, lambda q: q["today"]["tickets_created"] == 4 and q["today"]["sla_breaches"] == 2,
            "the export after the restart")
        await asyncio.sleep(0.5)
        support = (await live.get_json("/api/snapshot"))["queues"]["support"]
        today, live_kpis = support["today"], support["live"]
        assert peer.cursors(TICKETS)[0] == "c2" and peer.cursors(METRICS)[0] == "m1"
        assert "start" not in peer.cursors(TICKETS)
        # Nothing doubled: 101 is read again (solved), its creation and first reply are not
        # counted again; 104 is new and due at 10:05, within 15 minutes.
        assert (today["tickets_created"], today["tickets_resolved"], today["first_responses"],
                today["sla_breaches"]) == (4, 2, 2, 2)
        assert today["frt_avg_s"] == pytest.approx(450)
        assert (live_kpis["tickets_open"], live_kpis["tickets_at_risk"],
                live_kpis["tickets_overdue"]) == (2, 1, 1)
        assert live_kpis["oldest_ticket_s"] == pytest.approx(53 * 60, abs=30)
        state = json.loads((tmp_path / "state" / "zendesk-zd.json").read_text())
        assert state == {"tickets": "c3", "metric_events_start": peer.time_of("m2")}


async def post_webhook(live: Any, body: bytes, signature: str | None,
                       timestamp: str, answer: dict[str, str] | None = None) -> tuple[int, Any]:
    """POST a webhook body to the zd source's route; `answer` gets the answer's headers."""
    headers = {"Content-Type": "application/json",
               "X-Zendesk-Webhook-Signature-Timestamp": timestamp}
    if signature is not None:
        headers["X-Zendesk-Webhook-Signature"] = signature
    async with live.session.post(f"{live.url}/api/zendesk/zd/webhook", data=body,
                                 headers=headers) as resp:
        if answer is not None:
            answer.update(resp.headers)
        return resp.status, await resp.text()


async def test_signed_webhook_is_ingested_and_a_bad_signature_is_refused_and_counted(
        live_server: Any, tmp_path: Path) -> None:
    async with ZendeskPeer() as peer:
        peer.pages = {(METRICS, "start"): empty("ticket_metric_events", "m0"),
                      (TICKETS, "start"): empty("tickets", "c0"),
                      (METRICS, "m0"): empty("ticket_metric_events", "m0"),
                      (TICKETS, "c0"): empty("tickets", "c0")}
        live = await live_server(zendesk_config(peer.url, tmp_path, webhook_secret=SECRET))
        created = datetime.fromtimestamp(time.time() - 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = json.dumps({"ticket": {"id": 900, "status": "open", "group_id": 360001,
                                      "priority": "urgent", "created_at": created,
                                      "updated_at": created}}).encode()
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        signature = compute(SECRET, stamp, body)
        tampered = body.replace(b'"urgent"', b'"urgenT"')
        assert (await post_webhook(live, tampered, signature, stamp))[0] == 401
        assert (await post_webhook(live, body, None, stamp))[0] == 401
        first: dict[str, str] = {}
        retry: dict[str, str] = {}
        assert (await post_webhook(live, body, signature, stamp, first))[0] == 204
        assert (await post_webhook(live, body, signature, stamp, retry))[0] == 204  # a retry
        # The 204 says what was stored: the ticket's events once, then only duplicates.
        stored = int(first["X-Wallboard-Accepted"])
        assert stored >= 1 and (first["X-Wallboard-Duplicates"], first["X-Wallboard-Late"]) == (
            "0", "0")
        assert (retry["X-Wallboard-Accepted"], retry["X-Wallboard-Duplicates"]) == (
            "0", str(stored))
        _, text = await live.get_text("/metrics")
        counts = rejected_by_reason(text)
        assert counts["bad_signature"] == 1 and counts["missing_signature"] == 1
        assert refused_by_source(text, "zd") == {"bad_signature": 1, "missing_signature": 1}
        support = (await live.get_json("/api/snapshot"))["queues"]["support"]
        assert support["today"]["tickets_created"] == 1
        assert support["live"]["tickets_open"] == 1
