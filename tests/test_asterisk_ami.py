"""The asterisk_ami source against a scripted AMI peer on a real socket, and on the board."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from pathlib import Path
from typing import Any, ClassVar

from wallboard_plugins.asterisk_ami import AsteriskAmiSource
from wallboard_plugins.asterisk_ami.mapping import Mapper
from wallboard_plugins.asterisk_ami.protocol import Message, md5_key, parse_lines
from wallboard_plugins.asterisk_ami.source import enable_keepalive

from tests.ami_frames import (
    PARAMS,
    STAFF,
    abandon,
    connect,
    entry,
    join,
    leave,
    member,
)
from tests.ami_peer import AmiPeer, blocks, capture, wire, with_action_id
from tests.conftest import require_program
from wallboard.kit.source import DOWN, STARTING, UP
from wallboard.kit.testing import SourceContract, SourceHarness, TcpReplay
from wallboard.model.events import parse_event


def parse_frame(raw: bytes | str) -> Message:
    """One frame from its raw text (CRLF or bare LF line ends), as the reader splits it."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return parse_lines(text.replace("\r\n", "\n").split("\n"))

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
    long = member("Alice", "PJSIP/1001", 1, 1, event="QueueMemberPause", reason="x" * 300)
    assert mapper.handle(parse_frame(long), 3.5)[0]["reason"] == "x" * 128  # cut, not refused
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


def self_signed(tmp_path: Path) -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate for 127.0.0.1."""
    require_program("openssl",
                    "Debian package openssl makes the TLS test's self-signed certificate")
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
