"""amazon_connect's agent event stream: agent events read from a local Kinesis API."""

from __future__ import annotations

import time
from typing import Any

import orjson
from wallboard_plugins.amazon_connect import AmazonConnectConfig, AmazonConnectSource
from wallboard_plugins.amazon_connect.agent_stream import AgentEventMapper

from tests.ami_frames import until
from tests.connect_peer import KEY_ID, REGION, SECRET, KinesisPeer, agent_event
from tests.test_amazon_connect_live import connect_config, iso
from wallboard.kit.testing import SourceHarness, VirtualClock


def mapper() -> AgentEventMapper:
    """Alice by name, sales by queue id; Lunch is away."""
    return AgentEventMapper({"u-alice": "alice"}, {"q-sales": "sales"}, {"lunch": "away"},
                            "away")


def test_agent_events_map_to_agent_states_with_their_event_id() -> None:
    m = mapper()
    ready = m.map(agent_event("LOGIN", "ev-1", "u-alice"))
    assert ready == {"type": "agent.state", "id": "ev-1", "ts": 1796637600.0, "agent": "alice",
                     "state": "available", "queues": ["sales"]}
    on_call = m.map(agent_event("STATE_CHANGE", "ev-2", "u-alice", contacts=("CONNECTED",)))
    assert on_call is not None and on_call["state"] == "busy"
    wrap = m.map(agent_event("STATE_CHANGE", "ev-3", "u-alice", contacts=("ENDED",)))
    assert wrap is not None and wrap["state"] == "wrapup"
    lunch = m.map(agent_event("STATE_CHANGE", "ev-4", "u-bob", status="Lunch",
                              queues=("q-other",)))
    assert lunch is not None
    assert (lunch["agent"], lunch["state"], lunch["reason"]) == ("u-bob", "away", "Lunch")
    assert "queues" not in lunch  # no configured queue in its routing profile
    gone = m.map(agent_event("LOGOUT", "ev-5", "u-alice"))
    assert gone is not None and gone["state"] == "offline"
    assert m.map(agent_event("HEART_BEAT", "ev-6", "u-alice")) is None
    assert m.map(b"\x00 not json") is None
    assert m.map(orjson.dumps({"EventType": "STATE_CHANGE", "EventId": "ev-7"})) is None
    assert m.map(b"[1, 2]") is None
    # A heartbeat is routine; the others are counted (the source's wallboard_source_skipped).
    assert m.skipped == {"not_json": 1, "bad_agent_event": 2}


def stream_config(peer: KinesisPeer, key_id: str = KEY_ID, **stream: Any) -> AmazonConnectConfig:
    """A source that reads only the peer's stream."""
    return AmazonConnectConfig.model_validate({
        "type": "amazon_connect", "queues": {"q-sales": "sales"}, "agents": {"u-alice": "alice"},
        "aws": {"region": REGION, "aws_access_key_id": key_id, "aws_secret_access_key": SECRET},
        "agent_stream": {"stream_name": "connect-agents", "endpoint_url": peer.url,
                         "start": "TRIM_HORIZON", **stream}})


def ids(h: SourceHarness) -> list[str]:
    """The ids of the agent.state events emitted so far."""
    return [e["id"] for e in h.events if e["type"] == "agent.state"]


async def test_every_shard_is_read_and_a_reconnect_resumes_after_the_last_record() -> None:
    clock = VirtualClock()
    async with KinesisPeer(clock) as peer:
        peer.add("shard-0", agent_event("LOGIN", "ev-1", "u-alice"))
        peer.add("shard-1", agent_event("LOGIN", "ev-2", "u-bob"))
        source = AmazonConnectSource("ac", stream_config(peer))
        async with SourceHarness(source, clock=clock) as h:
            await h.wait_for(lambda: len(ids(h)) == 2, "read both shards")
            peer.add("shard-0", agent_event("STATE_CHANGE", "ev-3", "u-alice",
                                            contacts=("CONNECTED",)))
            await h.wait_for(lambda: len(ids(h)) == 3, "read the new record")
            await peer.drop()
            await h.wait_for(lambda: h.status == "down", "go down without the stream")
            peer.add("shard-1", agent_event("LOGOUT", "ev-4", "u-bob"))
            await peer.restore()
            await h.wait_for(lambda: len(ids(h)) == 4 and h.status == "up", "resume")
            await h.settle(0.2)
    # Nothing read twice: after the reconnect each shard goes on after its last sequence.
    assert sorted(ids(h)) == ["ev-1", "ev-2", "ev-3", "ev-4"]
    assert [(e["agent"], e["state"]) for e in h.events] == [
        ("alice", "available"), ("u-bob", "available"), ("alice", "busy"), ("u-bob", "offline")]
    iterators = [s.body for s in peer.seen if s.operation == "GetShardIterator"]
    assert [i["ShardIteratorType"] for i in iterators][:2] == ["TRIM_HORIZON", "TRIM_HORIZON"]


