"""Local Amazon Connect and Kinesis APIs for the amazon_connect tests: SigV4 checked, pages.

`ConnectPeer` answers GetCurrentMetricData (POST /metrics/current/{InstanceId}) and
GetCurrentUserData (POST /metrics/userdata/{InstanceId}) in the documented rest-json shapes;
`KinesisPeer` answers ListShards, GetShardIterator and GetRecords (JSON 1.1, X-Amz-Target).
Both check each request's Signature Version 4 with botocore's signer (so a wrong key or secret
is refused as AWS would), and can throttle or go away.
"""

from __future__ import annotations

import base64
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

import orjson
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

KEY_ID, SECRET, REGION, INSTANCE = "testing", "testing-secret", "eu-west-2", "inst-0001"
ARN = f"arn:aws:connect:{REGION}:111122223333:instance/{INSTANCE}"


@dataclass
class Seen:
    """One request the peer answered (or refused)."""

    operation: str
    body: dict[str, Any]
    at: float  # on the peer's clock (a harness's virtual clock in the tests)
    status: int


def metric(name: str, value: float | None, unit: str = "COUNT") -> dict[str, Any]:
    """One item of a result's Collections."""
    return {"Metric": {"Name": name, "Unit": unit}, "Value": value}


def user(user_id: str, status: str, contacts: tuple[str, ...] = ()) -> dict[str, Any]:
    """One UserData item: a user, its agent status, and its contacts' states."""
    return {"User": {"Id": user_id, "Arn": f"{ARN}/agent/{user_id}"},
            "RoutingProfile": {"Id": "rp-1", "Arn": f"{ARN}/routing-profile/rp-1"},
            "Status": {"StatusName": status, "StatusStartTimestamp": 1796600000.0,
                       "StatusArn": f"{ARN}/agent-state/{status.lower()}"},
            "AvailableSlotsByChannel": {"VOICE": 0 if contacts else 1},
            "MaxSlotsByChannel": {"VOICE": 1}, "ActiveSlotsByChannel": {"VOICE": len(contacts)},
            "Contacts": [{"ContactId": f"c-{user_id}-{n}", "Channel": "VOICE",
                          "InitiationMethod": "INBOUND", "AgentContactState": state,
                          "StateStartTimestamp": 1796600100.0,
                          "Queue": {"Id": "q-sales", "Arn": f"{ARN}/queue/q-sales"}}
                         for n, state in enumerate(contacts)]}


class AwsPeer:
    """An AWS API on 127.0.0.1; `drop()` and `restore()` keep the port."""

    service = ""

    def __init__(self, clock: Callable[[], float] = time.time, key_id: str = KEY_ID,
                 secret: str = SECRET) -> None:
        self.clock, self.key_id, self.secret = clock, key_id, secret
        self.throttle = 0  # the next this many requests are throttled
        self.deny = False  # AccessDeniedException for every request
        self.seen: list[Seen] = []
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    def routes(self, app: web.Application) -> None:
        """Add the API's routes."""
        raise NotImplementedError

    @property
    def url(self) -> str:
        """The endpoint_url to give botocore."""
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Self:
        """Start listening on a free port."""
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await self.restore()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop and clean up."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def drop(self) -> None:
        """Stop listening: the API is unreachable."""
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def restore(self) -> None:
        """Listen again, on the same port after a drop."""
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await self._site.start()
        self.port = self._runner.addresses[-1][1]  # the port picked the first time is kept

    def requests(self, operation: str) -> list[Seen]:
        """The requests of one operation that were answered 200."""
        return [s for s in self.seen if s.operation == operation and s.status == 200]

    def _error(self, seen: Seen, status: int, code: str, message: str) -> web.Response:
        """An AWS error answer, noted on the request seen."""
        seen.status = status
        # rest-json (Connect) names the error in a header, JSON 1.1 (Kinesis) in `__type`.
        return web.json_response({"__type": code, "message": message}, status=status,
                                 headers={"x-amzn-ErrorType": code, "Connection": "close"})

    def _signature_problem(self, request: web.Request, body: bytes) -> tuple[str, str] | None:
        """None when the request is signed with our key and secret, else (code, message)."""
        header = request.headers.get("Authorization", "")
        if not header.startswith("AWS4-HMAC-SHA256 "):
            return "MissingAuthenticationTokenException", "Missing Authentication Token"
        parts = dict(p.strip().split("=", 1) for p in header[17:].split(",") if "=" in p)
        credential = parts.get("Credential", "").split("/")
        if credential[0] != self.key_id:
            return ("UnrecognizedClientException",
                    "The security token included in the request is invalid.")
        signed = parts.get("SignedHeaders", "").split(";")
        copy = AWSRequest(method=request.method, url=f"{self.url}{request.path_qs}", data=body,
                          headers={h: request.headers.get(h, "") for h in signed})
        copy.context["timestamp"] = request.headers.get("X-Amz-Date", "")
        signer = SigV4Auth(Credentials(self.key_id, self.secret), self.service, credential[2])
        expected = signer.signature(signer.string_to_sign(copy, signer.canonical_request(copy)),
                                    copy)
        if not hmac.compare_digest(expected, parts.get("Signature", "")):
            return ("InvalidSignatureException", "The request signature we calculated does not "
                    "match the signature you provided.")
        return None

    async def _admit(self, request: web.Request,
                     operation: str) -> tuple[Seen, web.Response | None]:
        """Note the request; refuse it when unsigned, denied or throttled."""
        body = await request.read()
        seen = Seen(operation, orjson.loads(body) if body else {}, self.clock(), 200)
        self.seen.append(seen)
        problem = self._signature_problem(request, body)
        if problem is not None:
            return seen, self._error(seen, 403, *problem)
        if self.deny:
            return seen, self._error(seen, 403, "AccessDeniedException", "User: arn:aws:iam::"
                                     "111122223333:user/board is not authorized to perform: "
                                     f"connect:{operation}")
        if self.throttle:
            self.throttle -= 1
            return seen, self._throttled(seen)
        return seen, None

    def _throttled(self, seen: Seen) -> web.Response:
        """The throttling answer of this API."""
        return self._error(seen, 429, "ThrottlingException", "Rate exceeded")


