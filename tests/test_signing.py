"""Webhook signatures: HMAC over the raw body, constant-time compare, timestamp tolerance."""

from __future__ import annotations

import hashlib
import hmac
import time

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import TOKEN, base_config, now
from wallboard.kit.signing import SignatureError, sign, verify

SECRET = "a-webhook-secret-of-some-length"
BODY = b'{"type": "contact.queued"}'
T0 = 1_700_000_000.0


def reason(**kwargs: object) -> str:
    """The SignatureError reason verify() gives, or 'ok'."""
    args = {"secrets": SECRET, "body": BODY, "signature": None, "timestamp": str(int(T0)),
            "now": T0, **kwargs}
    try:
        verify(args.pop("secrets"), args.pop("body"), args.pop("signature"), **args)
    except SignatureError as exc:
        return exc.reason
    return "ok"


def test_signature_over_timestamp_and_raw_body_verifies_and_tampering_does_not() -> None:
    good = sign(SECRET, BODY, timestamp=str(int(T0)))
    # The documented scheme, computed independently: hex HMAC-SHA256 of "<timestamp>.<body>".
    by_hand = hmac.new(SECRET.encode(), str(int(T0)).encode() + b"." + BODY, hashlib.sha256)
    assert good == by_hand.hexdigest()
    assert reason(signature=good) == "ok"
    assert reason(signature=good.upper()) == "ok"  # hex case does not matter
    assert reason(signature=good, body=BODY + b" ") == "bad_signature"
    assert reason(signature=good, secrets="another-secret-entirely") == "bad_signature"
    assert reason(signature=good, timestamp=str(int(T0) + 1), now=T0 + 1) == "bad_signature"


def test_missing_stale_or_unreadable_timestamps_are_refused() -> None:
    good = sign(SECRET, BODY, timestamp=str(int(T0)))
    assert reason(signature=None) == "missing_signature"
    assert reason(signature=good, timestamp=None) == "missing_timestamp"
    assert reason(signature=good, now=T0 + 301) == "stale_timestamp"
    assert reason(signature=good, now=T0 - 301) == "stale_timestamp"  # from the future
    assert reason(signature=good, now=T0 + 299) == "ok"
    assert reason(signature=good, timestamp="yesterday") == "bad_timestamp"
    assert reason(signature=good, timestamp="nan") == "bad_timestamp"


def test_key_rotation_accepts_either_secret_and_a_prefix_is_stripped() -> None:
    old = sign("the-old-secret-value", BODY)
    assert reason(secrets=[SECRET, "the-old-secret-value"], signature=f"sha256={old}",
                  timestamp=None, tolerance_s=None, prefix="sha256=") == "ok"
    with pytest.raises(ValueError, match="unsupported algorithm"):
        verify(SECRET, BODY, old, tolerance_s=None, algorithm="md5")


def signed_config() -> dict:
    config = base_config()
    config["sources"]["hook"]["secret"] = SECRET
    return config


async def post_signed(live, body: bytes, timestamp: str | None, signature: str | None):
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    if timestamp is not None:
        headers["X-Wallboard-Timestamp"] = timestamp
    if signature is not None:
        headers["X-Wallboard-Signature"] = signature
    async with live.session.post(f"{live.url}/api/events", data=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_webhook_with_a_secret_accepts_signed_requests_and_counts_refusals(
        live_server) -> None:
    live = await live_server(signed_config())
    body = orjson.dumps({"type": "contact.queued", "id": "s1", "ts": now(), "queue": "sales",
                         "contact_id": "c1"})
    stamp = str(int(time.time()))
    status, reply = await post_signed(live, body, stamp, "sha256=" + sign(SECRET, body,
                                                                          timestamp=stamp))
    assert (status, reply["accepted"]) == (202, 1)
    status, reply = await post_signed(live, body, stamp, None)
    assert status == 401 and reply["error"] == "signature: the request is not signed"
    old = str(int(time.time()) - 3600)
    status, reply = await post_signed(live, body, old, "sha256=" + sign(SECRET, body,
                                                                        timestamp=old))
    assert status == 401 and "tolerance 300s" in reply["error"]
    _, text = await live.get_text("/metrics")
    rejected = {s.labels["reason"]: s.value for f in text_string_to_metric_families(text)
                for s in f.samples if s.name == "wallboard_events_rejected_total"}
    assert rejected["missing_signature"] == 1 and rejected["stale_timestamp"] == 1
    assert (await live.get_json("/api/snapshot"))["queues"]["sales"]["live"]["waiting"] == 1
