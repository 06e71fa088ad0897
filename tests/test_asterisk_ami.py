"""The asterisk_ami source against a scripted AMI peer on a real socket, and on the board."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
from wallboard_plugins.asterisk_ami import AsteriskAmiSource
from wallboard_plugins.asterisk_ami.mapping import Mapper
from wallboard_plugins.asterisk_ami.protocol import md5_key, parse_frame
from wallboard_plugins.asterisk_ami.source import enable_keepalive

from tests.ami_peer import SHARED_AMI, AmiPeer, blocks, capture, wire, with_action_id
from tests.conftest import base_config, require_program
from wallboard.events import parse_event
from wallboard.sources import DOWN, STARTING, UP
from wallboard.testing import SourceContract, SourceHarness, TcpReplay

needs_captures = pytest.mark.skipif(
    not SHARED_AMI.is_dir(), reason=f"panoramisk AMI captures not found at {SHARED_AMI}")

CALLER = """Channel: PJSIP/trunk-{n:08d}
ChannelState: 6
ChannelStateDesc: Up
CallerIDNum: 41555501{n:02d}
CallerIDName: <unknown>
ConnectedLineNum: <unknown>
ConnectedLineName: <unknown>
Language: en
AccountCode:
Context: from-trunk
Exten: 700
Priority: 3
Uniqueid: 1700000000.{n}
Linkedid: 1700000000.{n}"""

AGENT = """DestChannel: PJSIP/1001-000000{n:02d}
DestUniqueid: 1700000003.{n}
DestLinkedid: 1700000000.{n}
Queue: support
Interface: PJSIP/1001
MemberName: Alice"""


def call_event(name: str, n: int, extra: str = "", agent: bool = False) -> str:
    """One queue event for caller n (Uniqueid 1700000000.n), as Asterisk 18+ writes it."""
    body = f"Event: {name}\nPrivilege: agent,all\n" + CALLER.format(n=n)
    body += "\n" + (AGENT.format(n=n) if agent else "Queue: support")
    return body + (f"\n{extra}" if extra else "")


def join(n: int, count: int = 1) -> str:
    return call_event("QueueCallerJoin", n, f"Position: {count}\nCount: {count}")


def leave(n: int, count: int = 0) -> str:
    return call_event("QueueCallerLeave", n, f"Count: {count}\nPosition: 1")


def connect(n: int, hold: int) -> str:
    return call_event("AgentConnect", n, f"RingTime: 3\nHoldTime: {hold}", agent=True)


def complete(n: int, hold: int, talk: int, reason: str = "caller") -> str:
    return call_event("AgentComplete", n, f"HoldTime: {hold}\nTalkTime: {talk}\n"
                      f"Reason: {reason}", agent=True)


def abandon(n: int, hold: int) -> str:
    return call_event("QueueCallerAbandon", n,
                      f"Position: 1\nOriginalPosition: 1\nHoldTime: {hold}")


def member(name: str, interface: str, status: int, paused: int = 0, event: str = "",
           reason: str = "") -> str:
    """A member: a QueueMember list item (Name/Location) or an event (MemberName/Interface)."""
    if event:
        head = (f"Event: {event}\nPrivilege: agent,all\nQueue: support\nMemberName: {name}\n"
                f"Interface: {interface}\nStateInterface: {interface}")
    else:
        head = f"Event: QueueMember\nQueue: support\nName: {name}\nLocation: {interface}\n" \
               f"StateInterface: {interface}"
    return (head + f"\nMembership: dynamic\nPenalty: 0\nCallsTaken: 0\nLastCall: 0\n"
            f"LastPause: 0\nLoginTime: 1700000000\nInCall: 0\nStatus: {status}\n"
            f"Paused: {paused}\nPausedReason: {reason}\nWrapuptime: 0")


def entry(n: int, wait: int, position: int = 1) -> str:
    return (f"Event: QueueEntry\nQueue: support\nPosition: {position}\n"
            f"Channel: PJSIP/trunk-{n:08d}\nUniqueid: 1700000000.{n}\nCallerIDNum: 4155550100\n"
            f"CallerIDName: <unknown>\nConnectedLineNum: <unknown>\n"
            f"ConnectedLineName: <unknown>\nWait: {wait}\nPriority: 0")


PARAMS = ("Event: QueueParams\nQueue: support\nMax: 0\nStrategy: ringall\nCalls: 0\n"
          "Holdtime: 0\nTalkTime: 0\nCompleted: 0\nAbandoned: 0\nServiceLevel: 60\n"
          "ServicelevelPerf: 0.0\nServicelevelPerf2: 0.0\nWeight: 0")
STAFF = [PARAMS, member("Alice", "PJSIP/1001", 1), member("Bob", "PJSIP/1002", 1),
         member("Carol", "PJSIP/1003", 5)]


def ami_config(peer: AmiPeer, **extra: Any) -> dict[str, Any]:
    """A board config with one voice queue `support` fed by the AMI peer."""
    source = {"type": "asterisk_ami", "host": "127.0.0.1", "port": peer.port,
              "username": "wallboard", "secret": "s3cret", **extra}
    return base_config(queues={"support": {"label": "Support", "channel": "voice"},
                               "sales": {"label": "Sales", "channel": "voice"}},
                       sources={"pbx": source})


async def until(live: Any, check: Callable[[dict[str, Any]], bool], what: str,
                timeout_s: float = 10.0) -> dict[str, Any]:
    """Poll /api/snapshot until `check` holds; fail naming `what` and the last snapshot."""
    deadline = time.monotonic() + timeout_s
    while True:
        api = await live.get_json("/api/snapshot")
        if check(api):
            return api
        if time.monotonic() > deadline:
            pytest.fail(f"board never showed {what}: {api['queues']}")
        await asyncio.sleep(0.05)


def source_status(live: Any) -> Any:
    from wallboard import appkeys as keys
    return live.app[keys.RUNNERS]["pbx"].status


# -- protocol -----------------------------------------------------------------------------------


def test_md5_key_is_md5_of_challenge_and_secret_per_the_test_vector() -> None:
    assert md5_key("911725589", "password") == "7c6a3462ff7219ebc3c13d236a067739"


def test_frames_split_on_the_first_colon_space_keep_repeats_and_match_keys_any_case() -> None:
    msg = parse_frame(b"Event: VarSet\r\nvalue: a: b\r\nVariable: X=1\r\nVariable: Y=2\r\n"
                      b"AccountCode:\r\n\r\n")
    assert msg.event == "VarSet"
    assert msg.get("Value") == "a: b"
    assert [v for k, v in msg.pairs if k == "Variable"] == ["X=1", "Y=2"]
    assert msg.get("AccountCode") == ""
    assert parse_frame("Response: Success\nActionID: x-1\n").action_id == "x-1"


@needs_captures
def test_the_recorded_queue_status_rebuilds_members_with_the_available_rule() -> None:
    frames = [parse_frame(b) for b in blocks(capture("queue_status.yaml"))]
    assert [f.event for f in frames[1:]] == ["QueueParams"] + ["QueueMember"] * 6 + [
        "QueueStatusComplete"]
    mapper = Mapper(lambda q: q)
    events = mapper.apply_snapshot(frames[1:-1], now=1_800_000_000.0)
    states = {e["agent"]: e["state"] for e in events if e["type"] == "agent.state"}
    # Status 1 and not paused is available; Status 5 (UNAVAILABLE) is not logged in.
    assert states == {"Agent/220": "available", "Agent/213": "available",
                      "Agent/859": "available", "Agent/214": "available",
                      "Agent/333": "available", "Agent/999": "offline"}
    snap = [e for e in events if e["type"] == "queue.snapshot"]
    assert snap == [{"type": "queue.snapshot", "ts": 1_800_000_000.0,
                     "queue": "xxxxxxxxxxxxxxxx-tous", "waiting": 0,
                     "agents": {"available": 5, "offline": 1}}]


def test_pause_reason_is_read_from_reason_before_18_and_paused_reason_after() -> None:
    mapper = Mapper(lambda q: q)
    mapper.apply_snapshot([parse_frame(member("Alice", "PJSIP/1001", 1))], 1.0)
    old = member("Alice", "PJSIP/1001", 1, 1, event="QueueMemberPause").replace(
        "PausedReason: ", "Reason: lunch")
    events = mapper.handle(parse_frame(old), 2.0)
    assert events[0] == {"type": "agent.state", "ts": 2.0, "agent": "Alice", "state": "away",
                         "queues": ["support"], "reason": "lunch"}
    new = member("Alice", "PJSIP/1001", 1, 1, event="QueueMemberPause", reason="training")
    assert mapper.handle(parse_frame(new), 3.0)[0]["reason"] == "training"
    # A 13-era status event without Paused/PausedReason keeps the pause it knew.
    bare = ("Event: QueueMemberStatus\nQueue: support\nMemberName: Alice\n"
            "Interface: PJSIP/1001\nStatus: 2")
    assert mapper.handle(parse_frame(bare), 4.0)[0]["state"] == "busy"
    assert mapper.members[("support", "PJSIP/1001")].paused


# -- connection behaviour -----------------------------------------------------------------------


def harness_source(peer: AmiPeer, **extra: Any) -> AsteriskAmiSource:
    config = AsteriskAmiSource.Config.model_validate(
        {"type": "asterisk_ami", "host": "127.0.0.1", "port": peer.port,
         "username": "wallboard", "secret": "s3cret", **extra})
    return AsteriskAmiSource("pbx", config)


async def test_md5_login_sends_the_challenge_key_and_comes_up() -> None:
    peer = await AmiPeer(snapshot=STAFF).start()
    try:
        async with SourceHarness(harness_source(peer, auth="md5")) as h:
            await h.wait_for(lambda: h.status == UP, "come up")
        login = next(a for a in peer.actions if a["action"] == "Login")
        assert login["authtype"] == "MD5" and "secret" not in login
        assert login["key"] == md5_key("911725589", "s3cret")
        assert peer.logins == 1
    finally:
        await peer.stop()


async def test_wrong_secret_is_a_clear_error_and_retries_only_after_the_back_off() -> None:
    peer = await AmiPeer(secret="the-real-one").start()
    try:
        async with SourceHarness(harness_source(peer, auth_retry_s=45)) as h:
            await h.wait_for(lambda: peer.refused >= 3, "try three times")
            assert h.status == DOWN and h.crashes == 0
            assert h.last_error == (f"AMI 127.0.0.1:{peer.port}: login as 'wallboard' "
                                    "refused: Authentication failed (check username and "
                                    "secret)")
            # Each retry waited at least auth_retry_s (virtual time), never a tight loop.
            waits = [s for s in h.clock.slept if s > 0]
            assert len(waits) >= peer.refused - 1 and min(waits) >= 45
        assert peer.logins == 0 and peer.connections == peer.refused
    finally:
        await peer.stop()


async def test_peer_closing_mid_frame_takes_it_down_and_it_reconnects() -> None:
    peer = await AmiPeer(snapshot=STAFF).start()
    try:
        async with SourceHarness(harness_source(peer)) as h:
            await h.wait_for(lambda: h.status == UP, "come up")
            peer.silent = True  # no Pong may complete the cut frame
            await peer.send_raw(b"Event: QueueCallerJoin\r\nPrivilege: agent,all\r\nQueue: sup")
            await asyncio.sleep(0.05)
            peer.hang_up()
            peer.silent = False
            await h.wait_for(lambda: h.status == DOWN, "go down")
            assert "closed the connection in the middle of a frame" in (h.last_error or "")
            await h.wait_for(lambda: h.status == UP, "come back up")
            assert h.crashes == 0 and peer.logins == 2
        # The cut join was never emitted.
        assert not [e for e in h.events if e["type"] == "contact.queued"]
    finally:
        await peer.stop()


async def test_events_interleaved_inside_the_list_response_are_applied_after_it() -> None:
    peer = AmiPeer(snapshot=[PARAMS, member("Alice", "PJSIP/1001", 1), entry(5, 12)])
    # Caller 5 is in the snapshot and its join arrives inside the list; caller 6 joins and
    # caller 7 joins and leaves while the list is being sent; Alice goes busy meanwhile.
    peer.interleaved = [join(5), join(6, 2), join(7, 3), leave(7, 2),
                        member("Alice", "PJSIP/1001", 2, event="QueueMemberStatus")]
    await peer.start()
    try:
        async with SourceHarness(harness_source(peer)) as h:
            await h.wait_for(lambda: h.status == UP, "come up")
            await h.settle(0.1)
        assert not h.invalid
        queued = [e["id"] for e in h.events if e["type"] == "contact.queued"]
        # The snapshot's caller 5 first, then the buffered joins in order; 5 again is the
        # same id, which the core counts once.
        assert queued == ["1700000000.5@support:queued", "1700000000.5@support:queued",
                          "1700000000.6@support:queued", "1700000000.7@support:queued"]
        last = [e for e in h.events if e["type"] == "queue.snapshot"][-1]
        assert last["waiting"] == 2 and last["agents"] == {"busy": 1}
        states = [e["state"] for e in h.events if e["type"] == "agent.state"]
        assert states == ["available", "busy"]  # snapshot first, then the buffered change
    finally:
        await peer.stop()


# -- the plugin kit's contract ------------------------------------------------------------------

# What a PBX says to this client, recorded in order: the client's ActionIDs are deterministic
# (wallboard-1 for Login, wallboard-2 for QueueStatus), so a plain replay answers them.
RECORDING = wire([
    "Response: Success\nActionID: wallboard-1\nMessage: Authentication accepted",
    "Event: FullyBooted\nPrivilege: system,all\nUptime: 2143\nLastReload: 2143\n"
    "Status: Fully Booted",
    "Response: Success\nActionID: wallboard-2\nEventList: start\n"
    "Message: Queue status will follow",
    *[with_action_id(f, "wallboard-2") for f in (*STAFF, entry(1, 4))],
    "Event: QueueStatusComplete\nActionID: wallboard-2\nEventList: Complete\nListItems: 5",
    connect(1, 9), leave(1), join(2), abandon(2, 30), leave(2),
])
BANNER_LINE = b"Asterisk Call Manager/9.0.0\r\n"


class TestAsteriskAmiContract(SourceContract):
    """The AMI source passes the plugin kit's contract against a replayed PBX session."""

    source_class = AsteriskAmiSource
    config: ClassVar[dict[str, Any]] = {"host": "{peer_host}", "port": "{peer_port}",
                                        "username": "wallboard", "secret": "s3cret"}
    bad_configs: ClassVar[list[tuple[dict[str, Any], str]]] = [
        ({"host": None}, "sources.contract.host: Field required"),
        ({"port": 70000}, "port: Input should be less than or equal to 65535"),
        ({"secret": ""}, "secret: String should have at least 1 character"),
        ({"auth": "sha1"}, "auth: Input should be 'plain' or 'md5'"),
        ({"entered_from": "ivr"}, "entered_from: Input should be 'none', 'uniqueid' or"),
        ({"queues": ["support"]}, "queues: Input should be a valid dictionary"),
    ]
    peer = TcpReplay(BANNER_LINE + RECORDING)


