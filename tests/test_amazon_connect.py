"""amazon_connect: the contact event mapping, and the real-time poll against a local Connect API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import yaml
from wallboard_plugins.amazon_connect import AmazonConnectConfig, AmazonConnectSource
from wallboard_plugins.amazon_connect.mapping import Mapper, MappingError
from wallboard_plugins.amazon_connect.realtime import metric_requests

from tests.connect_peer import ARN, INSTANCE, KEY_ID, REGION, SECRET, ConnectPeer, metric, user
from wallboard.kit.testing import SourceHarness, VirtualClock

T0 = "2026-12-07T10:00:00.000Z"


def contact_event(etype: str, contact: str = "c-1", queue: str | None = "q-sales",
                  agent: str | None = None, **times: str) -> dict[str, Any]:
    """An Amazon Connect contact event as EventBridge delivers it."""
    detail: dict[str, Any] = {"eventType": etype, "contactId": contact, "channel": "VOICE",
                              "instanceArn": ARN, "initiationMethod": "INBOUND",
                              "initiationTimestamp": T0}
    if queue is not None:
        detail["queueInfo"] = {"queueArn": f"{ARN}/queue/{queue}", "queueType": "STANDARD",
                               "enqueueTimestamp": times.get("enqueued", T0)}
    if agent is not None:
        detail["agentInfo"] = {"agentArn": f"{ARN}/agent/{agent}"}
        if "connected" in times:
            detail["agentInfo"]["connectedToAgentTimestamp"] = times["connected"]
    if "disconnected" in times:
        detail["disconnectTimestamp"] = times["disconnected"]
    return {"version": "0", "id": f"evb-{contact}-{etype}", "source": "aws.connect",
            "detail-type": "Amazon Connect Contact Event", "account": "111122223333",
            "time": T0, "region": REGION, "resources": [ARN], "detail": detail}


def one(mapper: Mapper, payload: dict[str, Any]) -> dict[str, Any]:
    """The single event an EventBridge event maps to."""
    events = mapper.map(payload)
    assert len(events) == 1, events
    return events[0]


def test_a_lifecycle_maps_to_queue_leg_events_with_deterministic_ids() -> None:
    mapper = Mapper({"q-sales": "sales"}, {f"{ARN}/agent/u-alice": "alice"})
    assert mapper.map(contact_event("INITIATED", queue=None)) == []
    queued = one(mapper, contact_event("QUEUED", enqueued="2026-12-07T10:00:05Z"))
    assert queued["id"] == "c-1@sales:queued"
    assert (queued["type"], queued["queue"], queued["channel"]) == ("contact.queued", "sales",
                                                                     "voice")
    answered = one(mapper, contact_event("CONNECTED_TO_AGENT", agent="u-alice",
                                         enqueued="2026-12-07T10:00:05Z",
                                         connected="2026-12-07T10:00:17Z"))
    assert (answered["id"], answered["agent"], answered["wait_s"]) == (
        "c-1@sales:answered", "alice", 12.0)
    ended = one(mapper, contact_event("DISCONNECTED", agent="u-alice", connected=T0,
                                      disconnected="2026-12-07T10:03:00Z"))
    assert (ended["type"], ended["id"], ended["talk_s"]) == ("contact.ended", "c-1@sales:ended",
                                                             180.0)
    # Queued, never connected: an abandon, waited from the enqueue to the hang-up.
    gone = one(mapper, contact_event("DISCONNECTED", contact="c-2",
                                     disconnected="2026-12-07T10:00:40Z"))
    assert (gone["type"], gone["id"], gone["wait_s"]) == ("contact.abandoned",
                                                          "c-2@sales:abandoned", 40.0)
    # Re-delivered: the same ids, which the journal counts once.
    assert mapper.map(contact_event("DISCONNECTED", contact="c-2",
                                    disconnected="2026-12-07T10:00:40Z")) == [gone]


def test_a_contact_moved_to_another_queue_while_waiting_is_a_transfer() -> None:
    mapper = Mapper({"q-sales": "sales", "q-support": "support"})
    first = contact_event("QUEUED", enqueued="2026-12-07T10:00:00Z")
    mapper.remember(first)
    moved = contact_event("QUEUED", queue="q-support", enqueued="2026-12-07T10:01:30Z")
    transferred, queued = mapper.map(moved)
    assert transferred == {"type": "contact.transferred", "id": "c-1@sales:transferred",
                           "ts": queued["ts"], "queue": "sales", "contact_id": "c-1",
                           "to_queue": "support", "wait_s": 90.0}
    assert queued["id"] == "c-1@support:queued"
    mapper.remember(moved)
    # The first QUEUED delivered again later is not a move back.
    assert [e["type"] for e in mapper.map(first)] == ["contact.queued"]
    mapper.remember(first)
    assert mapper.waiting == {"c-1": ("support", queued["ts"])}
    mapper.remember(contact_event("DISCONNECTED", queue="q-support",
                                  enqueued="2026-12-07T10:01:30Z", disconnected=T0))
    assert mapper.waiting == {}


def test_events_not_counted_and_unusable_bodies() -> None:
    mapper = Mapper()
    # Unlisted queues keep their id; never-queued contacts and agent queues are not counted.
    assert one(mapper, contact_event("QUEUED", queue="q-other"))["queue"] == "q-other"
    assert mapper.map(contact_event("DISCONNECTED", queue=None, disconnected=T0)) == []
    personal = contact_event("QUEUED")
    personal["detail"]["queueInfo"]["queueType"] = "AGENT"
    assert mapper.map(personal) == []
    assert mapper.map(contact_event("CONTACT_DATA_UPDATED")) == []
    for bad, field in [([], "$"), ({"detail-type": "EC2 Instance State-change Notification"},
                                   "detail-type"),
                       ({**contact_event("QUEUED"), "detail": "x"}, "detail"),
                       (contact_event("CONNECTED_TO_AGENT", agent="u-1"),
                        "detail.agentInfo.connectedToAgentTimestamp"),
                       (contact_event("DISCONNECTED"), "detail.disconnectTimestamp")]:
        with pytest.raises(MappingError) as caught:
            mapper.map(bad)
        assert caught.value.field == field
    mapper.remember([])  # nothing to note, no error
    assert mapper.waiting == {}


def test_more_than_100_queues_take_several_requests() -> None:
    ids = [f"q-{n}" for n in range(250)]
    requests = metric_requests(INSTANCE, ids, ["VOICE"])
    assert [len(r["Filters"]["Queues"]) for r in requests] == [100, 100, 50]
    assert requests[0]["Groupings"] == ["QUEUE"] and requests[0]["Filters"]["Channels"] == [
        "VOICE"]


def poll_config(peer: ConnectPeer, **poll: Any) -> AmazonConnectConfig:
    """A polling source for the peer's instance: three Connect queues on two board queues."""
    aws = {"region": REGION, "aws_access_key_id": KEY_ID, "aws_secret_access_key": SECRET}
    aws.update({k: poll.pop(k) for k in list(poll) if k.startswith("aws_")})
    settings = {"instance_id": INSTANCE, "endpoint_url": peer.url, "interval_s": 15, **poll}
    return AmazonConnectConfig.model_validate({
        "type": "amazon_connect", "poll": settings, "aws": aws,
        "queues": {"q-sales": "sales", f"{ARN}/queue/q-sales-2": "sales", "q-chat": "chat"},
        "agents": {"u-alice": "alice"}, "statuses": {"Lunch": "away", "Training": "away"}})


