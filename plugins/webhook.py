"""The `webhook` source: POST /api/events with a bearer token; JSON, JSON array or NDJSON.

With a `secret`, requests must also be signed: `X-Wallboard-Timestamp: <epoch seconds>` and
`X-Wallboard-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">`.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Annotated, Any, ClassVar

import orjson
from aiohttp import web
from pydantic import Field, Secret

from wallboard.kit import (
    INGEST,
    Emit,
    Ingest,
    PushSource,
    Rejection,
    SignatureError,
    Source,
    SourceConfig,
    SourceRunner,
    hookimpl,
    read_body,
    refuse,
    verify,
)

SIGNATURE_HEADER, TIMESTAMP_HEADER = "X-Wallboard-Signature", "X-Wallboard-Timestamp"


class WebhookConfig(SourceConfig):
    """A webhook source is identified by its bearer token."""

    token: Secret[Annotated[str, Field(min_length=8)]]
    # Set: requests must be signed.
    secret: Secret[Annotated[str, Field(min_length=16)]] | None = None
    tolerance_s: float = Field(300.0, gt=0, le=86_400)  # how old a signed request may be


class WebhookSource(PushSource[WebhookConfig]):
    """Events pushed to us over HTTP; up for as long as the server runs."""

    type: ClassVar[str] = "webhook"
    every_node: ClassVar[bool] = True  # requests reach any node behind the load balancer

    async def run(self, emit: Emit) -> None:
        """Nothing to connect to: report up and wait for requests."""
        await self.serve_requests()


def _find_source(request: web.Request,
                 ingest: Ingest) -> tuple[SourceRunner, WebhookSource] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    found = None
    for runner, source in ingest.runners(WebhookSource):
        # Compare against every source so timing does not reveal which token matched.
        if hmac.compare_digest(source.config.token.get_secret_value().encode(), token.encode()):
            found = runner, source
    return found


YIELD_EVERY = 2000  # items decoded or validated between two yields to the event loop


class TooManyEvents(ValueError):
    """The request holds more events than server.max_batch_events."""


def _count_lines(lines: list[bytes], limit: int) -> int:
    """NDJSON items (non-blank lines); TooManyEvents past `limit`, before decoding any."""
    count = len(lines) - lines.count(b"")
    if count > limit:  # exact only when it matters: lines of blanks are not items
        count = sum(map(bool, map(bytes.strip, lines)))
        if count > limit:
            raise TooManyEvents(f"{count} events in one request; server.max_batch_events "
                                f"allows {limit}")
    return count


async def _decode(body: bytes, limit: int) -> tuple[str, list[tuple[int, Any]]]:
    """Items with their 1-based 'line' (NDJSON) or 0-based 'index' (JSON).

    Raises TooManyEvents past `limit` items (counted before any is validated) and ValueError
    for a body that is neither JSON nor NDJSON.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        lines = body.splitlines()
        _count_lines(lines, limit)
        items = []
        for number, line in enumerate(lines, start=1):
            if number % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # a long body must not hold up boards and probes
            if line.strip():
                try:
                    items.append((number, orjson.loads(line)))
                except orjson.JSONDecodeError as exc:
                    raise ValueError(f"line {number}: not JSON: {exc}") from None
        if not items:
            raise ValueError("body is empty") from None
        return "line", items
    if not isinstance(data, list):
        return "index", [(0, data)]
    if len(data) > limit:
        raise TooManyEvents(f"{len(data)} events in one request; server.max_batch_events "
                            f"allows {limit}")
    return "index", list(enumerate(data))


async def post_events(request: web.Request) -> web.Response:
    """Accept one event, a JSON array of events, or NDJSON; say what became of each.

    202 once the new events are durable in the journal (also when some were refused: the
    answer lists them), 422 when none was valid, 400 for a body that is not JSON, 413 past
    server.max_body_bytes or server.max_batch_events, 503 with Retry-After (and nothing
    counted) when they cannot be stored, so that the sender retries. See docs/events.md.
    """
    ingest = request.app[INGEST]
    found = _find_source(request, ingest)
    if found is None:
        ingest.refused("unauthorized")
        return web.json_response({"error": "missing or wrong bearer token"}, status=401,
                                 headers={"WWW-Authenticate": 'Bearer realm="wallboard"'})
    runner, source = found
    try:
        body = await read_body(request, ingest.max_body_bytes)
    except Rejection as exc:
        return refuse(runner, request, Rejection(
            exc.reason, f"{exc} (server.max_body_bytes)"))
    config = source.config
    if config.secret is not None:
        try:
            verify(config.secret.get_secret_value(), body, request.headers.get(SIGNATURE_HEADER),
                   timestamp=request.headers.get(TIMESTAMP_HEADER),
                   tolerance_s=config.tolerance_s, prefix="sha256=")
        except SignatureError as exc:
            ingest.refused(exc.reason)
            return web.json_response({"error": f"signature: {exc}"}, status=401)
    try:
        position, items = await _decode(body, ingest.max_batch_events)
    except TooManyEvents as exc:
        ingest.refused("too_many_events")  # once per request: its events were not read
        return refuse(runner, request, Rejection("too_many_events", str(exc)))
    except ValueError as exc:
        ingest.refused("malformed")
        return web.json_response({"error": f"request body: {exc}"}, status=400)
    events, rejections = await ingest.each(runner, items, position)
    stored = await ingest.store(runner, events)
    if stored.down is not None:
        return stored.retry_later()
    # 422 only when nothing of a non-empty request could be taken: a partial batch is stored,
    # and a retry would not change what was refused.
    status = 422 if rejections.total and not events else 202
    return web.json_response({**stored.answer(), **rejections.answer()},
                             status=status)


@hookimpl
def register_source_types() -> list[type[Source[Any]]]:
    """The webhook source type."""
    return [WebhookSource]


@hookimpl
def register_routes() -> list[web.AbstractRouteDef]:
    """The ingest endpoint."""
    return [web.post("/api/events", post_events)]
