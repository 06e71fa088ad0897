"""The amazon_connect source: the real-time poll, the agent stream, and the EventBridge route."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

import orjson
from aiohttp import web
from botocore.exceptions import BotoCoreError

from wallboard.kit import (
    INGEST,
    Emit,
    PushSource,
    Rejection,
    SourceError,
    json_error,
    read_body,
    refuse,
)
from wallboard.model import EventError

from .agent_stream import AgentEventMapper, AgentStream
from .config import AmazonConnectConfig
from .mapping import Mapper, MappingError
from .realtime import (
    MAX_PAGES,
    Throttled,
    agent_states,
    call,
    make_client,
    metric_requests,
    queue_snapshots,
    user_requests,
)

ROUTE = "/api/amazon-connect/{source}/events"
THROTTLE_BASE_S = 1.0  # the first wait after a ThrottlingException, doubled each time after
THROTTLE_CAP_S = 60.0


T = TypeVar("T")


class AmazonConnectSource(PushSource[AmazonConnectConfig]):
    """Contact events posted by EventBridge; optionally the real-time poll and agent stream."""

    type: ClassVar[str] = "amazon_connect"

    def __init__(self, name: str, config: AmazonConnectConfig) -> None:
        super().__init__(name, config)
        self.mapper = Mapper(config.queues, config.agents)
        self.queue_ids = self.mapper.queues  # Connect queue id -> board queue
        self.statuses = {k.lower(): v for k, v in config.statuses.items()}
        # botocore's clients by service; typed Any, boto3 has no type information.
        self._clients: dict[str, Any] = {}
        self._throttles = 0
        self._agents: dict[str, tuple[str, str]] = {}  # last state the poll emitted per agent
        stream = config.agent_stream
        self.stream = None if stream is None else AgentStream(
            stream.stream_name, stream.start, AgentEventMapper(
                self.mapper.agents, self.queue_ids, self.statuses, config.unknown_status))
        if self.stream is not None:
            # One counter: the stream's skipped records reach wallboard_source_skipped_total.
            self.stream.mapper.skipped = self.skipped

    async def run(self, emit: Emit) -> None:
        """Without poll or stream, report up and wait for requests; else read them in turn."""
        poll, stream = self.config.poll, self.config.agent_stream
        if poll is None and stream is None:
            await self.serve_requests()
            return
        next_poll = self.clock.monotonic()
        while True:
            now = self.clock.monotonic()
            if poll is not None and now >= next_poll:
                for event in await self._guarded(self.snapshot):
                    emit(event)
                next_poll = now + poll.interval_s
            if self.stream is not None:
                for event in await self._guarded(self.stream_read):
                    emit(event)
            self._throttles = 0
            self.connected()
            wait = next_poll - self.clock.monotonic() if poll is not None else float("inf")
            await self.clock.sleep(max(0.0, min(wait, stream.interval_s if stream else wait)))

    async def stream_read(self) -> list[dict[str, Any]]:
        """The agent events added to the stream since the previous read."""
        assert self.stream is not None
        return await self.stream.read(await self.client("kinesis"))

    async def _guarded(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run `work`; a throttle becomes a SourceError that says how long to back off."""
        try:
            return await work()
        except Throttled as exc:
            raise self._back_off(exc) from None

    async def client(self, service: str) -> Any:
        """The botocore client of `service`, built once in a thread (loading its model is slow)."""
        aws = self.config.aws
        assert aws is not None
        if service not in self._clients:
            settings = self.config.poll if service == "connect" else self.config.agent_stream
            endpoint = settings.endpoint_url if settings is not None else None
            secret, token = aws.aws_secret_access_key, aws.aws_session_token
            try:
                self._clients[service] = await asyncio.to_thread(
                    make_client, service, aws.region, endpoint, aws.aws_access_key_id,
                    secret.get_secret_value() if secret else None,
                    token.get_secret_value() if token else None, aws.timeout_s)
            except (BotoCoreError, ValueError) as exc:
                raise SourceError(f"cannot make the {service} client: {exc}") from None
        return self._clients[service]

    async def pages(self, operation: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Every page of one request, following NextToken, each call within the rate limit."""
        client = await self.client("connect")
        pages: list[dict[str, Any]] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            request = params if token is None else {**params, "NextToken": token}
            if self.limiter is not None:
                await self.limiter.acquire()
            page = await asyncio.to_thread(call, client, operation, request)
            pages.append(page)
            next_token = page.get("NextToken")
            if not isinstance(next_token, str) or not next_token:
                return pages
            token = next_token
        raise SourceError(f"{operation}: more than {MAX_PAGES} pages; giving up this poll")

    def _back_off(self, exc: Throttled) -> SourceError:
        """Throttled: wait longer each time in a row (AWS sends no Retry-After)."""
        wait = min(THROTTLE_BASE_S * 2 ** self._throttles, THROTTLE_CAP_S)
        self._throttles += 1
        if self.limiter is not None:
            self.limiter.defer(wait)
        return SourceError(f"{exc}; backing off {wait:g}s", retry_after_s=wait)

    async def snapshot(self) -> list[dict[str, Any]]:
        """queue.snapshot per board queue, and agent.state for agents whose state changed."""
        poll = self.config.poll
        assert poll is not None
        ids = list(self.queue_ids)
        metric_pages = []
        for params in metric_requests(poll.instance_id, ids, list(poll.channels)):
            metric_pages += await self.pages("get_current_metric_data", params)
        now = self.clock.time()
        events = queue_snapshots(metric_pages, self.queue_ids, now)
        if poll.user_data:
            user_pages = []
            for params in user_requests(poll.instance_id, ids):
                user_pages += await self.pages("get_current_user_data", params)
            states = agent_states(user_pages, self.mapper.agents, self.statuses,
                                  self.config.unknown_status)
            events += self._changed_agents(states, now)
        return events

    def _changed_agents(self, states: dict[str, tuple[str, str]],
                        now: float) -> list[dict[str, Any]]:
        """agent.state for new or changed agents; offline for agents no longer listed."""
        # Only changes are emitted: a state stored every interval for every agent would fill
        # the journal with repeats. A restart starts from nothing, so it re-sends them all.
        gone = {agent: ("offline", "") for agent in self._agents if agent not in states}
        events = []
        for agent, (state, reason) in {**states, **gone}.items():
            if self._agents.get(agent) == (state, reason):
                continue
            event: dict[str, Any] = {"type": "agent.state", "ts": now, "agent": agent,
                                     "state": state}
            if state == "away" and reason:
                event["reason"] = reason[:128]
            events.append(event)
        self._agents = states
        return events


async def post_event(request: web.Request) -> web.Response:
    """One EventBridge event: 200 once stored (or not counted), 401/403 without the secret.

    Refusals are counted per source; 503 with Retry-After when the journal cannot store it, so
    that EventBridge retries (it retries 429 and 5xx answers, not 4xx).
    """
    ingest = request.app[INGEST]
    found = ingest.find(request.match_info["source"], AmazonConnectSource)
    if found is None or found[1].config.events_secret is None:
        ingest.refused("unauthorized")
        return json_error(404, "no amazon_connect source of that name takes events")
    runner, source = found
    config = source.config
    assert config.events_secret is not None
    given = request.headers.get(config.events_header)
    if not given:
        ingest.refused("missing_signature")
        return refuse(runner, request, Rejection(
            "missing_signature", f"the request has no {config.events_header} header"))
    expected = config.events_secret.get_secret_value().encode()
    if not hmac.compare_digest(given.encode(), expected):  # constant time: no secret by timing
        ingest.refused("bad_signature")
        return refuse(runner, request, Rejection(
            "bad_signature", f"the {config.events_header} header does not match"))
    try:
        body = await read_body(request, ingest.max_body_bytes)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise Rejection("malformed", "the body is not JSON") from None
        try:
            raws = source.mapper.map(payload)
        except MappingError as exc:
            raise Rejection("malformed", str(exc)[:300]) from None
    except Rejection as exc:
        ingest.refused(exc.reason)
        return refuse(runner, request, exc)
    if not raws:  # an event type or a contact leg the board does not count
        runner.touch()
        return web.json_response({"accepted": 0, "duplicates": 0, "late": 0, "failed": 0,
                                  "counted": False})
    try:
        events = ingest.all(runner, raws)  # refusals counted by the pipeline, by code
    except EventError as exc:
        return refuse(runner, request, Rejection("malformed", f"{exc.field}: {exc.message}"))
    stored = await ingest.store(runner, events)
    if stored.down is not None:
        return stored.retry_later()
    # Stored (or a duplicate): only now may the memory change, so a retry maps the same way.
    source.mapper.remember(payload)
    return web.json_response({**stored.answer(), "counted": True})

