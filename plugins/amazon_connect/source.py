"""The amazon_connect source: its config, the real-time poll, and the EventBridge route."""

from __future__ import annotations

import asyncio
import hmac
from typing import Annotated, Any, ClassVar, Literal

import orjson
from aiohttp import web
from botocore.exceptions import BotoCoreError
from pydantic import BaseModel, ConfigDict, Field, Secret, model_validator

from wallboard.kit import (
    INGEST,
    Emit,
    PushSource,
    RateLimitConfig,
    Rejection,
    SourceError,
    json_error,
    read_body,
    refuse,
)
from wallboard.model import AgentState, EventError

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
Channel = Literal["VOICE", "CHAT", "TASK", "EMAIL"]


class PollSettings(BaseModel):
    """Where the Connect instance is, how to sign requests to it, and how often to ask."""

    model_config = ConfigDict(extra="forbid")

    instance_id: str = Field(pattern=r"^[A-Za-z0-9-]{1,100}$")
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d+$")
    endpoint_url: str | None = Field(None, pattern=r"^https?://\S+$")
    # Without keys, boto3's default chain (environment, profile, instance role) is used.
    aws_access_key_id: str | None = Field(None, min_length=1, max_length=128)
    aws_secret_access_key: Secret[str] | None = None
    aws_session_token: Secret[str] | None = None
    interval_s: float = Field(15.0, ge=1)
    channels: list[Channel] = Field(default_factory=list)
    user_data: bool = True  # GetCurrentUserData: each agent's state
    timeout_s: float = Field(10.0, gt=0, le=120)

    @model_validator(mode="after")
    def _keys(self) -> PollSettings:
        if (self.aws_access_key_id is None) != (self.aws_secret_access_key is None):
            raise ValueError("give aws_access_key_id and aws_secret_access_key together, or "
                             "neither (boto3's default credential chain)")
        return self


class AmazonConnectConfig(RateLimitConfig):
    """The EventBridge route's secret, the poll, and how Connect names map to the board's."""

    # The value EventBridge's connection sends in `events_header` (API key authorization).
    events_secret: Secret[Annotated[str, Field(min_length=16)]] | None = None
    events_header: str = Field("X-Wallboard-Key", pattern=r"^[A-Za-z0-9-]{1,64}$")
    queues: dict[str, str] = Field(default_factory=dict)  # queue id or ARN -> board queue
    agents: dict[str, str] = Field(default_factory=dict)  # user id or agent ARN -> board agent
    statuses: dict[str, AgentState] = Field(default_factory=dict)  # agent status name -> state
    unknown_status: AgentState = "away"
    poll: PollSettings | None = None
    # GetCurrentMetricData and GetCurrentUserData allow 5 requests per second each.
    max_requests_per_s: float | None = Field(5.0, gt=0)
    burst: int = Field(5, ge=1, le=1000)

    @model_validator(mode="after")
    def _something_to_do(self) -> AmazonConnectConfig:
        if self.events_secret is None and self.poll is None:
            raise ValueError("give events_secret (EventBridge contact events), poll, or both")
        if self.poll is not None and not self.queues:
            raise ValueError("poll needs queues: the Connect queue ids to ask about")
        return self


class AmazonConnectSource(PushSource[AmazonConnectConfig]):
    """Contact events posted by EventBridge, and optionally a real-time snapshot poll."""

    type: ClassVar[str] = "amazon_connect"

    def __init__(self, name: str, config: AmazonConnectConfig) -> None:
        super().__init__(name, config)
        self.mapper = Mapper(config.queues, config.agents)
        self.queue_ids = self.mapper.queues  # Connect queue id -> board queue
        self.statuses = {k.lower(): v for k, v in config.statuses.items()}
        self._client: Any = None  # botocore's client; typed Any, boto3 has no type information
        self._throttles = 0
        self._agents: dict[str, tuple[str, str]] = {}  # last state emitted per agent

    async def run(self, emit: Emit) -> None:
        """Without `poll`, report up and wait for requests; with it, poll every interval."""
        poll = self.config.poll
        if poll is None:
            await self.serve_requests()
            return
        while True:
            for event in await self.snapshot():
                emit(event)
            self.connected()
            await self.clock.sleep(poll.interval_s)

    async def client(self) -> Any:
        """The Connect client, built once in a thread (loading its model takes a while)."""
        poll = self.config.poll
        assert poll is not None
        if self._client is None:
            secret = poll.aws_secret_access_key
            token = poll.aws_session_token
            try:
                self._client = await asyncio.to_thread(
                    make_client, poll.region, poll.endpoint_url, poll.aws_access_key_id,
                    secret.get_secret_value() if secret else None,
                    token.get_secret_value() if token else None, poll.timeout_s)
            except (BotoCoreError, ValueError) as exc:
                raise SourceError(f"cannot make the Connect client: {exc}") from None
        return self._client

    async def pages(self, operation: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Every page of one request, following NextToken, each call within the rate limit."""
        client = await self.client()
        pages: list[dict[str, Any]] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            request = params if token is None else {**params, "NextToken": token}
            if self.limiter is not None:
                await self.limiter.acquire()
            try:
                page = await asyncio.to_thread(call, client, operation, request)
            except Throttled as exc:
                raise self._back_off(exc) from None
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
        self._throttles = 0
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
            raw = source.mapper.map(payload)
        except MappingError as exc:
            raise Rejection("malformed", str(exc)[:300]) from None
    except Rejection as exc:
        ingest.refused(exc.reason)
        return refuse(runner, request, exc)
    if raw is None:  # an event type or a contact leg the board does not count
        runner.touch()
        return web.json_response({"accepted": 0, "duplicates": 0, "late": 0, "failed": 0,
                                  "counted": False})
    try:
        events = ingest.all(runner, [raw])  # refusals counted by the pipeline, by code
    except EventError as exc:
        return refuse(runner, request, Rejection("malformed", f"{exc.field}: {exc.message}"))
    stored = await ingest.store(runner, events)
    if stored.down is not None:
        return stored.retry_later()
    return web.json_response({**stored.answer(), "counted": True})

