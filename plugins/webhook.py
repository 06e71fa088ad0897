"""The `webhook` source: POST /api/events with a bearer token; JSON, JSON array or NDJSON.

With a `secret`, requests must also be signed: `X-Wallboard-Timestamp: <epoch seconds>` and
`X-Wallboard-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">`.
"""

from __future__ import annotations

import hmac
from typing import Any, ClassVar

import orjson
from aiohttp import web
from pydantic import Field

from wallboard import appkeys as keys
from wallboard import hookimpl, webhooks
from wallboard.events import EventError
from wallboard.journal import JournalDown
from wallboard.signing import SignatureError, verify
from wallboard.sources import Emit, PushSource, Source, SourceConfig, SourceRunner

SIGNATURE_HEADER, TIMESTAMP_HEADER = "X-Wallboard-Signature", "X-Wallboard-Timestamp"


class WebhookConfig(SourceConfig):
    """A webhook source is identified by its bearer token."""

    token: str = Field(min_length=8)
    secret: str | None = Field(None, min_length=16)  # set: requests must be signed
    tolerance_s: float = Field(300.0, gt=0, le=86_400)  # how old a signed request may be


class WebhookSource(PushSource):
    """Events pushed to us over HTTP; up for as long as the server runs."""

    type: ClassVar[str] = "webhook"
    Config: ClassVar[type[SourceConfig]] = WebhookConfig
    every_node: ClassVar[bool] = True  # requests reach any node behind the load balancer

    async def run(self, emit: Emit) -> None:
        """Nothing to connect to: report up and wait for requests."""
        await self.serve_requests()


def _find_runner(request: web.Request) -> SourceRunner | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    found = None
    for runner in request.app[keys.RUNNERS].values():
        config = runner.source.config
        # Compare against every source so timing does not reveal which token matched.
        if isinstance(config, WebhookConfig) and hmac.compare_digest(
                config.token.encode(), token.encode()):
            found = runner
    return found


def _decode(body: bytes) -> tuple[str, list[tuple[int, Any]]]:
    """Items with their 1-based 'line' (NDJSON) or 0-based 'index' (JSON); raises ValueError."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        items = []
        for number, line in enumerate(body.splitlines(), start=1):
            if line.strip():
                try:
                    items.append((number, orjson.loads(line)))
                except orjson.JSONDecodeError as exc:
                    raise ValueError(f"line {number}: not JSON: {exc}") from None
        if not items:
            raise ValueError("body is empty") from None
        return "line", items
    return "index", list(enumerate(data)) if isinstance(data, list) else [(0, data)]


async def post_events(request: web.Request) -> web.Response:
    """Accept one event, a JSON array of events, or NDJSON; say what was refused and why.

    202 only once the accepted events are durable in the journal; 503 with Retry-After (and
    nothing counted) when they cannot be stored, so that the sender retries.
    """
    pipeline = request.app[keys.PIPELINE]
    runner = _find_runner(request)
    if runner is None:
        pipeline.reject("unauthorized")
        return web.json_response({"error": "missing or wrong bearer token"}, status=401,
                                 headers={"WWW-Authenticate": 'Bearer realm="wallboard"'})
    body = await request.read()
    config = runner.source.config
    if isinstance(config, WebhookConfig) and config.secret is not None:
        try:
            verify(config.secret, body, request.headers.get(SIGNATURE_HEADER),
                   timestamp=request.headers.get(TIMESTAMP_HEADER),
                   tolerance_s=config.tolerance_s, prefix="sha256=")
        except SignatureError as exc:
            pipeline.reject(exc.reason)
            return web.json_response({"error": f"signature: {exc}"}, status=401)
    try:
        position, items = _decode(body)
    except ValueError as exc:
        pipeline.reject("malformed")
        return web.json_response({"error": f"request body: {exc}"}, status=400)
    events = []
    rejected = []
    for where, raw in items:
        try:
            event = pipeline.parse(raw, runner.name)
            pipeline.admit(event)
        except EventError as exc:
            rejected.append({position: where, "field": exc.field, "error": exc.message})
            continue
        runner.touch()
        events.append(event)
    try:
        accepted, duplicates = await pipeline.ingest_acknowledged(events)
    except JournalDown as exc:
        return webhooks.journal_down(exc)
    status = 400 if rejected else 202
    return web.json_response({"accepted": accepted, "duplicates": duplicates,
                              "rejected": rejected}, status=status)


@hookimpl
def register_source_types() -> list[type[Source]]:
    """The webhook source type."""
    return [WebhookSource]


@hookimpl
def register_routes() -> list[web.AbstractRouteDef]:
    """The ingest endpoint."""
    return [web.post("/api/events", post_events)]
