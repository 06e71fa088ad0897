"""genesys_cloud against the local Genesys Cloud: connect, snapshot, faults, channel renewal."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from wallboard_plugins.genesys_cloud import GenesysCloudConfig, GenesysCloudSource
from wallboard_plugins.genesys_cloud.mapping import Mapper

from tests.genesys_peer import (
    ALICE,
    BOB,
    CLIENT_ID,
    CLIENT_SECRET,
    CLOSING,
    HEARTBEAT,
    Q_SALES,
    Q_SUPPORT,
    GenesysPeer,
    conversation,
    presence,
    queue_topic,
    routing,
)
from wallboard.kit.source import DOWN, STARTING, UP
from wallboard.kit.testing import SourceHarness


def genesys_config(peer: GenesysPeer, **extra: Any) -> dict[str, Any]:
    """The source's settings for the local peer: two queues, two users."""
    return {"type": "genesys_cloud", "api_url": peer.url, "login_url": peer.url,
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "queues": {Q_SUPPORT: "support", Q_SALES: "sales"},
            "users": {ALICE: {"name": "Alice", "queues": [Q_SUPPORT]},
                      BOB: {"name": "Bob", "queues": [Q_SUPPORT, Q_SALES]}}, **extra}


@asynccontextmanager
async def running(peer: GenesysPeer, **extra: Any) -> AsyncIterator[SourceHarness]:
    """The source under the real runtime on a virtual clock, against `peer`."""
    await peer.start()
    config = GenesysCloudConfig.model_validate(genesys_config(peer, **extra))
    harness = SourceHarness(GenesysCloudSource("gc", config))
    try:
        await harness.start()
        yield harness
    finally:
        await harness.stop()
        await peer.stop()


def source(h: SourceHarness) -> GenesysCloudSource:
    """The harness's source, typed."""
    assert isinstance(h.source, GenesysCloudSource)
    return h.source


def of_type(h: SourceHarness, kind: str) -> list[dict[str, Any]]:
    """Emitted events of one type."""
    return [e for e in h.events if e["type"] == kind]


async def test_connect_subscribes_every_topic_and_snapshots_users_and_queues() -> None:
    now = time.time()
    peer = GenesysPeer(waiting={Q_SUPPORT: {"conv-w1": now - 30}},
                       users={ALICE: ("On Queue", "IDLE"), BOB: ("Meal", "OFF_QUEUE")})
    async with running(peer) as h:
        await h.wait_for(lambda: h.status == UP, "come up")
        [topics] = peer.subscriptions.values()
        assert sorted(topics) == sorted([
            queue_topic(Q_SUPPORT), queue_topic(Q_SALES),
            f"v2.users.{ALICE}.routingStatus", f"v2.users.{ALICE}.presence",
            f"v2.users.{BOB}.routingStatus", f"v2.users.{BOB}.presence"])
        [queued] = of_type(h, "contact.queued")
        assert queued["id"] == "conv-w1@support:queued" and queued["ts"] == pytest.approx(
            now - 30, abs=0.01)
        states = {e["agent"]: (e["state"], e.get("reason"), e["queues"])
                  for e in of_type(h, "agent.state")}
        assert states == {"Alice": ("available", None, ["support"]),
                          "Bob": ("away", "meal", ["sales", "support"])}
        snaps = {e["queue"]: e for e in of_type(h, "queue.snapshot")}
        assert snaps["support"]["waiting"] == 1
        assert snaps["support"]["agents"] == {"available": 1, "away": 1}
        assert snaps["sales"]["waiting"] == 0 and snaps["sales"]["agents"] == {"away": 1}
        assert not h.invalid
        # The documented order: token, channel, subscriptions, socket, then the snapshot.
        assert [p for _, p in peer.requests][:3] == [
            "/oauth/token", "/api/v2/notifications/channels",
            f"/api/v2/notifications/channels/{next(iter(peer.subscriptions))}/subscriptions"]


async def test_wrong_credentials_go_down_with_a_clear_error_and_no_retry_storm() -> None:
    async with running(GenesysPeer(), client_secret="wrong-secret") as h:
        await h.wait_for(lambda: h.status == DOWN, "go down")
        await h.settle(0.3)
        assert "refused client" in (h.last_error or "")
        assert "invalid_client: client not found" in (h.last_error or "")
        # The runtime waits auth_retry_s (300 s) between tries: a few tries, not a storm.
        assert h.clock.slept and min(h.clock.slept) >= 300
        assert h.statuses == [STARTING, DOWN]


