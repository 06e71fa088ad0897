"""amazon_connect against a real server: EventBridge events posted, KPIs, refusals, restarts."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.ami_frames import until
from tests.conftest import base_config
from tests.connect_peer import INSTANCE, KEY_ID, REGION, SECRET, ConnectPeer, metric, user
from tests.metrics_text import refused_by_source, rejected_by_reason
from tests.serverproc import midday_zone
from tests.test_amazon_connect import contact_event

SECRET_HEADER = "X-Wallboard-Key"
EVENTS_SECRET = "eventbridge-connection-key-0123"


def connect_config(journal: Path | None = None, **source: Any) -> dict[str, Any]:
    """The base config plus an amazon_connect source named `ac` taking EventBridge events."""
    config = base_config()
    config["site"]["timezone"] = midday_zone()  # about noon: 'today' cannot roll over
    config["sources"]["ac"] = {"type": "amazon_connect", "events_secret": EVENTS_SECRET,
                               "queues": {"q-sales": "sales"}, "agents": {"u-alice": "alice",
                                                                         "u-bob": "bob"},
                               **source}
    if journal is not None:
        config["journal"] = {"data_dir": str(journal)}
    return config


def iso(ts: float) -> str:
    """An RFC 3339 time as Connect writes it (milliseconds, Z)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{int(ts * 1000) % 1000:03d}Z"


def lifecycles(t0: float) -> list[dict[str, Any]]:
    """Three contacts in sales and one that never queued, in the order EventBridge sends them.

    A waits 10 s for alice and talks 120 s; B waits 20 s for bob and talks 60 s; C hangs up
    after 40 s in the queue; D leaves the IVR before any queue.
    """
    a = {"enqueued": iso(t0), "connected": iso(t0 + 10)}
    b = {"enqueued": iso(t0 + 5), "connected": iso(t0 + 25)}
    c = {"enqueued": iso(t0 + 8)}
    return [
        contact_event("INITIATED", "c-a", queue=None),
        contact_event("QUEUED", "c-a", **a),
        contact_event("INITIATED", "c-b", queue=None),
        contact_event("QUEUED", "c-b", **b),
        contact_event("QUEUED", "c-c", **c),
        contact_event("CONNECTED_TO_AGENT", "c-a", agent="u-alice", **a),
        contact_event("INITIATED", "c-d", queue=None),
        contact_event("CONNECTED_TO_AGENT", "c-b", agent="u-bob", **b),
        contact_event("DISCONNECTED", "c-d", queue=None, disconnected=iso(t0 + 30)),
        contact_event("DISCONNECTED", "c-c", disconnected=iso(t0 + 48), **c),
        contact_event("DISCONNECTED", "c-b", agent="u-bob", disconnected=iso(t0 + 85), **b),
        contact_event("DISCONNECTED", "c-a", agent="u-alice", disconnected=iso(t0 + 130), **a),
    ]


async def post(live: Any, event: Any, secret: str | None = EVENTS_SECRET,
               raw: bytes | None = None, source: str = "ac") -> tuple[int, Any]:
    """POST one event as an EventBridge API destination does; returns (status, JSON answer)."""
    headers = {} if secret is None else {SECRET_HEADER: secret}
    kwargs: dict[str, Any] = {"data": raw} if raw is not None else {"json": event}
    async with live.session.post(f"{live.url}/api/amazon-connect/{source}/events",
                                 headers=headers, **kwargs) as resp:
        return resp.status, await resp.json()


def windows(t0: float) -> tuple[str, ...]:
    """The windows that hold the lifecycles: 'today' too unless they straddle midnight."""
    same_day = (datetime.fromtimestamp(t0, UTC).date()
                == datetime.fromtimestamp(time.time(), UTC).date())
    return ("15m", "1h", "today") if same_day else ("15m", "1h")


def assert_kpis(api: dict[str, Any], t0: float) -> None:
    """The hand-computed KPIs of `lifecycles`."""
    for window in windows(t0):
        kpis = api["queues"]["sales"][window]
        assert (kpis["offered"], kpis["answered"], kpis["abandoned"]) == (3, 2, 1), window
        assert kpis["asa_s"] == (10 + 20) / 2, window
        assert kpis["aht_s"] == (120 + 60) / 2, window
    assert api["queues"]["sales"]["live"]["waiting"] == 0


async def test_full_lifecycles_give_hand_computed_kpis_and_a_redelivery_counts_once(
        live_server: Any) -> None:
    live = await live_server(connect_config())
    t0 = time.time() - 250
    answers = [await post(live, event) for event in lifecycles(t0)]
    assert all(status == 200 for status, _ in answers), answers
    # INITIATED, and a contact that never queued, are answered but not counted.
    assert [a["counted"] for _, a in answers] == [False, True, False, True, True, True, False,
                                                   True, False, True, True, True]
    assert answers[1][1]["accepted"] == 1
    status, again = await post(live, lifecycles(t0)[1])  # EventBridge delivers at least once
    assert status == 200 and (again["accepted"], again["duplicates"]) == (0, 1)
    assert_kpis(await live.get_json("/api/snapshot"), t0)


