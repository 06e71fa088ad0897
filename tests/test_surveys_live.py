"""Survey webhooks against a real server: KPIs moved exactly, replays, revisions, refusals."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import TOKEN, Live, base_config
from tests.survey_peer import load
from wallboard.config.settings import parse_settings
from wallboard.server.app import create_app

TF_SECRET = "typeform-secret-value"
DL_KEY = "delighted-api-key-1"
QP_TOKEN = "questionpro-header-token-0123456789"


def config(**sources: Any) -> dict[str, Any]:
    """Two queues, the webhook source, and the given survey sources; CSAT shown from n = 1."""
    cfg = base_config()
    cfg["site"]["min_survey_sample"] = 1
    cfg["queues"]["support"] = {"label": "Support", "channel": "email"}
    cfg["sources"].update(sources)
    return cfg


TYPEFORM = {"type": "typeform", "secret": TF_SECRET, "max_body_bytes": 4096,
            "surveys": {"lT4Z3j": {"questions": {"csat": {"kind": "csat"}},
                                   "fields": {"queue": "queue", "agent": "agent",
                                              "contact_id": "ticket_id"}}}}
DELIGHTED = {"type": "delighted", "api_key": DL_KEY,
             "surveys": {"nps": {"questions": {"score": {"kind": "nps"}},
                                 "fields": {"queue": "queue", "agent": "agent"}}}}
QUESTIONPRO = {"type": "questionpro", "token": QP_TOKEN,
               "surveys": {"7654321": {"questions": {"12345678": {"kind": "nps"}},
                                       "fields": {"queue": "custom1", "agent": "custom2"}}}}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def typeform_body(score: float, submitted: float, token: str = "tok-1") -> bytes:
    """The recorded form_response with a rating, a submit time and a response token."""
    payload = load("typeform_form_response.json")
    form = payload["form_response"]
    form["answers"][0]["number"] = score
    form["submitted_at"] = iso(submitted)
    form["token"] = token
    return orjson.dumps(payload)


def typeform_signature(body: bytes, secret: str = TF_SECRET) -> str:
    # Independent of the plugin: the appendix's formula written out.
    return "sha256=" + base64.b64encode(hmac.new(secret.encode(), body,
                                                 hashlib.sha256).digest()).decode()


def delighted_body(score: int, updated: float) -> bytes:
    payload = load("delighted_response_updated.json")
    payload["event_data"]["score"] = score
    payload["event_data"]["updated_at"] = int(updated)
    payload["event_data"]["created_at"] = int(updated) - 100
    return orjson.dumps(payload)


def delighted_signature(body: bytes) -> str:
    return "sha256=" + hmac.new(DL_KEY.encode(), body, hashlib.sha256).hexdigest()


async def post(live: Any, path: str, body: bytes | Any, headers: dict[str, str]) -> tuple[int, Any]:
    async with live.session.post(f"{live.url}{path}", data=body, headers=headers) as resp:
        text = await resp.text()
        return resp.status, (orjson.loads(text) if text else None)


def rejections(metrics: str) -> dict[tuple[str, str], float]:
    return {(s.labels["source"], s.labels["reason"]): s.value
            for f in text_string_to_metric_families(metrics) for s in f.samples
            if s.name == "wallboard_source_requests_rejected_total"}


def wilson(good: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    p = good / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@pytest.fixture
async def live(live_server: Any) -> AsyncIterator[Any]:
    yield await live_server(config(tf=TYPEFORM, dl=DELIGHTED, qp=QUESTIONPRO))


async def test_a_typeform_rating_of_4_moves_its_queues_csat_exactly(live: Any) -> None:
    now = time.time()
    # Three earlier sales responses through the plain webhook: 5 (satisfied), 2, 3.
    status, _ = await live.post(
        [{"type": "survey.response", "id": f"w{i}", "ts": now - 60, "queue": "sales",
          "kind": "csat", "score": s} for i, s in enumerate((5, 2, 3))]
        + [{"type": "agent.state", "id": "a1", "ts": now - 120, "agent": "alice",
            "state": "available", "queues": ["sales"]}])
    assert status == 202
    before = (await live.get_json("/api/snapshot"))["queues"]
    assert (before["sales"]["today"]["csat"], before["sales"]["today"]["csat_n"]) == \
        (round(1 / 3, 6), 3)
    body = typeform_body(4, now)
    status, reply = await post(live, "/api/surveys/tf", body,
                               {"Typeform-Signature": typeform_signature(body)})
    assert (status, reply) == (202, {"accepted": 1, "duplicates": 0, "late": 0, "failed": 0})
    snap = await live.get_json("/api/snapshot")
    sales = snap["queues"]["sales"]["today"]
    # By hand: 4 is in the top two boxes of 1–5, so 2 satisfied of 4.
    low, high = wilson(2, 4)
    assert (sales["csat"], sales["csat_n"]) == (0.5, 4)
    assert (sales["csat_low"], sales["csat_high"]) == (round(low, 6), round(high, 6))
    assert snap["queues"]["support"]["today"]["csat_n"] == 0
    assert snap["agents"]["alice"]["today"]["csat"] == 1.0  # the hidden agent field
    # The same delivery again (Typeform retries until it gets a 2xx): counted once.
    status, reply = await post(live, "/api/surveys/tf", body,
                               {"Typeform-Signature": typeform_signature(body)})
    assert (status, reply) == (202, {"accepted": 0, "duplicates": 1, "late": 0, "failed": 0})
    assert (await live.get_json("/api/snapshot"))["queues"]["sales"]["today"]["csat_n"] == 4


async def test_delighted_replay_counts_once_and_an_update_replaces_the_score(live: Any) -> None:
    now = time.time()
    first = delighted_body(9, now - 30)
    headers = {"X-Delighted-Webhook-Signature": delighted_signature(first)}
    assert (await post(live, "/api/surveys/dl", first, headers))[1] == \
        {"accepted": 1, "duplicates": 0, "late": 0, "failed": 0}
    assert (await post(live, "/api/surveys/dl", first, headers))[1] == \
        {"accepted": 0, "duplicates": 1, "late": 0, "failed": 0}
    today = (await live.get_json("/api/snapshot"))["queues"]["sales"]["today"]
    assert (today["nps"], today["nps_n"]) == (100.0, 1)
    update = delighted_body(3, now)  # the customer lowered the score: a detractor now
    status, reply = await post(live, "/api/surveys/dl", update,
                               {"X-Delighted-Webhook-Signature": delighted_signature(update)})
    assert (status, reply) == (202, {"accepted": 1, "duplicates": 0, "late": 0, "failed": 0})
    today = (await live.get_json("/api/snapshot"))["queues"]["sales"]["today"]
    assert (today["nps"], today["nps_n"]) == (-100.0, 1)
    # The old revision delivered late changes nothing: the newer one stands.
    await post(live, "/api/surveys/dl", first, headers)
    today = (await live.get_json("/api/snapshot"))["queues"]["sales"]["today"]
    assert (today["nps"], today["nps_n"]) == (-100.0, 1)


async def test_questionpro_with_its_header_token(live: Any) -> None:
    payload = load("questionpro_response.json")
    stamp = datetime.now(UTC).strftime("%d %b, %Y %I:%M:%S %p") + " GMT"
    payload["response"]["timestamp"] = stamp
    body = orjson.dumps(payload)
    assert (await post(live, "/api/surveys/qp", body, {}))[0] == 401
    status, reply = await post(live, "/api/surveys/qp", body, {"X-Wallboard-Token": QP_TOKEN})
    assert (status, reply) == (202, {"accepted": 1, "duplicates": 0, "late": 0, "failed": 0})
    support = (await live.get_json("/api/snapshot"))["queues"]["support"]["today"]
    assert (support["nps"], support["nps_n"]) == (100.0, 1)  # 9 of 0–10: a promoter


async def test_each_refusal_has_its_status_and_reason_is_counted_and_logged_once(
        live: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="wallboard.kit.http")
    now = time.time()
    body = typeform_body(4, now)
    good = typeform_signature(body)
    tampered = body.replace(b'"number":4', b'"number":5')
    unknown_form = body.replace(b"lT4Z3j", b"zzzzzz")
    off_scale = typeform_body(9, now)
    assert tampered != body and unknown_form != body

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"x" * 1024  # no Content-Length: the limit is enforced while reading

    cases = [
        (b"y" * 5000, {"Typeform-Signature": good}, 413, "too_large"),
        (chunks(), {"Typeform-Signature": good}, 413, "too_large"),
        (body, {}, 401, "missing_signature"),
        (tampered, {"Typeform-Signature": good}, 403, "bad_signature"),
        (body, {"Typeform-Signature": typeform_signature(body, "wrong-secret")}, 403,
         "bad_signature"),
        (unknown_form, {"Typeform-Signature": typeform_signature(unknown_form)}, 422,
         "unmapped"),
        (off_scale, {"Typeform-Signature": typeform_signature(off_scale)}, 422, "unmapped"),
        (b"{not json", {"Typeform-Signature": typeform_signature(b"{not json")}, 422,
         "malformed"),
    ]
    for data, headers, status, reason in cases:
        caplog.clear()
        got, reply = await post(live, "/api/surveys/tf", data, headers)
        assert (got, reply["reason"]) == (status, reason), reply
        assert reply["error"]
        records = [r for r in caplog.records if r.name == "wallboard.kit.http"]
        assert len(records) == 1, [r.getMessage() for r in records]
        assert reason in records[0].getMessage()
        assert TF_SECRET not in records[0].getMessage()
        assert good.removeprefix("sha256=") not in records[0].getMessage()
    _, metrics = await live.get_text("/metrics")
    assert rejections(metrics) == {("tf", "too_large"): 2, ("tf", "missing_signature"): 1,
                                   ("tf", "bad_signature"): 2, ("tf", "unmapped"): 2,
                                   ("tf", "malformed"): 1}
    # Nothing refused was counted; the server still takes a good request.
    assert (await live.get_json("/api/snapshot"))["total"]["today"]["csat_n"] == 0
    assert (await post(live, "/api/surveys/tf", body, {"Typeform-Signature": good}))[0] == 202


async def test_unknown_source_and_head_check(live: Any) -> None:
    assert (await post(live, "/api/surveys/nope", b"{}", {}))[0] == 404
    assert (await post(live, "/api/surveys/hook", b"{}", {}))[0] == 404  # not a survey source
    async with live.session.head(f"{live.url}/api/surveys/tf") as resp:
        assert resp.status == 200
    async with live.session.head(f"{live.url}/api/surveys/nope") as resp:
        assert resp.status == 404
    status, _ = await live.post({"type": "survey.response", "id": "x", "ts": time.time(),
                                 "queue": "sales", "kind": "csat", "score": 5}, token=TOKEN)
    assert status == 202  # the plain webhook route is untouched


async def test_a_restart_rebuilds_revised_scores_from_the_journal(tmp_path: Any) -> None:
    """Folded back at start, the stored revisions give the numbers shown before the restart."""
    cfg = config(dl=DELIGHTED)
    cfg["journal"] = {"data_dir": str(tmp_path / "journal")}
    now = time.time()
    bodies = [delighted_body(9, now - 30), delighted_body(3, now - 20)]
    shown = []
    for run in range(2):
        server = TestServer(create_app(parse_settings(cfg, "<test>")), host="127.0.0.1",
                            port=0)
        await server.start_server()
        session = ClientSession()
        live = Live(server, session)
        try:
            if run == 0:
                for body in bodies:
                    status, _ = await post(live, "/api/surveys/dl", body, {
                        "X-Delighted-Webhook-Signature": delighted_signature(body)})
                    assert status == 202
            else:  # the first revision re-delivered after the restart is still a duplicate
                status, reply = await post(live, "/api/surveys/dl", bodies[0], {
                    "X-Delighted-Webhook-Signature": delighted_signature(bodies[0])})
                assert (status, reply) == (202, {"accepted": 0, "duplicates": 1, "late": 0,
                                                 "failed": 0})
            today = (await live.get_json("/api/snapshot"))["queues"]["sales"]["today"]
            shown.append((today["nps"], today["nps_n"]))
        finally:
            await session.close()
            await server.close()
    assert shown == [(-100.0, 1), (-100.0, 1)]
