"""The bundled sources pass the plugin contract suite, like any third-party source must."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import ClassVar

import orjson
from wallboard_plugins.amazon_connect import AmazonConnectSource
from wallboard_plugins.simulator import SimulatorSource
from wallboard_plugins.twilio_taskrouter import TwilioTaskRouterSource
from wallboard_plugins.webhook import WebhookSource

from tests.connect_peer import agent_event
from wallboard.kit.testing import EVENTS, MALFORMED, PEER_DROP, HttpReplay, SourceContract

NO_PEER = "{} has no peer to lose: {}"


class TestSimulatorContract(SourceContract):
    """The simulator generates events in-process; the checks that need a peer do not apply."""

    source_class = SimulatorSource
    config: ClassVar[dict] = {"seed": 7, "warmup_s": 3600, "tick_s": 0.05}
    bad_configs: ClassVar[list] = [
        ({"tick_s": 0}, "tick_s: Input should be greater than 0"),
        ({"profile": [1.0] * 23}, "profile: List should have at least 24 items"),
        ({"queues": {"q": {"arrivals_per_hour": 10, "agents": 1, "aht_s": 60,
                           "wrap_s": 90}}}, "sources.contract.queues.q: wrap_s must be less"),
        ({"queues": {"q": {"channel": "fax", "arrivals_per_hour": 10, "agents": 1,
                           "aht_s": 60}}}, "queues.q.channel: must be one of"),
    ]
    not_applicable: ClassVar[dict] = {
        PEER_DROP: NO_PEER.format("the simulator", "it generates events in-process"),
        MALFORMED: NO_PEER.format("the simulator", "nothing outside it sends it bytes"),
    }


class TestWebhookContract(SourceContract):
    """The webhook is fed by requests to the server's route, not by a connection it holds."""

    source_class = WebhookSource
    config: ClassVar[dict] = {"token": "contract-token-1", "secret": "s" * 16}
    bad_configs: ClassVar[list] = [
        ({"token": "short"}, "token: String should have at least 8 characters"),
        ({"token": None}, "token: Field required"),
        ({"secret": "tiny"}, "secret: String should have at least 16 characters"),
        ({"tolerance_s": -5}, "tolerance_s: Input should be greater than 0"),
    ]
    # Its events, and malformed bodies, arrive through POST /api/events: tests/test_bad_input.py
    # and tests/test_webhook_signing.py check those against a real server.
    not_applicable: ClassVar[dict] = {
        EVENTS: "the webhook emits nothing itself; POST /api/events validates each event",
        PEER_DROP: NO_PEER.format("the webhook", "it is up while the server runs"),
        MALFORMED: "malformed request bodies get a 400 from the route and are counted",
    }


class TestTwilioTaskRouterContract(SourceContract):
    """TaskRouter posts callbacks to the server's route; the source holds no connection."""

    source_class = TwilioTaskRouterSource
    config: ClassVar[dict] = {"auth_token": "0123456789abcdef0123456789abcdef",
                              "queues": {"WQ1": "sales"}, "activities": {"Lunch": "away"}}
    bad_configs: ClassVar[list] = [
        ({"auth_token": "short"}, "auth_token: String should have at least 16 characters"),
        ({"auth_token": None}, "auth_token: Field required"),
        ({"activities": {"Lunch": "eating"}}, "activities.Lunch: Input should be"),
        ({"public_url": "wallboard.example"}, "public_url: String should match pattern"),
        ({"queued_on": "task.moved"}, "queued_on: Input should be"),
        ({"auth_tokn": "x"}, "auth_tokn: Extra inputs are not permitted"),
    ]
    # Its callbacks, bad signatures and malformed bodies arrive through
    # POST /api/twilio/{source}/events: tests/test_twilio_live.py checks those on a real server.
    not_applicable: ClassVar[dict] = {
        EVENTS: "twilio_taskrouter emits nothing itself; its route validates each callback",
        PEER_DROP: NO_PEER.format("twilio_taskrouter", "it is up while the server runs"),
        MALFORMED: "malformed or unsigned callbacks get a 400 or 403 from the route, counted",
    }


class TestTwilioTaskRouterReconcileContract(SourceContract):
    """With `reconcile`, the source polls TaskQueue statistics: every check applies."""

    source_class = TwilioTaskRouterSource
    config: ClassVar[dict] = {
        "auth_token": "0123456789abcdef0123456789abcdef",
        "reconcile": {"account_sid": "AC" + "0" * 32, "workspace_sid": "WS" + "0" * 32,
                      "task_queues": {"WQ" + "0" * 32: "sales"}, "api_url": "{peer_url}"}}
    bad_configs: ClassVar[list] = [
        ({"reconcile": {"account_sid": "AC1", "workspace_sid": "WS" + "0" * 32,
                        "task_queues": {"WQ1": "sales"}}},
         "reconcile.account_sid: String should match pattern"),
        ({"reconcile": {"account_sid": "AC" + "0" * 32, "workspace_sid": "WS" + "0" * 32,
                        "task_queues": {}}}, "reconcile.task_queues: Dictionary should have"),
    ]
    peer = HttpReplay(Path(__file__).resolve().parent / "data"
                      / "twilio_taskqueue_statistics.json")


