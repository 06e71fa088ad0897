"""A local Genesys Cloud: OAuth, notification channels, a websocket, users and observations.

Answers in the shapes Genesys Cloud documents (POST /oauth/token, /api/v2/notifications/
channels and their subscriptions, GET /api/v2/users with expand=presence,routingStatus,
POST /api/v2/analytics/queues/observations/query) on 127.0.0.1, and can drop and come back on
the same port. Tests push notifications with `publish`.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson
from aiohttp import WSMsgType, web

from wallboard.kit.testing.peer import PEER_TASK

CLIENT_ID, CLIENT_SECRET = "3b1f2c4d-client", "s3cret-client-secret"
Q_SUPPORT, Q_SALES = "5c2a8f0e-support", "7d9e1b3a-sales"
ALICE, BOB = "a1a1a1a1-alice", "b2b2b2b2-bob"
HEARTBEAT = {"topicName": "channel.metadata", "eventBody": {"message": "WebSocket Heartbeat"}}
CLOSING = {"topicName": "v2.system.socket_closing", "eventBody": {"message": "Socket closing"}}


def iso(ts: float) -> str:
    """Epoch seconds as Genesys writes times: `2026-12-07T10:00:00.000Z`."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def conversation(cid: str, queue_id: str, queued: float, *, answered: float | None = None,
                 agent: str | None = None, ended: float | None = None,
                 left: float | None = None, hung_up: float | None = None,
                 to_queue: str | None = None) -> dict[str, Any]:
    """A `v2.routing.queues.{id}.conversations` eventBody: customer, acd and agent legs."""
    customer: dict[str, Any] = {"id": f"{cid}-c", "purpose": "customer",
                                "connectedTime": iso(queued - 5), "address": "tel:+15555550100",
                                "calls": [{"id": f"{cid}-cc", "state": "connected"}]}
    if hung_up is not None:
        customer["endTime"] = iso(hung_up)
        customer["calls"][0].update(state="disconnected", disconnectType="peer")
    acd: dict[str, Any] = {"id": f"{cid}-q", "purpose": "acd", "queueId": queue_id,
                           "connectedTime": iso(queued),
                           "calls": [{"id": f"{cid}-qc", "state": "connected"}]}
    leave = answered if answered is not None else left
    if leave is not None:
        acd["endTime"] = iso(leave)
        acd["calls"][0].update(state="disconnected", disconnectType="transfer")
    parts = [customer, acd]
    if agent is not None:
        leg: dict[str, Any] = {"id": f"{cid}-a", "purpose": "agent", "queueId": queue_id,
                               "userId": agent, "calls": [{"id": f"{cid}-ac",
                                                           "state": "alerting"}]}
        if answered is not None:
            leg["connectedTime"] = iso(answered)
            leg["calls"][0]["state"] = "connected"
        if ended is not None:
            leg["endTime"] = iso(ended)
            leg["calls"][0].update(state="disconnected", disconnectType="client")
        parts.append(leg)
    onward = left if left is not None else ended  # moved while waiting, or passed on
    if to_queue is not None and onward is not None:
        parts.append({"id": f"{cid}-q2", "purpose": "acd", "queueId": to_queue,
                      "connectedTime": iso(onward), "calls": [{"id": f"{cid}-q2c",
                                                               "state": "connected"}]})
    return {"id": cid, "participants": parts}


def queue_topic(queue_id: str) -> str:
    """The queue conversations topic."""
    return f"v2.routing.queues.{queue_id}.conversations"


def routing(status: str, ts: float) -> dict[str, Any]:
    """A `v2.users.{id}.routingStatus` eventBody."""
    return {"routingStatus": {"status": status, "startTime": iso(ts)}}


def presence(system: str, ts: float) -> dict[str, Any]:
    """A `v2.users.{id}.presence` eventBody."""
    return {"source": "PURECLOUD", "presenceDefinition": {"id": "p-" + system.lower(),
            "systemPresence": system}, "message": "", "modifiedDate": iso(ts)}