def stock(peer: ConnectPeer) -> None:
    """Two sales queues and a chat queue with contacts waiting; three agents logged in."""
    peer.metrics = {
        "q-sales": [metric("CONTACTS_IN_QUEUE", 3), metric("OLDEST_CONTACT_AGE", 95, "SECONDS"),
                    metric("AGENTS_AVAILABLE", 1), metric("AGENTS_ON_CONTACT", 4),
                    metric("AGENTS_AFTER_CONTACT_WORK", 1), metric("AGENTS_NON_PRODUCTIVE", 2),
                    metric("AGENTS_ERROR", 1), metric("AGENTS_ONLINE", 9)],
        "q-sales-2": [metric("CONTACTS_IN_QUEUE", 2), metric("OLDEST_CONTACT_AGE", 30, "SECONDS"),
                      metric("AGENTS_AVAILABLE", 2)],
        "q-chat": [metric("CONTACTS_IN_QUEUE", 0), metric("OLDEST_CONTACT_AGE", None, "SECONDS")],
    }
    peer.users = [user("u-alice", "Available", ("CONNECTED",)), user("u-bob", "Lunch"),
                  user("u-carol", "Available", ("ENDED",)), user("u-dan", "Available")]


async def test_poll_follows_next_token_across_pages_and_maps_the_snapshot() -> None:
    clock = VirtualClock()
    async with ConnectPeer(clock) as peer:
        stock(peer)
        peer.page_size = 1  # one result per page: three metric pages, four user pages
        source = AmazonConnectSource("ac", poll_config(peer))
        async with SourceHarness(source, clock=clock) as h:
            await h.wait_for(lambda: h.status == "up", "poll once")
        metrics = peer.requests("GetCurrentMetricData")[:3]
        assert [r.body.get("NextToken") for r in metrics] == [None, "page-1", "page-2"]
        assert metrics[0].body["Filters"] == {"Queues": ["q-sales", "q-sales-2", "q-chat"]}
        assert metrics[0].body["Groupings"] == ["QUEUE"]
        assert {m["Name"] for m in metrics[0].body["CurrentMetrics"]} >= {
            "CONTACTS_IN_QUEUE", "OLDEST_CONTACT_AGE", "AGENTS_AVAILABLE", "AGENTS_STAFFED"}
        users = peer.requests("GetCurrentUserData")[:4]
        assert [r.body.get("NextToken") for r in users] == [None, "page-1", "page-2", "page-3"]
    first = h.events[:6]
    snapshots = {e["queue"]: e for e in first if e["type"] == "queue.snapshot"}
    # The two Connect queues of sales add up; the oldest contact is the older of the two.
    assert snapshots["sales"]["waiting"] == 5 and snapshots["sales"]["oldest_wait_s"] == 95
    assert snapshots["sales"]["agents"] == {"available": 3, "busy": 4, "wrapup": 1, "away": 3}
    assert snapshots["chat"]["waiting"] == 0 and "oldest_wait_s" not in snapshots["chat"]
    states = {e["agent"]: (e["state"], e.get("reason")) for e in first
              if e["type"] == "agent.state"}
    assert states == {"alice": ("busy", None), "u-bob": ("away", "Lunch"),
                      "u-carol": ("wrapup", None), "u-dan": ("available", None)}