class ConnectPeer(AwsPeer):
    """The Amazon Connect metrics API: `metrics` by queue id, `users`, `page_size` per page."""

    service = "connect"

    def __init__(self, clock: Callable[[], float] = time.time, key_id: str = KEY_ID,
                 secret: str = SECRET) -> None:
        super().__init__(clock, key_id, secret)
        self.metrics: dict[str, list[dict[str, Any]]] = {}  # queue id -> Collections
        self.users: list[dict[str, Any]] = []
        self.page_size = 100

    def routes(self, app: web.Application) -> None:
        """The two metrics operations."""
        app.router.add_post("/metrics/current/{instance}", self._metrics)
        app.router.add_post("/metrics/userdata/{instance}", self._users)

    async def _connect_admit(self, request: web.Request,
                             operation: str) -> tuple[Seen, web.Response | None]:
        """As `_admit`, and refuse another instance."""
        seen, refused = await self._admit(request, operation)
        if refused is None and request.match_info["instance"] != INSTANCE:
            refused = self._error(seen, 404, "ResourceNotFoundException", "Instance not found")
        return seen, refused

    def _page(self, items: list[Any], body: dict[str, Any], key: str) -> web.Response:
        """One page of `items` from NextToken on, with the next token if more are left."""
        start = int(body.get("NextToken", "page-0").removeprefix("page-"))
        size = min(self.page_size, int(body.get("MaxResults", 100)))
        answer: dict[str, Any] = {key: items[start:start + size],
                                  "ApproximateTotalCount": len(items)}
        if start + size < len(items):
            answer["NextToken"] = f"page-{start + size}"
        return web.json_response(answer, headers={"Connection": "close"})

    async def _metrics(self, request: web.Request) -> web.Response:
        """GetCurrentMetricData: one result per wanted queue that has metrics."""
        seen, refused = await self._connect_admit(request, "GetCurrentMetricData")
        if refused is not None:
            return refused
        wanted = seen.body["Filters"]["Queues"]
        results = [{"Dimensions": {"Queue": {"Id": q, "Arn": f"{ARN}/queue/{q}"}},
                    "Collections": self.metrics[q]} for q in wanted if q in self.metrics]
        return self._page(results, seen.body, "MetricResults")

    async def _users(self, request: web.Request) -> web.Response:
        """GetCurrentUserData: the users, a page at a time."""
        seen, refused = await self._connect_admit(request, "GetCurrentUserData")
        if refused is not None:
            return refused
        return self._page(self.users, seen.body, "UserDataList")


