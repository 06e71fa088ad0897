"""The genesys_cloud push source: a notification channel, its websocket, a snapshot per connect."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Self

import aiohttp
import orjson
from pydantic import BaseModel, ConfigDict, Field, Secret, model_validator

from wallboard.kit import Emit, PushSource, RateLimitConfig, SourceError, parse_time

from .api import GenesysApi
from .mapping import BadMessage, Mapper, safe_id

log = logging.getLogger(__name__)

MAX_TOPICS = 1000  # Genesys: at most 1,000 topics per notification channel
CHANNEL_LIFETIME_S = 24 * 3600.0  # a channel unused for 24 h expires
MAX_MESSAGE_BYTES = 1 << 20
BATCH = 100  # ids per observations predicate list and per users request
QUEUE_TOPIC = re.compile(r"^v2\.routing\.queues\.([^.]{1,100})\.conversations$")
USER_TOPIC = re.compile(r"^v2\.users\.([^.]{1,100})\.(routingStatus|presence)$")
Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
GenesysId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")]


class UserConfig(BaseModel):
    """A user (agent) to follow: the name shown on the board and the queues it serves."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    queues: list[GenesysId] = Field(default_factory=list)


class GenesysCloudConfig(RateLimitConfig):
    """Which Genesys Cloud region and OAuth client, and which queues and users to follow."""

    # The region's domain: api.{region} and login.{region} (mypurecloud.com, mypurecloud.ie,
    # euw2.pure.cloud, ...); api_url/login_url override them (a proxy, or a test peer).
    region: str = Field("mypurecloud.com", pattern=r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")
    api_url: str | None = Field(None, pattern=r"^https?://[^\s/]+(/[^\s]*)?$")
    login_url: str | None = Field(None, pattern=r"^https?://[^\s/]+(/[^\s]*)?$")
    client_id: str = Field(min_length=1, max_length=256)
    client_secret: Secret[Annotated[str, Field(min_length=1)]]
    queues: dict[GenesysId, Name] = Field(min_length=1)  # Genesys queue id -> board queue
    users: dict[GenesysId, UserConfig] = Field(default_factory=dict)
    # Genesys sends a heartbeat every 30 s: this much silence means the socket is dead.
    heartbeat_timeout_s: float = Field(95.0, gt=0)
    request_timeout_s: float = Field(15.0, gt=0)
    auth_retry_s: float = Field(300.0, ge=0)  # after refused credentials, wait at least this
    renew_before_s: float = Field(600.0, ge=0)  # open the next channel this long before expiry

    @model_validator(mode="after")
    def _check_topics(self) -> Self:
        unknown = sorted({q for u in self.users.values() for q in u.queues} - set(self.queues))
        if unknown:
            raise ValueError(f"users name queues not in `queues`: {', '.join(unknown[:5])}")
        topics = len(self.queues) + 2 * len(self.users)
        if topics > MAX_TOPICS:
            raise ValueError(f"{len(self.queues)} queues and {len(self.users)} users need "
                             f"{topics} topics; a Genesys channel takes at most {MAX_TOPICS} "
                             "(split them over two sources)")
        return self


@dataclass
class Channel:
    """A notification channel: its id, websocket address and expiry."""

    id: str
    uri: str
    renew_at: float


class GenesysCloudSource(PushSource[GenesysCloudConfig]):
    """Genesys Cloud queues and agents over the Notifications API; reconnects with back-off."""

    type: ClassVar[str] = "genesys_cloud"

    def __init__(self, name: str, config: GenesysCloudConfig) -> None:
        super().__init__(name, config)
        self.cfg = config
        self.api = GenesysApi(
            self, api_url=config.api_url or f"https://api.{config.region}",
            login_url=config.login_url or f"https://login.{config.region}",
            client_id=config.client_id, client_secret=config.client_secret.get_secret_value(),
            timeout_s=config.request_timeout_s, auth_retry_s=config.auth_retry_s)
        # The model outlives connections: a reconnect's snapshot is compared with it.
        self.mapper = Mapper(config.queues,
                             {uid: (u.name, u.queues) for uid, u in config.users.items()})
        self.malformed = 0  # websocket messages refused (also in self.skipped, by reason)
        self.channels_opened = 0

    def topics(self) -> list[str]:
        """Every topic the channel subscribes to (within MAX_TOPICS, checked by the config)."""
        topics = [f"v2.routing.queues.{q}.conversations" for q in self.cfg.queues]
        for uid in self.cfg.users:
            topics += [f"v2.users.{uid}.routingStatus", f"v2.users.{uid}.presence"]
        return topics

    async def _open_channel(self) -> Channel:
        """POST a channel, then PUT its subscriptions (replacing any it had)."""
        answer = await self.api.call("POST", "/api/v2/notifications/channels")
        cid = safe_id(answer.get("id")) if isinstance(answer, dict) else None
        uri = answer.get("connectUri") if isinstance(answer, dict) else None
        if (cid is None or not isinstance(uri, str) or len(uri) > 2048
                or not uri.startswith(("wss://", "ws://"))):
            raise SourceError("POST /api/v2/notifications/channels: no id and connectUri")
        now = self.clock.time()
        expires = parse_time(answer.get("expires")) or now + CHANNEL_LIFETIME_S
        renew_at = expires - self.cfg.renew_before_s
        if renew_at <= now:  # a short-lived channel: renew half-way, never in a tight loop
            renew_at = now + max(1.0, (expires - now) / 2)
        await self.api.call("PUT", f"/api/v2/notifications/channels/{cid}/subscriptions",
                            [{"id": topic} for topic in self.topics()])
        self.channels_opened += 1
        return Channel(cid, uri, renew_at)

    async def _connect(self, channel: Channel) -> aiohttp.ClientWebSocketResponse:
        try:
            return await self.http.ws_connect(
                channel.uri, max_msg_size=MAX_MESSAGE_BYTES, autoping=True,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=1.0))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SourceError(f"websocket {channel.uri}: {type(exc).__name__}: {exc}") from None

    async def _snapshot(self, emit: Emit) -> None:
        """Users' states and the queue observations, applied over the model."""
        now = self.clock.time()
        users = list(self.cfg.users)
        for start in range(0, len(users), BATCH):
            ids = "&".join(f"id={u}" for u in users[start:start + BATCH])
            answer = await self.api.call(
                "GET", f"/api/v2/users?{ids}&expand=presence,routingStatus&pageSize={BATCH}")
            entities = answer.get("entities") if isinstance(answer, dict) else None
            self._emit_all(emit, self.mapper.apply_users(entities, now))
        queues, results = list(self.cfg.queues), []
        for start in range(0, len(queues), BATCH):
            query = {"filter": {"type": "or", "predicates": [
                        {"type": "dimension", "dimension": "queueId", "operator": "matches",
                         "value": q} for q in queues[start:start + BATCH]]},
                     "metrics": ["oWaiting", "oInteracting", "oOnQueueUsers", "oOffQueueUsers"],
                     "detailMetrics": ["oWaiting"]}
            answer = await self.api.call("POST", "/api/v2/analytics/queues/observations/query",
                                         query)
            found = answer.get("results") if isinstance(answer, dict) else None
            results += found if isinstance(found, list) else []
        self._emit_all(emit, self.mapper.apply_observations(results, self.clock.time()))

    async def run(self, emit: Emit) -> None:
        """Open a channel, connect, take the snapshot, then map notifications until it drops."""
        channel = await self._open_channel()
        ws = await self._connect(channel)
        try:
            await self._snapshot(emit)  # notifications meanwhile wait in the socket
            self.connected()
            while True:
                closing = await self._next(ws, emit)
                if closing or self.clock.time() >= channel.renew_at:
                    # Channel expiry or socket_closing: a new channel and socket first, then
                    # the old one goes; the snapshot covers anything between the two.
                    channel = await self._open_channel()
                    fresh = await self._connect(channel)
                    await ws.close()
                    ws = fresh
                    await self._snapshot(emit)
        finally:
            await ws.close()

    async def _next(self, ws: aiohttp.ClientWebSocketResponse, emit: Emit) -> bool:
        """Handle one websocket message; True when Genesys says the socket is closing."""
        try:
            msg = await ws.receive(timeout=self.cfg.heartbeat_timeout_s)
        except TimeoutError:
            raise SourceError(f"no message nor heartbeat for {self.cfg.heartbeat_timeout_s:g}s "
                              "on the notification websocket") from None
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                        aiohttp.WSMsgType.CLOSED):
            raise SourceError("the notification websocket was closed by Genesys Cloud")
        if msg.type == aiohttp.WSMsgType.ERROR:
            raise SourceError(f"the notification websocket failed: {ws.exception()}")
        if msg.type != aiohttp.WSMsgType.TEXT:
            self._skip("not_text", "not a text message")
            return False
        try:
            return self._handle(msg.data, emit)
        except BadMessage as exc:
            self._skip(exc.reason, str(exc))
            return False

    def _handle(self, text: str, emit: Emit) -> bool:
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise BadMessage("not_json", "not JSON") from None
        topic = message.get("topicName") if isinstance(message, dict) else None
        if not isinstance(topic, str):
            raise BadMessage("no_topic", "no topicName")
        body, now = message.get("eventBody"), self.clock.time()
        if topic == "channel.metadata":  # "WebSocket Heartbeat", or "pong"
            return False
        if topic == "v2.system.socket_closing":
            return True
        if match := QUEUE_TOPIC.match(topic):
            self._emit_all(emit, self.mapper.conversation(match[1], body, now))
        elif match := USER_TOPIC.match(topic):
            handler = (self.mapper.routing_status if match[2] == "routingStatus"
                       else self.mapper.presence)
            self._emit_all(emit, handler(match[1], body, now))
        return False  # other topics are not counted

    def _skip(self, reason: str, why: str) -> None:
        """Count a refused message (never fatal); log the 1st, 2nd, 4th, 8th...: no flood."""
        self.skipped[reason] += 1
        self.malformed += 1
        if self.malformed & (self.malformed - 1) == 0:
            log.warning("source %s: skipped a malformed notification (%s); %d so far",
                        self.name, why, self.malformed)

    @staticmethod
    def _emit_all(emit: Emit, events: list[dict[str, Any]]) -> None:
        for event in events:
            emit(event)