async def test_latest_skips_old_records_an_expired_iterator_is_renewed_and_resharding_followed(
        ) -> None:
    clock = VirtualClock()
    async with KinesisPeer(clock) as peer:
        peer.add("shard-0", agent_event("LOGIN", "ev-old", "u-alice"))
        source = AmazonConnectSource("ac", stream_config(peer, start="LATEST"))
        async with SourceHarness(source, clock=clock) as h:
            await h.wait_for(lambda: len(peer.requests("GetRecords")) >= 1, "read once")
            seq = peer.add("shard-0", agent_event("STATE_CHANGE", "ev-1", "u-alice",
                                                  status="Lunch"))
            await h.wait_for(lambda: len(ids(h)) == 1, "read the new record")
            peer.expire = 1
            peer.add("shard-0", agent_event("STATE_CHANGE", "ev-2", "u-alice"))
            await h.wait_for(lambda: len(ids(h)) == 2, "read on with a new iterator")
            # Resharding: shard-0 ends, its child starts with records already in it.
            peer.closed.add("shard-0")
            peer.add("shard-0a", agent_event("LOGOUT", "ev-3", "u-alice"))
            await h.wait_for(lambda: len(ids(h)) == 3, "read the child shard")
    assert ids(h) == ["ev-1", "ev-2", "ev-3"]
    assert h.statuses == ["starting", "up"]  # an expired iterator is no failure
    renewed = [s.body for s in peer.seen if s.operation == "GetShardIterator"]
    assert {"ShardId": "shard-0", "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
            "StartingSequenceNumber": seq, "StreamName": "connect-agents"} in renewed
    assert renewed[-1]["ShardId"] == "shard-0a"
    assert renewed[-1]["ShardIteratorType"] == "TRIM_HORIZON"


async def test_throughput_exceeded_backs_off_and_wrong_keys_are_named() -> None:
    clock = VirtualClock()
    async with KinesisPeer(clock) as peer:
        peer.add("shard-0", agent_event("LOGIN", "ev-1", "u-alice"))
        peer.throttle = 1
        source = AmazonConnectSource("ac", stream_config(peer))
        async with SourceHarness(source, clock=clock) as h:
            await h.wait_for(lambda: h.status == "down", "go down when throttled")
            error = h.last_error or ""
            await h.wait_for(lambda: len(ids(h)) == 1, "read after backing off")
        throttled = [s for s in peer.seen if s.status != 200]
        retried = [s for s in peer.seen if s.status == 200 and s.at > throttled[0].at]
        wrong = AmazonConnectSource("ac", stream_config(peer, key_id="AKIAWRONG"))
        async with SourceHarness(wrong, clock=VirtualClock()) as h2:
            await h2.wait_for(lambda: h2.status == "down", "go down with wrong keys")
            refused = h2.last_error or ""
    assert "ListShards: throttled by AWS (ProvisionedThroughputExceededException" in error
    assert "backing off 1s" in error and retried and retried[0].at - throttled[0].at >= 1.0
    assert "AWS refused the credentials (UnrecognizedClientException" in refused
    assert "kinesis:ListShards" in refused


async def test_the_stream_sets_agent_states_on_a_live_board(live_server: Any) -> None:
    async with KinesisPeer() as peer:
        now = time.time()
        peer.add("shard-0", agent_event("LOGIN", "ev-1", "u-alice", at=iso(now - 30)))
        peer.add("shard-0", agent_event("STATE_CHANGE", "ev-2", "u-alice",
                                        contacts=("CONNECTED",), at=iso(now - 20)))
        live = await live_server(connect_config(
            aws={"region": REGION, "aws_access_key_id": KEY_ID, "aws_secret_access_key": SECRET},
            agent_stream={"stream_name": "connect-agents", "endpoint_url": peer.url,
                          "start": "TRIM_HORIZON", "interval_s": 0.2}))
        api = await until(live, lambda api: api.get("agents", {}).get("alice", {}).get("state")
                          == "busy", "alice busy from the stream")
        peer.add("shard-0", agent_event("STATE_CHANGE", "ev-3", "u-alice", status="Lunch",
                                        at=iso(now - 10)))
        api = await until(live, lambda api: api["agents"]["alice"]["state"] == "away",
                          "alice away at lunch")
    assert api["sources"]["ac"]["status"] == "up"