@dataclass
class _Spec:
    """What the contract suite reads of a peer's declaration."""

    kind: ClassVar[str] = "http"


@dataclass
class GenesysPeer:
    """The local Genesys Cloud. Its state is what its APIs answer; `publish` pushes."""

    token_lifetime_s: int = 86399
    channel_lifetime_s: list[float] = field(default_factory=list)  # then 24 h
    waiting: dict[str, dict[str, float]] = field(default_factory=dict)  # queue id -> cid: ts
    users: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> presence, routing
    on_queue: dict[str, dict[str, int]] = field(default_factory=dict)  # queue -> status: n
    requests: list[tuple[str, str]] = field(default_factory=list)
    subscriptions: dict[str, list[str]] = field(default_factory=dict)
    served: int = 0
    connections: int = 0  # websockets opened so far
    garbage: Any = None  # when set, the users and observations answers are this instead
    spec: _Spec = field(default_factory=_Spec)

    def __post_init__(self) -> None:
        self.port = 0
        self.tokens: set[str] = set()
        self.refuse: deque[tuple[str, int, dict[str, str]]] = deque()  # path, status, headers
        self._ids = itertools.count(1)
        self._sockets: list[tuple[web.WebSocketResponse, Any]] = []
        self._site: web.TCPSite | None = None
        app = web.Application()
        app.router.add_post("/oauth/token", self._token)
        app.router.add_post("/api/v2/notifications/channels", self._channel)
        app.router.add_put("/api/v2/notifications/channels/{id}/subscriptions", self._subscribe)
        app.router.add_get("/api/v2/users", self._users)
        app.router.add_post("/api/v2/analytics/queues/observations/query", self._observations)
        app.router.add_get("/channels/{id}", self._socket)
        self._runner = web.AppRunner(app, handle_signals=False)

    host = "127.0.0.1"

    @property
    def url(self) -> str:
        """The base URL for both api_url and login_url."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> GenesysPeer:
        """Listen (on a free port the first time, the same port after a drop)."""
        if self._runner.server is None:
            await self._runner.setup()
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await self._site.start()
        if not self.port:
            self.port = self._runner.addresses[0][1]
        return self

    restore = start

    async def drop(self, mid_message: bool = False) -> None:
        """Stop listening and cut every socket (with half a frame written, if asked)."""
        self.hang_up(mid_message)
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def stop(self) -> None:
        """Gone for good."""
        await self.drop()
        await self._runner.cleanup()

    def hang_up(self, mid_message: bool = False) -> None:
        """Cut the websockets but keep listening."""
        for _, transport in self._sockets:
            if mid_message:  # a text frame announcing 256 bytes, cut after 22
                transport.write(b"\x81\x7e\x01\x00" + b'{"topicName": "v2.rout')
            transport.abort()
        self._sockets.clear()

    @property
    def sockets(self) -> int:
        """Open notification websockets."""
        return len(self._sockets)

    async def publish(self, topic: str, body: Any) -> None:
        """Send one notification on the newest websocket."""
        await self.send_text(orjson.dumps({"topicName": topic, "eventBody": body}).decode())

    async def send_text(self, text: str) -> None:
        """Send raw text on the newest websocket (waits for one to be open)."""
        for _ in range(400):
            if self._sockets:
                break
            await asyncio.sleep(0.025)
        await self._sockets[-1][0].send_str(text)

    def send_next(self, payload: bytes) -> None:
        """For the contract: a malformed message, then a good one with a new conversation."""
        async def deliver() -> None:
            await self.send_text(payload.decode("utf-8", "replace"))
            n = next(self._ids)
            await self.publish(queue_topic(Q_SUPPORT), conversation(
                f"contract-{n}", Q_SUPPORT, datetime.now(UTC).timestamp() - 1))
            self.served += 1

        asyncio.get_running_loop().create_task(deliver(), name=PEER_TASK)

    def expire_tokens(self) -> None:
        """Every token issued so far is refused from now on (401)."""
        self.tokens.clear()

    # -- routes -------------------------------------------------------------------------------

    def _refused(self, request: web.Request) -> web.Response | None:
        self.requests.append((request.method, request.path))
        if self.refuse and request.path.startswith(self.refuse[0][0]):
            _, status, headers = self.refuse.popleft()
            return web.json_response({"message": "refused", "status": status}, status=status,
                                     headers=headers)
        return None

    def _authorised(self, request: web.Request) -> web.Response | None:
        refused = self._refused(request)
        if refused is not None:
            return refused
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.tokens:
            return web.json_response({"message": "Invalid login credentials.",
                                      "code": "bad.credentials", "status": 401}, status=401)
        return None

    async def _token(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        form = await request.post()
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return web.json_response({"error": "invalid_client",
                                      "description": "client not found"}, status=400)
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        token = f"token-{next(self._ids)}"
        self.tokens.add(token)
        return web.json_response({"access_token": token, "token_type": "bearer",
                                  "expires_in": self.token_lifetime_s})

    async def _channel(self, request: web.Request) -> web.Response:
        if (refused := self._authorised(request)) is not None:
            return refused
        cid = f"streaming-{next(self._ids)}"
        life = self.channel_lifetime_s.pop(0) if self.channel_lifetime_s else 86400.0
        return web.json_response({
            "connectUri": f"ws://127.0.0.1:{self.port}/channels/{cid}", "id": cid,
            "expires": iso(datetime.now(UTC).timestamp() + life)})

    async def _subscribe(self, request: web.Request) -> web.Response:
        if (refused := self._authorised(request)) is not None:
            return refused
        topics = [t["id"] for t in await request.json()]
        self.subscriptions[request.match_info["id"]] = topics
        return web.json_response({"entities": [{"id": t} for t in topics]})

    async def _users(self, request: web.Request) -> web.Response:
        if (refused := self._authorised(request)) is not None:
            return refused
        if self.garbage is not None:
            return web.json_response(self.garbage)
        entities = [{"id": uid, "name": uid, "presence": {
                        "presenceDefinition": {"systemPresence": p}},
                     "routingStatus": {"userId": uid, "status": r}}
                    for uid in request.query.getall("id", []) if uid in self.users
                    for p, r in [self.users[uid]]]
        return web.json_response({"entities": entities, "pageSize": 100, "pageNumber": 1,
                                  "total": len(entities)})

    async def _observations(self, request: web.Request) -> web.Response:
        if (refused := self._authorised(request)) is not None:
            return refused
        query = await request.json()
        if self.garbage is not None:
            return web.json_response(self.garbage)
        results = []
        for pred in query["filter"]["predicates"]:
            qid = pred["value"]
            waits = self.waiting.get(qid, {})
            results.append({"group": {"queueId": qid, "mediaType": "voice"}, "data": [
                {"metric": "oWaiting", "stats": {"count": len(waits)}, "observations": [
                    {"observationDate": iso(ts), "conversationId": cid, "sessionId": cid + "-s",
                     "routingPriority": 0, "direction": "inbound"}
                    for cid, ts in waits.items()]},
                {"metric": "oInteracting", "stats": {"count": 0}}]})
            users = [{"metric": "oOnQueueUsers", "qualifier": status, "stats": {"count": n}}
                     for status, n in self.on_queue.get(qid, {}).items()]
            if users:
                results.append({"group": {"queueId": qid}, "data": users})
        return web.json_response({"results": results})

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        task = asyncio.current_task()
        if task is not None:
            task.set_name(PEER_TASK)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append((ws, request.transport))
        self.connections += 1
        await ws.send_json(HEARTBEAT)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT and '"ping"' in msg.data:
                await ws.send_json({"topicName": "channel.metadata",
                                    "eventBody": {"message": "pong"}})
        self._sockets = [s for s in self._sockets if s[0] is not ws]
        return ws