async def test_missing_or_wrong_secret_is_refused_counted_and_changes_nothing(
        live_server: Any) -> None:
    live = await live_server(connect_config())
    event = contact_event("QUEUED", "c-x", enqueued=iso(time.time() - 5))
    status, body = await post(live, event, secret=None)
    assert status == 401 and body["reason"] == "missing_signature"
    status, body = await post(live, event, secret="eventbridge-connection-key-0124")
    assert status == 403 and body["reason"] == "bad_signature"
    assert EVENTS_SECRET not in str(body)
    assert (await post(live, event, source="nope"))[0] == 404
    status, body = await post(live, None, raw=b"{not json")
    assert status == 422 and body["reason"] == "malformed"
    status, body = await post(live, {**event, "detail-type": "AWS API Call via CloudTrail"})
    assert status == 422 and "detail-type" in body["error"]
    _, text = await live.get_text("/metrics")
    assert refused_by_source(text, "ac") == {"missing_signature": 1, "bad_signature": 1,
                                             "malformed": 2}
    counts = rejected_by_reason(text)
    assert (counts["missing_signature"], counts["bad_signature"], counts["unauthorized"]) == (
        1, 1, 1)
    api = await live.get_json("/api/snapshot")
    assert api["queues"]["sales"]["today"]["offered"] == 0


async def test_a_restart_with_redelivered_events_does_not_double_count(
        live_server: Any, tmp_path: Path) -> None:
    t0 = time.time() - 250
    live = await live_server(connect_config(tmp_path / "journal"))
    for event in lifecycles(t0)[:7]:  # the server stops half-way through the day's calls
        assert (await post(live, event))[0] == 200
    await live.session.close()
    await live.server.close()
    live = await live_server(connect_config(tmp_path / "journal"))
    # EventBridge retries what it did not see answered, so some events come again.
    duplicates = 0
    for event in lifecycles(t0)[4:]:
        status, answer = await post(live, event)
        assert status == 200
        duplicates += answer.get("duplicates", 0)
    assert duplicates == 2  # c-c queued, c-a connected: stored before the restart
    assert_kpis(await live.get_json("/api/snapshot"), t0)


async def test_the_poll_sets_live_values_and_agent_states_on_the_board(live_server: Any) -> None:
    async with ConnectPeer() as peer:
        peer.metrics = {"q-sales": [metric("CONTACTS_IN_QUEUE", 4),
                                    metric("OLDEST_CONTACT_AGE", 63, "SECONDS"),
                                    metric("AGENTS_AVAILABLE", 1), metric("AGENTS_ON_CONTACT", 2),
                                    metric("AGENTS_AFTER_CONTACT_WORK", 1),
                                    metric("AGENTS_NON_PRODUCTIVE", 1)]}
        peer.users = [user("u-alice", "Available", ("CONNECTED",)), user("u-bob", "Lunch")]
        peer.page_size = 1
        live = await live_server(connect_config(
            aws={"region": REGION, "aws_access_key_id": KEY_ID, "aws_secret_access_key": SECRET},
            poll={"instance_id": INSTANCE, "endpoint_url": peer.url, "interval_s": 1}))
        api = await until(live, lambda api: api["queues"]["sales"]["live"]["waiting"] == 4
                          and "bob" in api["agents"], "the polled snapshot")
    values = api["queues"]["sales"]["live"]
    assert values["oldest_wait_s"] >= 63
    assert (values["agents_available"], values["agents_busy"], values["agents_wrapup"],
            values["agents_away"]) == (1, 2, 1, 1)
    assert api["agents"]["alice"]["state"] == "busy"
    assert api["agents"]["bob"]["state"] == "away"
    assert api["sources"]["ac"]["status"] == "up"


async def test_wrong_credentials_show_the_source_down_with_the_reason(live_server: Any) -> None:
    async with ConnectPeer() as peer:
        live = await live_server(connect_config(
            aws={"region": REGION, "aws_access_key_id": "AKIAEXAMPLEWRONG",
                 "aws_secret_access_key": SECRET},
            poll={"instance_id": INSTANCE, "endpoint_url": peer.url}))
        api = await until(live, lambda api: api["sources"]["ac"]["status"] == "down",
                          "the source down")
        # The route still takes contact events while the poll is refused.
        status, answer = await post(live, contact_event("QUEUED", "c-y",
                                                        enqueued=iso(time.time() - 5)))
    assert "AWS refused the credentials (UnrecognizedClientException" in \
        api["sources"]["ac"]["last_error"]
    assert SECRET not in api["sources"]["ac"]["last_error"]
    assert status == 200 and answer["accepted"] == 1


async def test_a_contact_moved_between_queues_while_waiting_leaves_the_first_as_a_transfer(
        live_server: Any) -> None:
    live = await live_server(connect_config(queues={"q-sales": "sales", "q-chat": "chat"}))
    t0 = time.time() - 200
    in_sales = {"enqueued": iso(t0)}
    in_chat = {"enqueued": iso(t0 + 30), "connected": iso(t0 + 40)}
    for event in [contact_event("QUEUED", "c-m", **in_sales),
                  contact_event("QUEUED", "c-m", queue="q-chat", **in_chat),
                  contact_event("QUEUED", "c-m", **in_sales),  # a late re-delivery
                  contact_event("CONNECTED_TO_AGENT", "c-m", queue="q-chat", agent="u-bob",
                                **in_chat),
                  contact_event("DISCONNECTED", "c-m", queue="q-chat", agent="u-bob",
                                disconnected=iso(t0 + 100), **in_chat)]:
        status, answer = await post(live, event)
        assert status == 200, answer
    api = await live.get_json("/api/snapshot")
    sales, chat = api["queues"]["sales"], api["queues"]["chat"]
    assert (sales["15m"]["offered"], sales["15m"]["transfers"], sales["15m"]["answered"],
            sales["15m"]["abandoned"], sales["live"]["waiting"]) == (1, 1, 0, 0, 0)
    assert (chat["15m"]["offered"], chat["15m"]["answered"], chat["15m"]["asa_s"],
            chat["15m"]["aht_s"], chat["live"]["waiting"]) == (1, 1, 10.0, 60.0, 0)
