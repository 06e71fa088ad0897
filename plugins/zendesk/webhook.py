"""Zendesk webhooks: X-Zendesk-Webhook-Signature checked, the ticket mapped and ingested."""

from __future__ import annotations

import json
import time

from aiohttp import web

from wallboard import kit
from wallboard.kit import (
    INGEST,
    SignatureError,
    SourceRunner,
    count,
    json_error,
    parse_time,
    sign,
    signature_reason,
)
from wallboard.model import EventError

from .source import ZendeskSource

ROUTE = "/api/zendesk/{source}/webhook"
STATUS_ROUTE = "/api/zendesk/{source}/status"
SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"


def compute(secret: str, timestamp: str, body: bytes) -> str:
    """base64(HMAC-SHA256(secret, timestamp + raw body)), with no separator."""
    return sign(secret, timestamp.encode() + body, encoding="base64")


def verify(secret: str, body: bytes, signature: str | None, timestamp: str | None,
           tolerance_s: float | None, now: float) -> None:
    """Raise SignatureError unless the signature matches and the timestamp is recent enough."""
    if not signature:
        raise SignatureError("missing_signature", f"the request has no {SIGNATURE_HEADER}")
    if timestamp is None:
        raise SignatureError("missing_timestamp", f"the request has no {TIMESTAMP_HEADER}")
    if tolerance_s is not None:
        sent = parse_time(timestamp)
        if sent is None:
            raise SignatureError("bad_timestamp", f"timestamp {timestamp[:32]!r} is not ISO 8601")
        if abs(now - sent) > tolerance_s:
            raise SignatureError("stale_timestamp", f"timestamp is {abs(now - sent):.0f}s away "
                                                    f"from now (tolerance {tolerance_s:g}s)")
    # Zendesk signs timestamp + body with no separator: the kit's check, over that message.
    kit.verify(secret, timestamp.encode() + body, signature.strip(), tolerance_s=None,
                   encoding="base64")


def _source(request: web.Request) -> tuple[SourceRunner, ZendeskSource] | None:
    return request.app[INGEST].find(request.match_info["source"], ZendeskSource)


async def post_webhook(request: web.Request) -> web.Response:
    """One signed `{"ticket": {...}}` body: 204 once stored, 401 for a bad signature (counted)."""
    ingest = request.app[INGEST]
    found = _source(request)
    if found is None:
        ingest.refused("unauthorized")
        return json_error(404, "no zendesk source of that name")
    runner, source = found
    config = source.config
    if config.webhook_secret is None:
        ingest.refused("unauthorized")
        return json_error(404, "this zendesk source has no webhook_secret")
    body = await request.read()
    try:
        verify(config.webhook_secret.get_secret_value(), body,
               request.headers.get(SIGNATURE_HEADER), request.headers.get(TIMESTAMP_HEADER),
               config.webhook_tolerance_s, time.time())
    except SignatureError as exc:
        ingest.refused(exc.reason)
        count(runner, signature_reason(exc.reason))  # per source
        return json_error(401, f"signature: {exc}")
    try:
        payload = json.loads(body)
    except ValueError:
        ingest.refused("malformed")
        return json_error(400, "the body is not JSON")
    ticket = payload.get("ticket") if isinstance(payload, dict) else None
    raws = source.mapper.ticket(ticket)
    if not raws:
        ingest.refused("malformed")
        return json_error(400, "expected {\"ticket\": {\"id\", \"created_at\", ...}}")
    try:
        events = ingest.all(runner, raws)
    except EventError as exc:
        return json_error(400, f"{exc.field}: {exc.message}")
    stored = await ingest.store(runner, events)
    if stored.down is not None:
        return stored.retry_later()
    # Zendesk expects a 2xx and reads no body: what was stored goes in headers.
    return web.Response(status=204, content_type="application/json", headers=stored.headers())


async def get_status(request: web.Request) -> web.Response:
    """The export's lag and the saved cursors, for the board's note on the tile."""
    found = _source(request)
    if found is None:
        return json_error(404, "no zendesk source of that name")
    _, source = found
    return web.json_response({
        "lag_s": source.lag_s,
        "note": f"Zendesk exports lag by about {source.lag_s / 60:g} minute",
        "cursors": source.cursors or {}, "state_file": str(source.state_path)})
