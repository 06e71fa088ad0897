"""The twilio_taskrouter source: its config, and the route TaskRouter posts callbacks to."""

from __future__ import annotations

import base64
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import parse_qsl

from aiohttp import web
from pydantic import Field, Secret

from wallboard.kit import (
    INGEST,
    Emit,
    PushSource,
    RateLimitConfig,
    SignatureError,
    count,
    json_error,
    signature_reason,
)
from wallboard.model import AgentState, EventError

from .mapping import Mapper, MappingError
from .reconcile import ReconcileConfig, statistics_url, to_snapshot
from .signature import SETTINGS_HEADER, SIGNATURE_HEADER, choose_key, validate

ROUTE = "/api/twilio/{source}/events"


class TwilioTaskRouterConfig(RateLimitConfig):
    """The Auth Token that signs callbacks, and how TaskRouter names map to the board's."""

    auth_token: Secret[Annotated[str, Field(min_length=16)]]
    # Key id -> HMAC-SHA256 secret.
    shared_keys: dict[str, Secret[str]] = Field(default_factory=dict)
    public_url: str | None = Field(None, pattern=r"^https?://[^/\s]+/\S*$")
    trust_forwarded: bool = False  # rebuild the URL from X-Forwarded-Proto / X-Forwarded-Host
    queues: dict[str, str] = Field(default_factory=dict)  # TaskQueueSid or name -> queue
    activities: dict[str, AgentState] = Field(default_factory=dict)  # activity name -> state
    unknown_activity: AgentState = "away"
    queued_on: Literal["task.created", "task-queue.entered"] = "task.created"
    reconcile: ReconcileConfig | None = None  # periodic TaskQueue statistics, optional


class TwilioTaskRouterSource(PushSource[TwilioTaskRouterConfig]):
    """TaskRouter event callbacks posted to the server; up for as long as the server runs."""

    type: ClassVar[str] = "twilio_taskrouter"

    def __init__(self, name: str, config: TwilioTaskRouterConfig) -> None:
        super().__init__(name, config)
        self.mapper = Mapper(config.queues, config.activities, config.unknown_activity,
                             config.queued_on)

    async def run(self, emit: Emit) -> None:
        """Report up and wait for callbacks; with `reconcile`, emit queue snapshots meanwhile."""
        config = self.config
        if config.reconcile is None:
            await self.serve_requests()
            return
        while True:
            for event in await self.reconcile():
                emit(event)
            self.connected()
            await self.clock.sleep(config.reconcile.interval_s)

    async def reconcile(self) -> list[dict[str, Any]]:
        """One queue.snapshot per configured TaskQueue, from its real-time statistics."""
        config = self.config
        assert config.reconcile is not None
        login = f"{config.reconcile.account_sid}:{config.auth_token.get_secret_value()}".encode()
        headers = {"Authorization": "Basic " + base64.b64encode(login).decode()}
        events = []
        for task_queue, queue in config.reconcile.task_queues.items():
            payload = await self.get_json(statistics_url(config.reconcile, task_queue),
                                          headers=headers)
            events.append(to_snapshot(queue, payload, self.mapper.activities,
                                      config.unknown_activity, self.clock.time()))
        return events


def request_urls(request: web.Request, config: TwilioTaskRouterConfig) -> list[str]:
    """The URLs Twilio may have signed: the configured public one, else the one requested."""
    if config.public_url is not None:
        return [config.public_url]
    url = str(request.url)
    if config.trust_forwarded:
        proto = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
        host = request.headers.get("X-Forwarded-Host", request.host).split(",")[0].strip()
        url = f"{proto}://{host}{request.path_qs}"
    return [url]


async def post_callback(request: web.Request) -> web.Response:
    """Validate, map and store one callback; 204 once it is durable in the journal.

    403 for a bad signature, 400 for a callback that cannot be mapped, 503 with Retry-After
    when the journal cannot store it (TaskRouter then sees a failure), all counted.
    """
    ingest = request.app[INGEST]
    found = ingest.find(request.match_info["source"], TwilioTaskRouterSource)
    if found is None:
        ingest.refused("unauthorized")
        return json_error(404, "no twilio_taskrouter source of that name")
    runner, source = found
    config = source.config
    body = await request.read()
    try:
        params = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError) as exc:
        ingest.refused("malformed")
        return json_error(400, f"request body is not form-encoded: {exc}")
    # Twilio signs the query string's parameters as part of the URL, the body's as parameters.
    try:
        shared = {key: value.get_secret_value() for key, value in config.shared_keys.items()}
        secret, algorithm = choose_key(config.auth_token.get_secret_value(), shared,
                                       request.headers.get(SETTINGS_HEADER))
        validate(secret, request_urls(request, config), params,
                 request.headers.get(SIGNATURE_HEADER), algorithm)
    except SignatureError as exc:
        ingest.refused(exc.reason)
        count(runner, signature_reason(exc.reason))  # per source
        return json_error(403, f"signature: {exc}")
    try:
        params_dict = dict(params)
        raw = source.mapper.map(params_dict)
    except MappingError as exc:
        ingest.refused(exc.code)
        return json_error(400, str(exc))
    if raw is None:  # an event type the board does not count
        source.mapper.remember(params_dict)
        runner.touch()
        return web.Response(status=204, content_type="application/json")
    try:
        events = ingest.all(runner, [raw])
    except EventError as exc:
        return json_error(400, f"{exc.field}: {exc.message}")
    stored = await ingest.store(runner, events)
    if stored.down is not None:
        return stored.retry_later()
    # Stored (counted or not): now the task memory may change (a retry maps the same way).
    if stored.ack.accepted or stored.ack.failed:
        source.mapper.remember(params_dict)
    # TaskRouter wants a 2xx and reads no body: what was stored goes in headers.
    return web.Response(status=204, content_type="application/json", headers=stored.headers())