async def test_rate_limit_retry_after_is_honoured_then_it_comes_up() -> None:
    peer = GenesysPeer()
    peer.refuse.append(("/api/v2/analytics/queues/observations/query", 429,
                        {"Retry-After": "42"}))
    async with running(peer) as h:
        await h.wait_for(lambda: h.status == DOWN, "go down on the 429")
        assert "HTTP 429 (rate limited); retry after 42s" in (h.last_error or "")
        await h.wait_for(lambda: h.status == UP, "come up after the wait")
        assert h.clock.slept[0] >= 42  # the runtime's back-off waited at least Retry-After
        assert h.statuses == [STARTING, DOWN, UP]


async def test_a_revoked_token_is_refreshed_on_its_401_without_going_down() -> None:
    peer = GenesysPeer()
    async with running(peer) as h:
        await h.wait_for(lambda: h.status == UP, "come up")
        peer.expire_tokens()
        await peer.send_text(orjson.dumps(CLOSING).decode())
        await h.wait_for(lambda: source(h).channels_opened == 2, "open a second channel")
        assert source(h).api.tokens_fetched == 2
        assert peer.requests.count(("POST", "/oauth/token")) == 2
        assert h.statuses == [STARTING, UP]


async def test_a_token_near_its_expiry_is_renewed_before_use() -> None:
    peer = GenesysPeer(token_lifetime_s=3600)
    async with running(peer) as h:
        await h.wait_for(lambda: h.status == UP, "come up")
        h.clock.advance(3600 - 30)  # within the refresh margin
        await peer.send_text(orjson.dumps(CLOSING).decode())
        await h.wait_for(lambda: source(h).channels_opened == 2, "open a second channel")
        assert source(h).api.tokens_fetched == 2
        assert len(peer.tokens) == 2  # the old token still worked: no 401 was needed
        assert h.statuses == [STARTING, UP]


async def test_channel_expiry_opens_a_new_channel_resubscribes_and_snapshots_again() -> None:
    now = time.time()
    peer = GenesysPeer(channel_lifetime_s=[1800.0],
                       waiting={Q_SUPPORT: {"conv-w1": now - 10}})
    async with running(peer) as h:
        await h.wait_for(lambda: h.status == UP, "come up")
        first = dict(peer.subscriptions)
        h.clock.advance(1800 - 600 + 1)  # renew_before_s (600) before it expires
        peer.waiting[Q_SUPPORT]["conv-w2"] = now - 5
        await peer.send_text(orjson.dumps(HEARTBEAT).decode())
        await h.wait_for(lambda: len(peer.subscriptions) == 2, "subscribe a second channel")
        await h.wait_for(lambda: len(of_type(h, "contact.queued")) == 2, "snapshot again")
        [(old, topics)] = first.items()
        [new] = set(peer.subscriptions) - {old}
        assert peer.subscriptions[new] == topics
        await h.wait_for(lambda: peer.connections == 2 and peer.sockets == 1,
                         "open the new socket and close the old")
        await peer.publish(queue_topic(Q_SALES), conversation("conv-s1", Q_SALES, now - 2))
        await h.wait_for(lambda: any(e.get("contact_id") == "conv-s1" for e in h.events),
                         "hear the new socket")
        assert [e["contact_id"] for e in of_type(h, "contact.queued")] == [
            "conv-w1", "conv-w2", "conv-s1"]
        assert h.statuses == [STARTING, UP]


async def test_malformed_notifications_are_skipped_and_counted_never_fatal() -> None:
    now = time.time()
    peer = GenesysPeer(users={ALICE: ("On Queue", "IDLE")})
    bad = ["not json", "[]", '{"topicName": 5}', orjson.dumps({
        "topicName": queue_topic(Q_SUPPORT), "eventBody": {"id": "x" * 500,
                                                           "participants": []}}).decode(),
           orjson.dumps({"topicName": queue_topic(Q_SUPPORT),
                         "eventBody": {"id": "c1", "participants": "none"}}).decode(),
           orjson.dumps({"topicName": f"v2.users.{ALICE}.routingStatus",
                         "eventBody": {"routingStatus": 7}}).decode(),
           orjson.dumps({"topicName": queue_topic(Q_SUPPORT), "eventBody": {
               "id": "c2", "participants": [{"purpose": "x"}] * 201}}).decode()]
    async with running(peer) as h:
        await h.wait_for(lambda: h.status == UP, "come up")
        for text in bad:
            await peer.send_text(text)
        await peer.publish(queue_topic(Q_SUPPORT), conversation("conv-ok", Q_SUPPORT, now - 3))
        await h.wait_for(lambda: any(e.get("contact_id") == "conv-ok" for e in h.events),
                         "map the good one after the bad ones")
        assert source(h).malformed == len(bad)
        assert source(h).skipped == {"not_json": 1, "no_topic": 2, "bad_conversation": 3,
                                     "bad_user_status": 1}
        assert h.crashes == 0 and not h.invalid and h.statuses == [STARTING, UP]