async def test_agent_states_are_emitted_when_they_change_and_offline_when_gone() -> None:
    clock = VirtualClock()
    async with ConnectPeer(clock) as peer:
        stock(peer)
        source = AmazonConnectSource("ac", poll_config(peer))
        async with SourceHarness(source, clock=clock) as h:
            await h.wait_for(lambda: len(peer.requests("GetCurrentUserData")) >= 2, "poll twice")
            peer.users = [user("u-alice", "Available"), user("u-bob", "Lunch")]
            count = len(peer.requests("GetCurrentUserData"))
            await h.wait_for(lambda: len(peer.requests("GetCurrentUserData")) >= count + 2,
                             "poll after the change")
    states = [(e["agent"], e["state"]) for e in h.events if e["type"] == "agent.state"]
    # Four at the first poll, none at the second (no change), then alice free, carol and dan
    # logged out; bob, unchanged, is not sent again.
    assert states[:4] == [("alice", "busy"), ("u-bob", "away"), ("u-carol", "wrapup"),
                          ("u-dan", "available")]
    assert sorted(states[4:]) == [("alice", "available"), ("u-carol", "offline"),
                                  ("u-dan", "offline")]


async def test_throttling_backs_off_then_recovers() -> None:
    clock = VirtualClock()
    async with ConnectPeer(clock) as peer:
        stock(peer)
        peer.throttle = 2  # the first two requests are refused with a ThrottlingException
        source = AmazonConnectSource("ac", poll_config(peer, user_data=False))
        async with SourceHarness(source, clock=clock) as h:
            await h.wait_for(lambda: h.status == "down", "go down when throttled")
            error = h.last_error or ""
            await h.wait_for(lambda: h.status == "up", "recover from throttling")
            assert h.statuses[:3] == ["starting", "down", "up"]
        tries = [s for s in peer.seen if s.operation == "GetCurrentMetricData"][:3]
    assert [s.status for s in tries] == [429, 429, 200]
    # On the virtual clock: at least 1 s, then at least 2 s (doubled) before the next try.
    assert tries[1].at - tries[0].at >= 1.0 and tries[2].at - tries[1].at >= 2.0
    assert "throttled by AWS (ThrottlingException" in error and "backing off 1s" in error
    assert h.events and h.events[0]["type"] == "queue.snapshot"