# -- on the board: KPIs against hand-computed values ------------------------------------------


def kpis(api: dict[str, Any], queue: str = "support") -> dict[str, Any]:
    """The queue's live values and today's KPIs in one dict."""
    return {**api["queues"][queue]["live"], **api["queues"][queue]["today"]}


def subset(values: dict[str, Any], expected: dict[str, Any]) -> bool:
    return all(values.get(k) == v for k, v in expected.items())


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


@needs_captures
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


def self_signed(tmp_path: Path) -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate for 127.0.0.1."""
    require_program("openssl", "the TLS test makes a self-signed certificate with it")
    cert, key = tmp_path / "pbx.crt", tmp_path / "pbx.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def test_tls_session_with_a_self_signed_certificate(tmp_path: Path) -> None:
    peer = await AmiPeer(snapshot=STAFF, ssl_context=self_signed(tmp_path)).start()
    try:
        # Verifying against the system's CAs refuses the self-signed certificate, clearly.
        async with SourceHarness(harness_source(peer, tls=True)) as h:
            await h.wait_for(lambda: h.status == DOWN, "refuse the certificate")
            assert "CERTIFICATE_VERIFY_FAILED" in (h.last_error or "") and h.crashes == 0
        async with SourceHarness(harness_source(peer, tls=True, tls_verify=False)) as h:
            await h.wait_for(lambda: h.status == UP, "come up over TLS")
            assert [e["agent"] for e in h.events if e["type"] == "agent.state"] == [
                "Alice", "Bob", "Carol"]
        assert peer.logins == 1
    finally:
        await peer.stop()


async def test_unanswered_ping_drops_the_connection_and_it_reconnects() -> None:
    peer = await AmiPeer(snapshot=STAFF).start()
    try:
        source = harness_source(peer, ping_interval_s=5, response_timeout_s=1.0)
        async with SourceHarness(source) as h:
            await h.wait_for(lambda: h.status == UP, "come up")
            peer.silent = True  # the PBX hangs without closing the socket
            await h.wait_for(lambda: h.status == DOWN, "notice the silent peer")
            assert h.last_error == "no answer to Ping within 1s"
            peer.silent = False
            await h.wait_for(lambda: h.status == UP, "come back")
        assert any(a["action"] == "Ping" for a in peer.actions) and peer.logins == 2
    finally:
        await peer.stop()


async def test_queue_mapping_drops_unmapped_queues_and_entered_ts_comes_from_uniqueid() -> None:
    peer = await AmiPeer(snapshot=STAFF).start()
    try:
        source = harness_source(peer, queues={"support": "helpdesk"}, only_mapped_queues=True,
                                entered_from="uniqueid")
        async with SourceHarness(source) as h:
            await h.wait_for(lambda: h.status == UP, "come up")
            await peer.send([join(1).replace("Queue: support", "Queue: other"), join(2)])
            await h.wait_for(lambda: any(e["type"] == "contact.queued" for e in h.events),
                             "emit the join")
            await h.settle(0.1)
        queued = [e for e in h.events if e["type"] == "contact.queued"]
        assert [(e["queue"], e["contact_id"]) for e in queued] == [("helpdesk", "1700000000.2")]
        assert queued[0]["entered_ts"] == 1700000000.0  # the channel's creation, in its id
        assert {e["queue"] for e in h.events if "queue" in e} == {"helpdesk"}
        assert not h.invalid
    finally:
        await peer.stop()


def test_a_removed_member_goes_offline_with_no_queues_and_every_event_validates() -> None:
    mapper = Mapper(lambda q: q)
    events = mapper.apply_snapshot([parse_frame(f) for f in STAFF], 10.0)
    removed = member("Bob", "PJSIP/1002", 1, event="QueueMemberRemoved")
    events += mapper.handle(parse_frame(removed), 11.0)
    assert events[-2] == {"type": "agent.state", "ts": 11.0, "agent": "Bob",
                          "state": "offline", "queues": []}
    assert events[-1]["agents"] == {"available": 1, "offline": 1}
    for event in events:
        parse_event(event, "pbx")  # raises on an invalid event


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


async def test_asterisk_shutdown_event_takes_the_source_down_and_it_comes_back() -> None:
    peer = await AmiPeer(snapshot=STAFF).start()
    try:
        async with SourceHarness(harness_source(peer)) as h:
            await h.wait_for(lambda: h.status == UP, "come up")
            await peer.send(["Event: Shutdown\nPrivilege: system,all\nShutdown: Cleanly\n"
                             "Restart: True"])
            await h.wait_for(lambda: h.status == DOWN, "go down")
            assert h.last_error == (f"AMI 127.0.0.1:{peer.port}: Asterisk is shutting down "
                                    "(Cleanly, restart: True)")
            await h.wait_for(lambda: h.status == UP, "come back")
        assert h.statuses == [STARTING, UP, DOWN, UP] and peer.logins == 2
    finally:
        await peer.stop()


async def test_the_connection_has_tcp_keepalive_on() -> None:
    peer = await AmiPeer().start()
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", peer.port)
        enable_keepalive(writer)
        sock = writer.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        writer.close()
        await writer.wait_closed()
    finally:
        await peer.stop()


async def test_a_refused_queue_status_is_a_clear_error_and_never_reports_up() -> None:
    peer = AmiPeer(snapshot=STAFF)
    peer.refuse_status = "Permission denied"
    await peer.start()
    try:
        async with SourceHarness(harness_source(peer)) as h:
            await h.wait_for(lambda: peer.connections >= 2, "retry")
            assert h.last_error == "QueueStatus refused: Permission denied"
            assert UP not in h.statuses and h.crashes == 0 and not h.events
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
