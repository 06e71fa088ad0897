"""The asterisk_ami source on a real board: hand-computed KPIs, reconnect, recorded sessions."""

from __future__ import annotations

import asyncio
import time

from tests.ami_frames import (
    PARAMS,
    STAFF,
    abandon,
    ami_config,
    complete,
    connect,
    entry,
    join,
    kpis,
    leave,
    member,
    source_status,
    subset,
    until,
)
from tests.ami_peer import AmiPeer, blocks, capture
from wallboard.kit.source import UP


async def test_full_call_abandon_and_transfer_give_the_hand_computed_kpis(live_server) -> None:
    peer = await AmiPeer(snapshot=STAFF).start()
    try:
        live = await live_server(ami_config(peer))
        await until(live, lambda api: kpis(api)["agents_available"] == 2, "the staff snapshot")
        alice, bob = ("Alice", "PJSIP/1001"), ("Bob", "PJSIP/1002")
        await peer.send([
            join(1), join(2, 2),
            member(*alice, 2, event="QueueMemberStatus"), connect(1, hold=12), leave(1, 1),
            abandon(2, hold=40), leave(2, 0),                      # caller 2 gives up
            complete(1, hold=12, talk=180), member(*alice, 1, event="QueueMemberStatus"),
            join(3), member(*bob, 2, event="QueueMemberStatus"), leave(3), connect(3, hold=20),
            complete(3, hold=20, talk=95, reason="transfer"),      # Bob passes it on
            member(*bob, 1, event="QueueMemberStatus"),
            join(4),                                               # still waiting
        ])
        # By hand: 4 offered; 1 and 3 answered after 12 s and 20 s (ASA 16 s); 2 abandoned
        # after 40 s; handled 1 (180 s) and 3 (95 s), AHT 137.5 s; 3 transferred after
        # answer; 4 waiting; Alice and Bob available again, Carol (Status 5) offline.
        expected = {"offered": 4, "answered": 2, "abandoned": 1, "asa_s": 16.0,
                    "aht_s": 137.5, "transfers": 1, "waiting": 1, "agents_available": 2,
                    "agents_busy": 0, "agents_offline": 1, "agents_staffed": 2}
        api = await until(live, lambda api: subset(kpis(api), expected), f"{expected}")
        assert subset(kpis(api), expected)
        assert source_status(live).status == UP
        states = {name: (a["state"], a["queues"]) for name, a in api["agents"].items()}
        assert states == {"Alice": ("available", "support"), "Bob": ("available", "support"),
                          "Carol": ("offline", "support")}
    finally:
        await peer.stop()


async def test_reconnect_rebuilds_from_the_snapshot_and_counts_nothing_twice(live_server) -> None:
    peer = await AmiPeer(snapshot=STAFF).start()
    try:
        live = await live_server(ami_config(peer))
        await until(live, lambda api: kpis(api)["agents_available"] == 2, "the staff snapshot")
        await peer.send([join(1), join(2, 2)])
        await until(live, lambda api: subset(kpis(api), {"offered": 2, "waiting": 2}),
                    "two callers waiting")
        # While the link is down: caller 1 is answered by Alice (still talking), caller 9
        # joins and leaves (never seen: AMI replays nothing), caller 3 joins and waits.
        peer.snapshot = [PARAMS, member("Alice", "PJSIP/1001", 2),
                         member("Bob", "PJSIP/1002", 1), member("Carol", "PJSIP/1003", 5),
                         entry(2, 30, 1), entry(3, 5, 2)]
        logins = peer.logins
        peer.hang_up()
        # By hand, from the snapshot: offered 3 (1 and 2 before, 3 new; the snapshot's 2 has
        # the id of its counted join); waiting 2 and 3 (1 is gone); Alice busy.
        rebuilt = {"offered": 3, "answered": 0, "abandoned": 0, "waiting": 2,
                   "agents_available": 1, "agents_busy": 1, "agents_offline": 1}
        await until(live, lambda api: peer.logins > logins and subset(kpis(api), rebuilt),
                    f"the rebuilt state {rebuilt}")
        # A join repeated around the reconnect, then caller 1's call ends.
        await peer.send([join(2, 2), complete(1, hold=8, talk=60)])
        # Nothing counted twice; caller 1's end is handled (AHT 60 s).
        expected = {**rebuilt, "aht_s": 60.0}
        api = await until(live, lambda api: subset(kpis(api), expected), f"{expected}")
        assert kpis(api)["oldest_wait_s"] >= 30  # caller 2 waited 30 s when the snapshot ran
        assert peer.logins == 2 and source_status(live).events > 0
        assert source_status(live).status == UP
    finally:
        await peer.stop()


