"""freeswitch_callcenter over a real ESL peer: KPIs end to end, auth, cuts, reconnects."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from wallboard_plugins.freeswitch_callcenter import (
    FreeswitchCallcenterConfig,
    FreeswitchCallcenterSource,
)
from wallboard_plugins.freeswitch_callcenter.mapping import Mirror, agent_reason, agent_state

from tests.conftest import base_config
from tests.esl_peer import (
    AGENT_COLUMNS,
    MEMBER_COLUMNS,
    EslPeer,
    agent_row,
    event_frame,
    frame,
    member_row,
    table,
)
from wallboard.config.settings import ConfigError, parse_settings
from wallboard.server.plugins import build_registry, build_sources, make_plugin_manager

FSQ = "support@default"  # the mod_callcenter queue; the board calls it "sales"
PASSWORD = "s3cret-esl"


def members_cmd(queue: str = FSQ) -> str:
    return f"callcenter_config queue list members {queue}"


def agents_cmd(queue: str = FSQ) -> str:
    return f"callcenter_config queue list agents {queue}"


def cc(action: str, at: float, **fields: Any) -> bytes:
    """A callcenter::info event frame stamped `at` (Event-Date-Timestamp is microseconds)."""
    return event_frame({"CC-Action": action, "Event-Date-Timestamp": int(at * 1e6), **fields})


def queued(uuid: str, joined: float) -> bytes:
    return cc("member-queue-start", joined, **{"CC-Queue": FSQ, "CC-Member-UUID": uuid,
                                               "CC-Member-Session-UUID": f"{uuid}-s",
                                               "CC-Member-CID-Number": "1001",
                                               "CC-Member-Joined-Time": int(joined)})


def bridged(uuid: str, agent: str, joined: float, answered: float) -> bytes:
    return cc("bridge-agent-start", answered, **{
        "CC-Queue": FSQ, "CC-Member-UUID": uuid, "CC-Agent": agent,
        "CC-Agent-UUID": f"{agent}-leg", "CC-Agent-Called-Time": int(answered) - 3,
        "CC-Agent-Answered-Time": int(answered), "CC-Member-Joined-Time": int(joined)})


def ended(uuid: str, joined: float, left: float, agent: str | None = None,
          answered: float | None = None, reason: str = "NONE") -> bytes:
    fields: dict[str, Any] = {"CC-Queue": FSQ, "CC-Member-UUID": uuid,
                              "CC-Member-Joined-Time": int(joined),
                              "CC-Member-Leaving-Time": int(left),
                              "CC-Hangup-Cause": "NORMAL_CLEARING"}
    if agent is not None and answered is not None:
        fields.update({"CC-Cause": "Terminated", "CC-Cancel-Reason": "NONE", "CC-Agent": agent,
                       "CC-Agent-Called-Time": int(answered) - 3,
                       "CC-Agent-Answered-Time": int(answered)})
    else:
        fields.update({"CC-Cause": "Cancel", "CC-Cancel-Reason": reason})
    return cc("member-queue-end", left, **fields)


def status(agent: str, value: str, at: float) -> bytes:
    return cc("agent-status-change", at, **{"CC-Agent": agent, "CC-Agent-Status": value})


def state(agent: str, value: str, at: float) -> bytes:
    return cc("agent-state-change", at, **{"CC-Agent": agent, "CC-Agent-State": value})


def fs_source(port: int, password: str = PASSWORD) -> dict[str, Any]:
    return {"type": "freeswitch_callcenter", "host": "127.0.0.1", "port": port,
            "password": password, "queues": [FSQ], "queue_names": {FSQ: "sales"}}


@pytest.fixture
async def esl_peer() -> AsyncIterator[EslPeer]:
    peer = await EslPeer(PASSWORD).start()
    peer.tables[members_cmd()] = table(MEMBER_COLUMNS, [])
    peer.tables[agents_cmd()] = table(AGENT_COLUMNS, [
        agent_row("alice", "Available", "Waiting"), agent_row("bob", "On Break", "Waiting")])
    yield peer
    await peer.stop()


async def board(live: Any, condition: Callable[[dict[str, Any]], bool], what: str
                ) -> dict[str, Any]:
    """The sales queue of /api/snapshot once `condition` holds (fails after 10 s)."""
    deadline = time.monotonic() + 10
    while True:
        sales = (await live.get_json("/api/snapshot"))["queues"]["sales"]
        if condition(sales):
            return sales
        assert time.monotonic() < deadline, f"board never showed {what}: {sales}"
        await asyncio.sleep(0.05)


async def test_full_call_abandon_and_agents_give_hand_computed_kpis(live_server, esl_peer
                                                                    ) -> None:
    live = await live_server(base_config(sources={"fs": fs_source(esl_peer.port)}))
    await asyncio.wait_for(esl_peer.subscribed.wait(), 10)
    await board(live, lambda q: q["live"]["agents_available"] == 1, "alice available")
    t0 = time.time() - 100
    for data in [
        queued("m-a", t0),                       # A waits 12 s, talks 60 s with alice
        state("alice", "Receiving", t0 + 9),
        bridged("m-a", "alice", t0, t0 + 12),
        state("alice", "In a queue call", t0 + 12),
        queued("m-b", t0 + 20),                  # B hangs up after 30 s: an abandon
        status("bob", "Available", t0 + 30),
        ended("m-b", t0 + 20, t0 + 50),
        queued("m-c", t0 + 60),                  # C is still waiting
        ended("m-a", t0, t0 + 72, agent="alice", answered=t0 + 12),
        state("alice", "Waiting", t0 + 72),
    ]:
        await esl_peer.push(data)
    sales = await board(live, lambda q: q["today"]["offered"] == 3 and q["live"]["waiting"] == 1
                        and q["today"]["aht_s"] is not None, "all three calls")
    today, now_ = sales["today"], sales["live"]
    assert today["answered"] == 1 and today["abandoned"] == 1
    # Service level at 20 s: A answered in 12 s (met); B abandoned after 30 s and C has
    # waited over 20 s (both missed): 1 of 3. Abandon rate: 1 abandon of 2 calls that left.
    assert (today["sl_met"], today["sl_missed"]) == (1, 2)
    assert today["service_level"] == pytest.approx(1 / 3, abs=1e-5)
    assert today["abandon_rate"] == pytest.approx(0.5)
    assert today["asa_s"] == pytest.approx(12.0)  # one answer after 12 s
    assert today["aht_s"] == pytest.approx(60.0)  # 72 - 12 s of talk
    assert now_["waiting"] == 1 and now_["oldest_wait_s"] >= 40.0  # C joined 40 s ago
    assert now_["agents_available"] == 2 and now_["agents_away"] == 0  # bob back from break
    assert now_["agents_busy"] == 0 and now_["agents_staffed"] == 2


async def test_reconnect_rebuilds_state_from_the_lists_without_double_counting(
        live_server, esl_peer) -> None:
    live = await live_server(base_config(sources={"fs": fs_source(esl_peer.port)}))
    await asyncio.wait_for(esl_peer.subscribed.wait(), 10)
    t0 = time.time() - 300
    for data in [queued("m-a", t0), queued("m-b", t0 + 10)]:
        await esl_peer.push(data)
    await board(live, lambda q: q["live"]["waiting"] == 2, "A and B waiting")
    # While we are cut off: alice answers A (still talking), B leaves unseen, C joins and
    # waits, D joins and abandons (its row lingers as Abandoned), E comes and goes unseen.
    esl_peer.tables[members_cmd()] = table(MEMBER_COLUMNS, [
        member_row(FSQ, "m-a", t0, "Answered", bridge=t0 + 15, agent="alice"),
        member_row(FSQ, "m-c", t0 + 100),
        member_row(FSQ, "m-d", t0 + 110, "Abandoned", abandoned=t0 + 150)])
    esl_peer.tables[agents_cmd()] = table(AGENT_COLUMNS, [
        agent_row("alice", "Available", "In a queue call"),
        agent_row("bob", "Logged Out", "Waiting")])
    esl_peer.hang_up()
    await asyncio.wait_for(esl_peer.subscribed.wait(), 10)
    sales = await board(live, lambda q: q["today"]["answered"] == 1
                        and q["today"]["abandoned"] == 1, "the state from the lists")
    # A, B, C, D offered once each although A was reported before and after the reconnect.
    assert sales["today"]["offered"] == 4
    assert sales["today"]["asa_s"] == pytest.approx(15.0)
    assert sales["live"]["waiting"] == 1  # C only: B is gone, as the list says
    assert sales["live"]["agents_busy"] == 1 and sales["live"]["agents_offline"] == 1
    # A's end arrives live; its answer, already counted from the list, is not counted again.
    await esl_peer.push(ended("m-a", t0, t0 + 200, agent="alice", answered=t0 + 15))
    await esl_peer.push(state("alice", "Waiting", t0 + 200))
    sales = await board(live, lambda q: q["today"]["aht_s"] is not None, "A's end")
    assert (sales["today"]["offered"], sales["today"]["answered"]) == (4, 1)
    assert sales["today"]["aht_s"] == pytest.approx(185.0)
    assert sales["live"]["agents_available"] == 1 and sales["live"]["agents_busy"] == 0
    assert esl_peer.connections == 2


async def test_events_interleaved_with_api_replies_are_applied_once(live_server) -> None:
    peer = await EslPeer(PASSWORD).start()
    try:
        t0 = time.time() - 60
        # X joins between our subscription and the members list, which already shows it;
        # Y joins while we wait for the agents list.
        peer.tables[members_cmd()] = table(MEMBER_COLUMNS, [member_row(FSQ, "m-x", t0)])
        peer.tables[agents_cmd()] = table(AGENT_COLUMNS, [
            agent_row("alice", "Available", "Waiting")])
        # A log line (a frame type we never asked about) and events arrive before the reply.
        peer.before_api = [frame({"Content-Type": "log/data", "Log-Level": "7"},
                                 b"[DEBUG] mod_callcenter.c:1234 queue support\n"),
                           queued("m-x", t0), status("alice", "Available", t0 + 1)]
        original = peer._answer

        async def answer(command: str, writer: asyncio.StreamWriter) -> bool:
            if command == f"api {agents_cmd()}":
                peer.before_api = [queued("m-y", t0 + 5)]
            return await original(command, writer)

        peer._answer = answer  # type: ignore[method-assign]
        live = await live_server(base_config(sources={"fs": fs_source(peer.port)}))
        sales = await board(live, lambda q: q["live"]["waiting"] == 2, "X and Y waiting")
        assert sales["today"]["offered"] == 2
        assert sales["live"]["agents_available"] == 1
        assert [c.split(" ", 1)[0] for c in peer.commands] == ["auth", "event", "api", "api"]
    finally:
        await peer.stop()


async def test_wrong_password_is_a_clear_error_and_retries_only_after_back_off(
        source_harness, virtual_clock, esl_peer) -> None:
    source = FreeswitchCallcenterSource("fs", FreeswitchCallcenterConfig(
        **fs_source(esl_peer.port, password="wrong-one")))
    async with source_harness(source) as h:
        await h.wait_for(lambda: esl_peer.auth_failures >= 4, "retry four times")
        assert h.statuses == ["starting", "down"] and h.crashes == 0
        assert "authentication failed" in (h.last_error or "")
        assert "'password'" in (h.last_error or "") and "wrong-one" not in (h.last_error or "")
        # Every attempt after the first waited for a back-off, and the back-off keeps growing.
        assert esl_peer.connections <= len(virtual_clock.slept) + 1
        assert h.runner is not None and h.runner.backoff.attempt >= 3
    assert esl_peer.commands[0] == "auth wrong-one"
    assert not any(c.startswith("event") for c in esl_peer.commands)


async def test_peer_closing_mid_frame_is_a_source_error_and_it_reconnects(
        source_harness, esl_peer, caplog) -> None:
    source = FreeswitchCallcenterSource("fs", FreeswitchCallcenterConfig(
        **fs_source(esl_peer.port)))
    async with source_harness(source) as h:
        await h.wait_for(lambda: h.status == "up", "come up")
        whole = queued("m-cut", time.time())
        await esl_peer.push(whole[: len(whole) - 20])  # headers and part of the body
        await asyncio.sleep(0.05)
        esl_peer.hang_up()
        await h.wait_for(lambda: h.statuses[-2:] == ["down", "up"], "go down and up again")
        assert h.crashes == 0
        assert "closed the connection mid-frame" in caplog.text
        assert not any(e.get("contact_id") == "m-cut" for e in h.events)
        assert not h.invalid
    assert esl_peer.connections == 2


async def test_mid_frame_error_names_the_cut() -> None:
    from wallboard_plugins.freeswitch_callcenter.esl import EslConnection

    from wallboard.kit.source import SourceError

    reader = asyncio.StreamReader()
    reader.feed_data(b"Content-Length: 50\nContent-Type: text/event-json\n\n{\"CC-Act")
    reader.feed_eof()
    conn = EslConnection(reader, None, "FreeSWITCH test")  # type: ignore[arg-type]
    with pytest.raises(SourceError, match="mid-frame"):
        await conn.read_frame()


@pytest.mark.parametrize(("change", "fragment"), [
    ({"password": None}, "sources.fs.password: Field required"),
    ({"port": 70000}, "sources.fs.port: Input should be less than or equal to 65535"),
    ({"queues": [""]}, "sources.fs.queues: queue names must be non-empty"),
    ({"passwrd": "x"}, "sources.fs.passwrd: Extra inputs are not permitted"),
])
def test_bad_config_names_the_key(change: dict[str, Any], fragment: str) -> None:
    source = fs_source(8021)
    for key, value in change.items():
        if value is None:
            source.pop(key)
        else:
            source[key] = value
    settings = parse_settings(base_config(sources={"fs": source}), "<test>")
    with pytest.raises(ConfigError) as info:
        build_sources(settings, build_registry(make_plugin_manager()))
    assert fragment in str(info.value)


@pytest.mark.parametrize(("status_", "state_", "expected"), [
    ("Logged Out", "Waiting", "offline"), ("On Break", "In a queue call", "away"),
    ("Available", "Waiting", "available"), ("Available (On Demand)", "Waiting", "available"),
    ("Available", "Receiving", "busy"), ("Available", "In a queue call", "busy"),
    ("Available", "Reserved", "busy"), ("Available", "Idle", "away"),
])
def test_agent_status_and_state_map_to_canonical_states(status_: str, state_: str,
                                                        expected: str) -> None:
    assert agent_state(status_, state_) == expected


@pytest.mark.parametrize(("status_", "state_", "reason"), [
    ("On Break", "Waiting", "On Break"), ("On Break", "In a queue call", "On Break"),
    ("Available", "Idle", "Idle"), ("Available", "Waiting", None),
    ("Logged Out", "Idle", None), ("Available", "In a queue call", None),
])
def test_an_away_agent_carries_its_status_as_the_reason(status_: str, state_: str,
                                                         reason: str | None) -> None:
    mirror = Mirror()
    mirror.rebuild({FSQ: []}, {FSQ: [{"name": "bob", "status": status_, "state": state_}]},
                   1000.0)
    assert agent_reason(status_, state_) == reason
    event = mirror.agent_event("bob", 1000.0, None)
    assert event.get("reason") == reason
    # Live events say the same: a status change to On Break, then back.
    if status_ == "On Break":
        out = mirror.apply({"CC-Action": "agent-status-change", "CC-Agent": "bob",
                            "CC-Agent-Status": "Available", "Event-Date-Timestamp": "2"}, 1001.0)
        assert "reason" not in out[0]
        out = mirror.apply({"CC-Action": "agent-status-change", "CC-Agent": "bob",
                            "CC-Agent-Status": "On Break", "Event-Date-Timestamp": "3"}, 1002.0)
        assert (out[0]["state"], out[0]["reason"]) == ("away", "On Break")


def test_events_without_a_member_or_of_other_queues_are_ignored() -> None:
    mirror = Mirror()
    mirror.rebuild({FSQ: []}, {FSQ: []}, 1000.0)
    start = {"CC-Action": "member-queue-start", "CC-Queue": FSQ, "Event-Date-Timestamp": "1"}
    assert mirror.apply(start, 1000.0) == []  # no CC-Member-UUID
    other = {**start, "CC-Queue": "other@default", "CC-Member-UUID": "m-1"}
    assert mirror.apply(other, 1000.0) == []
    assert mirror.apply({"CC-Action": "members-count", "CC-Queue": FSQ, "CC-Count": "3"},
                        1000.0) == []


async def test_without_queues_it_follows_every_queue_freeswitch_lists(source_harness,
                                                                      esl_peer) -> None:
    esl_peer.tables["callcenter_config queue list"] = table(
        "name|strategy|moh_sound|time_base_score|tier_rules_apply|tier_rule_wait_second",
        [f"{FSQ}|longest-idle-agent|local_stream://moh|system|false|300"])
    # A caller waiting 30 s (a join time of 1970 would be a wait beyond the 7-day bound).
    esl_peer.tables[members_cmd()] = table(MEMBER_COLUMNS,
                                           [member_row(FSQ, "m-1", time.time() - 30)])
    config = fs_source(esl_peer.port)
    del config["queues"], config["queue_names"]
    async with source_harness(FreeswitchCallcenterSource(
            "fs", FreeswitchCallcenterConfig(**config))) as h:
        await h.wait_for(lambda: h.status == "up", "come up")
        snapshots = [e for e in h.events if e["type"] == "queue.snapshot"]
        assert [(e["queue"], e["waiting"]) for e in snapshots] == [(FSQ, 1)]
        assert snapshots[0]["agents"] == {"available": 1, "away": 1}
        assert not h.invalid
    assert esl_peer.commands[2:] == ["api callcenter_config queue list", f"api {members_cmd()}",
                                     f"api {agents_cmd()}"]


async def test_disconnect_notice_takes_it_down_and_it_comes_back(source_harness, esl_peer,
                                                                 caplog) -> None:
    source = FreeswitchCallcenterSource("fs", FreeswitchCallcenterConfig(
        **fs_source(esl_peer.port)))
    async with source_harness(source) as h:
        await h.wait_for(lambda: h.status == "up", "come up")
        await esl_peer.push(frame({"Content-Type": "text/disconnect-notice"},
                                  b"Disconnected, goodbye.\n"))
        await h.wait_for(lambda: h.statuses[-2:] == ["down", "up"], "go down and up again")
        assert "disconnect notice" in caplog.text and h.crashes == 0
