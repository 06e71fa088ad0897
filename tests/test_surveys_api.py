"""SurveyMonkey and Qualtrics: the callback triggers an API read from a local peer."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest

from tests.survey_peer import QUALTRICS_TOKEN, SM_TOKEN, SurveyApiPeer, load
from tests.test_surveys_live import config, post, rejections

SM_KEY, SM_SECRET = "sm-client-id", "sm-client-secret"
PATH_TOKEN = "Qx7rT2pLm9Wv4ZkN8sYb3HcJ"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def sm_callback(event_type: str, event_id: str, response_id: str = "5007154402") -> bytes:
    payload = load("surveymonkey_callback.json")
    payload.update(event_type=event_type, event_id=event_id, object_id=response_id)
    return orjson.dumps(payload)


def sm_headers(body: bytes) -> dict[str, str]:
    key = f"{SM_KEY}&{SM_SECRET}".encode()
    signature = base64.b64encode(hmac.new(key, body, hashlib.sha1).digest()).decode()
    return {"Sm-Signature": signature, "Sm-Apikey": SM_KEY, "Content-Type": "application/json"}


@pytest.fixture
async def peer() -> AsyncIterator[SurveyApiPeer]:
    server = SurveyApiPeer()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def live(live_server: Any, peer: SurveyApiPeer) -> Any:
    return await live_server(config(
        sm={"type": "surveymonkey", "api_key": SM_KEY, "api_secret": SM_SECRET,
            "access_token": SM_TOKEN, "api_url": peer.url,
            "surveys": {"105724755": {"questions": {"319352786": {"kind": "csat"}},
                                      "fields": {"queue": "queue", "agent": "agent",
                                                 "contact_id": "ticket"}}}},
        qx={"type": "qualtrics", "path_token": PATH_TOKEN, "api_url": peer.url,
            "api_token": QUALTRICS_TOKEN,
            "surveys": {"SV_abc": {"questions": {"QID1": {"kind": "ces"}},
                                   "fields": {"queue": "queue", "agent": "agent"}}}}))


async def wait_up(live: Any, name: str) -> None:
    for _ in range(100):
        snap = await live.get_json("/api/snapshot")
        if snap["sources"][name]["status"] == "up":
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} never came up: {snap['sources'][name]}")


async def test_surveymonkey_completed_then_updated_response(live: Any,
                                                            peer: SurveyApiPeer) -> None:
    await wait_up(live, "sm")  # the survey's choices were read at start
    assert peer.requests == ["/v3/surveys/105724755/details"]
    now = time.time()
    peer.sm_response("5007154402", "3057839054", iso(now - 60))  # "Satisfied", position 4
    body = sm_callback("response_completed", "ev-1")
    status, reply = await post(live, "/api/surveys/sm", body, sm_headers(body))
    assert (status, reply) == (202, {"accepted": 1, "duplicates": 0, "late": 0, "failed": 0})
    support = (await live.get_json("/api/snapshot"))["queues"]["support"]["today"]
    assert (support["csat"], support["csat_n"]) == (1.0, 1)  # 4 on 1–5: satisfied
    # SurveyMonkey re-sends the same event: fetched again, the same revision, counted once.
    assert (await post(live, "/api/surveys/sm", body, sm_headers(body)))[1] == \
        {"accepted": 0, "duplicates": 1, "late": 0, "failed": 0}
    peer.sm_response("5007154402", "3057839052", iso(now))  # edited to "Dissatisfied"
    update = sm_callback("response_updated", "ev-2")
    assert (await post(live, "/api/surveys/sm", update, sm_headers(update)))[1] == \
        {"accepted": 1, "duplicates": 0, "late": 0, "failed": 0}
    support = (await live.get_json("/api/snapshot"))["queues"]["support"]["today"]
    assert (support["csat"], support["csat_n"]) == (0.0, 1)
    # The survey's details were read once at start and are cached since.
    assert peer.requests.count("/v3/surveys/105724755/details") == 1


async def test_surveymonkey_other_events_tampering_and_api_failures(live: Any,
                                                                   peer: SurveyApiPeer) -> None:
    await wait_up(live, "sm")
    created = sm_callback("response_created", "ev-0")
    assert (await post(live, "/api/surveys/sm", created, sm_headers(created)))[1] == \
        {"accepted": 0, "duplicates": 0, "late": 0, "failed": 0}
    body = sm_callback("response_completed", "ev-1", "999")
    tampered = body.replace(b"999", b"998")
    fetched = len(peer.requests)
    assert (await post(live, "/api/surveys/sm", tampered, sm_headers(body)))[0] == 403
    assert len(peer.requests) == fetched  # nothing fetched for an unauthenticated callback
    status, reply = await post(live, "/api/surveys/sm", body, sm_headers(body))
    assert (status, reply["reason"]) == (502, "upstream")  # the peer has no response 999
    peer.fail_with = 500
    peer.sm_response("999", "3057839054", iso(time.time()))
    assert (await post(live, "/api/surveys/sm", body, sm_headers(body)))[0] == 502
    peer.fail_with = None
    assert (await post(live, "/api/surveys/sm", body, sm_headers(body)))[0] == 202  # retried
    _, metrics = await live.get_text("/metrics")
    counts = rejections(metrics)
    assert (counts[("sm", "bad_signature")], counts[("sm", "upstream")]) == (1, 2)


async def test_qualtrics_trigger_on_a_secret_path_reads_the_response(
        live: Any, peer: SurveyApiPeer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="wallboard.kit.http")
    now = time.time()
    peer.qualtrics_response("R_1", 2, iso(now).replace("+00:00", "Z"))
    form = urlencode({"Topic": "SV_abc.completedResponse.SV_abc", "Status": "Complete",
                      "SurveyID": "SV_abc", "ResponseID": "R_1", "BrandID": "acme",
                      "CompletedDate": iso(now)}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    assert (await post(live, "/api/surveys/qx", form, headers))[0] == 401
    assert (await post(live, "/api/surveys/qx/" + "x" * 24, form, headers))[0] == 403
    logged = " ".join(r.getMessage() for r in caplog.records if r.name == "wallboard.kit.http")
    assert "/api/surveys/{source}/{token}" in logged and "x" * 24 not in logged
    status, reply = await post(live, f"/api/surveys/qx/{PATH_TOKEN}", form, headers)
    assert (status, reply) == (202, {"accepted": 1, "duplicates": 0, "late": 0, "failed": 0})
    support = (await live.get_json("/api/snapshot"))["queues"]["support"]["today"]
    assert (support["ces"], support["ces_n"]) == (2.0, 1)
    assert peer.requests[-1] == "/API/v3/surveys/SV_abc/responses/R_1"
    _, metrics = await live.get_text("/metrics")
    counts = rejections(metrics)
    assert (counts[("qx", "missing_signature")], counts[("qx", "bad_signature")]) == (1, 1)


async def test_surveymonkey_deleted_response_leaves_the_board(live: Any,
                                                              peer: SurveyApiPeer) -> None:
    await wait_up(live, "sm")
    now = time.time()
    peer.sm_response("5007154402", "3057839055", iso(now - 60))
    body = sm_callback("response_completed", "ev-1")
    assert (await post(live, "/api/surveys/sm", body, sm_headers(body)))[0] == 202
    support = (await live.get_json("/api/snapshot"))["queues"]["support"]["today"]
    assert (support["csat"], support["csat_n"]) == (1.0, 1)
    deleted = load("surveymonkey_callback.json")
    deleted.update(event_type="response_deleted", event_id="ev-9", event_datetime=iso(now))
    body = orjson.dumps(deleted)
    fetched = len(peer.requests)
    status, reply = await post(live, "/api/surveys/sm", body, sm_headers(body))
    # One mapped question.
    assert (status, reply) == (202, {"accepted": 1, "duplicates": 0, "late": 0, "failed": 0})
    assert len(peer.requests) == fetched  # a deleted response cannot be fetched: not tried
    support = (await live.get_json("/api/snapshot"))["queues"]["support"]["today"]
    assert (support["csat"], support["csat_n"]) == (None, 0)