def agent_event(etype: str, event_id: str, agent: str, status: str = "Available",
                contacts: tuple[str, ...] = (), at: str = "2026-12-07T10:00:00.000Z",
                queues: tuple[str, ...] = ("q-sales",)) -> bytes:
    """One agent event stream record as Connect writes it to Kinesis."""
    snapshot = {
        "AgentStatus": {"ARN": f"{ARN}/agent-state/{status.lower()}", "Name": status,
                        "StartTimestamp": at, "Type": "ROUTABLE" if status == "Available"
                        else "CUSTOM"},
        "Configuration": {"FirstName": agent, "LastName": "Test", "Username": agent,
                          "AgentHierarchyGroups": None,
                          "RoutingProfile": {
                              "ARN": f"{ARN}/routing-profile/rp-1", "Name": "Basic",
                              "DefaultOutboundQueue": {"ARN": f"{ARN}/queue/{queues[0]}",
                                                       "Name": queues[0], "Channels": ["VOICE"]},
                              "InboundQueues": [{"ARN": f"{ARN}/queue/{q}", "Name": q,
                                                 "Channels": ["VOICE"]} for q in queues]}},
        "Contacts": [{"Channel": "VOICE", "ContactId": f"c-{agent}-{n}",
                      "InitialContactId": None, "InitiationMethod": "INBOUND",
                      "Queue": {"ARN": f"{ARN}/queue/{queues[0]}", "Name": queues[0]},
                      "QueueTimestamp": at, "State": state, "StateStartTimestamp": at,
                      "ConnectedToAgentTimestamp": at} for n, state in enumerate(contacts)]}
    event = {"AWSAccountId": "111122223333", "AgentARN": f"{ARN}/agent/{agent}",
             "CurrentAgentSnapshot": snapshot if etype != "LOGOUT" else None,
             "EventId": event_id, "EventTimestamp": at, "EventType": etype,
             "InstanceARN": ARN, "PreviousAgentSnapshot": None, "Version": "2019-05-25"}
    return orjson.dumps(event)


class KinesisPeer(AwsPeer):
    """A Kinesis data stream: `add(shard, data)`, `close(shard)`, `expire` the iterators."""

    service = "kinesis"

    def __init__(self, clock: Callable[[], float] = time.time, key_id: str = KEY_ID,
                 secret: str = SECRET, stream: str = "connect-agents") -> None:
        super().__init__(clock, key_id, secret)
        self.stream = stream
        self.shards: dict[str, list[tuple[str, bytes]]] = {}  # shard -> (sequence, data)
        self.closed: set[str] = set()
        self.expire = 0  # the next this many GetRecords find their iterator expired
        self._sequence = 0

    def routes(self, app: web.Application) -> None:
        """JSON 1.1: every operation is a POST to / named by X-Amz-Target."""
        app.router.add_post("/", self._dispatch)

    def add(self, shard: str, data: bytes) -> str:
        """Append a record to a shard (created if new); returns its sequence number."""
        self._sequence += 1
        sequence = f"{49600000000000000000000000000000000000000000000000 + self._sequence}"
        self.shards.setdefault(shard, []).append((sequence, data))
        return sequence

    def _throttled(self, seen: Seen) -> web.Response:
        """The throttling answer of this API."""
        return self._error(seen, 400, "ProvisionedThroughputExceededException",
                           "Rate exceeded for shard")

    async def _dispatch(self, request: web.Request) -> web.Response:
        """ListShards, GetShardIterator or GetRecords, by X-Amz-Target."""
        operation = request.headers.get("X-Amz-Target", "").removeprefix("Kinesis_20131202.")
        seen, refused = await self._admit(request, operation)
        if refused is not None:
            return refused
        body = seen.body
        if operation == "ListShards":
            if body.get("StreamName", self.stream) != self.stream:
                return self._error(seen, 400, "ResourceNotFoundException", "Stream not found")
            shards = [{"ShardId": s, "HashKeyRange": {"StartingHashKey": "0",
                                                      "EndingHashKey": "1"},
                       "SequenceNumberRange": {"StartingSequenceNumber": "1"}}
                      for s in self.shards]
            return self._json({"Shards": shards})
        if operation == "GetShardIterator":
            records = self.shards[body["ShardId"]]
            kind = body["ShardIteratorType"]
            sequences = [seq for seq, _ in records]
            start = {"TRIM_HORIZON": 0, "LATEST": len(records)}.get(kind)
            if start is None:  # AFTER_SEQUENCE_NUMBER
                start = sequences.index(body["StartingSequenceNumber"]) + 1
            return self._json({"ShardIterator": f"it:{body['ShardId']}:{start}"})
        if operation == "GetRecords":
            if self.expire:
                self.expire -= 1
                return self._error(seen, 400, "ExpiredIteratorException", "Iterator expired")
            _, shard, index = body["ShardIterator"].split(":")
            records = self.shards[shard][int(index):int(index) + int(body.get("Limit", 10000))]
            end = int(index) + len(records)
            answer: dict[str, Any] = {
                "Records": [{"SequenceNumber": seq, "ApproximateArrivalTimestamp": 1796637600.0,
                             "Data": base64.b64encode(data).decode(),
                             "PartitionKey": "agent"} for seq, data in records],
                "MillisBehindLatest": 0}
            if not (shard in self.closed and end >= len(self.shards[shard])):
                answer["NextShardIterator"] = f"it:{shard}:{end}"
            return self._json(answer)
        return self._error(seen, 400, "UnknownOperationException", operation)

    def _json(self, answer: dict[str, Any]) -> web.Response:
        """A JSON 1.1 answer."""
        return web.Response(body=orjson.dumps(answer), headers={
            "Content-Type": "application/x-amz-json-1.1", "Connection": "close"})
