"""twilio_taskrouter against a real server: signed form callbacks, 403s, replays, KPIs."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from wallboard_plugins.twilio_taskrouter.signature import compute

from tests.conftest import base_config, now
from tests.metrics_text import refused_by_source, rejected_by_reason
from tests.serverproc import midday_zone
from wallboard.journal import sqlite_backend as journal_sqlite
from wallboard.journal.sqlite_backend import DB_NAME
from wallboard.kit.testing import HttpReplay

STATISTICS = Path(__file__).resolve().parent / "data" / "twilio_taskqueue_statistics.json"

AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
SHARED_KEY = "shared-key-secret-0123456789"


def twilio_config(journal: dict[str, Any] | None = None, **source: Any) -> dict[str, Any]:
    """The base config plus a twilio_taskrouter source named `tw`."""
    config = base_config()
    config["site"]["timezone"] = midday_zone()  # about noon: 'today' cannot roll over
    config["sources"]["tw"] = {"type": "twilio_taskrouter", "auth_token": AUTH_TOKEN,
                               "queues": {"WQsales": "sales"}, **source}
    if journal is not None:
        config["journal"] = journal
    return config


async def callback(live: Any, params: dict[str, str], *, signature: str | None = None,
                   signed_url: str | None = None, key: str = AUTH_TOKEN,
                   headers: dict[str, str] | None = None, algorithm: str = "sha1",
                   source: str = "tw") -> tuple[int, str]:
    """POST one form-encoded callback signed as Twilio would; returns (status, body text)."""
    url = f"{live.url}/api/twilio/{source}/events"
    if signature is None:
        signature = compute(key, signed_url or url, params.items(), algorithm)
    async with live.session.post(url, data=params, headers={
            "X-Twilio-Signature": signature, **(headers or {})}) as resp:
        live.last_headers = dict(resp.headers)  # what the 204 says was stored
        return resp.status, await resp.text()


def task_event(etype: str, sid: str, task: str, ts: float, age: float,
               **extra: str) -> dict[str, str]:
    """A task or reservation callback in the sales TaskQueue."""
    return {"EventType": etype, "Sid": sid, "AccountSid": "AC1", "WorkspaceSid": "WS1",
            "ResourceType": "task", "ResourceSid": task, "TaskSid": task,
            "Timestamp": str(int(ts)), "TimestampMs": str(int(ts * 1000)),
            "TaskAge": str(int(age)), "TaskQueueSid": "WQsales", "TaskQueueName": "Sales",
            "TaskChannelUniqueName": "voice", "TaskAttributes": '{"from": "+15550100"}',
            **extra}


async def test_signed_callback_is_acknowledged_with_204_and_counted(live_server) -> None:
    live = await live_server(twilio_config())
    status, body = await callback(live, task_event("task.created", "EV1", "WT1", now(), 0))
    assert (status, body) == (204, "")
    api = await live.get_json("/api/snapshot")
    assert api["queues"]["sales"]["live"]["waiting"] == 1
    assert api["queues"]["sales"]["today"]["offered"] == 1


async def test_bad_signature_gets_403_is_counted_and_changes_nothing(live_server) -> None:
    live = await live_server(twilio_config())
    params = task_event("task.created", "EV1", "WT1", now(), 0)
    assert (await callback(live, params, key="f" * 32))[0] == 403
    assert (await callback(live, params, signature=""))[0] == 403
    tampered = await callback(live, {**params, "TaskQueueName": "Other"},
                              signature=compute(AUTH_TOKEN, f"{live.url}/api/twilio/tw/events",
                                                params.items()))
    assert tampered[0] == 403 and "signature" in tampered[1]
    _, text = await live.get_text("/metrics")
    counts = rejected_by_reason(text)
    assert counts["bad_signature"] == 2 and counts["missing_signature"] == 1
    assert refused_by_source(text, "tw") == {"bad_signature": 2, "missing_signature": 1}
    api = await live.get_json("/api/snapshot")
    assert api["queues"]["sales"]["today"]["offered"] == 0


async def test_replayed_sid_is_counted_once(live_server) -> None:
    live = await live_server(twilio_config())
    params = task_event("task.created", "EVsame", "WT1", now(), 0)
    for _ in range(3):
        assert (await callback(live, params))[0] == 204
    api = await live.get_json("/api/snapshot")
    assert api["queues"]["sales"]["today"]["offered"] == 1
    _, text = await live.get_text("/metrics")
    duplicates = [s.value for f in text_string_to_metric_families(text) for s in f.samples
                  if s.name == "wallboard_events_duplicate_total"]
    assert duplicates == [2.0]


async def test_full_task_lifecycle_gives_hand_computed_queue_kpis(live_server) -> None:
    live = await live_server(twilio_config(activities={"On Call": "busy"}))
    t0 = now() - 250
    lifecycle = [
        # Task A: answered after 10 s by alice, talks 120 s, wraps 30 s (handle 150 s).
        task_event("task.created", "EVa1", "WTa", t0, 0),
        task_event("reservation.created", "EVa2", "WTa", t0 + 4, 4, WorkerName="alice"),
        task_event("reservation.accepted", "EVa3", "WTa", t0 + 10, 10, WorkerName="alice"),
        task_event("task.wrapup", "EVa4", "WTa", t0 + 130, 130),
        task_event("task.completed", "EVa5", "WTa", t0 + 160, 160),
        task_event("task.deleted", "EVa6", "WTa", t0 + 161, 161,
                   TaskAssignmentStatus="completed"),
        # Task B: answered after 20 s by bob, completed 60 s later without wrap-up.
        task_event("task.created", "EVb1", "WTb", t0 + 5, 0),
        task_event("reservation.rejected", "EVb2", "WTb", t0 + 15, 10, WorkerName="alice"),
        task_event("reservation.accepted", "EVb3", "WTb", t0 + 25, 20, WorkerName="bob"),
        task_event("task.completed", "EVb4", "WTb", t0 + 85, 80),
        # Task C: the caller hangs up after 40 s; task D is deleted while pending after 30 s.
        task_event("task.created", "EVc1", "WTc", t0 + 8, 0),
        task_event("task.canceled", "EVc2", "WTc", t0 + 48, 40, TaskCanceledReason="hangup"),
        task_event("task.created", "EVd1", "WTd", t0 + 9, 0),
        task_event("task.deleted", "EVd2", "WTd", t0 + 39, 30, TaskAssignmentStatus="pending"),
    ]
    lifecycle.sort(key=lambda p: int(p["TimestampMs"]))
    for n, params in enumerate(lifecycle):
        status, body = await callback(live, params)
        assert status == 204, (params["Sid"], body)
        if n == 0:  # task.created: one event, stored
            assert live.last_headers["X-Wallboard-Accepted"] == "1"
    assert (await callback(live, lifecycle[0]))[0] == 204  # a retry of the first callback
    assert (live.last_headers["X-Wallboard-Accepted"],
            live.last_headers["X-Wallboard-Duplicates"]) == ("0", "1")
    worker = {"EventType": "worker.activity.update", "Sid": "EVw1", "ResourceType": "worker",
              "Timestamp": str(int(t0 + 200)), "WorkerSid": "WKbob", "WorkerName": "bob",
              "WorkerActivityName": "On Call", "WorkerPreviousActivityName": "Available"}
    assert (await callback(live, worker))[0] == 204
    api = await live.get_json("/api/snapshot")
    for window in ("15m", "1h", "today"):
        kpis = api["queues"]["sales"][window]
        assert kpis["offered"] == 4, window
        assert kpis["answered"] == 2, window
        assert kpis["abandoned"] == 2, window
        assert kpis["asa_s"] == (10 + 20) / 2, window
        assert kpis["aht_s"] == (150 + 60) / 2, window
    assert api["queues"]["sales"]["live"]["waiting"] == 0
    assert api["agents"]["bob"]["state"] == "busy"


async def test_url_variants_shared_key_and_public_url(live_server) -> None:
    public = "https://wallboard.example.com/api/twilio/tw/events"
    live = await live_server(twilio_config(shared_keys={"k1": SHARED_KEY}))
    t = now()
    # Signed without the port of the URL requested: still valid.
    no_port = "http://127.0.0.1/api/twilio/tw/events"
    assert (await callback(live, task_event("task.created", "EV1", "WT1", t, 0),
                           signed_url=no_port))[0] == 204
    # The SHA-256 shared-key variant, named by the settings header.
    settings = {"X-Twilio-Webhooks-Signature-Settings": "key=k1,algorithm=HMAC_SHA256"}
    assert (await callback(live, task_event("task.created", "EV2", "WT2", t, 0),
                           key=SHARED_KEY, algorithm="sha256", headers=settings))[0] == 204
    # SHA-256 signed with the Auth Token, or SHA-1 with the shared-key header: refused.
    assert (await callback(live, task_event("task.created", "EV3", "WT3", t, 0),
                           algorithm="sha256", headers=settings))[0] == 403
    # Behind a proxy: Twilio signed the public URL, which differs from what the app sees.
    proxied = await live_server(twilio_config(public_url=public))
    assert (await callback(proxied, task_event("task.created", "EV4", "WT4", t, 0),
                           signed_url=public.replace(".com/", ".com:443/")))[0] == 204
    assert (await callback(proxied, task_event("task.created", "EV5", "WT5", t, 0)))[0] == 403


async def test_unknown_source_unmapped_event_and_bad_callback(live_server) -> None:
    live = await live_server(twilio_config())
    params = task_event("task.created", "EV1", "WT1", now(), 0)
    assert (await callback(live, params, source="nope"))[0] == 404
    assert (await callback(live, params, source="hook"))[0] == 404  # a webhook, not twilio
    ignored = {"EventType": "workflow.updated", "Sid": "EV2", "Timestamp": str(int(now()))}
    assert (await callback(live, ignored))[0] == 204
    status, body = await callback(live, {**params, "Sid": "EV3", "TaskAge": "soon"})
    assert status == 400 and "TaskAge" in body
    status, body = await callback(live, {**params, "Sid": "EV4", "TaskQueueName": "",
                                         "TaskQueueSid": ""})
    assert status == 400 and "queue" in body
    _, text = await live.get_text("/metrics")
    counts = rejected_by_reason(text)
    assert counts["unauthorized"] == 2 and counts["bad_value"] == 1
    assert counts["missing_field"] == 1


async def test_body_that_is_not_a_form_is_400_and_counted(live_server) -> None:
    live = await live_server(twilio_config())
    async with live.session.post(f"{live.url}/api/twilio/tw/events", data=b"\xff\xfe=\x00",
                                 headers={"X-Twilio-Signature": "x"}) as resp:
        assert resp.status == 400 and "form-encoded" in await resp.text()
    _, text = await live.get_text("/metrics")
    assert rejected_by_reason(text)["malformed"] == 1


async def test_journal_down_answers_503_and_the_retry_counts_once(
        live_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal_sqlite, "BUSY_TIMEOUT_MS", 200)
    live = await live_server(twilio_config(journal={"data_dir": str(tmp_path / "data"),
                                                    "retry_s": 0.2}))
    t0 = now() - 100
    for params in (task_event("task.created", "EV1", "WT1", t0, 0),
                   task_event("reservation.accepted", "EV2", "WT1", t0 + 5, 5,
                              WorkerName="alice")):
        assert (await callback(live, params))[0] == 204
    second = task_event("task.completed", "EV3", "WT1", t0 + 50, 50)
    holder = sqlite3.connect(tmp_path / "data" / DB_NAME, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        async with live.session.post(f"{live.url}/api/twilio/tw/events", data=second, headers={
                "X-Twilio-Signature": compute(AUTH_TOKEN, f"{live.url}/api/twilio/tw/events",
                                              second.items())}) as resp:
            assert resp.status == 503 and "Retry-After" in resp.headers
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    deadline = time.monotonic() + 10
    while (await live.get_json("/api/snapshot"))["meta"]["journal"] != "up":
        assert time.monotonic() < deadline, "the journal did not recover"
        await asyncio.sleep(0.05)
    assert (await callback(live, second))[0] == 204
    assert (await callback(live, second))[0] == 204
    today = (await live.get_json("/api/snapshot"))["queues"]["sales"]["today"]
    # The refused completion left the task's memory alone: its retry still knows the talk time.
    assert (today["offered"], today["answered"], today["aht_s"]) == (1, 1, 45.0)


async def test_forwarded_headers_are_used_only_when_trusted(live_server) -> None:
    public = "https://board.example.org/api/twilio/tw/events"
    proxy = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "board.example.org"}
    trusting = await live_server(twilio_config(trust_forwarded=True))
    params = task_event("task.created", "EV1", "WT1", now(), 0)
    assert (await callback(trusting, params, signed_url=public, headers=proxy))[0] == 204
    untrusting = await live_server(twilio_config())
    assert (await callback(untrusting, params, signed_url=public, headers=proxy))[0] == 403


async def test_reconciliation_sets_the_queue_from_taskqueue_statistics(
        live_server, replay_peer) -> None:
    account, workspace, task_queue = "AC" + "1" * 32, "WS" + "2" * 32, "WQ" + "3" * 32
    async with replay_peer(HttpReplay(STATISTICS)) as peer:
        live = await live_server(twilio_config(
            activities={"On Call": "busy", "Lunch": "away"},
            reconcile={"account_sid": account, "workspace_sid": workspace,
                       "task_queues": {task_queue: "sales"}, "api_url": peer.url}))
        deadline = time.monotonic() + 10
        while (await live.get_json("/api/snapshot"))["queues"]["sales"]["live"]["waiting"] != 4:
            assert time.monotonic() < deadline, "no queue.snapshot from the statistics"
            await asyncio.sleep(0.05)
        head = peer.requests[0].decode()
    assert head.startswith(f"GET /v1/Workspaces/{workspace}/TaskQueues/{task_queue}/"
                           "RealTimeStatistics ")
    login = base64.b64encode(f"{account}:{AUTH_TOKEN}".encode()).decode()
    assert f"authorization: basic {login}".lower() in head.lower()
    live_values = (await live.get_json("/api/snapshot"))["queues"]["sales"]["live"]
    assert live_values["oldest_wait_s"] >= 47
    assert (live_values["agents_available"], live_values["agents_busy"],
            live_values["agents_away"], live_values["agents_offline"]) == (2, 5, 1, 1)