@pytest.mark.parametrize(("credentials", "code"), [
    ({"aws_access_key_id": "AKIAWRONGKEY"}, "UnrecognizedClientException"),
    ({"aws_secret_access_key": "not-the-secret"}, "InvalidSignatureException"),
    ({}, "AccessDeniedException"),
])
async def test_refused_credentials_put_the_source_down_with_a_clear_error(
        credentials: dict[str, str], code: str) -> None:
    clock = VirtualClock()
    async with ConnectPeer(clock) as peer:
        peer.deny = code == "AccessDeniedException"
        source = AmazonConnectSource("ac", poll_config(peer, **credentials))
        async with SourceHarness(source, clock=clock) as h:
            await h.wait_for(lambda: h.status == "down", "go down")
            error = h.last_error or ""
    assert f"AWS refused the credentials ({code}" in error
    assert "not-the-secret" not in error and not h.events


async def test_the_peer_going_away_puts_the_source_down_until_it_returns() -> None:
    clock = VirtualClock()
    async with ConnectPeer(clock) as peer:
        stock(peer)
        source = AmazonConnectSource("ac", poll_config(peer, user_data=False))
        async with SourceHarness(source, clock=clock) as h:
            await h.wait_for(lambda: h.status == "up", "come up")
            await peer.drop()
            await h.wait_for(lambda: h.status == "down", "go down without its peer")
            assert "GetCurrentMetricData" in (h.last_error or "")
            await peer.restore()
            await h.wait_for(lambda: h.status == "up", "come back")
    assert h.statuses == ["starting", "up", "down", "up"]


def shape_problems(shape: Any, value: Any, path: str) -> list[str]:
    """Where `value` strays from a botocore shape: unknown members, wrong kinds of value."""
    if shape.type_name == "structure":
        if not isinstance(value, dict):
            return [f"{path}: not an object"]
        return [problem for key, item in value.items()
                for problem in ([f"{path}.{key}: not in {shape.name}"]
                                if key not in shape.members
                                else shape_problems(shape.members[key], item, f"{path}.{key}"))]
    if shape.type_name == "list":
        return [p for n, item in enumerate(value)
                for p in shape_problems(shape.member, item, f"{path}[{n}]")]
    if shape.type_name == "map":
        return [p for k, item in value.items() for p in shape_problems(shape.value, item,
                                                                        f"{path}.{k}")]
    if shape.type_name == "string" and shape.enum and value not in shape.enum:
        return [f"{path}: {value!r} is not one of {shape.name}"]
    kinds = {"string": str, "double": (int, float), "integer": int, "long": int,
             "timestamp": (int, float), "boolean": bool}
    expected = kinds.get(shape.type_name)
    ok = value is None or expected is None or isinstance(value, expected)
    return [] if ok else [f"{path}: {value!r} is not a {shape.type_name}"]


def test_payloads_use_only_the_connect_service_models_fields() -> None:
    model = botocore.session.get_session().get_service_model("connect")
    recorded = json.loads((Path(__file__).parent / "data" / "amazon_connect_current.json")
                          .read_text())
    metrics_out = model.operation_model("GetCurrentMetricData").output_shape
    users_out = model.operation_model("GetCurrentUserData").output_shape
    peer = ConnectPeer()
    stock(peer)
    results = [{"Dimensions": {"Queue": {"Id": q}}, "Collections": c}
               for q, c in peer.metrics.items()]
    problems = (
        shape_problems(metrics_out, {k: v for k, v in recorded.items()
                                     if k != "UserDataList"}, "recording")
        + shape_problems(users_out, {"UserDataList": recorded["UserDataList"]}, "recording")
        + shape_problems(metrics_out, {"MetricResults": results}, "peer")
        + shape_problems(users_out, {"UserDataList": peer.users}, "peer"))
    assert problems == []
    # And the requests the source makes are valid input of the model (botocore checks them too).
    request = metric_requests(INSTANCE, ["q-1"], ["VOICE"])[0]
    assert shape_problems(model.operation_model("GetCurrentMetricData").input_shape,
                          request, "request") == []


def test_the_documented_example_config_is_valid() -> None:
    page = (Path(__file__).resolve().parents[1] / "docs" / "plugins" / "amazon_connect.md")
    example = page.read_text().split("```yaml\n", 1)[1].split("```", 1)[0]
    settings = yaml.safe_load(example)["sources"]["connect"]
    config = AmazonConnectConfig.model_validate(settings)
    assert config.poll is not None and config.agent_stream is not None
    assert Mapper(config.queues).queues == {"4f0b6c1e-0c55-4a4a-9a8e-8e4b4c0f1a11": "sales",
                                             "77aa-support": "support"}