async def test_a_drop_mid_message_reconnects_and_counts_nothing_twice() -> None:
    now = time.time()
    peer = GenesysPeer(users={ALICE: ("On Queue", "IDLE")})
    async with running(peer) as h:
        await h.wait_for(lambda: h.status == UP, "come up")
        call = conversation("conv-1", Q_SUPPORT, now - 60, answered=now - 50, agent=ALICE)
        await peer.publish(queue_topic(Q_SUPPORT), call)
        await peer.publish(f"v2.users.{ALICE}.routingStatus", routing("INTERACTING", now - 50))
        await h.wait_for(lambda: len(of_type(h, "contact.answered")) == 1, "answer")
        await peer.drop(mid_message=True)
        await h.wait_for(lambda: h.status == DOWN, "go down")
        assert h.crashes == 0
        await peer.restore()
        await h.wait_for(lambda: h.status == UP, "come back")
        # Genesys resends the whole conversation on its next change: only the end is new.
        ended = conversation("conv-1", Q_SUPPORT, now - 60, answered=now - 50, agent=ALICE,
                             ended=now - 10, hung_up=now - 10)
        await peer.publish(queue_topic(Q_SUPPORT), call)
        await peer.publish(queue_topic(Q_SUPPORT), ended)
        await peer.publish(f"v2.users.{ALICE}.presence", presence("On Queue", now - 9))
        await h.wait_for(lambda: len(of_type(h, "contact.ended")) == 1, "end")
        ids = Counter(e["id"] for e in h.events if "id" in e)
        assert ids == {"conv-1@support:queued": 1, "conv-1@support:answered": 1,
                       "conv-1@support:ended": 1}
        [end] = of_type(h, "contact.ended")
        assert end["talk_s"] == pytest.approx(40, abs=0.01) and end["agent"] == "Alice"
        assert h.statuses == [STARTING, UP, DOWN, UP] and not h.invalid


def test_region_sets_both_hosts_and_the_cli_lists_the_plugin() -> None:
    config = GenesysCloudConfig.model_validate({
        "type": "genesys_cloud", "region": "euw2.pure.cloud", "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET, "queues": {Q_SUPPORT: "support"}})
    api = GenesysCloudSource("gc", config).api
    assert (api.api_url, api.login_url) == ("https://api.euw2.pure.cloud",
                                            "https://login.euw2.pure.cloud")
    listed = subprocess.run([sys.executable, "-m", "wallboard", "plugins"], check=True,
                            capture_output=True, text=True).stdout
    assert "genesys_cloud" in listed and "source types: genesys_cloud" in listed


@pytest.mark.parametrize("garbage", [
    {"entities": "x", "results": 7},
    {"entities": [{"id": ALICE, "presence": "x", "routingStatus": [1]}], "results": [
        {"group": [], "data": {}}, {"group": {"queueId": Q_SUPPORT}, "data": [
            {"metric": "oWaiting", "stats": "x", "observations": 5},
            {"metric": "oWaiting", "observations": [{"conversationId": "y" * 300}, 3]},
            {"metric": "oOnQueueUsers", "qualifier": ["IDLE"], "stats": {"count": 10**9}}]}]},
])
async def test_hostile_snapshot_answers_never_crash_the_source(garbage: Any) -> None:
    async with running(GenesysPeer(users={ALICE: ("On Queue", "IDLE")}, garbage=garbage)) as h:
        await h.wait_for(lambda: h.status == UP, "come up")
        assert h.crashes == 0 and not h.invalid
        assert not of_type(h, "contact.queued")


def test_an_answered_call_passed_on_to_another_queue_is_a_transfer() -> None:
    """The agent's leg ends as another queue's acd leg begins: ended, then transferred (as
    asterisk_ami's `AgentComplete` with `Reason: transfer`); the other queue counts its join."""
    mapper = Mapper({Q_SUPPORT: "support", Q_SALES: "sales"}, {ALICE: ("Alice", [Q_SUPPORT])})
    t = 1_796_630_400.0
    body = conversation("c9", Q_SUPPORT, t, answered=t + 10, agent=ALICE, ended=t + 70,
                        to_queue=Q_SALES)
    events = [e for e in mapper.conversation(Q_SUPPORT, body, t + 80)
              if e["type"].startswith("contact.")]
    assert [(e["type"], e["ts"], e.get("to_queue"), e.get("agent")) for e in events] == [
        ("contact.queued", t, None, None), ("contact.answered", t + 10, None, "Alice"),
        ("contact.ended", t + 70, None, "Alice"), ("contact.transferred", t + 70, "sales",
                                                   "Alice")]
    assert events[3]["id"] == "c9@support:transferred"
    plain = conversation("c8", Q_SUPPORT, t, answered=t + 10, agent=ALICE, ended=t + 70)
    assert "contact.transferred" not in [e["type"] for e in
                                         mapper.conversation(Q_SUPPORT, plain, t + 80)]