CONNECT_EVENTS_ONLY: dict = {"events_secret": "0123456789abcdef-secret",
                             "queues": {"q-sales": "sales"}}


class TestAmazonConnectEventsContract(SourceContract):
    """EventBridge posts contact events to the server's route; without `poll` nothing is held."""

    source_class = AmazonConnectSource
    config: ClassVar[dict] = CONNECT_EVENTS_ONLY
    bad_configs: ClassVar[list] = [
        ({"events_secret": "short"}, "events_secret: String should have at least 16 characters"),
        ({"events_secret": None}, "give events_secret (EventBridge contact events), poll,"),
        ({"events_header": "X Key"}, "events_header: String should match pattern"),
        ({"statuses": {"Lunch": "eating"}}, "statuses.Lunch: Input should be"),
        ({"max_requests_per_s": 0}, "max_requests_per_s: Input should be greater than 0"),
    ]
    # Its events, bad secrets and malformed bodies arrive through
    # POST /api/amazon-connect/{source}/events: tests/test_amazon_connect_live.py checks those.
    not_applicable: ClassVar[dict] = {
        EVENTS: "without poll, amazon_connect emits nothing itself; its route maps each event",
        PEER_DROP: NO_PEER.format("amazon_connect without poll", "it is up while the server runs"),
        MALFORMED: "malformed or unauthenticated requests get a 422, 401 or 403, counted",
    }


class TestAmazonConnectPollContract(SourceContract):
    """With `poll`, the source asks the Connect API through botocore: every check applies."""

    source_class = AmazonConnectSource
    config: ClassVar[dict] = {
        **CONNECT_EVENTS_ONLY,
        "aws": {"region": "eu-west-2", "aws_access_key_id": "testing",
                "aws_secret_access_key": "testing"},
        "poll": {"instance_id": "inst-0001", "endpoint_url": "{peer_url}"}}
    bad_configs: ClassVar[list] = [
        ({"poll": {"instance_id": "inst/1"}}, "poll.instance_id: String should match pattern"),
        ({"aws": {"region": "Europe"}}, "aws.region: String should match pattern"),
        ({"aws": {"region": "eu-west-2", "aws_access_key_id": "testing"}},
         "give aws_access_key_id and aws_secret_access_key together"),
        ({"aws": None}, "poll and agent_stream need aws"),
        ({"poll": {"instance_id": "inst-1", "channels": ["FAX"]}},
         "poll.channels[0]: Input should be"),
        ({"queues": {}}, "poll needs queues"),
    ]
    peer = HttpReplay(Path(__file__).resolve().parent / "data" / "amazon_connect_current.json")


def agent_stream_body() -> bytes:
    """One body for ListShards, GetShardIterator and GetRecords (each reads its own members).

    Written at import, so the agent event's time is recent whenever the suite runs.
    """
    at = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 5))
    record = {"SequenceNumber": "49600000000000000000000000000000000000000000000001",
              "ApproximateArrivalTimestamp": time.time() - 5, "PartitionKey": "u-alice",
              "Data": base64.b64encode(agent_event("STATE_CHANGE", "ev-1", "u-alice",
                                                   at=at)).decode()}
    return orjson.dumps({"Shards": [{"ShardId": "shardId-000000000000",
                                     "HashKeyRange": {"StartingHashKey": "0",
                                                      "EndingHashKey": "1"},
                                     "SequenceNumberRange": {"StartingSequenceNumber": "1"}}],
                         "ShardIterator": "AAAAAAAAAAE=", "Records": [record],
                         "NextShardIterator": "AAAAAAAAAAI=", "MillisBehindLatest": 0})


class TestAmazonConnectAgentStreamContract(SourceContract):
    """With `agent_stream`, the source reads Kinesis through botocore: every check applies."""

    source_class = AmazonConnectSource
    config: ClassVar[dict] = {
        "aws": {"region": "eu-west-2", "aws_access_key_id": "testing",
                "aws_secret_access_key": "testing"},
        "agent_stream": {"stream_name": "connect-agents", "endpoint_url": "{peer_url}"}}
    bad_configs: ClassVar[list] = [
        ({"agent_stream": {"stream_name": "connect agents"}},
         "agent_stream.stream_name: String should match pattern"),
        ({"agent_stream": {"stream_name": "s", "start": "AT_TIMESTAMP"}},
         "agent_stream.start: Input should be"),
        ({"agent_stream": {"stream_name": "s", "interval_s": 0.01}},
         "agent_stream.interval_s: Input should be greater than or equal to 0.2"),
        ({"aws": None}, "poll and agent_stream need aws"),
    ]
    peer = HttpReplay(agent_stream_body(), content_type="application/x-amz-json-1.1")