async def test_recorded_panoramisk_session_drives_agent_states_on_the_board(live_server) -> None:
    status = blocks(capture("queue_status.yaml"))
    peer = AmiPeer(snapshot=status[1:-1], crlf=False)  # LF, as recorded
    # The recorded Login answer and FullyBooted (the client's own Action frame is left out).
    peer.login_reply = [b for b in blocks(capture("login_ok.yaml")) if not b.startswith(
        ("Asterisk Call Manager", "Action:"))]
    assert [b.split("\n")[0] for b in peer.login_reply] == ["Response: Success",
                                                            "Event: FullyBooted"]
    await peer.start()
    try:
        # The capture masked one queue's name three ways; all are the same queue.
        names = {"xxxxxxxxxxxxxxxx-tous": "sales", "maisonvoyance-tous": "sales",
                 "xxxxxxxxxxxx-tous": "sales"}
        live = await live_server(ami_config(peer, queues=names))
        # QueueStatus: five members Status 1 unpaused, Agent/999 Status 5 (not logged in).
        await until(live, lambda api: subset(kpis(api, "sales"), {
            "agents_available": 5, "agents_offline": 1, "agents_staffed": 5}), "the snapshot")
        text = capture("agent_not_in_pause.yaml")
        cut = text.index("Event: QueueMemberPaused")
        await peer.send_raw(text[:cut].encode())
        # Agent/999 logs in on a call (Status 2, paused): busy.
        await until(live, lambda api: subset(kpis(api, "sales"), {
            "agents_available": 5, "agents_busy": 1, "agents_offline": 0}), "Agent/999 busy")
        await peer.send_raw(text[cut:].encode())
        # Unpaused (an Asterisk 11 QueueMemberPaused without Status), then Status 1: idle.
        await until(live, lambda api: subset(kpis(api, "sales"), {
            "agents_available": 6, "agents_busy": 0, "agents_away": 0}), "Agent/999 free")
        await peer.send_raw(capture("agent_loggued_in.yaml").encode())
        # general_queue: Agent/401 reported idle; Agent/402 added in use, then idle.
        await until(live, lambda api: "general_queue" in api["queues"] and subset(
            kpis(api, "general_queue"), {"agents_available": 2, "agents_busy": 0}),
            "general_queue members")
        assert source_status(live).status == UP
    finally:
        await peer.stop()


# -- TLS, keep-alive, queue names, call start ---------------------------------------------------




async def test_wrong_secret_on_the_board_shows_the_source_down_without_retry_storm(
        live_server) -> None:
    peer = await AmiPeer(secret="not-this-one").start()
    try:
        live = await live_server(ami_config(peer))
        api = await until(live, lambda api: api["sources"]["pbx"]["status"] == "down",
                          "the source down")
        assert "refused: Authentication failed (check username and secret)" in \
            api["sources"]["pbx"]["last_error"]
        await asyncio.sleep(0.5)
        # auth_retry_s (60 s by default) holds the next try; the server keeps serving.
        assert peer.refused == 1 and source_status(live).crashes == 0
        assert (await live.get_json("/healthz"))["status"] == "ok"
    finally:
        await peer.stop()




async def test_legal_wait_from_call_start_uses_the_uniqueid_epoch(live_server) -> None:
    peer = await AmiPeer(snapshot=STAFF).start()
    try:
        config = ami_config(peer, entered_from="uniqueid")
        config["queues"]["support"]["legal_rules"] = [
            {"name": "six_minutes", "limit_s": 360, "start": "call"}]
        live = await live_server(config)
        await until(live, lambda api: kpis(api)["agents_available"] == 2, "the staff snapshot")
        # The channel was created 100 s ago (IVR), and joins the queue now.
        created = int(time.time()) - 100
        await peer.send([join(1).replace("Uniqueid: 1700000000.1", f"Uniqueid: {created}.1")])
        api = await until(live, lambda api: kpis(api)["waiting"] == 1, "the caller waiting")
        legal = api["queues"]["support"]["legal"]["six_minutes"]
        assert 100 <= legal["oldest_s"] < 360 and legal["state"] == "ok"
        assert kpis(api)["oldest_wait_s"] < 100  # the queue wait itself starts at the join
    finally:
        await peer.stop()
